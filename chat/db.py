"""Where the chat's database work runs: off the event loop, and not in one queue with everything
else.

channels' `database_sync_to_async` runs every call of the process on one thread, in arrival
order: with hundreds of chats a turn's reads and writes queue behind every other socket's, and
the wait, not the queries, decides how fast a turn starts (docs/benchmarks.md). On PostgreSQL a
turn's calls therefore go to a small pool of threads of their own (CHAT_DB_THREADS), each with its
own persistent connection: turns of different conversations no longer wait for each other, and a
turn's few calls (chat/turns.py, chat/replies.py batch them) cost a thread hop each, not a place
in a queue. On SQLite they stay on channels' thread: it takes one writer at a time anyway, and the
test database (in memory, shared cache) refuses a second connection's write at once instead of
waiting for the first.

Connections are checked like channels checks them (errors, CONN_MAX_AGE) around each call, but
without a `SELECT 1` before every call (DATABASE_CONN_HEALTH_CHECKS is off by default): a
connection the server closed while it was idle is found by a poll of its socket instead
(supportbot/connections.py) and replaced before the call. One the server drops during a call fails
that call; calls made with `retry=True` (reads, and writes that are safe to repeat) then run once
more on a new connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection, connections

from supportbot.connections import connections_dead_close

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor | None:
    """The pool, or None when calls go to channels' thread (SQLite, or CHAT_DB_THREADS=0)."""
    global _executor
    threads = settings.CHAT_DB_THREADS
    # From the settings, not `connection.vendor`: on the event loop each task has connections of
    # its own, so that would build a database wrapper per call.
    if threads <= 0 or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return None
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chat-db")
    return _executor


def _run(fn: Callable[..., T], retry: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    close_old_connections()
    connections_dead_close()
    try:
        try:
            return fn(*args, **kwargs)
        except (InterfaceError, OperationalError):
            # Only a connection that no longer works is worth a second try (a lock timeout or a
            # full disk would fail again, later).
            if not retry or connection.connection is None or connection.is_usable():
                raise
            connection.close()
            return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def db_call(fn: Callable[..., T], /, *args: Any, retry: bool = False, **kwargs: Any) -> T:
    """Run the synchronous database function `fn(*args, **kwargs)` off the event loop; its result.

    Args:
        retry: run it once more if it failed because its connection had gone away (only for
            functions that are safe to repeat: reads, or writes guarded by a unique key).

    The call sees the caller's context variables (site, language). Cancelling the caller does
    not stop a call that has started: it runs to its end (its transaction commits or not).
    """
    pool = _pool()
    result: T
    if pool is None:
        result = await database_sync_to_async(_run)(fn, retry, args, kwargs)
    else:
        # asgiref carries the context over (Django's translation state is an asgiref Local,
        # which a plain copy of the context does not move to another thread).
        result = await sync_to_async(_run, thread_sensitive=False, executor=pool)(fn, retry, args, kwargs)
    return result


def db_pool_close() -> None:
    """Close the pool's connections (and the pool): at shutdown, and between tests so the test
    database can be dropped. Waits for running calls."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    threads = executor._max_workers
    barrier = threading.Barrier(threads)

    def close() -> None:
        # Every thread takes one task: the barrier keeps a thread from taking two.
        barrier.wait(timeout=10)
        connections.close_all()

    for future in [executor.submit(close) for _ in range(threads)]:
        future.result(timeout=20)
    executor.shutdown(wait=True)
