"""Hand-off between the assistant and the shop's staff, as events: a state change is stored
(with its notice, chat/states.py), then announced to the conversation (`message.new`, then
`conversation.state`) and to the staff live pages (`lobby.update`). Typing indicators and staff
presence live here too; they are never stored.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.cache import cache

from chat import selectors, states
from chat.cache import cache_run
from chat.events import channel_layer, conversation_group, event_publish, seq_next, turn_stop_request
from chat.journal import Event
from chat.models import Message

logger = logging.getLogger(__name__)

LOBBY_GROUP = "staff.lobby"
LOBBY_MESSAGE_TYPE = "lobby.update"
TYPING_MESSAGE_TYPE = "chat.typing"
STAFF_SEEN_KEY = "staff:last_seen"
TAKEN_OVER = "taken_over"


async def staff_seen() -> None:
    """A staff live page is open (called on connect, before it reads the list, and every so
    often while it stays open)."""
    await cache_run(lambda: cache.set(STAFF_SEEN_KEY, time.time(), timeout=settings.CHAT_STAFF_ONLINE_SECONDS))


async def staff_online() -> bool:
    seen = await cache_run(lambda: cache.get(STAFF_SEEN_KEY))
    return seen is not None and time.time() - float(seen) <= settings.CHAT_STAFF_ONLINE_SECONDS


async def lobby_notify(*, conversation_id: str) -> None:
    """Tell every staff live page that this conversation changed. Never fails its caller: a
    stale list entry must not break a turn.

    With no staff page open nobody would hear it: skip the summary's three queries (twice per
    turn). A page that opens marks itself seen before it reads the list from the database, and
    every change is committed before it is notified, so a change is either in that list or
    notified to the page."""
    try:
        if not await staff_online():
            return
        summary = await database_sync_to_async(selectors.conversation_summary_get)(conversation_id=conversation_id)
        await channel_layer().group_send(LOBBY_GROUP, {"type": LOBBY_MESSAGE_TYPE, "conversation": summary})
    except Exception:
        logger.exception("could not update the staff lobby for %s", conversation_id)


async def typing_relay(*, conversation_id: str, who: str, name: str | None, active: bool) -> None:
    event = {"type": "typing", "who": who, "name": name, "active": active}
    await channel_layer().group_send(conversation_group(conversation_id), {"type": TYPING_MESSAGE_TYPE, "event": event})


async def message_announce(*, conversation_id: str, message: Message) -> None:
    """Send a stored staff message or notice to everyone on the conversation."""
    assert message.seq is not None
    data = await database_sync_to_async(selectors.message_serialize)(message)
    await event_publish(
        conversation_id=conversation_id, event={"type": "message.new", "message": data, "seq": message.seq}
    )


async def _change(conversation_id: str, change: Callable[..., Message | None], **kwargs: Any) -> Message | None:
    """Run one state change with the two seqs it needs; announce it if it happened."""
    floor = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
    seq = await seq_next(conversation_id=conversation_id, floor=floor)
    end_seq = await seq_next(conversation_id=conversation_id, floor=seq)
    notice: Message | None = await database_sync_to_async(change)(
        conversation_id=conversation_id, seq=seq, end_seq=end_seq, **kwargs
    )
    if notice is None:
        return None
    await message_announce(conversation_id=conversation_id, message=notice)
    state = await database_sync_to_async(selectors.conversation_state)(conversation_id=conversation_id)
    event: Event = {"type": "conversation.state", **state, "seq": end_seq}
    await event_publish(conversation_id=conversation_id, event=event)
    await lobby_notify(conversation_id=conversation_id)
    return notice


async def handoff_request(*, conversation_id: str) -> dict[str, Any]:
    """The shopper asked for a person (button, or the model's request_human tool)."""
    online = await staff_online()
    notice = await _change(conversation_id, states.conversation_handoff_request, staff_online=online)
    status = await database_sync_to_async(selectors.conversation_status)(conversation_id=conversation_id)
    return {"status": status, "staff_online": online, "notice": notice.text if notice else ""}


async def conversation_take(*, conversation_id: str, user: Any) -> None:
    """Staff take the conversation; a reply still streaming is stopped (marked taken over)."""
    if await _change(conversation_id, states.conversation_take, user=user) is not None:
        await turn_stop_request(conversation_id=conversation_id, reason=TAKEN_OVER)


async def conversation_release(*, conversation_id: str, user: Any) -> None:
    await _change(conversation_id, states.conversation_release, user=user)


async def conversation_close(*, conversation_id: str, user: Any = None) -> None:
    if await _change(conversation_id, states.conversation_close, user=user) is not None:
        await turn_stop_request(conversation_id=conversation_id, reason="closed")


async def staff_message_send(*, conversation_id: str, user: Any, text: str, client_msg_id: uuid.UUID) -> Event | None:
    """Store and announce a staff message. A resend returns its frame for the sender only."""
    floor = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
    seq = await seq_next(conversation_id=conversation_id, floor=floor)
    message, created = await database_sync_to_async(states.staff_message_create)(
        conversation_id=conversation_id, user=user, seq=seq, text=text, client_msg_id=client_msg_id
    )
    if not created:
        data = await database_sync_to_async(selectors.message_serialize)(message)
        return {"type": "message.new", "message": data}
    await message_announce(conversation_id=conversation_id, message=message)
    await typing_relay(conversation_id=conversation_id, who="staff", name=message.author_name, active=False)
    await lobby_notify(conversation_id=conversation_id)
    return None
