"""Bad frames get a clear error, the connection stays open, and nothing is stored."""

from __future__ import annotations

import json
import uuid

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from tests.chat.shopper import Shopper, browser_session, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]

GOOD_ID = "6f1c1c1e-8f0a-4c55-9a55-3f2f0e6c9d11"

BAD_FRAMES = [
    ("not json at all", "invalid_json"),
    ("[1, 2, 3]", "invalid_json"),
    ('"just a string"', "invalid_json"),
    ("{}", "invalid_frame"),
    ('{"type": 7}', "invalid_frame"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "message", "text": "hi"}', "invalid_frame"),
    ('{"type": "message", "text": "hi", "client_msg_id": "not-a-uuid"}', "invalid_frame"),
    (f'{{"type": "message", "text": 42, "client_msg_id": "{GOOD_ID}"}}', "invalid_frame"),
    (f'{{"type": "message", "text": "   ", "client_msg_id": "{GOOD_ID}"}}', "message_empty"),
    (f'{{"type": "message", "text": "\\u0000\\u0007", "client_msg_id": "{GOOD_ID}"}}', "message_empty"),
    (f'{{"type": "message", "text": "{"x" * 4001}", "client_msg_id": "{GOOD_ID}"}}', "message_too_long"),
    (f'{{"type": "message", "text": "hi", "attachments": ["nope"], "client_msg_id": "{GOOD_ID}"}}', "invalid_frame"),
    (
        f'{{"type": "message", "text": "hi", "attachments": ["{GOOD_ID}"], "client_msg_id": "{GOOD_ID}"}}',
        "attachment_not_found",
    ),
    (
        f'{{"type": "message", "text": "", "attachments": {json.dumps([GOOD_ID] * 5)}, "client_msg_id": "{GOOD_ID}"}}',
        "attachment_not_found",
    ),
    ('{"type": "resume", "conversation": "nope", "after_seq": 0}', "invalid_frame"),
    (f'{{"type": "resume", "conversation": "{GOOD_ID}", "after_seq": -4}}', "invalid_frame"),
    (json.dumps({"type": "message", "text": "y" * 70_000, "client_msg_id": GOOD_ID}), "frame_too_large"),
    (json.dumps({"type": "message", "text": None, "client_msg_id": GOOD_ID}), "invalid_frame"),
    (
        json.dumps(
            {
                "type": "message",
                "text": "",
                "attachments": [str(uuid.uuid4()) for _ in range(9)],
                "client_msg_id": GOOD_ID,
            }
        ),
        "too_many_attachments",
    ),
    (
        json.dumps({"type": "message", "text": "hi", "client_msg_id": GOOD_ID, "context": {"product": "p" * 300}}),
        "invalid_frame",
    ),
    (json.dumps({"type": "message", "text": "hi", "client_msg_id": GOOD_ID, "context": {"evil": 1}}), "invalid_frame"),
    (json.dumps({"type": "feedback", "message_id": "nope", "value": "up"}), "invalid_frame"),
    (json.dumps({"type": "feedback", "message_id": GOOD_ID, "value": "meh"}), "invalid_frame"),
    (json.dumps({"type": "feedback", "message_id": GOOD_ID, "value": "down", "reasons": ["bogus"]}), "invalid_frame"),
    (json.dumps({"type": "feedback", "message_id": GOOD_ID, "value": "down", "comment": "c" * 1001}), "invalid_frame"),
    (json.dumps({"type": "feedback", "message_id": GOOD_ID, "value": "up"}), "invalid_feedback"),
    (json.dumps({"type": "rating", "value": 0}), "invalid_frame"),
    (json.dumps({"type": "rating", "value": 6}), "invalid_frame"),
    (json.dumps({"type": "rating", "value": "5"}), "invalid_frame"),
    (json.dumps({"type": "rating", "value": 5}), "not_closed"),
    (json.dumps({"type": "typing", "active": "yes"}), "invalid_frame"),
    (json.dumps({"type": "restart"}), "not_closed"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES, ids=[code + str(i) for i, (_, code) in enumerate(BAD_FRAMES)])
async def test_bad_frame_gets_an_error_and_nothing_is_stored(raw, code, offline):
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    await shopper.communicator.send_to(text_data=raw)
    error = await shopper.recv()
    assert error["type"] == "error" and error["code"] == code
    assert error["message"] and "Traceback" not in error["message"]
    assert "seq" not in error
    count = await database_sync_to_async(Message.objects.filter(conversation_id=conversation["id"]).count)()
    assert count == 0
    # The connection is still usable.
    frames = await shopper.turn("still here?")
    assert frames[0]["type"] == "message.ack" and frames[-1]["type"] == "reply.end"
    await shopper.disconnect()


async def test_binary_frames_are_refused_in_plain_words(offline):
    shopper = Shopper(await browser_session())
    await shopper.connect()
    await shopper.communicator.send_to(bytes_data=b"\x00\x01binary")
    error = await shopper.recv()
    assert error["code"] == "invalid_json" and "Binary" in error["message"]
    await shopper.disconnect()


async def test_right_to_left_overrides_and_markup_are_kept_as_plain_text(offline):
    """Bidi controls are legitimate in Arabic or Hebrew text: stored as sent, rendered as text."""
    shopper = Shopper(await browser_session())
    await shopper.connect()
    text = "\u202eevil.exe\u202c <img src=x onerror=alert(1)> مرحبا"
    frames = await shopper.turn(text)
    assert frames[0]["message"]["text"] == text
    await shopper.disconnect()


BURST = 10_000


@pytest.mark.usefixtures("rate_window")
async def test_a_burst_of_messages_is_refused_past_the_limit_without_a_crash(offline, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 5
    # The answers pile up unread while the burst is sent: more than flow control lets a socket
    # leave unacknowledged (tests/chat/test_backpressure.py), which is not what this test is about.
    settings.CHAT_UNACKED_BYTES = 64 * 1024 * 1024
    shopper = Shopper(await browser_session())
    await shopper.connect()
    for _ in range(BURST):
        await shopper.say("spam")
    codes: dict[str, int] = {}
    answered = 0
    while answered < BURST:  # every message gets exactly one answer: its ack or an error
        frame = await shopper.recv(timeout=30)
        # (errors about a reply carry its message_id; a message's own answer does not)
        if frame["type"] == "message.ack" or (frame["type"] == "error" and "message_id" not in frame):
            answered += 1
            codes[frame.get("code") or frame["type"]] = codes.get(frame.get("code") or frame["type"], 0) + 1
    stored = await database_sync_to_async(Message.objects.filter(author="shopper").count)()
    # The limit counts per clock minute (chat/ratelimit.py): a burst that spans a minute boundary
    # (on Redis it takes ~40 s) may get the limit's worth in each of the two minutes, never more.
    allowed = 2 * settings.CHAT_MESSAGES_PER_MINUTE
    refused = codes.get("rate_limited", 0) + codes.get("reply_in_progress", 0)
    assert 1 <= stored <= allowed and refused >= BURST - allowed
    await shopper.disconnect()
    again = Shopper(await browser_session())  # the server is fine for everyone else
    await again.connect()
    assert (await again.turn("hello"))[-1]["type"] == "reply.end"
    await again.disconnect()


async def test_control_characters_are_removed_before_storing(offline):
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("rain\x00 jacket\x1b please\n")
    assert frames[0]["message"]["text"] == "rain jacket please"


@pytest.mark.usefixtures("rate_window")
async def test_too_many_messages_per_minute_are_refused_with_a_wait_time(offline, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 2
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    await shopper.turn("one")
    await shopper.turn("two")
    await shopper.say("three")
    error = await shopper.recv()
    assert error["code"] == "rate_limited"
    wait = error["retry_after"]
    assert 1 <= wait <= 60 and f"{wait} {'second' if wait == 1 else 'seconds'} " in error["message"]
    texts = await database_sync_to_async(
        lambda: list(
            Message.objects.filter(conversation_id=conversation["id"], author="shopper").values_list("text", flat=True)
        )
    )()
    assert texts == ["one", "two"]
    await shopper.disconnect()


@pytest.mark.usefixtures("rate_window")
async def test_the_limit_is_per_browser_not_per_socket(offline, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 1
    session = await browser_session()
    tab1 = Shopper(session)
    await tab1.connect()
    await tab1.turn("one")
    tab2 = Shopper(session)
    await tab2.connect()
    await tab2.say("from another tab")
    assert (await tab2.recv())["code"] == "rate_limited"
    # Another browser is not affected.
    other = Shopper(await browser_session())
    await other.connect()
    assert reply_text(await other.turn("hello")) != ""
    for shopper in (tab1, tab2, other):
        await shopper.disconnect()


async def test_unknown_conversation_in_resume_is_not_found(offline):
    shopper = Shopper(await browser_session())
    await shopper.connect()
    await shopper.send({"type": "resume", "conversation": str(uuid.uuid4()), "after_seq": 0})
    assert (await shopper.recv())["code"] == "not_found"
    await shopper.disconnect()
