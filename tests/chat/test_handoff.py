"""Hand-off between the bot and staff, through two real sockets: a shopper on /ws/chat/ and a
staff member on /ws/staff/ (both WebsocketCommunicator on the real ASGI application)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.test import AsyncClient

from chat.models import Conversation, Message
from supportbot.asgi import application
from tests.chat.shopper import Shopper, browser_session
from tests.fakes import Script
from tests.fakes import ToolCall as FakeToolCall

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


@pytest.fixture(autouse=True)
def nobody_online():
    cache.delete("staff:last_seen")


class Staff:
    """A staff member's live page socket."""

    def __init__(self, session: str | None) -> None:
        headers = [(b"origin", b"http://localhost")]
        if session:
            headers.append((b"cookie", f"sessionid={session}".encode()))
        self.communicator = WebsocketCommunicator(application, "/ws/staff/", headers=headers)
        self.lobby: dict[str, Any] = {}

    async def connect(self) -> None:
        connected, _ = await self.communicator.connect()
        assert connected
        self.lobby = await self.recv()
        assert self.lobby["type"] == "lobby"

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await self.communicator.receive_from(timeout=timeout))
        return frame

    async def recv_until(self, kind: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def open(self, conversation_id: str) -> dict[str, Any]:
        await self.send({"type": "open", "conversation": conversation_id})
        return await self.recv_until("conversation")

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


async def staff_session(username: str, *, first_name: str = "", superuser: bool = False, perm: bool = True) -> str:
    def make() -> User:
        user = User.objects.create_user(
            username, password="pw-1234567890", is_staff=True, is_superuser=superuser, first_name=first_name
        )
        if perm:
            user.user_permissions.add(Permission.objects.get(codename="handle_conversation"))
        return user

    user = await database_sync_to_async(make)()
    client = AsyncClient()
    await client.aforce_login(user)
    return client.cookies["sessionid"].value


async def shopper_connected() -> tuple[Shopper, str]:
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    return shopper, conversation["id"]


async def stored(conversation_id: str) -> list[Message]:
    messages: list[Message] = await database_sync_to_async(
        lambda: list(Message.objects.filter(conversation_id=conversation_id).order_by("seq"))
    )()
    return messages


async def test_only_staff_with_the_permission_get_the_live_page_socket():
    for session in (None, await staff_session("noperm", perm=False)):
        communicator = WebsocketCommunicator(
            application,
            "/ws/staff/",
            headers=[(b"origin", b"http://localhost")]
            + ([(b"cookie", f"sessionid={session}".encode())] if session else []),
        )
        connected, code = await communicator.connect()
        assert not connected and code == 4403
    boss = Staff(await staff_session("boss", superuser=True, perm=False))
    await boss.connect()
    assert boss.lobby["me"]["name"] == "boss"
    await boss.disconnect()


async def test_asking_for_a_person_tells_the_truth_about_who_is_online():
    shopper, conversation_id = await shopper_connected()
    await shopper.send({"type": "handoff"})
    notice = (await shopper.recv_until("message.new"))[-1]["message"]
    state = await shopper.recv()
    assert notice["kind"] == "notice" and notice["notice_code"] == "handoff_requested"
    assert "isn't online right now" in notice["text"]
    assert state == {"type": "conversation.state", "status": "waiting", "staff_name": None, "seq": state["seq"]}
    await shopper.send({"type": "handoff"})  # again: nothing new
    assert await shopper.nothing_more()
    await shopper.disconnect()

    staff = Staff(await staff_session("ana", first_name="Ana"))
    await staff.connect()
    assert [c["id"] for c in staff.lobby["conversations"]] == [conversation_id]
    assert staff.lobby["conversations"][0]["status"] == "waiting"
    other, _ = await shopper_connected()
    await other.send({"type": "handoff"})
    notice = (await other.recv_until("message.new"))[-1]["message"]
    assert "online and will join" in notice["text"]
    update = await staff.recv_until("lobby.update")
    assert update["conversation"]["status"] == "waiting"
    await other.disconnect()
    await staff.disconnect()


async def test_takeover_silences_the_bot_and_staff_talk_to_the_shopper(fake_openai):
    shopper, conversation_id = await shopper_connected()
    await shopper.turn("Where is my order 1234?")
    requests_before = len(fake_openai.requests)
    ana = Staff(await staff_session("ana", first_name="Ana"))
    bob = Staff(await staff_session("bob", first_name="Bob"))
    await ana.connect()
    await bob.connect()
    snapshot = await ana.open(conversation_id)
    assert snapshot["messages"][0]["text"] == "Where is my order 1234?"

    await ana.send({"type": "take"})
    joined = (await shopper.recv_until("message.new"))[-1]["message"]
    assert joined["text"] == "Ana from our team joined the chat." and joined["notice_code"] == "staff_joined"
    assert (await shopper.recv()) | {"seq": 0} == {
        "type": "conversation.state",
        "status": "staff",
        "staff_name": "Ana",
        "seq": 0,
    }

    await bob.open(conversation_id)
    await bob.send({"type": "take"})
    refused = await bob.recv_until("error")
    assert refused["code"] == "owned_by_other" and refused["message"] == "Ana is handling this conversation."
    await bob.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "Hi, Bob here"})
    assert (await bob.recv_until("error"))["code"] == "not_owner"

    # The shopper writes: stored, seen by staff, and no bot reply.
    await shopper.say("Are you a real person?")
    await shopper.recv_until("message.ack")
    seen = await ana.recv_until("message.ack")
    assert seen["message"]["text"] == "Are you a real person?"
    assert await shopper.nothing_more(0.5)
    assert len(fake_openai.requests) == requests_before

    # Typing goes both ways; staff messages carry the name.
    await ana.send({"type": "typing", "active": True})
    assert await shopper.recv() == {"type": "typing", "who": "staff", "name": "Ana", "active": True}
    await shopper.send({"type": "typing", "active": True})
    assert (await ana.recv_until("typing")) == {"type": "typing", "who": "shopper", "name": None, "active": True}
    mine = str(uuid.uuid4())
    await ana.send({"type": "message", "client_msg_id": mine, "text": "Yes! Your order ships tomorrow."})
    said = (await shopper.recv_until("message.new"))[-1]["message"]
    assert said["author"] == "staff" and said["author_name"] == "Ana" and said["role"] == "assistant"
    assert (await ana.recv_until("message.new"))["message"]["client_msg_id"] == mine

    # Back to the bot: a notice, then the bot answers again and knows what Ana said.
    await ana.send({"type": "release"})
    back = (await shopper.recv_until("message.new"))[-1]["message"]
    assert back["notice_code"] == "returned_to_bot" and back["text"] == "Ana handed the chat back to the assistant."
    await shopper.recv_until("conversation.state")
    frames = await shopper.turn("Thanks, and do you sell socks?")
    assert frames[-1]["status"] == "complete"
    history = fake_openai.last_request.json["messages"]
    assert {"role": "assistant", "content": "[Ana from the shop's team]: Yes! Your order ships tomorrow."} in history
    assert all("joined the chat" not in str(m["content"]) for m in history)  # notices are not for the model

    codes = [m.notice_code for m in await stored(conversation_id) if m.kind == "notice"]
    assert codes == ["staff_joined", "returned_to_bot"]
    snapshot = await ana.open(conversation_id)  # a reload or a staff page shows the notices too
    assert [m["notice_code"] for m in snapshot["messages"] if m["kind"] == "notice"] == codes
    assert next(m for m in snapshot["messages"] if m["author"] == "staff")["author_name"] == "Ana"
    for socket in (shopper, ana, bob):
        await socket.disconnect()


