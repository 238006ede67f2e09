"""One conversation served by two real Daphne processes on PostgreSQL and Redis (issue 8): hand-off
crosses processes, a reply streaming on one is received whole on the other, and when the process
streaming a reply is killed (SIGKILL: a crash) the other finishes it as incomplete with the text
that was streamed. Nothing is lost, nothing is duplicated."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.fakes import Script
from tests.fakes.openai_server import FakeOpenAI
from tests.scaleout.clients import Socket, client_sees, reply_text, shopper_session, staff_session
from tests.scaleout.conftest import LEASE_SECONDS, messages_stored


def ticks(count: int) -> str:
    """What Script.stream_forever sends as its first `count` chunks."""
    return "".join(f"tick {n}. " for n in range(count))


def last_seq(frames: list[dict[str, Any]]) -> int:
    return max(int(f["seq"]) for f in frames if "seq" in f)


def rows(env: dict[str, str], conversation_id: str) -> list[tuple[object, ...]]:
    return [(m["author"], m["notice_code"] or m["text"], m["status"]) for m in messages_stored(env, conversation_id)]


@pytest.fixture
def fake(fake_openai_server: FakeOpenAI) -> FakeOpenAI:
    return fake_openai_server


async def test_takeover_and_messages_cross_between_the_two_processes(daphne, fake, scaleout_env):
    a, b = daphne("A", "B")
    shopper = await Socket.open(a, "/ws/chat/", await shopper_session(a))
    conversation_id = (await shopper.recv())["id"]
    fake.enqueue(Script.stream("Hello from the model."))
    await shopper.say("Where is my parcel?")
    assert (await shopper.recv_until("reply.end"))[-1]["status"] == "complete"

    staff = await Socket.open(b, "/ws/staff/", await staff_session(b))
    lobby = await staff.recv()
    assert lobby["type"] == "lobby" and conversation_id in [c["id"] for c in lobby["conversations"]]
    await staff.send({"type": "open", "conversation": conversation_id})
    snapshot = (await staff.recv_until("conversation"))[-1]
    assert [m["text"] for m in snapshot["messages"]] == ["Where is my parcel?", "Hello from the model."]

    # Takeover on B reaches the shopper on A: the notice, then the state.
    await staff.send({"type": "take"})
    joined = (await shopper.recv_until("message.new"))[-1]["message"]
    assert joined["notice_code"] == "staff_joined" and joined["text"] == "Ana from our team joined the chat."
    assert (await shopper.recv()) | {"seq": 0} == {
        "type": "conversation.state",
        "status": "staff",
        "staff_name": "Ana",
        "seq": 0,
    }

    # A staff message from B reaches A.
    mine = str(uuid.uuid4())
    await staff.send({"type": "message", "client_msg_id": mine, "text": "Hi, Ana here. Let me look."})
    said = (await shopper.recv_until("message.new"))[-1]["message"]
    assert (said["author"], said["author_name"], said["text"]) == ("staff", "Ana", "Hi, Ana here. Let me look.")

    # The shopper's message on A reaches the staff on B, and the bot stays quiet.
    requests_before = len(fake.requests)
    await shopper.say("Thank you, Ana")
    ack = (await shopper.recv_until("message.ack"))[-1]
    seen = (await staff.recv_until("message.ack"))[-1]
    assert seen["message_id"] == ack["message_id"] and seen["message"]["text"] == "Thank you, Ana"
    assert await shopper.nothing_more(1.0)
    assert len(fake.requests) == requests_before

    # Release on B: the bot answers on A again.
    await staff.send({"type": "release"})
    back = (await shopper.recv_until("message.new"))[-1]["message"]
    assert back["notice_code"] == "returned_to_bot"
    await shopper.recv_until("conversation.state", status="bot")
    fake.enqueue(Script.stream("The assistant is back."))
    await shopper.say("And the return policy?")
    end = await shopper.recv_until("reply.end")
    assert reply_text(end) == "The assistant is back." and end[-1]["status"] == "complete"

    assert client_sees(shopper.frames)  # every frame in seq order, none twice
    assert rows(scaleout_env, conversation_id) == [
        ("shopper", "Where is my parcel?", "complete"),
        ("bot", "Hello from the model.", "complete"),
        ("system", "staff_joined", "complete"),
        ("staff", "Hi, Ana here. Let me look.", "complete"),
        ("shopper", "Thank you, Ana", "complete"),
        ("system", "returned_to_bot", "complete"),
        ("shopper", "And the return policy?", "complete"),
        ("bot", "The assistant is back.", "complete"),
    ]
    await shopper.close()
    await staff.close()


async def test_a_reply_streaming_on_a_is_received_whole_by_the_shopper_reconnected_to_b(daphne, fake, scaleout_env):
    a, b = daphne("A", "B")
    session = await shopper_session(a)
    on_a = await Socket.open(a, "/ws/chat/", session)
    conversation_id = (await on_a.recv())["id"]
    fake.enqueue(Script.stream_forever(rate=25, count=40))  # 1.6 s of reply
    await on_a.say("Tell me about your tents")
    await on_a.recv_until("reply.delta")
    await on_a.recv_until("reply.delta")
    await on_a.close()  # the phone changed networks; the balancer sends it to B
    await asyncio.sleep(0.3)  # the reply goes on streaming on A while nobody listens

    on_b = await Socket.open(b, "/ws/chat/", session)
    snapshot = await on_b.recv()
    assert snapshot["type"] == "conversation" and snapshot["id"] == conversation_id
    await on_b.send({"type": "resume", "conversation": conversation_id, "after_seq": last_seq(on_a.frames)})
    await on_b.recv_until("reply.end")

    seen = client_sees(on_a.frames + on_b.frames)
    start = next(f for f in seen if f["type"] == "reply.start")
    end = seen[-1]
    assert end["type"] == "reply.end" and end["status"] == "complete"
    assert reply_text(seen, start["message_id"]) == ticks(40), "no delta missing or repeated"
    reply_seqs = [f["seq"] for f in seen if f["seq"] >= start["seq"]]
    assert reply_seqs == list(range(start["seq"], end["seq"] + 1)), "every event of the reply arrived once"
    request = fake.last_request.wait()
    assert request.completed
    assert rows(scaleout_env, conversation_id) == [
        ("shopper", "Tell me about your tents", "complete"),
        ("bot", ticks(40), "complete"),
    ]
    await on_b.close()


async def test_when_a_is_killed_mid_reply_b_ends_it_as_incomplete_and_the_shopper_can_ask_again(
    daphne, fake, scaleout_env
):
    a, b = daphne("A", "B")
    session = await shopper_session(a)
    on_a = await Socket.open(a, "/ws/chat/", session)
    conversation_id = (await on_a.recv())["id"]
    fake.enqueue(Script.stream_forever(rate=20))  # until its client goes away
    await on_a.say("Compare your two lightest tents")
    for _ in range(3):
        await on_a.recv_until("reply.delta")
    a.kill()
    await on_a.drain_until_closed()
    upstream = fake.last_request
    await asyncio.to_thread(upstream.wait)
    assert upstream.client_disconnected
    shown_on_a = reply_text(on_a.frames)

    # The shopper is back a few seconds later, on B; A's lease has run out by then, so B stores
    # what was streamed and ends the reply. (Coming back at once and waiting for the lease is the
    # same path: the socket simply stays open meanwhile, see the quiet-socket test below.)
    await asyncio.sleep(LEASE_SECONDS + 0.5)
    on_b = await Socket.open(b, "/ws/chat/", session)
    await on_b.recv()
    await on_b.send({"type": "resume", "conversation": conversation_id, "after_seq": last_seq(on_a.frames)})
    await on_b.recv_until("reply.end", timeout=10)

    seen = client_sees(on_a.frames + on_b.frames)
    reply_id = next(f for f in seen if f["type"] == "reply.start")["message_id"]
    errors = [f for f in seen if f["type"] == "error"]
    assert [(e["code"], e["message_id"]) for e in errors] == [("reply_interrupted", reply_id)]
    end = seen[-1]
    assert end | {"seq": 0} == {
        "type": "reply.end",
        "message_id": reply_id,
        "status": "incomplete",
        "usage": {},
        "seq": 0,
    }
    text = reply_text(seen, reply_id)
    assert text.startswith(shown_on_a) and text == ticks(text.count("tick ")), "whole chunks, in order, once"
    stored = messages_stored(scaleout_env, conversation_id)
    assert [(m["author"], m["text"], m["status"], m["error_code"]) for m in stored] == [
        ("shopper", "Compare your two lightest tents", "complete", ""),
        ("bot", text, "incomplete", "process_lost"),
    ]
    assert stored[1]["id"] == reply_id

    # The conversation goes on, on B.
    fake.enqueue(Script.stream("The Featherlite 2 is the lighter one."))
    await on_b.say("Can you try again?")
    frames = await on_b.recv_until("reply.end")
    assert reply_text(frames) == "The Featherlite 2 is the lighter one." and frames[-1]["status"] == "complete"
    assert not [f for f in frames if f["type"] == "error"]
    client_sees(on_a.frames + on_b.frames)
    assert rows(scaleout_env, conversation_id)[2:] == [
        ("shopper", "Can you try again?", "complete"),
        ("bot", "The Featherlite 2 is the lighter one.", "complete"),
    ]
    await on_b.close()


async def test_a_socket_that_stays_quiet_for_a_while_stays_open(daphne, fake, scaleout_env):
    (a,) = daphne("A")
    shopper = await Socket.open(a, "/ws/chat/", await shopper_session(a))
    await shopper.recv()
    assert await shopper.nothing_more(7.0)  # the shopper reads the page for a few seconds
    fake.enqueue(Script.stream("Still here."))
    await shopper.say("Hello?")
    frames = await shopper.recv_until("reply.end")
    assert reply_text(frames) == "Still here." and frames[-1]["status"] == "complete"
    await shopper.close()
