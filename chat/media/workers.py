"""A bounded thread pool for CPU-bound media work (Pillow, ffmpeg, transcription).

Bounded so a burst of uploads queues instead of starving the event loop's own threads or
spawning one decoder per request; Pillow, ffmpeg and CTranslate2 release the GIL while they work.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def media_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.CHAT_MEDIA_WORKERS, thread_name_prefix="media")
        return _pool


async def media_run(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn` in the media pool without blocking the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(media_pool(), functools.partial(fn, *args, **kwargs))


def _with_connection_hygiene(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    # Pool threads outlive requests and nothing else would ever close their connections; a few
    # uploads a minute can afford a fresh connection each rather than idle ones held open.
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        connections.close_all()


async def media_run_db(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Like media_run, for CPU work that also reads the database (photo matching)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(media_pool(), functools.partial(_with_connection_hygiene, fn, *args, **kwargs))