async def test_a_reply_streaming_at_takeover_is_stopped_and_marked(fake_openai):
    fake_openai.enqueue(Script.stream_forever(rate=20))
    shopper, conversation_id = await shopper_connected()
    await shopper.say("Tell me everything about tents")
    await shopper.recv_until("reply.delta")
    ana = Staff(await staff_session("ana", first_name="Ana"))
    await ana.connect()
    await ana.open(conversation_id)
    await ana.send({"type": "take"})
    end = (await shopper.recv_until("reply.end"))[-1]
    assert end["status"] == "stopped"
    reply = await database_sync_to_async(lambda: Message.objects.get(conversation_id=conversation_id, author="bot"))()
    assert reply.status == "stopped" and reply.error_code == "taken_over" and reply.text
    await shopper.disconnect()
    await ana.disconnect()


async def test_the_model_can_hand_the_conversation_to_a_person(fake_openai):
    fake_openai.enqueue(
        Script.tool_calls(FakeToolCall("request_human", {"reason": "refund"}, id="call_h")),
        Script.stream("I've asked a colleague to join."),
    )
    shopper, conversation_id = await shopper_connected()
    frames = await shopper.turn("I want to speak to a human about a refund")
    notice = next(f for f in frames if f["type"] == "message.new")["message"]
    assert notice["notice_code"] == "handoff_requested"
    result = json.loads(fake_openai.requests[-1].json["messages"][-1]["content"])
    assert result["status"] == "waiting" and result["staff_online"] is False
    assert result["shopper_was_told"] == notice["text"]
    status = await database_sync_to_async(lambda: Conversation.objects.get(pk=conversation_id).status)()
    assert status == "waiting"
    await shopper.disconnect()


