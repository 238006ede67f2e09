"""Coalescing reply deltas into frames.

The first delta goes out at once (time to first token matters most); later ones that arrive
within `interval` seconds of the last frame are joined, so a fast model does not cost a frame,
a journal write and a group message per token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class DeltaCoalescer:
    def __init__(self, *, publish: Callable[[str], Awaitable[None]], interval: float) -> None:
        self._publish = publish
        self._interval = interval
        self._buffer: list[str] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._last_flush = float("-inf")
        self._task = asyncio.create_task(self._run())

    def add(self, text: str) -> None:
        """Cheap and synchronous: called once per token."""
        self._buffer.append(text)
        self._wake.set()

    async def close(self) -> None:
        """Send what is buffered and stop. Safe to call more than once."""
        self._closing = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            delay = self._last_flush + self._interval - loop.time()
            if delay > 0 and not self._closing:
                await asyncio.sleep(delay)
            if self._buffer:
                text = "".join(self._buffer)
                self._buffer.clear()
                self._last_flush = loop.time()
                await self._publish(text)
            if self._closing and not self._buffer:
                return
