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
    """channels' one-process layer without two costs that grow with the number of sockets.

    The stock layer sweeps every channel and group membership for expired entries on each send
    and each receive — O(sockets) work per frame, so O(sockets²) per second with every socket
    streaming (bench/chat_load.py: it caps one process at ~150 streaming shoppers) — and
    deep-copies every message for every receiver. Here the sweep runs at most once a second
    (expiry is 60 s, group expiry a day: nothing observable changes) and each receiver gets a
    shallow copy (receivers never mutate what they get). Same API and semantics otherwise; use
    it as CHANNEL_LAYERS' BACKEND, "chat.events.InMemoryChannelLayer".
    """

    sweep_interval = 1.0
    _swept = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept >= self.sweep_interval:
            self._swept = now
            super()._clean_expired()

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            queue.put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        # The stock version starts a task per receiver; a put is synchronous, so none is needed.
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):
                await self.send(channel, message)


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
