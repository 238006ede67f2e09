"""App-level heartbeats: a `ping` frame on every shopper socket that has been quiet for
CHAT_HEARTBEAT_SECONDS.

Proxies close websockets that carry nothing for a while (nginx's proxy_read_timeout), and a
phone that lost its network keeps a socket that looks open. Daphne's protocol-level pings are
invisible to page scripts, so the page could not tell a dead socket from a quiet one; these
frames let it. One loop per process walks the open sockets, rather than a timer per socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

from django.conf import settings

logger = logging.getLogger(__name__)


class Beating(Protocol):
    last_sent: float

    async def heartbeat(self) -> None: ...


class Heartbeats:
    def __init__(self) -> None:
        self._sockets: weakref.WeakSet[Beating] = weakref.WeakSet()
        self._task: asyncio.Task[None] | None = None

    def add(self, socket: Beating) -> None:
        self._sockets.add(socket)
        loop = asyncio.get_running_loop()
        # A task belongs to one event loop (tests run several loops in one process).
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run(), name="heartbeats")

    def discard(self, socket: Beating) -> None:
        self._sockets.discard(socket)

    async def _run(self) -> None:
        interval = settings.CHAT_HEARTBEAT_SECONDS
        while self._sockets:
            await asyncio.sleep(min(interval / 4, 5.0))
            due = time.monotonic() - interval
            for socket in list(self._sockets):
                if socket.last_sent <= due:
                    try:
                        await socket.heartbeat()
                    except Exception:  # a socket closing meanwhile must not stop the others' beats
                        logger.debug("heartbeat failed", exc_info=True)


heartbeats = Heartbeats()
