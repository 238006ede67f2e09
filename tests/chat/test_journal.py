"""Both journal backends behave the same: sequence numbers, replay, trimming, leases."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from django.conf import settings

from chat.journal import MemoryJournal, RedisJournal
from tests.conftest import require

REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", "redis"])
def journal(request):
    if request.param == "memory":
        return MemoryJournal(ttl=60, max_events=100)
    require(_redis_up(), f"Redis is not reachable at {REDIS_URL}")
    return RedisJournal(url=REDIS_URL, ttl=60, max_events=100)


@pytest.fixture
def cid() -> str:
    return str(uuid.uuid4())


async def test_sequence_numbers_start_above_the_stored_floor_and_increase(journal, cid):
    assert await journal.next_seq(cid, floor=41) == 42
    assert await journal.next_seq(cid, floor=0) == 43
    # A floor above the counter (the database moved on without this journal) wins.
    assert await journal.next_seq(cid, floor=90) == 91


async def test_since_returns_recorded_events_after_a_seq_in_order(journal, cid):
    for _ in range(5):
        seq = await journal.next_seq(cid, floor=0)
        await journal.record(cid, {"type": "reply.delta", "text": f"t{seq}", "seq": seq})
    assert [e["seq"] for e in await journal.since(cid, 2)] == [3, 4, 5]
    assert await journal.since(cid, 5) == []
    assert (await journal.since(cid, 0))[0] == {"type": "reply.delta", "text": "t1", "seq": 1}


async def test_since_cannot_vouch_for_unknown_or_trimmed_history(journal, cid):
    assert await journal.since(cid, 0) is None
    await journal.next_seq(cid, floor=10)
    assert await journal.since(cid, 3) is None, "events up to the floor live only in the database"
    for _ in range(150):
        seq = await journal.next_seq(cid, floor=0)
        await journal.record(cid, {"seq": seq})
    # seq 11 was allocated, 12..161 recorded; the oldest 50 were trimmed (max 100 kept).
    assert await journal.since(cid, 60) is None
    kept = await journal.since(cid, 61)
    assert kept is not None and [e["seq"] for e in kept] == list(range(62, 162))


async def test_lease_is_exclusive_renewable_and_released_only_by_its_owner(journal, cid):
    assert await journal.lease_acquire(cid, "a", 5)
    assert not await journal.lease_acquire(cid, "b", 5)
    assert await journal.lease_renew(cid, "a", 5)
    assert not await journal.lease_renew(cid, "b", 5)
    await journal.lease_release(cid, "b")
    assert not await journal.lease_acquire(cid, "b", 5)
    await journal.lease_release(cid, "a")
    assert await journal.lease_acquire(cid, "b", 5)


async def test_an_abandoned_lease_runs_out(journal, cid):
    assert await journal.lease_acquire(cid, "crashed", 0.2)
    await asyncio.sleep(0.3)
    assert await journal.lease_acquire(cid, "next", 5)
