"""Finishing a reply whose process died.

A reply is stored once, at its end, by the process streaming it. If that process is killed
mid-reply, the journal still holds its `reply.start` and deltas, but no `reply.end`, and its
lease on the conversation runs out (CHAT_TURN_LEASE_SECONDS). Whoever next holds the lease — a
new turn, or a client reconnecting to any process — stores what was streamed as an incomplete
reply and announces its end, so the shopper sees the text that arrived, marked cut off, and
nothing is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from channels.db import database_sync_to_async
from django.conf import settings

from chat import selectors, services
from chat.errors import ReplyInterrupted
from chat.events import event_emit, event_publish, seq_next
from chat.journal import Event, get_journal
from chat.models import Message

logger = logging.getLogger(__name__)

LOST = ReplyInterrupted(detail="the process streaming this reply stopped before storing it")
LOST_CODE = "process_lost"
WATCH_INTERVAL = 1.0  # seconds between checks while a reply seen mid-way has not ended


def unfinished_replies(events: list[Event]) -> list[str]:
    """Ids of replies that started in `events` but did not end there."""
    ended = {e.get("message_id") for e in events if e["type"] == "reply.end"}
    return [str(e["message_id"]) for e in events if e["type"] == "reply.start" and e["message_id"] not in ended]


async def replies_orphaned_finish(*, conversation_id: str, last_stored: int | None = None) -> int:
    """Store and end every reply of the conversation left unfinished by a dead process. The
    caller must hold the conversation's lease (so no live turn is streaming). `last_stored`: the
    conversation's last_seq, if the caller has just read it. Returns how many."""
    if last_stored is None:
        last_stored = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
    events = await get_journal().since(conversation_id, last_stored) or []
    finished = 0
    for reply_id in unfinished_replies(events):
        await _finish(conversation_id, reply_id, events)
        finished += 1
    return finished


async def _finish(conversation_id: str, reply_id: str, events: list[Event]) -> None:
    start = next(e for e in events if e["type"] == "reply.start" and e["message_id"] == reply_id)
    text = "".join(e["text"] for e in events if e["type"] == "reply.delta" and e["message_id"] == reply_id)
    floor = max(e["seq"] for e in events)
    await event_emit(conversation_id=conversation_id, floor=floor, **LOST.as_frame(), message_id=reply_id)
    end_seq = await seq_next(conversation_id=conversation_id, floor=floor + 1)
    status = Message.Status.INCOMPLETE if text else Message.Status.FAILED
    reply_to = await database_sync_to_async(selectors.message_before)(conversation_id=conversation_id, seq=start["seq"])
    await database_sync_to_async(services.reply_store)(
        conversation_id=conversation_id,
        message_id=uuid.UUID(reply_id),
        seq=start["seq"],
        end_seq=end_seq,
        reply_to_id=reply_to,
        text=text,
        status=status,
        model="",
        usage={},
        error_code=LOST_CODE,
        error_detail=LOST.detail,
    )
    end = {"type": "reply.end", "message_id": reply_id, "status": status, "usage": {}, "seq": end_seq}
    await event_publish(conversation_id=conversation_id, event=end)
    logger.warning(
        "conversation %s: reply %s finished after its process died (%d chars)", conversation_id, reply_id, len(text)
    )


async def orphans_watch(*, conversation_id: str, events: list[Event]) -> None:
    """After a client caught up on `events`: if a reply in them never ended, wait for its lease to
    run out (its process is gone) or for the reply to end normally, then finish it if needed."""
    if not unfinished_replies(events):
        return
    journal = get_journal()
    owner = f"recovery-{uuid.uuid4().hex}"
    ttl = settings.CHAT_TURN_LEASE_SECONDS
    deadline = asyncio.get_running_loop().time() + ttl + 5
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(WATCH_INTERVAL)
        # Most replies simply end: then there is nothing to do, and no lease to take from a
        # shopper who is about to send their next message.
        last_stored = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
        if not unfinished_replies(await journal.since(conversation_id, last_stored) or []):
            return
        if await journal.lease_acquire(conversation_id, owner, ttl):
            try:
                await replies_orphaned_finish(conversation_id=conversation_id)
            finally:
                await journal.lease_release(conversation_id, owner)
            return
