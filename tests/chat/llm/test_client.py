"""The streaming client against a real loopback server speaking the OpenAI wire format."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from chat.errors import UpstreamStreamError, UpstreamUnavailable
from chat.llm.client import AttemptError, OpenAIChatClient, Timeouts
from chat.llm.endpoints import Endpoint
from chat.llm.transport import StreamingTransport
from chat.llm.types import ChatRequest, Finish, ReasoningDelta, RefusalDelta, TextDelta, Usage
from tests.fakes import Comment, Delay, Done, Headers, Refusal, Script, Text
from tests.fakes import Finish as FinishStep
from tests.fakes import Usage as UsageStep

REQUEST = ChatRequest(messages=[{"role": "user", "content": "hi"}], user_text="hi")
SECRET = "sk-secret-value-that-must-not-leak"


@pytest.fixture
async def client(fake_openai_server):
    fake_openai_server.reset()
    async with httpx.AsyncClient(transport=StreamingTransport(limits=httpx.Limits())) as http:
        yield OpenAIChatClient(
            endpoint=Endpoint(
                name="test",
                base_url=fake_openai_server.base_url,
                api_key=SECRET,
                model="gpt-5.2-chat-latest",
                extra={"max_completion_tokens": 300},
            ),
            http=http,
            timeouts=Timeouts(first_token=1.0, idle=0.5),
        )


async def collect(client) -> list:
    return [event async for event in client.stream(REQUEST)]


async def test_text_finish_and_usage_are_parsed(client, fake_openai_server):
    fake_openai_server.enqueue(Script.stream(["Hel", "lo"], usage=UsageStep(prompt_tokens=9, completion_tokens=2)))
    events = await collect(client)
    assert events[:3] == [TextDelta("Hel"), TextDelta("lo"), Finish("stop")]
    usage = events[3]
    assert isinstance(usage, Usage)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 2, 11)
    body = fake_openai_server.last_request.json
    assert body["model"] == "gpt-5.2-chat-latest" and body["max_completion_tokens"] == 300
    assert body["messages"] == REQUEST.messages


async def test_comments_crlf_reasoning_and_refusal(client, fake_openai_server):
    fake_openai_server.enqueue(
        Script(
            Headers(),
            Comment("PROCESSING"),
            Refusal("I can't help with that."),
            Text("ok"),
            FinishStep("stop"),
            Done(),
            crlf=True,
        ),
        Script.stream("Answer", reasoning="thinking", comment="keep-alive"),
    )
    assert await collect(client) == [RefusalDelta("I can't help with that."), TextDelta("ok"), Finish("stop")]
    events = await collect(client)
    assert ReasoningDelta("thinking") in events and TextDelta("Answer") in events


async def test_error_status_is_unavailable_and_never_carries_the_key(client, fake_openai_server):
    fake_openai_server.enqueue(Script.http_error(503, message="overloaded"))
    with pytest.raises(AttemptError) as caught:
        await collect(client)
    assert caught.value.retryable and caught.value.status == 503
    assert "HTTP 503" in caught.value.detail and "overloaded" in caught.value.detail
    assert SECRET not in caught.value.detail and SECRET not in repr(client._endpoint)
    assert fake_openai_server.last_request.headers["authorization"] == f"Bearer {SECRET}"


async def test_mid_stream_error_event_after_text(client, fake_openai_server):
    fake_openai_server.enqueue(Script.mid_stream_error("Partial", message="server exploded"))
    events = []
    with pytest.raises(UpstreamStreamError) as caught:
        async for event in client.stream(REQUEST):
            events.append(event)
    assert events == [TextDelta("Partial")] and "server exploded" in caught.value.detail


async def test_a_stream_without_done_is_an_error(client, fake_openai_server):
    fake_openai_server.enqueue(Script.cut("Half"))
    with pytest.raises(UpstreamStreamError):
        await collect(client)


async def test_no_first_byte_times_out_as_unavailable(client, fake_openai_server):
    fake_openai_server.enqueue(Script.hang(before_headers=True, timeout=3))
    with pytest.raises(UpstreamUnavailable, match="timed out"):
        await collect(client)


async def test_closing_the_stream_early_closes_the_upstream_connection(client, fake_openai_server):
    fake_openai_server.enqueue(Script.stream_forever(rate=50))
    stream = client.stream(REQUEST)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()
    request = fake_openai_server.last_request
    await asyncio.to_thread(request.done.wait, 2)
    assert request.client_disconnected


async def test_a_streamed_reply_leaves_its_connection_for_the_next_request(client, fake_openai_server):
    # Read to the body's end after [DONE]: the transport keeps only a connection whose response ended.
    fake_openai_server.enqueue(Script.stream("one"), Script.stream("two"))
    assert TextDelta("one") in await collect(client)
    assert TextDelta("two") in await collect(client)
    first, second = fake_openai_server.requests
    assert first.client_port == second.client_port


async def test_a_body_that_goes_on_after_done_is_neither_read_nor_waited_for(client, fake_openai_server):
    fake_openai_server.enqueue(Script.stream("answer").then(Text(" and more"), Delay(2.0)), Script.stream("next"))
    started = asyncio.get_running_loop().time()
    events = await collect(client)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("answer")]
    # That connection was not kept: the next request has a new one.
    assert TextDelta("next") in await collect(client)
    first, second = fake_openai_server.requests
    assert first.client_port != second.client_port


async def test_connection_refused_is_unavailable():
    async with httpx.AsyncClient(transport=StreamingTransport(limits=httpx.Limits())) as http:
        client = OpenAIChatClient(
            endpoint=Endpoint(name="nowhere", base_url="http://127.0.0.1:9/v1", api_key="", model="m"),
            http=http,
            timeouts=Timeouts(first_token=1.0, idle=1.0),
        )
        with pytest.raises(UpstreamUnavailable, match="ConnectError"):
            await collect(client)


async def test_headers_then_silence_times_out_as_unavailable(client, fake_openai_server):
    fake_openai_server.enqueue(Script.hang(timeout=3))
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamUnavailable, match="first token"):
        await collect(client)
    assert asyncio.get_running_loop().time() - started < 2.5


async def test_a_slow_but_steady_stream_is_not_timed_out(client, fake_openai_server):
    # Chunks 0.3 s apart for 1.5 s: each wait is under the 0.5 s idle limit, the whole is not.
    fake_openai_server.enqueue(Script.stream(["a", "b", "c", "d", "e"], delay=0.3))
    events = await collect(client)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "abcde"


async def test_a_caller_that_takes_long_between_chunks_is_not_timed_out(client, fake_openai_server):
    # The time the caller spends with a chunk is not the model's silence.
    fake_openai_server.enqueue(Script.stream(["a", "b", "c"]))
    text = ""
    async for event in client.stream(REQUEST):
        if isinstance(event, TextDelta):
            text += event.text
            await asyncio.sleep(0.7)
    assert text == "abc"


async def test_cancelling_the_reader_is_a_cancellation_not_a_timeout(client, fake_openai_server):
    fake_openai_server.enqueue(Script.stream_forever(rate=50))
    first = asyncio.Event()

    async def read() -> None:
        async for _event in client.stream(REQUEST):
            first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
