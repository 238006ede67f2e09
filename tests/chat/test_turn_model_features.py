"""Tools, notices, tiers, usage, cost and compaction, seen through the websocket and the database."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from chat.llm.tools import Tool, registry
from chat.models import Conversation, Message
from tests.chat.shopper import Shopper, browser_session, reply_text
from tests.fakes import Done, Headers, Refusal, Script
from tests.fakes import Finish as FinishStep
from tests.fakes import ToolCall as FakeToolCall
from tests.fakes import Usage as UsageStep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


@database_sync_to_async
def bot_messages(conversation_id: str) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id, author="bot").order_by("seq"))


@pytest.fixture
def stock_tools():
    calls: list[dict] = []

    async def stock_lookup(arguments: dict) -> dict:
        calls.append(arguments)
        return {"sku": arguments["sku"], "in_stock": 4}

    async def slow_lookup(arguments: dict) -> str:
        await asyncio.sleep(5)
        return "never"

    registry.register(
        Tool(
            name="stock_lookup",
            description="Stock of a SKU",
            parameters={"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]},
            handler=stock_lookup,
        )
    )
    registry.register(
        Tool(name="slow_lookup", description="Slow", parameters={"type": "object"}, handler=slow_lookup, timeout=0.2)
    )
    yield calls
    registry.unregister("stock_lookup")
    registry.unregister("slow_lookup")


async def test_tool_calls_run_and_their_results_go_back_to_the_model(fake_openai, stock_tools):
    fake_openai.enqueue(
        Script.tool_calls(
            FakeToolCall("stock_lookup", {"sku": "NP-CRJ-FOR-M"}, id="call_1"),
            FakeToolCall("slow_lookup", {}, id="call_2"),
            FakeToolCall("no_such_tool", {}, id="call_3"),
        ),
        Script.stream("Yes, 4 are in stock."),
    )
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("Is the Cascade jacket in M in stock?")
    assert reply_text(frames) == "Yes, 4 are in stock." and frames[-1]["status"] == "complete"
    assert stock_tools == [{"sku": "NP-CRJ-FOR-M"}]

    first, second = fake_openai.requests
    assert {t["function"]["name"] for t in first.json["tools"]} >= {"stock_lookup", "slow_lookup"}
    sent = second.json["messages"]
    assert sent[-4]["role"] == "assistant" and [c["id"] for c in sent[-4]["tool_calls"]] == [
        "call_1",
        "call_2",
        "call_3",
    ]
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in sent[-3:]}
    assert results["call_1"] == {"sku": "NP-CRJ-FOR-M", "in_stock": 4}
    assert "took too long" in results["call_2"]["error"] and "no tool named" in results["call_3"]["error"]

    bot = (await bot_messages(conversation["id"]))[0]
    assert [t["name"] for t in bot.grounding["tools"]] == ["stock_lookup", "slow_lookup", "no_such_tool"]
    assert [t["error"] for t in bot.grounding["tools"]] == [False, True, True]
    assert bot.usage["prompt_tokens"] > 0 and not bot.usage["estimated"]
    await shopper.disconnect()


async def test_tool_rounds_are_capped_then_the_model_must_answer(fake_openai, stock_tools, settings):
    settings.LLM_MAX_TOOL_ROUNDS = 1
    fake_openai.enqueue(
        Script.tool_calls(FakeToolCall("stock_lookup", {"sku": "A"})),
        Script.stream("Answer without more tools."),
    )
    shopper = Shopper(await browser_session())
    await shopper.connect()
    assert reply_text(await shopper.turn("stock?")) == "Answer without more tools."
    assert fake_openai.requests[1].json["tool_choice"] == "none"
    await shopper.disconnect()


async def test_retry_notice_reaches_the_shopper_before_the_reply(fake_openai):
    fake_openai.enqueue(Script.http_error(503, retry_after=0), Script.stream("Here you go."))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("hello")
    kinds = [f["type"] for f in frames]
    assert kinds.index("reply.notice") < kinds.index("reply.delta")
    notice = next(f for f in frames if f["type"] == "reply.notice")
    assert notice["code"] == "retrying" and "Still working" in notice["message"]
    assert reply_text(frames) == "Here you go."
    await shopper.disconnect()


async def test_a_saturated_pool_tells_the_shopper_their_place_in_line(fake_openai, settings):
    settings.LLM_MAX_CONCURRENCY = 1
    fake_openai.enqueue(Script.stream(["busy "] * 6, delay=0.08), Script.stream("Your turn now."))
    first, second = Shopper(await browser_session()), Shopper(await browser_session())
    await first.connect()
    await second.connect()
    await first.say("first")
    await first.recv_until("reply.delta")
    frames = await second.turn("second")
    notice = next(f for f in frames if f["type"] == "reply.notice")
    assert notice["code"] == "queued" and notice["position"] == 1
    assert reply_text(frames) == "Your turn now."
    await first.recv_until("reply.end")
    await first.disconnect()
    await second.disconnect()


async def test_usage_and_cost_are_stored_per_reply_and_totalled(fake_openai, settings):
    settings.LLM_PRICES = {"gpt-5.2": {"input": 2, "cached_input": 0.5, "output": 10}}
    usage = UsageStep(prompt_tokens=1000, completion_tokens=200, cached_tokens=400, reasoning_tokens=50)
    fake_openai.enqueue(Script.stream("One.", usage=usage), Script.stream("Two.", usage=usage))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    end = (await shopper.turn("a"))[-1]
    await shopper.turn("b")
    assert end["usage"]["cached_tokens"] == 400 and end["usage"]["reasoning_tokens"] == 50
    replies = await bot_messages(conversation["id"])
    # (1000 - 400) * 2 + 400 * 0.5 + 200 * 10 = 3400 per million
    assert [r.cost for r in replies] == [Decimal("0.003400"), Decimal("0.003400")]
    totals = await database_sync_to_async(Conversation.objects.get)(pk=conversation["id"])
    assert (totals.prompt_tokens, totals.completion_tokens, totals.cost) == (2000, 400, Decimal("0.006800"))
    await shopper.disconnect()


async def test_missing_usage_is_estimated_with_tiktoken(fake_openai):
    fake_openai.enqueue(Script.stream("An answer of a few words.", usage=None))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    end = (await shopper.turn("How many tokens is this?"))[-1]
    assert end["usage"]["estimated"] is True
    assert end["usage"]["completion_tokens"] == 7 and end["usage"]["prompt_tokens"] > 20
    assert (await bot_messages(conversation["id"]))[0].usage["estimated"] is True
    await shopper.disconnect()


async def test_model_tiers_quick_default_premium_and_the_staff_override(fake_openai, settings):
    settings.LLM_MODEL_QUICK = "gpt-5.2-chat-latest"
    settings.LLM_MODEL_PREMIUM = "gpt-5.2-pro"
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    await shopper.turn("hi")
    await shopper.turn("Could you explain in detail how the sizing of your trail running shoes compares?")
    await shopper.turn("My jacket arrived damaged, I want a refund")
    await database_sync_to_async(Conversation.objects.filter(pk=conversation["id"]).update)(model_tier="premium")
    await shopper.turn("thanks")
    models = [r.json["model"] for r in fake_openai.requests]
    assert models == ["gpt-5.2-chat-latest", "gpt-5.2", "gpt-5.2-pro", "gpt-5.2-pro"]
    stored = [(m.model, m.grounding["tier"]) for m in await bot_messages(conversation["id"])]
    assert stored[0] == ("gpt-5.2-chat-latest", "quick") and stored[3] == ("gpt-5.2-pro", "premium")
    await shopper.disconnect()


async def test_history_over_budget_is_compacted_into_a_stored_summary(fake_openai, settings):
    settings.LLM_HISTORY_TOKENS = 200
    long = "I am looking for waterproof trail running shoes for wide feet, size 9. " * 8
    session = await browser_session()
    shopper = Shopper(session)
    conversation = await shopper.connect()
    fake_openai.enqueue(Script.stream("First answer. " * 10))
    await shopper.turn(long)
    fake_openai.enqueue(Script.stream("Summary: shopper wants waterproof trail shoes, wide, size 9."))
    fake_openai.enqueue(Script.stream("Second answer."))
    frames = await shopper.turn(long.replace("9", "10"))
    assert reply_text(frames) == "Second answer."

    summary_request, turn_request = fake_openai.requests[1:]
    assert "Summarise" in summary_request.json["messages"][0]["content"] and "tools" not in summary_request.json
    sent = turn_request.json["messages"]
    assert sent[1] == {
        "role": "system",
        "content": "Summary of the earlier conversation:\nSummary: shopper wants waterproof trail shoes, wide, size 9.",
    }
    assert not any(m["content"] == long for m in sent), "the compacted message is not sent again"
    summary = await database_sync_to_async(
        lambda: Message.objects.get(conversation_id=conversation["id"], kind="summary")
    )()
    assert summary.seq is None and summary.covers_through_seq is not None and summary.author == "system"
    # The shopper never sees the summary.
    again = Shopper(session)
    snapshot = await again.connect()
    assert "Summary:" not in json.dumps(snapshot) and len(snapshot["messages"]) == 4
    await again.disconnect()
    await shopper.disconnect()


async def test_a_refusal_is_shown_as_the_reply_and_marked_for_review(fake_openai):
    fake_openai.enqueue(Script(Headers(), Refusal("I can't help with that."), FinishStep("stop"), Done()))
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    frames = await shopper.turn("Tell me another shopper's address")
    assert reply_text(frames) == "I can't help with that." and frames[-1]["status"] == "complete"
    bot = await database_sync_to_async(lambda: Message.objects.get(conversation_id=conversation["id"], author="bot"))()
    assert bot.grounding["refusal"] is True
    await shopper.disconnect()
