"""Retries, failover and cool-down against real loopback endpoints (nothing patched)."""

from __future__ import annotations

import itertools
import time
from email.utils import formatdate

import httpx
import pytest

from chat.errors import UpstreamUnavailable
from chat.llm.client import Timeouts
from chat.llm.endpoints import Endpoint
from chat.llm.pool import RequestPool
from chat.llm.router import EndpointHealth, ModelRouter
from chat.llm.transport import StreamingTransport
from chat.llm.types import ChatRequest, ModelSelected, Notice, TextDelta
from tests.fakes import Script

REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}], tools=())
REFUSED = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


@pytest.fixture
async def http():
    async with httpx.AsyncClient(transport=StreamingTransport(limits=httpx.Limits())) as client:
        yield client


@pytest.fixture
def fake(fake_openai_server):
    fake_openai_server.reset()
    return fake_openai_server


def router_for(http, *endpoints, retries=2, health=None, pool=None):
    return ModelRouter(
        chain=list(endpoints),
        http=http,
        timeouts=Timeouts(first_token=2, idle=1),
        max_retries=retries,
        pool=pool or RequestPool(global_concurrency=10),
        health=health or EndpointHealth(threshold=3, cooldown=60),
    )


def endpoint(base_url: str, model: str = "m", name: str = "e") -> Endpoint:
    return Endpoint(name=name, base_url=base_url, api_key="k", model=model)


async def run(router) -> tuple[str, list, list[Notice]]:
    notices: list[Notice] = []

    async def notify(notice: Notice) -> None:
        notices.append(notice)

    events = [event async for event in router.stream(REQUEST, notify=notify)]
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events, notices


def gaps(fake) -> list[float]:
    times = [request.received_at for request in fake.requests]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_500_then_success_is_retried_with_a_still_working_notice(http, fake):
    fake.enqueue(Script.http_error(500), Script.stream("Recovered."))
    text, _, notices = await run(router_for(http, endpoint(fake.base_url)))
    assert text == "Recovered." and len(fake.requests) == 2
    assert [n.code for n in notices] == ["retrying"] and "Still working" in notices[0].message
    assert 0.3 <= gaps(fake)[0] <= 1.5, "backoff starts near 0.5 s (less up to 25 % jitter)"


@pytest.mark.parametrize(
    ("script", "low", "high"),
    [
        (Script.http_error(429, retry_after_ms=300), 0.28, 0.9),
        (Script.http_error(429, retry_after=0.5), 0.45, 1.0),
        (Script.http_error(503, retry_after=0), 0.0, 0.4),
    ],
    ids=["retry-after-ms", "retry-after-seconds", "retry-after-zero"],
)
async def test_the_server_asked_delay_is_honoured(http, fake, script, low, high):
    fake.enqueue(script, Script.stream("ok"))
    text, _, _ = await run(router_for(http, endpoint(fake.base_url)))
    assert text == "ok" and low <= gaps(fake)[0] <= high


async def test_retry_after_as_an_http_date(http, fake):
    fake.enqueue(Script.http_error(429, retry_after=formatdate(time.time() + 2, usegmt=True)), Script.stream("ok"))
    text, _, _ = await run(router_for(http, endpoint(fake.base_url)))
    assert text == "ok" and 0.9 <= gaps(fake)[0] <= 2.5


async def test_x_should_retry_false_is_not_retried(http, fake):
    fake.enqueue(Script.http_error(500, should_retry=False))
    with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
        await run(router_for(http, endpoint(fake.base_url)))
    assert len(fake.requests) == 1


async def test_x_should_retry_true_retries_even_a_400(http, fake):
    fake.enqueue(Script.http_error(400, should_retry=True, retry_after=0), Script.stream("ok"))
    text, _, _ = await run(router_for(http, endpoint(fake.base_url)))
    assert text == "ok" and len(fake.requests) == 2


async def test_a_400_is_not_retried_and_a_too_long_wait_is_not_awaited(http, fake):
    fake.enqueue(Script.http_error(400), Script.http_error(429, retry_after=600))
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await run(router_for(http, endpoint(fake.base_url)))
    assert len(fake.requests) == 2


async def test_retries_are_capped(http, fake):
    fake.enqueue(*[Script.http_error(502, retry_after=0)] * 5)
    with pytest.raises(UpstreamUnavailable, match="HTTP 502"):
        await run(router_for(http, endpoint(fake.base_url), retries=2))
    assert len(fake.requests) == 3


async def test_connection_refused_fails_over_to_the_next_endpoint(http, fake):
    fake.enqueue(Script.stream("From the fallback."))
    router = router_for(http, endpoint(REFUSED, name="primary"), endpoint(fake.base_url, "cheap", "backup"), retries=0)
    text, events, notices = await run(router)
    assert text == "From the fallback."
    assert ModelSelected(endpoint="backup", model="cheap") in events
    assert fake.last_request.json["model"] == "cheap"
    assert [n.code for n in notices] == ["retrying"]


async def test_an_endpoint_that_keeps_failing_is_skipped_for_a_cool_down(http, fake):
    health = EndpointHealth(threshold=2, cooldown=60)
    chain = (endpoint(fake.base_url, "flaky", "primary"), endpoint(fake.base_url, "steady", "backup"))
    for _ in range(2):
        fake.enqueue(Script.http_error(500, should_retry=False), Script.stream("ok"))
        assert (await run(router_for(http, *chain, health=health)))[0] == "ok"
    fake.reset()
    fake.enqueue(Script.stream("straight to the backup"))
    text, _, notices = await run(router_for(http, *chain, health=health))
    assert text == "straight to the backup"
    assert [r.json["model"] for r in fake.requests] == ["steady"] and notices == []
    assert health.cooling(chain[0]) and not health.cooling(chain[1])


async def test_when_every_endpoint_cools_down_the_soonest_is_still_tried(http, fake):
    health = EndpointHealth(threshold=1, cooldown=60)
    only = endpoint(fake.base_url)
    fake.enqueue(Script.http_error(500, should_retry=False), Script.stream("back"))
    with pytest.raises(UpstreamUnavailable):
        await run(router_for(http, only, health=health))
    assert (await run(router_for(http, only, health=health)))[0] == "back"
    assert not health.cooling(only)


async def test_a_full_pool_tells_the_waiting_caller_its_place(http, fake):
    import asyncio

    pool = RequestPool(global_concurrency=1)
    fake.enqueue(Script.stream(["slow "] * 5, delay=0.1), Script.stream("second"))
    first = asyncio.create_task(run(router_for(http, endpoint(fake.base_url), pool=pool)))
    await asyncio.sleep(0.15)
    text, _, notices = await run(router_for(http, endpoint(fake.base_url), pool=pool))
    assert text == "second"
    assert [(n.code, n.position) for n in notices] == [("queued", 1)]
    assert "next in line" in notices[0].message
    assert (await first)[0] == "slow " * 5
