"""chat.events.InMemoryChannelLayer (the default without REDIS_URL) keeps the stock in-memory
layer's semantics: order, capacity, expiry, group expiry, flush — only cheaper per frame."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as StockLayer
from django.conf import settings

from chat.events import InMemoryChannelLayer


@pytest.fixture(params=["fast", "stock"])
def layer(request):
    """Every behaviour is checked against channels' own layer too: same answers."""
    cls = InMemoryChannelLayer if request.param == "fast" else StockLayer
    return cls(capacity=3)


def test_it_is_the_default_without_redis():
    if settings.REDIS_URL:
        pytest.skip("the scale-out setup uses channels-redis")
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "chat.events.InMemoryChannelLayer"


async def test_messages_arrive_in_order_and_receivers_get_copies(layer):
    channel = await layer.new_channel()
    sent = {"type": "chat.event", "n": 1}
    await layer.send(channel, sent)
    await layer.send(channel, {"type": "chat.event", "n": 2})
    first = await layer.receive(channel)
    assert first == sent and first is not sent
    assert (await layer.receive(channel))["n"] == 2


async def test_a_full_channel_refuses_a_send_and_a_group_send_skips_it(layer):
    full, other = await layer.new_channel(), await layer.new_channel()
    for n in range(3):
        await layer.send(full, {"type": "x", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(full, {"type": "x", "n": 3})
    await layer.group_add("g", full)
    await layer.group_add("g", other)
    await layer.group_send("g", {"type": "x", "n": "group"})
    assert (await layer.receive(other))["n"] == "group"
    assert [(await layer.receive(full))["n"] for _ in range(3)] == [0, 1, 2]


async def test_group_send_reaches_every_member_until_it_is_discarded(layer):
    one, two = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", one)
    await layer.group_add("g", two)
    await layer.group_send("g", {"type": "x", "n": 1})
    await layer.group_discard("g", two)
    await layer.group_send("g", {"type": "x", "n": 2})
    assert [(await layer.receive(one))["n"] for _ in range(2)] == [1, 2]
    assert (await layer.receive(two))["n"] == 1
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await layer.receive(two)


async def test_a_receive_waiting_before_the_send_gets_the_message(layer):
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "x", "n": 1})
    assert (await waiting)["n"] == 1


async def test_a_cancelled_receive_loses_nothing(layer):
    """A socket's receive cancelled just as a message was handed to it (the consumer closing):
    the message stays for the next receive, and two receives in a row each get one."""
    channel = await layer.new_channel()
    first = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "x", "n": 1})
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await layer.receive(channel))["n"] == 1
    one, two = asyncio.create_task(layer.receive(channel)), asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0)
    await layer.send(channel, {"type": "x", "n": 2})
    await layer.send(channel, {"type": "x", "n": 3})
    assert sorted([(await one)["n"], (await two)["n"]]) == [2, 3]


async def test_bad_group_names_are_refused_with_or_without_members(layer):
    with pytest.raises(TypeError):
        await layer.group_send("no spaces allowed", {"type": "x"})
    with pytest.raises(TypeError):
        await layer.group_add("no spaces allowed", await layer.new_channel())


async def test_expired_messages_are_dropped_with_their_channel_s_memberships(layer, monkeypatch):
    layer.expiry = 0
    if isinstance(layer, InMemoryChannelLayer):
        layer.sweep_interval = 0
    stale, fresh = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", stale)
    await layer.group_add("g", fresh)
    await layer.send(stale, {"type": "x", "n": "old"})
    await asyncio.sleep(0.01)
    layer.expiry = 60
    await layer.group_send("g", {"type": "x", "n": "new"})
    # The stale channel lost its message and its membership: only the fresh one got the new one.
    assert (await layer.receive(fresh))["n"] == "new"
    assert stale not in layer.groups.get("g", {})


async def test_group_memberships_expire(layer):
    layer.group_expiry = 0
    if isinstance(layer, InMemoryChannelLayer):
        layer.sweep_interval = 0
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    layer.groups["g"][channel] -= 10  # joined ten seconds ago
    await layer.group_send("g", {"type": "x"})
    assert not layer.groups.get("g")


async def test_flush_forgets_channels_and_groups(layer):
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.send(channel, {"type": "x"})
    await layer.flush()
    assert layer.channels == {} and layer.groups == {}


async def test_queues_of_closed_sockets_do_not_pile_up():
    layer = InMemoryChannelLayer(capacity=3)
    layer.sweep_interval = 0
    channels = [await layer.new_channel() for _ in range(50)]
    receivers = [asyncio.create_task(layer.receive(channel)) for channel in channels]
    await asyncio.sleep(0)
    for task in receivers:  # the sockets close: their receives are cancelled
        task.cancel()
    await asyncio.gather(*receivers, return_exceptions=True)
    live = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(live))  # a receive sweeps first
    await asyncio.sleep(0)
    assert list(layer.channels) == [live]
    await layer.send(live, {"type": "x"})
    assert (await waiting)["type"] == "x"
