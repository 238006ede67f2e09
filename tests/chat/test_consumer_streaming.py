"""A whole turn through the real ASGI app: shopper → websocket → loopback model → stored reply."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async

from chat.models import Message
from tests.chat.shopper import Shopper, browser_session, reply_text
from tests.fakes import Script, Usage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


def _messages(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("seq"))


messages = database_sync_to_async(_messages)


async def test_connect_sends_an_empty_conversation_bound_to_the_session():
    session = await browser_session()
    shopper = Shopper(session)
    conversation = await shopper.connect()
    assert conversation["messages"] == []
    assert conversation["seq"] == 0
    await shopper.disconnect()

    again = Shopper(session)
    assert (await again.connect())["id"] == conversation["id"]
    await again.disconnect()


async def test_reply_streams_in_order_and_is_stored_once(fake_openai):
    fake_openai.enqueue(
        Script.stream(
            "Our trail runners come in sizes 7 to 12.",
            delay=0.06,
            usage=Usage(prompt_tokens=42, completion_tokens=11),
        )
    )
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    client_msg_id = await shopper.say("Which sizes do the trail runners come in?")
    frames = await shopper.recv_until("reply.end")

    kinds = [f["type"] for f in frames]
    assert kinds[0] == "message.ack" and kinds[1] == "reply.start" and kinds[-1] == "reply.end"
    assert set(kinds[2:-1]) == {"reply.delta"}
    assert len(kinds[2:-1]) >= 3, "deltas 60 ms apart must not be coalesced into one frame"
    seqs = [f["seq"] for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert frames[0]["client_msg_id"] == client_msg_id
    assert reply_text(frames) == "Our trail runners come in sizes 7 to 12."
    end = frames[-1]
    assert end["status"] == "complete"
    assert end["usage"] == {
        "prompt_tokens": 42,
        "completion_tokens": 11,
        "total_tokens": 53,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "estimated": False,
    }

    stored = await messages(conversation["id"])
    assert [(m.author, m.text, m.status) for m in stored] == [
        ("shopper", "Which sizes do the trail runners come in?", "complete"),
        ("bot", "Our trail runners come in sizes 7 to 12.", "complete"),
    ]
    assert str(stored[1].id) == end["message_id"] == frames[1]["message_id"]
    assert stored[1].usage["total_tokens"] == 53 and stored[1].model == "gpt-5.2"
    assert stored[1].first_token_ms is not None and stored[1].reply_to_id == stored[0].id

    request = fake_openai.last_request
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-key-for-the-fake-server"
    assert request.json["stream"] is True and request.json["stream_options"] == {"include_usage": True}
    assert request.json["model"] == "gpt-5.2"
    assert request.json["messages"][0]["role"] == "system"
    assert request.json["messages"][-1] == {"role": "user", "content": "Which sizes do the trail runners come in?"}
    await shopper.disconnect()


async def test_message_is_stored_and_acked_before_the_model_is_called(fake_openai):
    fake_openai.enqueue(Script.stream("Fine.", headers_delay=0.3))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    await shopper.say("Is this stored first?")
    ack = await shopper.recv()
    acked_at = time.monotonic()
    assert ack["type"] == "message.ack"
    request = (await asyncio.to_thread(fake_openai.wait_for_requests, 1))[0]
    assert acked_at <= request.received_at
    stored = await messages(conversation["id"])
    assert [m.text for m in stored] == ["Is this stored first?"]
    await shopper.recv_until("reply.end")
    await shopper.disconnect()


async def test_fast_tokens_are_coalesced_without_losing_text(fake_openai):
    pieces = [f"w{i} " for i in range(300)]
    fake_openai.enqueue(Script.stream(pieces))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("Talk fast")
    deltas = [f for f in frames if f["type"] == "reply.delta"]
    assert reply_text(frames) == "".join(pieces)
    assert len(deltas) < len(pieces) / 3
    await shopper.disconnect()


async def test_history_of_earlier_turns_goes_to_the_model(fake_openai):
    fake_openai.enqueue(Script.stream("The blue one."), Script.stream("It costs 20."))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    await shopper.turn("Which bottle do you recommend?")
    await shopper.turn("How much is it?")
    sent = fake_openai.last_request.json["messages"]
    dialogue = [(m["role"], m["content"]) for m in sent if m["role"] != "system"]
    assert dialogue == [
        ("user", "Which bottle do you recommend?"),
        ("assistant", "The blue one."),
        ("user", "How much is it?"),
    ]
    await shopper.disconnect()


async def test_second_tab_sees_the_message_and_the_reply(fake_openai):
    fake_openai.enqueue(Script.stream("Both tabs see this.", delay=0.02))
    session = await browser_session()
    tab1, tab2 = Shopper(session), Shopper(session)
    await tab1.connect()
    await tab2.connect()
    await tab1.say("Hello from tab one")
    frames1 = await tab1.recv_until("reply.end")
    frames2 = await tab2.recv_until("reply.end")
    assert [f["seq"] for f in frames1] == [f["seq"] for f in frames2]
    assert frames2[0]["message"]["text"] == "Hello from tab one"
    assert reply_text(frames2) == "Both tabs see this."
    await tab1.disconnect()
    await tab2.disconnect()


async def test_a_client_without_session_cookie_can_still_chat(fake_openai):
    shopper = Shopper(None)
    await shopper.connect()
    frames = await shopper.turn("hi")
    assert frames[-1]["status"] == "complete"
    await shopper.disconnect()


async def test_other_origins_are_refused():
    shopper = Shopper(await browser_session(), origin="https://evil.example")
    connected, _ = await shopper.communicator.connect()
    assert not connected


async def test_a_sockets_frames_and_its_closing_make_no_trip_to_channels_database_thread(fake_openai, monkeypatch):
    # channels hands `close_old_connections` to its database thread before every handler and
    # again when a socket closes; this socket's database work closes its own (chat/db.py).
    fake_openai.enqueue(Script.stream(["Hello ", "there"]))
    hops: list[str] = []
    handover = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args, **kwargs):
        if getattr(self.func, "__name__", "") == "close_old_connections":
            hops.append("close_old_connections")
        return await handover(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    shopper = Shopper(await browser_session())
    await shopper.connect()
    await shopper.say("Hi")
    await shopper.recv_until("reply.end")
    await shopper.disconnect()
    assert hops == []
