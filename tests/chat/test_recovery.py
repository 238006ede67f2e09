"""A reply whose process died mid-way (its journal events remain, its lease ran out) is stored
as incomplete with the text that was streamed, and announced, exactly once."""

from __future__ import annotations

import uuid

import pytest
from channels.db import database_sync_to_async

from chat.events import event_emit
from chat.models import Message
from chat.recovery import WATCH_INTERVAL
from tests.chat.shopper import Shopper, browser_session, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


async def dead_process_left_a_reply(conversation_id: str, floor: int) -> str:
    """What a killed process leaves behind: reply.start and deltas journaled, nothing stored."""
    reply_id = str(uuid.uuid4())
    start = await event_emit(conversation_id=conversation_id, floor=floor, type="reply.start", message_id=reply_id)
    seq = start["seq"]
    for text in ("The Featherlite 2 ", "tent weighs "):
        seq = (
            await event_emit(
                conversation_id=conversation_id, floor=seq, type="reply.delta", message_id=reply_id, text=text
            )
        )["seq"]
    return reply_id


async def test_a_client_catching_up_on_a_dead_reply_gets_it_finished_and_stored(fake_openai):
    session = await browser_session()
    shopper = Shopper(session)
    conversation = await shopper.connect()
    await shopper.turn("How heavy is the tent?")
    await shopper.disconnect()
    reply_id = await dead_process_left_a_reply(conversation["id"], floor=0)

    again = Shopper(session)
    await again.connect()  # replays the unfinished reply, then waits for its lease (none is held)
    frames = await again.recv_until("reply.end", timeout=WATCH_INTERVAL + 5)
    assert reply_text(frames) == "The Featherlite 2 tent weighs "
    error = next(f for f in frames if f["type"] == "error")
    assert error["message_id"] == reply_id and error["code"] == "reply_interrupted"
    assert frames[-1] == {
        "type": "reply.end",
        "message_id": reply_id,
        "status": "incomplete",
        "usage": {},
        "seq": frames[-1]["seq"],
    }
    stored = await database_sync_to_async(Message.objects.get)(pk=reply_id)
    assert (
        stored.status == "incomplete"
        and stored.text == "The Featherlite 2 tent weighs "
        and stored.error_code == "process_lost"
    )
    assert stored.reply_to_id is not None
    await again.disconnect()

    reload = Shopper(session)  # later: it is an ordinary stored message, shown once
    snapshot = await reload.connect()
    assert [m["id"] for m in snapshot["messages"]].count(reply_id) == 1
    assert await reload.nothing_more(WATCH_INTERVAL + 0.5)
    await reload.disconnect()


async def test_a_new_message_first_finishes_a_dead_reply_then_gets_its_own(fake_openai):
    session = await browser_session()
    shopper = Shopper(session)
    conversation = await shopper.connect()
    reply_id = await dead_process_left_a_reply(conversation["id"], floor=0)
    frames = await shopper.turn("Are you still there?")  # up to the dead reply's end…
    frames += await shopper.recv_until("reply.end")  # …then the new reply
    ends = [f for f in frames if f["type"] == "reply.end"]
    assert ends[0]["message_id"] == reply_id and ends[0]["status"] == "incomplete"
    assert ends[-1]["status"] == "complete" and len(ends) == 2
    bots = await database_sync_to_async(lambda: list(Message.objects.filter(author="bot").order_by("seq")))()
    assert [b.status for b in bots] == ["incomplete", "complete"]
    await shopper.disconnect()
