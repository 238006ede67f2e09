"""Publishing events to everyone connected to a conversation, in sequence order.

An event is journaled first and then sent to the conversation's channel-layer group, so a
client joining in between finds it in one place or the other (consumers drop the duplicate).
"""

from __future__ import annotations

from typing import Any

from channels.layers import BaseChannelLayer, get_channel_layer

from chat.journal import Event, get_journal

EVENT_MESSAGE_TYPE = "chat.event"
STOP_MESSAGE_TYPE = "turn.stop"


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
