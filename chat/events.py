"""Publishing events to everyone connected to a conversation, in sequence order.

An event is journaled first and then sent to the conversation's channel-layer group, so a
client joining in between finds it in one place or the other (consumers drop the duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels import layers
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer, get_channel_layer

from chat.journal import Event, get_journal

EVENT_MESSAGE_TYPE = "chat.event"
STOP_MESSAGE_TYPE = "turn.stop"


class InMemoryChannelLayer(layers.InMemoryChannelLayer):
    """channels' one-process layer (the default without REDIS_URL) without the costs that grow
    with the number of sockets.

    The stock layer sweeps every channel and group membership for expired entries on each send
    and each receive — O(sockets) work per frame, so O(sockets²) per second with every socket
    streaming (bench/chat_load.py) — deep-copies every message for every receiver, starts a task
    per receiver of a group message, and makes a new queue for every receive. Here the sweep
    runs at most once a second (messages expire after `expiry` = 60 s, group memberships after
    `group_expiry` = a day: a second later changes nothing observable), each receiver gets a
    shallow copy (receivers never mutate what they get), a group message is put straight into
    each member's queue, and a queue is kept between receives (the sweep drops those nobody
    waits on). Same API and semantics otherwise: `capacity` per channel (a full channel raises
    ChannelFull on send; group sends skip it), `flush`, expiry.
    """

    sweep_interval = 1.0
    _swept = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept < self.sweep_interval:
            return
        self._swept = now
        super()._clean_expired()
        for channel, queue in list(self.channels.items()):
            # Empty, and no receive waiting: a socket that closed (or is between two receives,
            # and gets a new queue on its next one).
            if queue.empty() and not queue._getters:
                del self.channels[channel]

    def _queue(self, channel: str) -> asyncio.Queue[tuple[float, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[float, dict[str, Any]]] | None = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        return queue

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        try:
            self._queue(channel).put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        self._clean_expired()
        _, message = await self._queue(channel).get()
        return message

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        expires = time.time() + self.expiry
        # Member names were checked when they joined.
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(asyncio.QueueFull):
                self._queue(channel).put_nowait((expires, dict(message)))


def conversation_group(conversation_id: str) -> str:
    return f"chat.{conversation_id}"


def control_group(conversation_id: str) -> str:
    """Where a running turn listens for stop requests, whichever process it runs in."""
    return f"chat.{conversation_id}.control"


def channel_layer() -> BaseChannelLayer:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("CHANNEL_LAYERS is not configured")
    return layer


async def seq_next(*, conversation_id: str, floor: int) -> int:
    return await get_journal().next_seq(conversation_id, floor=floor)


async def event_publish(*, conversation_id: str, event: Event) -> None:
    """Journal and broadcast an event that already carries its `seq`."""
    await get_journal().record(conversation_id, event)
    await channel_layer().group_send(conversation_group(conversation_id), {"type": EVENT_MESSAGE_TYPE, "event": event})


async def event_emit(*, conversation_id: str, floor: int, **event: Any) -> Event:
    """Give an event the next sequence number, then journal and broadcast it."""
    event["seq"] = await seq_next(conversation_id=conversation_id, floor=floor)
    await event_publish(conversation_id=conversation_id, event=event)
    return event


async def turn_stop_request(*, conversation_id: str, reason: str = "") -> None:
    """Stop the conversation's running reply, if any. `reason` (e.g. "taken_over") is recorded
    with the stopped reply; empty: the shopper pressed Stop."""
    await channel_layer().group_send(control_group(conversation_id), {"type": STOP_MESSAGE_TYPE, "reason": reason})
