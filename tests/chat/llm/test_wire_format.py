"""Every SSE framing and chunk shape the client must read, over a real loopback connection."""

from __future__ import annotations

import json

import httpx
import pytest

from chat.errors import UpstreamStreamError
from chat.llm.client import OpenAIChatClient, Timeouts
from chat.llm.endpoints import Endpoint
from chat.llm.transport import StreamingTransport
from chat.llm.types import ChatRequest, Finish, TextDelta, ToolCall, ToolCalls, Usage
from tests.fakes import Delay, Done, Headers, Raw, Script, ToolCallDelta
from tests.fakes import Finish as FinishStep
from tests.fakes import Usage as UsageStep

REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}], tools=())


def chunk(delta: dict, finish: str | None = None) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": None,
        }
    )


@pytest.fixture
async def client(fake_openai_server):
    fake_openai_server.reset()
    async with httpx.AsyncClient(transport=StreamingTransport(limits=httpx.Limits())) as http:
        endpoint = Endpoint(name="t", base_url=fake_openai_server.base_url, api_key="k", model="m")
        yield OpenAIChatClient(endpoint=endpoint, http=http, timeouts=Timeouts(first_token=2, idle=1))


async def events_for(client, fake, *steps) -> list:
    fake.enqueue(Script(Headers(), *steps))
    return [event async for event in client.stream(REQUEST)]


@pytest.mark.parametrize("separator", ["\n\n", "\r\n\r\n", "\r\r"], ids=["lf", "crlf", "cr"])
async def test_every_event_separator(client, fake_openai_server, separator):
    eol = separator[: len(separator) // 2]
    body = (
        f": keep-alive{eol}{eol}"
        f"data: {chunk({'role': 'assistant', 'content': 'Hi'})}{separator}"
        f"data: {chunk({'content': ' there'}, 'stop')}{separator}"
        f"data: [DONE]{separator}"
    )
    events = await events_for(client, fake_openai_server, Raw(body.encode()))
    assert events == [TextDelta("Hi"), TextDelta(" there"), Finish("stop")]


async def test_events_cut_anywhere_between_reads(client, fake_openai_server):
    """The body comes a network read at a time, and a read can end anywhere: inside a line, between
    a CR and its LF, inside a character of several bytes."""
    first = json.dumps({"choices": [{"index": 0, "delta": {"content": "Grüße 👟"}}]}, ensure_ascii=False)
    body = f"data: {first}\r\n\r\ndata: {chunk({}, 'stop')}\r\n\r\ndata: [DONE]\r\n\r\n".encode()
    shoe = body.index("👟".encode())
    cuts = [3, shoe + 1, shoe + 3, body.index(b"\r\n") + 1, body.index(b"[DONE]") + 2, len(body) - 1]
    pieces = [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    # A pause after each piece, so each arrives in a read of its own.
    events = await events_for(client, fake_openai_server, *(step for p in pieces for step in (Raw(p), Delay(0.02))))
    assert events == [TextDelta("Grüße 👟"), Finish("stop")]


async def test_a_line_separator_inside_the_json_is_text_and_a_byte_order_mark_is_dropped(client, fake_openai_server):
    """U+2028 may stand raw inside a JSON string; only CR and LF end an SSE line."""
    first = json.dumps({"choices": [{"index": 0, "delta": {"content": "a\u2028b\x85c"}}]}, ensure_ascii=False)
    body = f"\ufeffdata: {first}\n\ndata: {chunk({}, 'stop')}\n\ndata: [DONE]\n\n".encode()
    events = await events_for(client, fake_openai_server, Raw(body))
    assert events == [TextDelta("a\u2028b\x85c"), Finish("stop")]


async def test_multi_line_data_is_joined_and_event_id_retry_fields_are_tolerated(client, fake_openai_server):
    first, second = chunk({"content": "joined"}).split(', "choices"')
    body = (
        "event: message\nid: 1\nretry: 3000\n"
        f'data: {first},\ndata: "choices"{second}\n\n'
        ": PROCESSING\n\n"
        f"id: 2\ndata: {chunk({}, 'stop')}\n\n"
        "data: [DONE]\n\n"
    )
    events = await events_for(client, fake_openai_server, Raw(body.encode()))
    assert events == [TextDelta("joined"), Finish("stop")]


async def test_parallel_tool_calls_interleaved_are_assembled_by_index(client, fake_openai_server):
    events = await events_for(
        client,
        fake_openai_server,
        ToolCallDelta(0, id="call_a", name="stock_lookup", arguments=""),
        ToolCallDelta(1, id="call_b", name="order_status", arguments=""),
        ToolCallDelta(0, arguments='{"sku": '),
        ToolCallDelta(1, arguments='{"order": '),
        ToolCallDelta(0, arguments='"NP-1"}'),
        ToolCallDelta(1, arguments='"1001"}'),
        FinishStep("tool_calls"),
        Done(),
    )
    assert events == [
        ToolCalls(
            (
                ToolCall(id="call_a", name="stock_lookup", arguments='{"sku": "NP-1"}'),
                ToolCall(id="call_b", name="order_status", arguments='{"order": "1001"}'),
            )
        ),
        Finish("tool_calls"),
    ]


async def test_usage_chunk_with_cached_and_reasoning_tokens(client, fake_openai_server):
    fake_openai_server.enqueue(
        Script.stream(
            "ok", usage=UsageStep(prompt_tokens=100, completion_tokens=30, cached_tokens=64, reasoning_tokens=12)
        )
    )
    events = [event async for event in client.stream(REQUEST)]
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        100,
        64,
        30,
        12,
    )
    assert fake_openai_server.last_request.json["stream_options"] == {"include_usage": True}


async def test_an_error_event_named_by_the_event_field(client, fake_openai_server):
    body = f'data: {chunk({"content": "Hal"})}\n\nevent: error\ndata: {{"message": "overloaded"}}\n\n'
    fake_openai_server.enqueue(Script(Headers(), Raw(body.encode())))
    seen = []
    with pytest.raises(UpstreamStreamError, match="overloaded"):
        async for event in client.stream(REQUEST):
            seen.append(event)
    assert seen == [TextDelta("Hal")]


async def test_idle_timeout_after_the_first_token_is_a_stream_error(client, fake_openai_server):
    fake_openai_server.enqueue(Script.hang("Partial", timeout=3))
    seen = []
    with pytest.raises(UpstreamStreamError, match="timed out"):
        async for event in client.stream(REQUEST):
            seen.append(event)
    assert seen == [TextDelta("Partial")]
