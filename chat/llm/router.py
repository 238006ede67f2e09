"""Getting one streamed answer out of a chain of endpoints.

Per endpoint: wait for a place in the request pool, try, and retry what the SDK would retry
(chat/llm/retry.py) — but only while nothing has reached the shopper. Then fail over to the next
endpoint. An endpoint that keeps failing is skipped for a cool-down. The shopper hears at most
"you're number N in line" or "still working…", never why.

Once a stream has started, a failure is final for this request: retrying would repeat text the
shopper already saw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import httpx
from django.utils.translation import gettext, gettext_lazy

from chat.errors import UpstreamStreamError, UpstreamUnavailable
from chat.llm.client import AttemptError, OpenAIChatClient, Timeouts
from chat.llm.endpoints import Endpoint
from chat.llm.pool import EndpointLimits, RequestPool
from chat.llm.retry import retry_delay
from chat.llm.types import ChatRequest, ModelSelected, Notice, Notify, StreamEvent, notify_nobody

logger = logging.getLogger(__name__)

# Translated when read: a turn runs with its conversation's language active (chat/replies.py).
STILL_WORKING = gettext_lazy("Still working on it — the assistant is slow to answer right now.")


def queued_message(position: int) -> str:
    if position <= 1:
        return gettext("Many shoppers are asking right now: you're next in line.")
    return gettext("Many shoppers are asking right now: you're number %(position)s in line.") % {"position": position}


@dataclass
class _Health:
    failures: int = 0
    cooled_until: float = 0.0


class EndpointHealth:
    """Consecutive failures per endpoint, in this process. After `threshold` of them the endpoint
    is skipped for `cooldown` seconds (unless every endpoint is cooling down)."""

    def __init__(self, *, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._state: dict[str, _Health] = {}

    def order(self, chain: Sequence[Endpoint]) -> list[Endpoint]:
        now = time.monotonic()
        ready = [e for e in chain if self._state.get(e.key, _Health()).cooled_until <= now]
        if ready:
            return ready
        # Everything is cooling down: better to try the soonest-recovering than to refuse.
        return sorted(chain, key=lambda e: self._state[e.key].cooled_until)

    def success(self, endpoint: Endpoint) -> None:
        self._state.pop(endpoint.key, None)

    def failure(self, endpoint: Endpoint) -> None:
        state = self._state.setdefault(endpoint.key, _Health())
        state.failures += 1
        if state.failures >= self.threshold:
            state.cooled_until = time.monotonic() + self.cooldown
            logger.warning("model endpoint %s (%s) cooling down for %ss", endpoint.name, endpoint.model, self.cooldown)

    def cooling(self, endpoint: Endpoint) -> bool:
        return self._state.get(endpoint.key, _Health()).cooled_until > time.monotonic()


class ModelRouter:
    def __init__(
        self,
        *,
        chain: Sequence[Endpoint],
        http: httpx.AsyncClient,
        timeouts: Timeouts,
        max_retries: int,
        pool: RequestPool,
        health: EndpointHealth,
    ) -> None:
        if not chain:
            raise ValueError("a router needs at least one endpoint")
        self._chain = list(chain)
        self._http = http
        self._timeouts = timeouts
        self._max_retries = max_retries
        self._pool = pool
        self._health = health

    @property
    def model(self) -> str:
        return self._chain[0].model

    async def stream(
        self, request: ChatRequest, *, notify: Notify = notify_nobody
    ) -> AsyncGenerator[StreamEvent, None]:
        said_still_working = False

        async def still_working() -> None:
            nonlocal said_still_working
            if not said_still_working:
                said_still_working = True
                await notify(Notice("retrying", str(STILL_WORKING)))

        async def on_wait(position: int) -> None:
            await notify(Notice("queued", queued_message(position), position))

        last: AttemptError | None = None
        for index, endpoint in enumerate(self._health.order(self._chain)):
            if index:
                await still_working()
                logger.warning("failing over to model endpoint %s (%s)", endpoint.name, endpoint.model)
            client = OpenAIChatClient(endpoint=endpoint, http=self._http, timeouts=self._timeouts)
            limits = EndpointLimits(concurrency=endpoint.concurrency, requests_per_minute=endpoint.requests_per_minute)
            for attempt in range(self._max_retries + 1):
                try:
                    async with self._pool.slot(endpoint.key, limits, on_wait=on_wait):
                        started = False
                        async for event in client.stream(request):
                            if not started:
                                started = True
                                yield ModelSelected(endpoint=endpoint.name, model=endpoint.model)
                            yield event
                    self._health.success(endpoint)
                    return
                except UpstreamStreamError:
                    self._health.failure(endpoint)
                    raise
                except AttemptError as exc:
                    last = exc
                    delay = retry_delay(attempt, exc.headers) if exc.retryable else None
                    logger.warning(
                        "model endpoint %s attempt %d failed (%s); %s",
                        endpoint.name,
                        attempt + 1,
                        exc.detail,
                        "giving up on it"
                        if delay is None or attempt == self._max_retries
                        else f"retry in {delay:.2f}s",
                    )
                    if delay is None or attempt == self._max_retries:
                        break
                    await still_working()
                    await asyncio.sleep(delay)
            self._health.failure(endpoint)
        raise UpstreamUnavailable(detail=last.detail if last else "no endpoint could be tried")
