"""The Redis channel layer (chat/layers.py) against a real Redis: a receive outwaits the layer's
blocking poll, a cancelled receive ends wherever the cancellation lands, and after the process's
connections are dropped (what a Redis restart does) the layer, the journal and the cache carry on.
Runs in the scale-out pass (REDIS_URL set)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.cache import cache

from chat.events import channel_layer
from chat.journal import get_journal
from tests.chat.test_faults import redis_connections_of_this_process_drop

pytestmark = pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="in-memory channel layer (these run in the scale-out pass)"
)


async def test_a_receive_waits_past_the_blocking_poll_and_gets_the_message():
    layer = channel_layer()
    channel = await layer.new_channel()
    receiving = asyncio.create_task(layer.receive(channel))
    # Longer than one BZPOPMIN (5 s): with redis-py 8's 5 s read timeout this raised TimeoutError.
    await asyncio.sleep(layer.brpop_timeout + 1.5)
    assert not receiving.done(), f"the receive ended while waiting: {receiving}"
    await layer.send(channel, {"type": "hello"})
    async with asyncio.timeout(5):
        assert await receiving == {"type": "hello"}


async def test_a_cancelled_receive_ends_at_once_wherever_the_cancellation_lands():
    """A socket that closes cancels its consumer's receive. Cancel one at each event-loop step of
    its first commands: every one must end. (On Python 3.11, with a socket timeout, redis-py sends
    under asyncio.wait_for, which loses a cancellation landing as the send completes; such a
    receive went on polling Redis for good, and shutdown hung waiting for it.)"""
    layer = channel_layer()
    still_running = {}
    for steps in range(40):
        channel = await layer.new_channel()
        receiving = asyncio.create_task(layer.receive(channel))
        for _ in range(steps):
            await asyncio.sleep(0)
        receiving.cancel()
        _, pending = await asyncio.wait([receiving], timeout=2)
        if pending:
            still_running[steps] = (channel, receiving)
    for channel, receiving in still_running.values():  # end them, so a failure does not hang
        await layer.send(channel, {"type": "stop"})
        await asyncio.wait([receiving], timeout=5)
    assert not still_running, f"cancelled receives still running (cancelled after steps {sorted(still_running)})"

    # And the layer still delivers.
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "after"})
    async with asyncio.timeout(5):
        assert await layer.receive(channel) == {"type": "after"}


async def test_after_the_connections_drop_the_layer_journal_and_cache_carry_on():
    layer, journal = channel_layer(), get_journal()
    conversation = str(uuid.uuid4())
    group, channel = f"chat.{conversation}", await layer.new_channel()
    await layer.group_add(group, channel)
    assert await journal.next_seq(conversation, floor=0) == 1
    await sync_to_async(cache.set)(f"test-redis-layer-{conversation}", "before", 30)
    receiving = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.2)  # the receive is blocked in BZPOPMIN now

    assert redis_connections_of_this_process_drop() > 0

    # The receive's connection was one of them: it reconnects and goes on waiting.
    await layer.group_send(group, {"type": "chat.event", "seq": 2})
    async with asyncio.timeout(5):
        assert await receiving == {"type": "chat.event", "seq": 2}
    assert await journal.next_seq(conversation, floor=0) == 2
    assert await sync_to_async(cache.get)(f"test-redis-layer-{conversation}") == "before"
    await layer.group_discard(group, channel)
