"""Tests of the fake OpenAI server itself, over a real loopback socket with httpx / httpx_sse."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.fakes import (
    Comment,
    Done,
    Exchange,
    FakeOpenAI,
    Finish,
    Headers,
    Reasoning,
    Refusal,
    Script,
    Text,
    ToolCall,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, headers={"Authorization": "Bearer sk-test"}, timeout=5) as c:
        yield c


def payload(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "stream": True, "messages": [{"role": "user", "content": "hi"}], **extra}


def sse_data(client: httpx.Client, **extra: Any) -> list[str]:
    with connect_sse(client, "POST", "/chat/completions", json=payload(**extra)) as source:
        assert source.response.status_code == 200
        return [event.data for event in source.iter_sse()]


def chunks(events: list[str]) -> list[dict[str, Any]]:
    return [json.loads(e) for e in events if e != "[DONE]"]


def text_of(events: list[str]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks(events) if c["choices"])


def test_stream_text_in_order_with_role_first_and_done_last(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.stream("Hello world", chunk_size=3, delay=0.01))
    events = sse_data(client)
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    parsed = chunks(events)
    assert {c["object"] for c in parsed} == {"chat.completion.chunk"}
    assert {c["model"] for c in parsed} == {"gpt-test"}
    assert len({c["id"] for c in parsed}) == 1 and parsed[0]["id"].startswith("chatcmpl-")
    assert all(isinstance(c["created"], int) and c["usage"] is None for c in parsed)
    deltas = [c["choices"][0]["delta"] for c in parsed]
    assert deltas[0]["role"] == "assistant" and all("role" not in d for d in deltas[1:])
    assert [d.get("content") for d in deltas[:-1]] == ["Hel", "lo ", "wor", "ld"]
    assert [c["choices"][0]["finish_reason"] for c in parsed] == [None] * 4 + ["stop"]


def test_usage_chunk_only_when_requested(fake: FakeOpenAI, client: httpx.Client) -> None:
    events = sse_data(client, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    *content, usage_chunk = chunks(events)
    assert usage_chunk["choices"] == [] and all(c["usage"] is None for c in content)
    usage = usage_chunk["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert all(c["choices"] for c in chunks(sse_data(client)))  # not requested: no usage chunk


def test_fifo_queue_then_configurable_default(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script(Text("one")), Script(Text("two")))
    texts = [text_of(sse_data(client)) for _ in range(3)]
    assert texts == ["one", "two", "Hello from the fake model."]
    fake.default = Script.completion("changed")
    body = client.post("/chat/completions", json=payload()).json()
    assert body["choices"][0]["message"]["content"] == "changed"


def test_429_with_retry_after_and_json_error(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.http_error(429, retry_after=2, retry_after_ms=1500, should_retry=True))
    fake.enqueue(Script.http_error(503))
    r = client.post("/chat/completions", json=payload())
    assert r.status_code == 429 and r.headers["content-type"] == "application/json"
    assert r.headers["retry-after"] == "2" and r.headers["retry-after-ms"] == "1500"
    assert r.headers["x-should-retry"] == "true"
    assert r.json()["error"] | {"message": ""} == {
        "message": "",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    r = client.post("/chat/completions", json=payload())
    assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"


def test_mid_stream_error_event(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.mid_stream_error("Partial answer", message="boom", code="overloaded"))
    events = sse_data(client)
    assert "[DONE]" not in events
    *content, error = [json.loads(e) for e in events]
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == "Partial answer"
    assert error["error"] == {"message": "boom", "type": "server_error", "param": None, "code": "overloaded"}


@pytest.mark.parametrize("reset", [False, True])
def test_cut_connection_raises_on_client(fake: FakeOpenAI, client: httpx.Client, reset: bool) -> None:
    fake.enqueue(Script.cut("Partial answer", reset=reset))
    with pytest.raises(httpx.TransportError):
        sse_data(client)
    req = fake.last_request.wait()
    assert req.completed and not req.client_disconnected


def test_client_disconnect_during_long_stream_is_detected(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.stream_forever(rate=50))
    with connect_sse(client, "POST", "/chat/completions", json=payload()) as source:
        for i, _ in enumerate(source.iter_sse()):
            if i == 2:
                break
    closed_at = time.monotonic()
    req = fake.last_request.wait(1.0)
    assert req.client_disconnected and not req.completed
    assert req.finished_at is not None and req.finished_at - closed_at < 1.0


@pytest.mark.parametrize("before_headers", [False, True])
def test_hang_until_client_gives_up(fake: FakeOpenAI, client: httpx.Client, before_headers: bool) -> None:
    fake.enqueue(Script.hang("Thinking", before_headers=before_headers))
    request = client.build_request("POST", "/chat/completions", json=payload(), timeout=0.2)
    with pytest.raises(httpx.ReadTimeout):
        client.send(request, stream=True).read()
    req = fake.last_request.wait(1.0)
    assert req.client_disconnected and not req.completed


def test_slow_first_byte_then_slow_first_chunk(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.stream("hi", headers_delay=0.15, first_chunk_delay=0.1))
    start = time.monotonic()
    with connect_sse(client, "POST", "/chat/completions", json=payload()) as source:
        assert time.monotonic() - start >= 0.15
        next(source.iter_sse())
        assert time.monotonic() - start >= 0.25


def test_non_stream_json_body_although_stream_requested(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.completion("Plain answer", finish_reason="length"))
    r = client.post("/chat/completions", json=payload())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-test"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Plain answer", "refusal": None}
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["total_tokens"] > 0


def test_tool_call_fragments(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(
        Script.tool_calls(
            ToolCall("lookup_order", {"order_id": "A-1"}, id="call_1"), ToolCall("ping"), arg_chunk_size=4
        )
    )
    parsed = chunks(sse_data(client))
    calls: dict[int, dict[str, Any]] = {}
    for c in parsed:
        for frag in c["choices"][0]["delta"].get("tool_calls", []):
            call = calls.setdefault(frag["index"], {"arguments": "", "fragments": 0})
            call.update({k: frag[k] for k in ("id", "type") if k in frag})
            call["name"] = frag.get("function", {}).get("name", call.get("name"))
            call["arguments"] += frag.get("function", {}).get("arguments", "")
            call["fragments"] += 1
    assert (calls[0]["id"], calls[0]["type"], calls[0]["name"]) == ("call_1", "function", "lookup_order")
    assert json.loads(calls[0]["arguments"]) == {"order_id": "A-1"} and calls[0]["fragments"] > 2
    assert calls[1]["name"] == "ping" and calls[1]["id"].startswith("call_")
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_comments_crlf_reasoning_refusal(fake: FakeOpenAI, client: httpx.Client) -> None:
    script = Script(
        Headers(),
        Comment("keep-alive"),
        Reasoning("Let me think."),
        Comment("PROCESSING"),
        Refusal("I can't help with that."),
        Finish("content_filter"),
        Done(),
        crlf=True,
    )
    fake.enqueue(script, script)
    raw = client.post("/chat/completions", json=payload()).content
    assert raw.startswith(b": keep-alive\r\n\r\ndata: {") and raw.endswith(b"data: [DONE]\r\n\r\n")
    assert b"\n\n" not in raw.replace(b"\r\n", b"")
    events = sse_data(client)
    deltas = [c["choices"][0]["delta"] for c in chunks(events)]
    assert deltas[0] == {"role": "assistant", "reasoning_content": "Let me think."}
    assert deltas[1] == {"refusal": "I can't help with that."}
    assert chunks(events)[-1]["choices"][0]["finish_reason"] == "content_filter" and events[-1] == "[DONE]"


def test_garbage_bytes(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.enqueue(Script.garbage(b"\x00\xff{not json\n\n"))
    r = client.post("/chat/completions", json=payload())
    assert r.status_code == 200 and r.content == b"\x00\xff{not json\n\n"


def test_requests_recorded_with_body_and_authorization(fake: FakeOpenAI, client: httpx.Client) -> None:
    before = time.monotonic()
    sse_data(client, temperature=0.2)
    (req,) = fake.wait_for_requests(1)
    assert req.wait() is fake.last_request and req.done.is_set()
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == req.headers["Authorization"] == "Bearer sk-test"
    assert req.body == payload(temperature=0.2) and req.json["temperature"] == 0.2
    assert before <= req.received_at <= time.monotonic() and req.completed and not req.client_disconnected
    fake.enqueue(Script.stream())
    fake.reset()
    assert fake.requests == [] and fake.pending == 0


def test_unknown_path_is_404_json(fake: FakeOpenAI, client: httpx.Client) -> None:
    r = client.get("/models")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"


@dataclass(frozen=True)
class WaitFor:
    """A custom step: keep the response open until ``event`` is set."""

    event: threading.Event

    def run(self, ex: Exchange) -> None:
        while not self.event.is_set():
            ex.pause(0.01)


def test_many_concurrent_requests(fake: FakeOpenAI) -> None:
    release = threading.Event()
    fake.default = Script(Headers(), Text("a "), WaitFor(release), *Script.stream("b c d e").steps[1:])
    results: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=fake.base_url) as c:
            results.append(text_of(sse_data(c)))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    in_flight = fake.wait_for_requests(20)
    assert not any(r.done.is_set() for r in in_flight)  # all 20 are being answered at once
    release.set()
    for t in threads:
        t.join(5)
    assert results == ["a b c d e"] * 20 and all(r.wait().completed for r in in_flight)


def test_stop_does_not_hang_while_a_handler_hangs() -> None:
    server = FakeOpenAI(Script.hang(before_headers=True)).start()
    errors: list[Exception] = []

    def call() -> None:
        try:
            httpx.post(f"{server.base_url}/chat/completions", json=payload(), timeout=5)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    (req,) = server.wait_for_requests(1)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.0 and req.done.is_set() and not req.completed
    thread.join(2)
    assert len(errors) == 1


def test_cli_prints_base_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--script", "default"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with httpx.Client(base_url=base_url) as c:
            assert text_of(sse_data(c)) == "Hello from the fake model."
    finally:
        proc.terminate()
        assert proc.wait(5) == 0


def transcription_post(client: httpx.Client, data: bytes = b"ID3 not really an mp3") -> httpx.Response:
    files = {"file": ("voice-note.mp3", data, "audio/mpeg")}
    return client.post("/audio/transcriptions", files=files, data={"model": "whisper-1"})


def test_transcriptions_have_their_own_queue_and_record_the_multipart_fields(
    fake: FakeOpenAI, client: httpx.Client
) -> None:
    audio = bytes(range(256)) * 64 + b"\r\n--boundary-lookalike\r\n\n\r"
    fake.enqueue(Script.completion("for the chat"))
    fake.enqueue_transcription(Script.http_error(429, retry_after=1), Script.transcription("blue shirt"))
    first = transcription_post(client, audio)
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert transcription_post(client).json() == {"text": "blue shirt"}
    assert transcription_post(client).json() == {"text": "Hello from the fake transcriber."}  # the default
    assert fake.pending == 1  # the chat script was not taken
    req = fake.requests[0].wait()
    assert (req.method, req.path, req.body) == ("POST", "/v1/audio/transcriptions", None)
    assert req.headers["authorization"] == "Bearer sk-test" and req.form == {"model": "whisper-1"}
    upload = req.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == ("voice-note.mp3", "audio/mpeg", audio)
    fake.enqueue_transcription(Script.transcription())
    fake.reset()
    assert transcription_post(client).json() == {"text": "Hello from the fake transcriber."}


def test_a_transcription_without_file_or_model_is_400(fake: FakeOpenAI, client: httpx.Client) -> None:
    assert client.post("/audio/transcriptions", data={"model": "whisper-1"}).status_code == 400
    no_model = client.post("/audio/transcriptions", files={"file": ("a.mp3", b"x", "audio/mpeg")})
    assert no_model.status_code == 400 and "model" in no_model.json()["error"]["message"]
