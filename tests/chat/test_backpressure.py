"""Flow control (issue 8, "slow consumer"): clients acknowledge what they processed with
`{"type": "ack", "frames": N}`; a socket that leaves more than CHAT_UNACKED_BYTES unacknowledged
is closed with 4008, loses nothing, and resumes. Through the real ASGI application, with a small
limit (below the 256 KiB the environment allows: these clients ack every 8 KB, not 32 KB like the
pages) so a reply of a few hundred KB is many windows long."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from chat.backpressure import TOO_SLOW
from chat.models import Message
from supportbot.asgi import application
from tests.chat.shopper import as_client_sees, browser_session
from tests.chat.test_handoff import staff_session
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]

LIMIT = 64 * 1024
CHUNK = "y" * 500 + " {n}. "
COUNT = 800  # ~400 KB: six windows and more


def ticks(count: int = COUNT) -> str:
    return "".join(CHUNK.replace("{n}", str(n)) for n in range(count))


def long_reply(fake_openai: Any, *, rate: float = 800, count: int = COUNT) -> None:
    fake_openai.enqueue(Script.stream_forever(rate=rate, count=count, text=CHUNK))


@pytest.fixture(autouse=True)
def small_window(settings: Any) -> None:
    settings.CHAT_UNACKED_BYTES = LIMIT


class Client:
    """One socket that counts the frames it receives and acks like the pages do (after each
    `reply.end` and every `ack_every` bytes) — or never, with `ack_every=None`."""

    def __init__(self, path: str, session: str, *, ack_every: int | None = 8 * 1024, pause: float = 0) -> None:
        headers = [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session}".encode())]
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.ack_every = ack_every
        self.pause = pause  # seconds to "process" each frame
        self.received = 0  # frames
        self.unacked = 0  # bytes since the last ack
        self.frames: list[dict[str, Any]] = []
        self.sizes: list[int] = []  # bytes of each frame, in order
        self.close_code: int | None = None

    async def connect(self) -> dict[str, Any]:
        connected, _ = await self.communicator.connect()
        assert connected
        first = await self.recv()
        assert first is not None
        return first

    async def recv(self, timeout: float = 10) -> dict[str, Any] | None:
        """The next frame, acked once handled; None once the server closed the socket."""
        message = await self.communicator.receive_output(timeout)
        if message["type"] == "websocket.close":
            self.close_code = message.get("code")
            return None
        assert message["type"] == "websocket.send"
        frame: dict[str, Any] = json.loads(message["text"])
        size = len(message["text"].encode())
        self.received += 1
        self.frames.append(frame)
        self.sizes.append(size)
        if self.pause:
            await asyncio.sleep(self.pause)
        self.unacked += size
        if self.ack_every is not None and (frame["type"] == "reply.end" or self.unacked >= self.ack_every):
            await self.send({"type": "ack", "frames": self.received})
            self.unacked = 0
        return frame

    async def recv_until(self, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
        """Frames up to and including the first of type `kind`, or up to the server's close."""
        frames = []
        while (frame := await self.recv(timeout)) is not None:
            frames.append(frame)
            if frame["type"] == kind:
                break
        return frames

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def say(self, text: str) -> None:
        await self.send({"type": "message", "text": text, "client_msg_id": str(uuid.uuid4())})

    async def disconnect(self) -> None:
        await self.communicator.disconnect()


def reply_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "reply.delta")


@database_sync_to_async
def stored_reply(conversation_id: str) -> Message:
    return Message.objects.filter(conversation_id=conversation_id, author="bot").latest("seq")


async def test_a_client_that_acks_gets_a_long_streamed_reply_whole(fake_openai):
    long_reply(fake_openai)
    shopper = Client("/ws/chat/", await browser_session())
    await shopper.connect()
    await shopper.say("Tell me everything")
    frames = await shopper.recv_until("reply.end")

    assert shopper.close_code is None and frames[-1]["type"] == "reply.end", "never cut off"
    assert frames[-1]["status"] == "complete" and reply_text(frames) == ticks()
    assert sum(shopper.sizes) > 6 * LIMIT
    await shopper.disconnect()


async def test_a_client_that_never_acks_is_closed_after_the_limit_and_resumes_the_whole_reply(fake_openai):
    long_reply(fake_openai)
    session = await browser_session()
    silent = Client("/ws/chat/", session, ack_every=None)
    conversation = await silent.connect()
    await silent.say("Tell me everything")
    seen = await silent.recv_until("reply.end")

    assert silent.close_code == TOO_SLOW, "closed by the server, before the reply's end"
    assert seen[-1]["type"] == "reply.delta"
    # The snapshot is a catch-up (sent whole); past it, a frame goes out while what is unacked
    # before it is within the limit: so the limit plus at most one frame.
    after_snapshot = sum(silent.sizes[1:])
    assert LIMIT < after_snapshot <= LIMIT + max(silent.sizes[1:])
    await silent.disconnect()

    # Nothing was lost: the reply ran on; a new socket resumes where the closed one stopped (its
    # snapshot may replay some of the reply already: each seq is handled once).
    again = Client("/ws/chat/", session)
    await again.connect()
    after_seq = max(f["seq"] for f in seen if "seq" in f)
    await again.send({"type": "resume", "conversation": conversation["id"], "after_seq": after_seq})
    rest = as_client_sees(await again.recv_until("reply.end"), after_seq)
    assert again.close_code is None and rest[-1]["status"] == "complete"
    assert reply_text(seen) + reply_text(rest) == ticks()
    assert (await stored_reply(conversation["id"])).text == ticks()
    await again.disconnect()


