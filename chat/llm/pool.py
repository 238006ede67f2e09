"""The line every model request waits in: a global concurrency cap, and per endpoint a
concurrency cap and a requests-per-minute limit (a sliding window of request starts).

Caps are per process: each Daphne process has its own pool (one per running event loop, since
asyncio primitives belong to one loop), so N processes may together run N times the caps.

Fairness: each endpoint has its own FIFO line, so a request for an endpoint with room never waits
behind requests for a saturated one. Waiters held back only by the global cap share it in arrival
order. All bookkeeping is synchronous and runs in `_dispatch`, after every arrival, release,
withdrawal and rate-window expiry — O(waiters + endpoints) each time, no polling.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from django.conf import settings

logger = logging.getLogger(__name__)

OnWait = Callable[[int], Awaitable[None] | None]
RATE_WINDOW = 60.0


@dataclass(frozen=True)
class EndpointLimits:
    concurrency: int | None = None  # None: only the global cap applies
    requests_per_minute: int | None = None  # None: unlimited

    def __post_init__(self) -> None:
        for name in ("concurrency", "requests_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"EndpointLimits.{name} must be None or at least 1, not {value}")


@dataclass(eq=False)  # identity semantics: waiters are dict keys
class _Waiter:
    endpoint: str
    position: int = 0
    granted: bool = False
    # Set on every change that concerns this waiter; only its own task clears it.
    changed: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Endpoint:
    limits: EndpointLimits
    active: int = 0
    waiting: int = 0
    starts: deque[float] = field(default_factory=deque)  # kept only while an RPM limit applies
    timer: asyncio.TimerHandle | None = None
    timer_deadline: float | None = None


class RequestPool:
    """Admission control for model requests; use `async with pool.slot(key, limits): ...`.

    `clock` must tick in seconds at the event loop's pace (rate-window wake-ups are scheduled on
    the loop); `rate_window` is the length of the requests-per-minute window, shortened by tests.
    """

    def __init__(
        self,
        *,
        global_concurrency: int,
        clock: Callable[[], float] = time.monotonic,
        rate_window: float = RATE_WINDOW,
    ) -> None:
        if global_concurrency < 1:
            raise ValueError(f"global_concurrency must be at least 1, not {global_concurrency}")
        self._capacity = global_concurrency
        self._clock = clock
        self._window = rate_window
        self._active = 0
        self._endpoints: dict[str, _Endpoint] = {}
        # Every waiter, in arrival order (dicts keep insertion order; removal is O(1)).
        self._line: dict[_Waiter, None] = {}

    def slot(
        self, endpoint: str, limits: EndpointLimits, *, on_wait: OnWait | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold a place for one request to `endpoint` for the duration of the `async with` body.

        Args: `endpoint` identifies the endpoint (the latest `limits` seen for it apply);
        `on_wait(position)` is called when the caller has to wait (1 = next to go) and again
        whenever its position changes, never when the request starts at once. Its errors are
        logged and ignored. Cancelling the caller while it waits removes it from the line.
        """
        return self._slot(endpoint, limits, on_wait)

    def stats(self) -> dict[str, Any]:
        """Active and waiting requests, globally and per endpoint (for logs and tests)."""
        return {
            "active": self._active,
            "waiting": len(self._line),
            "capacity": self._capacity,
            "endpoints": {
                key: {"active": ep.active, "waiting": ep.waiting, "recent_starts": len(ep.starts)}
                for key, ep in self._endpoints.items()
            },
        }

    @asynccontextmanager
    async def _slot(self, endpoint: str, limits: EndpointLimits, on_wait: OnWait | None) -> AsyncIterator[None]:
        await self._acquire(endpoint, limits, on_wait)
        try:
            yield
        finally:
            self._release(endpoint)

    async def _acquire(self, key: str, limits: EndpointLimits, on_wait: OnWait | None) -> None:
        ep = self._endpoints.get(key)
        if ep is None:
            ep = self._endpoints[key] = _Endpoint(limits=limits)
        ep.limits = limits
        waiter = _Waiter(endpoint=key)
        self._line[waiter] = None
        ep.waiting += 1
        self._dispatch()
        if waiter.granted:
            return
        reported = 0
        try:
            while True:
                waiter.changed.clear()
                if waiter.granted:
                    return
                if waiter.position != reported:
                    reported = waiter.position
                    if on_wait is not None:
                        await _report(on_wait, reported)
                    continue  # the line may have moved while the callback ran
                await waiter.changed.wait()
        except BaseException:
            # Cancelled (or interrupted): a slot handed over at this same moment is passed on,
            # otherwise the waiter just leaves the line. Either way the line moves.
            if waiter.granted:
                self._release(key)
            else:
                self._withdraw(waiter)
            raise

    def _release(self, key: str) -> None:
        ep = self._endpoints[key]
        ep.active -= 1
        self._active -= 1
        self._dispatch()

    def _withdraw(self, waiter: _Waiter) -> None:
        del self._line[waiter]
        self._endpoints[waiter.endpoint].waiting -= 1
        self._dispatch()

    def _dispatch(self) -> None:
        """Start every waiter that may start, in arrival order, and renumber the rest.

        A waiter is held back either by its endpoint (concurrency or rate window) — then its
        position is its place in that endpoint's line — or only by the global cap — then its
        position is its place among all such waiters. Both count the waiters sure to go first.
        """
        now = self._clock()
        global_room = self._capacity - self._active
        room = {key: self._room(ep, now) for key, ep in self._endpoints.items() if ep.waiting}
        ahead = dict.fromkeys(room, 0)  # waiters still in line before this one, per endpoint
        held_by_global = 0
        for waiter in list(self._line):
            key = waiter.endpoint
            if ahead[key] < room[key]:
                if global_room > 0:
                    self._start(waiter, now)
                    global_room -= 1
                    room[key] -= 1
                    continue
                held_by_global += 1
                position = held_by_global
            else:
                position = ahead[key] + 1
            ahead[key] += 1
            if position != waiter.position:
                waiter.position = position
                waiter.changed.set()
        self._tidy(now)

    def _room(self, ep: _Endpoint, now: float) -> int:
        room = sys.maxsize
        if ep.limits.concurrency is not None:
            room = ep.limits.concurrency - ep.active
        rpm = ep.limits.requests_per_minute
        if rpm is None:
            ep.starts.clear()
        else:
            self._forget_old_starts(ep, now)
            room = min(room, rpm - len(ep.starts))
        return max(room, 0)

    def _forget_old_starts(self, ep: _Endpoint, now: float) -> None:
        cutoff = now - self._window
        while ep.starts and ep.starts[0] <= cutoff:
            ep.starts.popleft()

    def _start(self, waiter: _Waiter, now: float) -> None:
        del self._line[waiter]
        ep = self._endpoints[waiter.endpoint]
        ep.waiting -= 1
        ep.active += 1
        self._active += 1
        if ep.limits.requests_per_minute is not None:
            ep.starts.append(now)
        waiter.granted = True
        waiter.changed.set()

    def _tidy(self, now: float) -> None:
        """Arm a wake-up for each line held by its rate window; forget idle endpoints."""
        for key, ep in list(self._endpoints.items()):
            deadline = self._window_opens(ep)
            if deadline != ep.timer_deadline or (deadline is not None and ep.timer is None):
                if ep.timer is not None:
                    ep.timer.cancel()
                ep.timer = None
                ep.timer_deadline = deadline
                if deadline is not None:
                    delay = max(0.0, deadline - now)
                    ep.timer = asyncio.get_running_loop().call_later(delay, self._window_opened, key)
            if not (ep.active or ep.waiting):
                self._forget_old_starts(ep, now)
                if not ep.starts:
                    del self._endpoints[key]

    def _window_opens(self, ep: _Endpoint) -> float | None:
        """When the rate window next lets this endpoint's line move, or None if it is not the hold-up."""
        rpm = ep.limits.requests_per_minute
        if not ep.waiting or rpm is None or len(ep.starts) < rpm:
            return None
        # The start whose expiry brings the count in the window below the limit.
        return ep.starts[len(ep.starts) - rpm] + self._window

    def _window_opened(self, key: str) -> None:
        ep = self._endpoints.get(key)
        if ep is not None:
            # The loop may fire a hair early; _dispatch then re-arms for the remainder.
            ep.timer = None
        self._dispatch()


async def _report(on_wait: OnWait, position: int) -> None:
    try:
        result = on_wait(position)
        if result is not None:
            await result
    except Exception:
        logger.exception("on_wait callback failed (position %d); the request keeps its place", position)


_pools: WeakKeyDictionary[asyncio.AbstractEventLoop, RequestPool] = WeakKeyDictionary()


def request_pool() -> RequestPool:
    """The pool of the running event loop (one per Daphne process in production), sized by
    settings.LLM_MAX_CONCURRENCY when first asked for. Raises RuntimeError outside a loop."""
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = RequestPool(global_concurrency=int(getattr(settings, "LLM_MAX_CONCURRENCY", 64)))
    return pool
