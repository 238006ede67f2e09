"""Stop, resume and ownership through the real ASGI app."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio
from channels.db import database_sync_to_async
from django.conf import settings

from chat.journal import get_journal
from chat.models import Message
from tests.chat.shopper import Shopper, as_client_sees, browser_session, reply_text
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


@database_sync_to_async
def bot_reply(message_id: str) -> Message:
    return Message.objects.get(pk=message_id)


async def test_stop_ends_the_reply_keeps_its_text_and_closes_the_upstream_request(fake_openai):
    fake_openai.enqueue(Script.stream_forever(rate=40))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    await shopper.say("Tell me everything")
    frames = await shopper.recv_until("reply.delta")
    frames += await shopper.recv_until("reply.delta")
    await shopper.send({"type": "stop"})
    frames += await shopper.recv_until("reply.end")

    end = frames[-1]
    assert end["status"] == "stopped"
    request = fake_openai.last_request
    await asyncio.to_thread(request.done.wait, 2)
    assert request.client_disconnected and not request.completed
    stored = await bot_reply(end["message_id"])
    assert stored.status == "stopped"
    assert stored.text == reply_text(frames) and stored.text.startswith("tick 0. ")
    # The conversation is free again: the next message gets a normal reply.
    fake_openai.enqueue(Script.stream("Back again."))
    assert reply_text(await shopper.turn("Still there?")) == "Back again."
    await shopper.disconnect()


async def test_a_message_sent_the_moment_a_reply_ends_is_taken_not_refused(offline):
    # reply.end goes out just before the turn lets go of its lease: a quick second message must
    # wait for that instant, never get reply_in_progress.
    shopper = Shopper(await browser_session())
    await shopper.connect()
    for question in ("Do you have rain jackets?", "And gaiters?", "Anything else?"):
        await shopper.say(question)
        frames = await shopper.recv_until("reply.end")
        assert not [f for f in frames if f["type"] == "error"], frames
    assert len(await database_sync_to_async(list)(Message.objects.filter(role="assistant"))) == 3
    await shopper.disconnect()


async def test_a_message_while_a_reply_streams_is_refused_and_not_stored(fake_openai):
    fake_openai.enqueue(Script.stream_forever(rate=20, count=10))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    await shopper.say("First")
    await shopper.recv_until("reply.start")
    await shopper.say("Second, too soon")
    frames = await shopper.recv_until("error")
    assert frames[-1]["code"] == "reply_in_progress"
    await shopper.recv_until("reply.end")
    texts = await database_sync_to_async(
        lambda: list(
            Message.objects.filter(conversation_id=conversation["id"], author="shopper").values_list("text", flat=True)
        )
    )()
    assert texts == ["First"]
    await shopper.disconnect()


async def test_resume_after_disconnect_mid_reply_delivers_the_rest(fake_openai):
    pieces = [f"part{i} " for i in range(25)]
    fake_openai.enqueue(Script.stream(pieces, delay=0.04))
    session = await browser_session()
    first = Shopper(session)
    conversation = await first.connect()
    await first.say("Long answer please")
    seen = await first.recv_until("reply.delta")
    seen += await first.recv_until("reply.delta")
    await first.disconnect()  # the phone went to sleep mid-reply

    await asyncio.sleep(0.2)  # more of the reply streams while nobody listens
    second = Shopper(session)
    await second.connect()
    await second.send({"type": "resume", "conversation": conversation["id"], "after_seq": seen[-1]["seq"]})
    rest = await second.recv_until("reply.end")
    resumed = [f for f in as_client_sees(rest, seen[-1]["seq"]) if f["type"] != "conversation"]
    seqs = [f["seq"] for f in seen + resumed]
    assert seqs == sorted(set(seqs)), "no event lost or repeated across the reconnect"
    assert reply_text(seen) + reply_text(resumed) == "".join(pieces)
    assert rest[-1]["status"] == "complete"
    await second.disconnect()


async def test_reconnecting_while_a_reply_streams_shows_history_and_the_live_reply(fake_openai):
    pieces = [f"p{i} " for i in range(20)]
    fake_openai.enqueue(Script.stream(pieces, delay=0.04))
    session = await browser_session()
    first = Shopper(session)
    await first.connect()
    await first.say("Hello?")
    await first.recv_until("reply.delta")
    await first.disconnect()

    second = Shopper(session)
    snapshot = await second.connect()  # a page reload: snapshot, then the reply so far and live
    assert [m["text"] for m in snapshot["messages"]] == ["Hello?"]
    rest = await second.recv_until("reply.end")
    assert rest[0]["type"] == "reply.start"
    assert reply_text(rest) == "".join(pieces)
    await second.disconnect()


async def test_reload_after_the_reply_shows_the_whole_conversation(fake_openai):
    fake_openai.enqueue(Script.stream("Stored answer."))
    session = await browser_session()
    first = Shopper(session)
    await first.connect()
    end = (await first.turn("Question?"))[-1]
    await first.disconnect()

    second = Shopper(session)
    snapshot = await second.connect()
    assert [(m["author"], m["text"], m["status"]) for m in snapshot["messages"]] == [
        ("shopper", "Question?", "complete"),
        ("bot", "Stored answer.", "complete"),
    ]
    assert snapshot["seq"] == end["seq"]
    assert await second.nothing_more()
    await second.disconnect()


async def forget_journal(conversation_id: str) -> None:
    """What a restart does to the journal: the in-memory one is gone, Redis lost the keys."""
    get_journal.cache_clear()
    if settings.REDIS_URL:
        client = redis.asyncio.Redis.from_url(settings.REDIS_URL)
        await client.delete(f"sb:j:{conversation_id}", f"sb:j:{conversation_id}:e")
        await client.aclose()


async def test_resume_replays_missed_events_from_the_journal(fake_openai):
    fake_openai.enqueue(Script.stream("One."), Script.stream("Two."))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    first = await shopper.turn("a")
    second = await shopper.turn("b")
    await shopper.send({"type": "resume", "conversation": conversation["id"], "after_seq": first[-1]["seq"]})
    replayed = await shopper.recv_until("reply.end")
    assert replayed == second
    await shopper.disconnect()


async def test_resume_beyond_what_the_journal_holds_falls_back_to_a_snapshot(fake_openai):
    fake_openai.enqueue(Script.stream("One."), Script.stream("Two."))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    await shopper.turn("a")
    end = (await shopper.turn("b"))[-1]
    await forget_journal(conversation["id"])
    await shopper.send({"type": "resume", "conversation": conversation["id"], "after_seq": 1})
    snapshot = await shopper.recv()
    assert snapshot["type"] == "conversation" and snapshot["seq"] == end["seq"]
    assert [m["text"] for m in snapshot["messages"]] == ["a", "One.", "b", "Two."]
    assert await shopper.nothing_more()
    # Sequence numbers carry on from the database after the journal was lost.
    fake_openai.enqueue(Script.stream("Three."))
    frames = await shopper.turn("c")
    assert frames[0]["seq"] == end["seq"] + 1
    await shopper.disconnect()


async def test_another_sessions_conversation_cannot_be_resumed(fake_openai):
    owner = Shopper(await browser_session())
    owned = await owner.connect()
    await owner.turn("private question")

    stranger = Shopper(await browser_session())
    theirs = await stranger.connect()
    assert theirs["id"] != owned["id"] and theirs["messages"] == []
    await stranger.send({"type": "resume", "conversation": owned["id"], "after_seq": 0})
    error = await stranger.recv()
    assert error["type"] == "error" and error["code"] == "not_found"
    assert "private question" not in str(stranger.frames)
    await stranger.send({"type": "resume", "conversation": str(uuid.uuid4()), "after_seq": 0})
    assert (await stranger.recv())["code"] == "not_found"
    await owner.disconnect()
    await stranger.disconnect()


async def test_a_repeated_client_msg_id_is_stored_once_and_acked_again(fake_openai):
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    client_msg_id = await shopper.say("only once")
    first = await shopper.recv_until("reply.end")
    await shopper.say("only once", client_msg_id=client_msg_id)
    again = await shopper.recv()
    assert again["type"] == "message.ack" and again["message_id"] == first[0]["message_id"]
    assert await shopper.nothing_more()
    count = await database_sync_to_async(
        lambda: Message.objects.filter(conversation_id=conversation["id"], author="shopper").count()
    )()
    assert count == 1
    await shopper.disconnect()