async def test_a_client_that_acks_but_falls_ever_further_behind_is_closed_too(fake_openai):
    """Acks credit what the client processed, not everything sent before they arrived: a client
    that keeps acking but reads slower than the reply streams is closed once it is a window behind."""
    long_reply(fake_openai, rate=1000)
    slow = Client("/ws/chat/", await browser_session(), ack_every=1, pause=0.05)
    await slow.connect()
    await slow.say("Tell me everything")
    frames = await slow.recv_until("reply.end", timeout=30)

    assert slow.close_code == TOO_SLOW and frames[-1]["type"] != "reply.end"
    await slow.disconnect()


async def test_acks_with_a_bad_count_are_refused_with_a_clear_error(offline):
    shopper = Client("/ws/chat/", await browser_session(), ack_every=None)
    await shopper.connect()  # frame 1

    await shopper.send({"type": "ack", "frames": 1})  # fine, and never answered
    await shopper.send({"type": "ack", "frames": 5})
    error = await shopper.recv()  # frame 2
    assert error is not None and error["code"] == "invalid_ack"
    assert error["message"] == "An ack cannot count more frames (5) than this socket was sent (1)."

    await shopper.send({"type": "ack", "frames": 0})
    error = await shopper.recv()  # frame 3
    assert error is not None and error["code"] == "invalid_ack"
    assert error["message"] == "Acks count every frame received on this socket: they never go down (1, then 0)."

    for bad in ({"type": "ack"}, {"type": "ack", "frames": "3"}, {"type": "ack", "frames": 2.5}):
        await shopper.send(bad)
        error = await shopper.recv()
        assert error is not None and error["code"] == "invalid_frame" and "frames" in error["message"], bad

    await shopper.send({"type": "ack", "frames": shopper.received})  # every frame so far: fine
    assert await shopper.communicator.receive_nothing(timeout=0.2)
    await shopper.say("Still working?")
    assert (await shopper.recv_until("reply.end"))[-1]["status"] == "complete"
    await shopper.disconnect()


async def test_a_snapshot_bigger_than_the_limit_is_sent_whole_and_only_what_follows_counts(fake_openai, settings):
    """A reconnecting page gets the whole conversation in one frame, however long: cutting it
    would only make the page reconnect and ask for it again."""
    settings.LLM_HISTORY_TOKENS = 10_000_000  # no summary call: each turn is one request
    long_reply(fake_openai, count=400)
    session = await browser_session()
    first = Client("/ws/chat/", session)
    await first.connect()
    await first.say("One long answer")
    assert (await first.recv_until("reply.end"))[-1]["status"] == "complete"
    await first.disconnect()

    silent = Client("/ws/chat/", session, ack_every=None)
    snapshot = await silent.connect()
    assert silent.sizes[0] > 3 * LIMIT and snapshot["messages"][-1]["text"] == ticks(400)
    long_reply(fake_openai)
    await silent.say("And another")
    seen = await silent.recv_until("reply.end")
    assert silent.close_code == TOO_SLOW and LIMIT < sum(silent.sizes[1:]) <= LIMIT + max(silent.sizes[1:])
    assert reply_text(seen)
    await silent.disconnect()


async def test_staff_sockets_follow_the_same_rule(fake_openai):
    long_reply(fake_openai)
    shopper = Client("/ws/chat/", await browser_session())
    conversation = await shopper.connect()
    reading = Client("/ws/staff/", await staff_session("ana", first_name="Ana"))
    silent = Client("/ws/staff/", await staff_session("ben", first_name="Ben"), ack_every=None)
    for staff in (reading, silent):
        assert (await staff.connect())["type"] == "lobby"
        await staff.send({"type": "open", "conversation": conversation["id"]})
        await staff.recv_until("conversation")

    await shopper.say("Tell me everything")
    shopper_frames, reading_frames, silent_frames = await asyncio.gather(
        *(client.recv_until("reply.end") for client in (shopper, reading, silent))
    )

    assert reply_text(shopper_frames) == reply_text(reading_frames) == ticks(), "a slow page slows nobody else"
    assert reading.close_code is None
    assert silent.close_code == TOO_SLOW and silent_frames[-1]["type"] != "reply.end"
    # Everything counts but the catch-up after `open` (the conversation's snapshot).
    opened = next(i for i, f in enumerate(silent.frames) if f["type"] == "conversation")
    counted = silent.sizes[:opened] + silent.sizes[opened + 1 :]
    assert LIMIT < sum(counted) <= LIMIT + max(counted)
    for client in (shopper, reading, silent):
        await client.disconnect()