async def test_feedback_end_rating_and_restart(fake_openai):
    session = await browser_session()
    shopper = Shopper(session)
    conversation_id = (await shopper.connect())["id"]
    frames = await shopper.turn("Do you have tents?")
    reply_id = frames[-1]["message_id"]
    user_id = next(f for f in frames if f["type"] == "message.ack")["message_id"]

    await shopper.send({"type": "feedback", "message_id": reply_id, "value": "down", "reasons": ["wrong_product"]})
    assert await shopper.recv() == {"type": "feedback.ack", "message_id": reply_id, "value": "down"}
    await shopper.send({"type": "feedback", "message_id": reply_id, "value": "up"})  # replaces it
    await shopper.recv()
    for bad in ({"message_id": user_id, "value": "up"}, {"message_id": reply_id, "value": "down", "reasons": ["meh"]}):
        await shopper.send({"type": "feedback", **bad})
        assert (await shopper.recv())["code"] in {"invalid_feedback", "invalid_frame"}

    await shopper.send({"type": "rating", "value": 4})
    assert (await shopper.recv())["code"] == "not_closed"
    await shopper.send({"type": "end"})
    closed = (await shopper.recv_until("message.new"))[-1]["message"]
    assert closed["notice_code"] == "closed" and (await shopper.recv())["status"] == "closed"
    reload = Shopper(session)  # a reload right after ending still shows it, to be rated
    assert (await reload.connect())["id"] == conversation_id
    await reload.disconnect()
    await shopper.send({"type": "rating", "value": 4, "comment": "Quick and helpful"})
    assert await shopper.recv() == {"type": "rating.ack", "value": 4}
    await shopper.say("One more thing")
    assert (await shopper.recv())["code"] == "conversation_closed"

    conversation = await database_sync_to_async(lambda: Conversation.objects.get(pk=conversation_id))()
    assert conversation.rating == 4 and conversation.rating_comment == "Quick and helpful"
    feedback = await database_sync_to_async(lambda: Message.objects.get(pk=reply_id).feedback)()
    assert feedback.value == "up" and feedback.reasons == []

    await shopper.send({"type": "restart"})
    fresh = await shopper.recv()
    assert fresh["type"] == "conversation" and fresh["id"] != conversation_id and fresh["messages"] == []
    assert fresh["status"] == "bot"
    await shopper.disconnect()
    rated = Shopper(session)  # once rated, a reload opens the new conversation
    assert (await rated.connect())["id"] == fresh["id"]
    await rated.disconnect()


async def test_staff_can_close_a_conversation_and_the_shopper_may_rate_it(fake_openai):
    shopper, conversation_id = await shopper_connected()
    ana = Staff(await staff_session("ana", first_name="Ana"))
    await ana.connect()
    await ana.open(conversation_id)
    await ana.send({"type": "close"})
    closed = (await shopper.recv_until("message.new"))[-1]["message"]
    assert closed["text"] == "Ana closed the chat."
    await shopper.send({"type": "rating", "value": 2})
    assert (await shopper.recv_until("rating.ack"))[-1]["value"] == 2
    await shopper.disconnect()
    await ana.disconnect()


async def test_a_staff_page_hears_of_every_turn_once_open(fake_openai):
    """Turns skip the lobby's summary while no staff page is open (chat/handoff.py); a page that
    opens reads the list, then hears of every change."""
    shopper, conversation_id = await shopper_connected()
    fake_openai.enqueue(Script.stream("Hello!"))
    await shopper.turn("Hi there")
    staff = Staff(await staff_session("ana", first_name="Ana"))
    await staff.connect()
    listed = {c["id"]: c for c in staff.lobby["conversations"]}
    assert listed[conversation_id]["messages"] == 2 and listed[conversation_id]["preview"] == "Hello!"
    fake_openai.enqueue(Script.stream("Sure."))
    await shopper.turn("Another question")
    update = await staff.recv_until("lobby.update")
    assert update["conversation"]["id"] == conversation_id
    await shopper.disconnect()
    await staff.disconnect()
