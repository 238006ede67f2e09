"""One request to one OpenAI-compatible chat-completions endpoint: the wire format.

This module alone knows the request body, SSE framing (chat/llm/sse.py: `data:` lines joined,
comments, every line ending, `event:` fields), chunk deltas, tool-call
fragments, the usage chunk, error bodies and mid-stream error events. Callers get StreamEvent
values and two kinds of failure: AttemptError (nothing was streamed; says whether a retry may
help) and UpstreamStreamError (the stream broke after it started). Retries and failover live in
chat/llm/router.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from chat.errors import UpstreamStreamError, UpstreamUnavailable
from chat.llm.content import content_for_endpoint
from chat.llm.endpoints import Endpoint, request_params
from chat.llm.retry import status_is_retryable
from chat.llm.sse import SSEDecoder
from chat.llm.tools import ToolCallAssembler
from chat.llm.types import (
    ChatRequest,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    StreamEvent,
    TextDelta,
    ToolCalls,
    Usage,
)

logger = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 8192
_json_decode = msgspec.json.Decoder().decode
# After `[DONE]`, how long the rest of the body (normally just the chunked encoding's end, sent
# with it) may take: a body read to its end is what lets the transport keep the connection for the
# next turn; one that does not end by then is closed instead, as before.
_AFTER_DONE_SECONDS = 0.1


class AttemptError(UpstreamUnavailable):
    """A request that failed before streaming anything."""

    def __init__(
        self, *, detail: str, retryable: bool, status: int | None = None, headers: Mapping[str, str] | None = None
    ):
        super().__init__(detail=detail)
        self.retryable = retryable
        self.status = status
        self.headers = dict(headers or {})


class _ChunkTimer:
    """Times each wait for the next chunk, like `asyncio.timeout(limit)` around it, with one
    timer per stream instead of one per chunk (a heap entry made and cancelled per token per chat
    was ~4 % of the app's CPU at 500 chats, bench/chat_load.py).

    The timer is moved lazily: when it fires early (chunks kept coming) it is set again for the
    current deadline. It cancels the task only while it waits in `next` — a callback runs only
    while the task is suspended, so the cancellation lands in that wait (never in the caller's
    code between two chunks) and is turned into TimeoutError there, as asyncio.timeout does,
    unless someone else cancelled the task too.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._deadline = 0.0
        self._waiting = False
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None

    async def next(self, reads: AsyncIterator[bytes], limit: float) -> bytes:
        self._deadline = self._loop.time() + limit
        if self._handle is None or self._handle.when() > self._deadline:  # none, or for a longer limit
            self.stop()
            self._handle = self._loop.call_at(self._deadline, self._check)
        self._waiting = True
        try:
            return await anext(reads)
        except asyncio.CancelledError:
            if self._expired and self._task is not None and self._task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self._waiting = False

    def _check(self) -> None:
        self._handle = None
        if not self._waiting:
            return  # the caller has the chunk; `next` sets the timer again
        if self._loop.time() < self._deadline:
            self._handle = self._loop.call_at(self._deadline, self._check)
        elif self._task is not None:
            self._expired = True
            self._task.cancel()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


@dataclass(frozen=True)
class Timeouts:
    first_token: float
    idle: float


class OpenAIChatClient:
    def __init__(self, *, endpoint: Endpoint, http: httpx.AsyncClient, timeouts: Timeouts) -> None:
        self._endpoint = endpoint
        self._http = http
        self._timeouts = timeouts

    @property
    def model(self) -> str:
        return self._endpoint.model

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        endpoint = self._endpoint
        payload: dict[str, Any] = {
            "model": endpoint.model,
            "messages": content_for_endpoint(request.messages, endpoint.capabilities),
            "stream": True,
            "stream_options": {"include_usage": True},
            **request_params(endpoint),
        }
        if request.tools and endpoint.capabilities.tools:
            payload["tools"] = list(request.tools)
            if request.tool_choice:
                payload["tool_choice"] = request.tool_choice
            if request.parallel_tool_calls is not None:
                payload["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format:
            payload["response_format"] = request.response_format
        if request.cache_key and endpoint.send_prompt_cache_key:
            payload["prompt_cache_key"] = request.cache_key
        return payload

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self._endpoint.api_key:
            headers["Authorization"] = f"Bearer {self._endpoint.api_key}"
        return headers

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        url = f"{self._endpoint.base_url}/chat/completions"
        started = False  # has anything reached the caller?
        try:
            async with asyncio.timeout(self._timeouts.first_token):
                # The body encoded by msgspec, not by httpx's json.dumps: the request of a turn with
                # history and catalog facts is its largest piece of JSON (docs/benchmarks.md).
                body = msgspec.json.encode(self._payload(request))
                response = await self._http.send(
                    self._http.build_request("POST", url, content=body, headers=self._headers()), stream=True
                )
            try:
                if response.status_code >= 400:
                    raise await _status_error(response)
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    # Some gateways ignore `stream: true` and answer with one JSON body.
                    for event in _completion_events(await _read_json(response)):
                        started = True
                        yield event
                    return
                async for event in self._sse_events(response):
                    started = True
                    yield event
            finally:
                await response.aclose()
        except AttemptError:
            raise
        except UpstreamStreamError as exc:
            if started:
                raise
            # Broken before anything reached the shopper: a retry cannot duplicate text.
            raise AttemptError(detail=exc.detail, retryable=True) from None
        except TimeoutError:
            if started:
                raise UpstreamStreamError(detail="timed out waiting for the model") from None
            raise AttemptError(detail="timed out waiting for the first token", retryable=True) from None
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if started:
                raise UpstreamStreamError(detail=detail) from None
            raise AttemptError(detail=detail, retryable=True) from None

    async def _sse_events(self, response: httpx.Response) -> AsyncIterator[StreamEvent]:
        # One network read at a time, and every event it completed before the next: under load a
        # read brings a chunk or a few, and what a read costs counts more than what a byte does.
        reads = response.aiter_bytes()
        sse = SSEDecoder()
        timer = _ChunkTimer()
        timeout = self._timeouts.first_token
        tool_calls = ToolCallAssembler()
        loop = asyncio.get_running_loop()
        drain_until: float | None = None  # [DONE] came: the rest of the body may take until then
        try:
            while True:
                try:
                    data = await timer.next(reads, timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if drain_until is not None:
                        break  # the body goes on after [DONE]: its connection is closed, not kept
                    raise
                if drain_until is not None:
                    # Nothing after [DONE] belongs to the reply; read on only to the body's end.
                    timeout = drain_until - loop.time()
                    if timeout <= 0:
                        break
                    continue
                for event in sse.feed(data):
                    if event.data == b"[DONE]":
                        drain_until = loop.time() + _AFTER_DONE_SECONDS
                        timeout = _AFTER_DONE_SECONDS
                        break
                    if not event.data:
                        continue
                    try:
                        chunk = _json_decode(event.data)
                    except msgspec.DecodeError:
                        raise UpstreamStreamError(detail=f"unreadable stream data: {_text(event.data)}") from None
                    if not isinstance(chunk, dict):
                        raise UpstreamStreamError(detail=f"unexpected stream data: {_text(event.data)}")
                    if "error" in chunk or event.event == b"error":
                        raise UpstreamStreamError(detail=f"error event: {_error_text(chunk)}")
                    for stream_event in _chunk_events(chunk, tool_calls):
                        # After the first real event, silence between reads is judged by the idle timeout.
                        timeout = self._timeouts.idle
                        yield stream_event
        finally:
            timer.stop()
        if drain_until is None:
            raise UpstreamStreamError(detail="the stream ended without [DONE]")
        if tool_calls:  # a server that never sent finish_reason "tool_calls"
            yield ToolCalls(tool_calls.take())


def _text(data: bytes) -> str:
    """The start of a stream's data, for an error message."""
    return repr(data[:200].decode(errors="replace"))


def _chunk_events(chunk: dict[str, Any], tool_calls: ToolCallAssembler) -> Iterator[StreamEvent]:
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        if content := delta.get("content"):
            yield TextDelta(content)
        if refusal := delta.get("refusal"):
            yield RefusalDelta(refusal)
        if reasoning := delta.get("reasoning_content") or delta.get("reasoning"):
            yield ReasoningDelta(reasoning)
        if fragments := delta.get("tool_calls"):
            tool_calls.add(fragments)
        if reason := choice.get("finish_reason"):
            if tool_calls:
                yield ToolCalls(tool_calls.take())
            yield Finish(reason)
    if usage := chunk.get("usage"):
        yield _usage(usage)


def _completion_events(body: dict[str, Any]) -> Iterator[StreamEvent]:
    if "error" in body:
        raise AttemptError(detail=f"error body: {_error_text(body)}", retryable=False)
    for choice in body.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        message = choice.get("message") or {}
        if content := message.get("content"):
            yield TextDelta(content)
        if refusal := message.get("refusal"):
            yield RefusalDelta(refusal)
        if message.get("tool_calls"):
            assembler = ToolCallAssembler()
            assembler.add({"index": i, **call} for i, call in enumerate(message["tool_calls"]))
            yield ToolCalls(assembler.take())
        yield Finish(choice.get("finish_reason") or "stop")
    if usage := body.get("usage"):
        yield _usage(usage)


def _usage(raw: dict[str, Any]) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(raw.get("total_tokens") or prompt + completion),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


async def _read_limited(response: httpx.Response) -> bytes:
    body = b""
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) >= _ERROR_BODY_LIMIT:
            break
    return body[:_ERROR_BODY_LIMIT]


async def _read_json(response: httpx.Response) -> dict[str, Any]:
    raw = await response.aread()
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise AttemptError(detail=f"unreadable response body: {raw[:200]!r}", retryable=True) from None
    if not isinstance(body, dict):
        raise AttemptError(detail="unexpected response body", retryable=True)
    return body


async def _status_error(response: httpx.Response) -> AttemptError:
    raw = await _read_limited(response)
    try:
        text = _error_text(msgspec.json.decode(raw))
    except msgspec.DecodeError:
        text = raw[:300].decode(errors="replace")
    status = response.status_code
    logger.warning("model endpoint answered HTTP %s: %s", status, text)
    return AttemptError(
        detail=f"HTTP {status}: {text}",
        retryable=status_is_retryable(status, response.headers),
        status=status,
        headers={
            name: response.headers[name] for name in ("retry-after", "retry-after-ms") if name in response.headers
        },
    )


def _error_text(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:500]
    return str(error or body)[:500]
