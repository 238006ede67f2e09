"""When the model fails: the shopper is told in plain words, the message is kept, the
conversation goes on."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from chat.models import Message
from tests.chat.shopper import Shopper, browser_session, reply_text
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


@database_sync_to_async
def stored(conversation_id: str) -> list[tuple[str, str, str, str]]:
    rows = Message.objects.filter(conversation_id=conversation_id).order_by("seq")
    return [(m.author, m.text, m.status, m.error_code) for m in rows]


@pytest.mark.parametrize(
    "script",
    [
        Script.http_error(429, retry_after=1),
        Script.http_error(500),
        Script.http_error(401),
        Script.garbage(),
        Script.hang(before_headers=True, timeout=3),
    ],
    ids=["429", "500", "401", "garbage", "no-first-byte"],
)
async def test_when_the_model_never_answers_the_offline_assistant_does_and_says_so(fake_openai, settings, script):
    settings.LLM_FIRST_TOKEN_TIMEOUT = 0.5
    settings.LLM_MAX_RETRIES = 0  # retries have their own tests (tests/chat/llm/test_router.py)
    fake_openai.enqueue(script)
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("Where is my order?")
    assert not [f for f in frames if f["type"] == "error"]
    text = reply_text(frames)
    assert "can't be reached right now" in text and "offline assistant" in text
    assert "HTTP" not in text and frames[-1]["status"] == "complete"
    rows = await stored(conversation["id"])
    assert rows[0] == ("shopper", "Where is my order?", "complete", "")
    assert rows[1][0] == "bot" and rows[1][2:] == ("complete", "upstream_unavailable")
    bot = await database_sync_to_async(lambda: Message.objects.get(conversation_id=conversation["id"], author="bot"))()
    assert bot.model == "offline" and bot.error_detail  # staff can see why
    # Later turns go to the model again.
    fake_openai.enqueue(Script.stream("Back to normal."))
    assert reply_text(await shopper.turn("Hello again")) == "Back to normal."
    await shopper.disconnect()


@pytest.mark.parametrize(
    "script",
    [
        Script.mid_stream_error("The order left our ", message="overloaded"),
        Script.cut("The order left our "),
    ],
    ids=["error-event", "connection-cut"],
)
async def test_a_reply_cut_midway_keeps_its_text_and_is_marked_incomplete(fake_openai, script):
    fake_openai.enqueue(script)
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("Where is my order?")
    assert reply_text(frames) == "The order left our "
    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "upstream_error" and "kept" in error["message"]
    assert frames[-1]["status"] == "incomplete"
    bot = (await stored(conversation["id"]))[-1]
    assert bot[:3] == ("bot", "The order left our ", "incomplete")
    await shopper.disconnect()


async def test_a_stalled_stream_times_out_as_incomplete(fake_openai, settings):
    settings.LLM_IDLE_TIMEOUT = 0.3
    fake_openai.enqueue(Script.hang("Let me check", timeout=5))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("Status?")
    assert reply_text(frames) == "Let me check" and frames[-1]["status"] == "incomplete"
    await shopper.disconnect()


async def test_a_reply_cut_by_the_token_limit_says_so(fake_openai):
    fake_openai.enqueue(Script.stream("A very long", finish_reason="length"))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("Tell me a lot")
    assert frames[-1]["status"] == "incomplete"
    assert "cut short" in next(f for f in frames if f["type"] == "error")["message"]
    await shopper.disconnect()


async def test_a_gateway_that_ignores_stream_true_still_answers(fake_openai):
    fake_openai.enqueue(Script.completion("One JSON body."))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("hi")
    assert reply_text(frames) == "One JSON body." and frames[-1]["status"] == "complete"
    await shopper.disconnect()


async def test_reasoning_text_is_kept_for_staff_and_never_sent_to_the_shopper(fake_openai):
    fake_openai.enqueue(Script.stream("Yes, in stock.", reasoning="The shopper asks about stock"))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("In stock?")
    assert "shopper asks" not in str(frames)
    bot = await database_sync_to_async(lambda: Message.objects.get(conversation_id=conversation["id"], author="bot"))()
    assert bot.grounding["reasoning"].startswith("The shopper asks about stock")
    await shopper.disconnect()


async def test_when_every_retry_fails_the_shopper_hears_still_working_then_the_offline_answer(fake_openai, settings):
    fake_openai.enqueue(*[Script.http_error(503, retry_after=0)] * 3)
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("Anyone there?")
    assert [f["code"] for f in frames if f["type"] == "reply.notice"] == ["retrying"]
    assert "offline assistant" in reply_text(frames) and frames[-1]["status"] == "complete"
    assert len(fake_openai.requests) == settings.LLM_MAX_RETRIES + 1
    assert (await stored(conversation["id"]))[0][:2] == ("shopper", "Anyone there?")
    await shopper.disconnect()
