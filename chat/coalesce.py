"""Coalescing reply deltas into frames.

The first delta goes out at once (time to first token matters most); later ones that arrive
within the window of the last frame are joined, so a fast model does not cost a frame, a journal
write and a group message per token.

The window is CHAT_COALESCE_MS while the process keeps up, and widens with the event loop's lag
(up to CHAT_COALESCE_MAX_MS) when it does not: a loop running 200 ms late already delays every
token by that much, and joining the tokens of that time into one frame costs the shopper nothing
more, while it saves the loop the per-frame work (journal, group message, one websocket frame
per socket) that made it late. At 500 streaming chats on one core this cut the token delay to
about a third (docs/benchmarks.md).

The reader of the model's stream waits for the frame too (`due()`): while a frame waits for its
window, nothing the reader would read can go out sooner, so it stops reading until just before
the frame goes and then reads, in one go, what the model sent meanwhile. The frames and their
times stay the same; the readers no longer wake between them. At 500 streaming chats this
lowered the token delay, its p99 by about a quarter (docs/benchmarks.md, eighth round).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable


class LoopLag:
    """How late one event loop runs its callbacks, measured by a timer that asks to be woken every
    `probe` seconds. Rises at once, falls by half each probe; stops probing (and reads 0) once
    nobody asked for `idle` seconds, so an idle process does not wake up for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, probe: float = 0.05, idle: float = 5.0) -> None:
        # No strong reference to the loop (nor to the timer handle, which holds one): loop_lag()
        # keeps these by loop in a WeakKeyDictionary.
        self._loop_ref = weakref.ref(loop)
        self._probe = probe
        self._idle = idle
        self._lag = 0.0
        self._due = 0.0
        self._wanted_until = 0.0
        self._probing = False

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop_ref()
        assert loop is not None, "used after its loop was gone"
        return loop

    def read(self) -> float:
        """The current lag in seconds (and keep measuring it a while longer)."""
        now = self._loop.time()
        self._wanted_until = now + self._idle
        if not self._probing:
            self._schedule(now)
        return self._lag

    def _schedule(self, now: float) -> None:
        self._due = now + self._probe
        # A timer handle, not a task: a loop that closes with it pending just drops it.
        self._loop.call_at(self._due, self._tick)
        self._probing = True

    def _tick(self) -> None:
        now = self._loop.time()
        late = max(0.0, now - self._due)
        self._lag = late if late > self._lag else max(late, self._lag / 2)
        if now < self._wanted_until:
            self._schedule(now)
        else:
            self._probing = False
            self._lag = 0.0


_lags: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> float:
    """The running event loop's lag in seconds (see LoopLag)."""
    loop = asyncio.get_running_loop()
    lag = _lags.get(loop)
    if lag is None:
        lag = _lags[loop] = LoopLag(loop)
    return lag.read()


class DeltaCoalescer:
    def __init__(
        self,
        *,
        publish: Callable[[str], Awaitable[None]],
        interval: float,
        max_interval: float | None = None,
        lag: Callable[[], float] = loop_lag,
    ) -> None:
        """`interval`: the window while the loop keeps up; `max_interval`: the widest it gets when
        the loop lags (default: `interval`, never wider); `lag`: the loop's lag in seconds."""
        self._publish = publish
        self._interval = interval
        self._max_interval = max(interval, max_interval if max_interval is not None else interval)
        self._lag = lag
        self._buffer: list[str] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._last_flush = float("-inf")
        self._due: asyncio.Future[None] | None = None
        self._holding = False  # a frame waits for its window: `due()` has something to wait for
        self._task = asyncio.create_task(self._run())

    def add(self, text: str) -> None:
        """Cheap and synchronous: called once per token."""
        self._buffer.append(text)
        self._wake.set()

    def due(self) -> asyncio.Future[None] | None:
        """A future done just before the next frame goes, while that frame waits for its window
        (None otherwise: what is added now goes out as soon as this coalescer runs). The reader
        awaits it, then reads on: what it reads before its next wait still goes in that frame.
        Called per token: it only looks at a flag."""
        if not self._holding:
            return None
        if self._due is None:
            self._due = asyncio.get_running_loop().create_future()
        return self._due

    async def close(self) -> None:
        """Send what is buffered and stop. Safe to call more than once."""
        self._closing = True
        self._wake.set()
        await self._task

    def window(self) -> float:
        """The current window: `interval`, or the loop's lag up to `max_interval`."""
        if self._max_interval <= self._interval:
            return self._interval
        return min(self._max_interval, max(self._interval, self._lag()))

    async def _run(self) -> None:
        try:
            await self._frames()
        finally:
            if self._due is not None and not self._due.done():
                self._due.set_result(None)  # a reader must never wait for a frame that will not go

    async def _frames(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            delay = self._last_flush + self.window() - loop.time()
            if delay > 0 and not self._closing:
                self._holding = True
                try:
                    await asyncio.sleep(delay)
                finally:
                    self._holding = False
            if self._due is not None:
                due, self._due = self._due, None
                if not due.done():
                    due.set_result(None)
                    # One pass of the loop: the reader's wake-up is queued before ours, so it reads
                    # what has arrived, until it waits for the network again, before the frame goes.
                    await asyncio.sleep(0)
            if self._buffer:
                text = "".join(self._buffer)
                self._buffer.clear()
                self._last_flush = loop.time()
                await self._publish(text)
            if self._closing and not self._buffer:
                return
