"""The one client that talks to an OpenAI-compatible chat-completions endpoint.

It alone knows the wire format: the request body, SSE framing (via httpx-sse), chunk deltas,
the usage chunk, error bodies and mid-stream error events. Callers get StreamEvent values and
two kinds of failure: UpstreamUnavailable (nothing was streamed) and UpstreamStreamError (the
stream broke after it started).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from httpx_sse import EventSource, ServerSentEvent

from chat.errors import UpstreamStreamError, UpstreamUnavailable
from chat.llm.types import ChatRequest, Finish, ReasoningDelta, RefusalDelta, StreamEvent, TextDelta, Usage

logger = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 8192


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str
    model: str

    def __repr__(self) -> str:  # the key must never end up in a log line
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r})"


@dataclass(frozen=True)
class Timeouts:
    first_token: float
    idle: float


class OpenAIChatClient:
    def __init__(
        self, *, endpoint: Endpoint, http: httpx.AsyncClient, timeouts: Timeouts, max_completion_tokens: int = 0
    ) -> None:
        self._endpoint = endpoint
        self._http = http
        self._timeouts = timeouts
        self._max_completion_tokens = max_completion_tokens

    @property
    def model(self) -> str:
        return self._endpoint.model

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self._endpoint.model,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self._max_completion_tokens:
            payload["max_completion_tokens"] = self._max_completion_tokens
        return payload

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self._endpoint.api_key:
            headers["Authorization"] = f"Bearer {self._endpoint.api_key}"
        return headers

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        url = f"{self._endpoint.base_url}/chat/completions"
        started = False  # has anything reached the caller?
        try:
            async with asyncio.timeout(self._timeouts.first_token):
                response = await self._http.send(
                    self._http.build_request("POST", url, json=self._payload(request), headers=self._headers()),
                    stream=True,
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
        except UpstreamUnavailable:
            raise
        except UpstreamStreamError as exc:
            if started:
                raise
            # Broken before anything reached the shopper: to them, the model was unavailable.
            raise UpstreamUnavailable(detail=exc.detail) from None
        except TimeoutError:
            kind = UpstreamStreamError if started else UpstreamUnavailable
            raise kind(detail="timed out waiting for the model") from None
        except httpx.HTTPError as exc:
            kind = UpstreamStreamError if started else UpstreamUnavailable
            raise kind(detail=f"{type(exc).__name__}: {exc}") from None

    async def _sse_events(self, response: httpx.Response) -> AsyncIterator[StreamEvent]:
        events = EventSource(response).aiter_sse()
        timeout = self._timeouts.first_token
        saw_done = False
        while True:
            try:
                async with asyncio.timeout(timeout):
                    sse: ServerSentEvent = await anext(events)
            except StopAsyncIteration:
                break
            if sse.data == "[DONE]":
                saw_done = True
                break
            if not sse.data:
                continue
            try:
                chunk = msgspec.json.decode(sse.data)
            except msgspec.DecodeError:
                raise UpstreamStreamError(detail=f"unreadable stream data: {sse.data[:200]!r}") from None
            if not isinstance(chunk, dict):
                raise UpstreamStreamError(detail=f"unexpected stream data: {sse.data[:200]!r}")
            if "error" in chunk:
                raise UpstreamStreamError(detail=f"error event: {_error_text(chunk)}")
            for event in _chunk_events(chunk):
                # After the first real event, silence between chunks is judged by the idle timeout.
                timeout = self._timeouts.idle
                yield event
        if not saw_done:
            raise UpstreamStreamError(detail="the stream ended without [DONE]")


def _chunk_events(chunk: dict[str, Any]) -> Iterator[StreamEvent]:
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
        if reason := choice.get("finish_reason"):
            yield Finish(reason)
    if usage := chunk.get("usage"):
        yield _usage(usage)


def _completion_events(body: dict[str, Any]) -> Iterator[StreamEvent]:
    if "error" in body:
        raise UpstreamUnavailable(detail=f"error body: {_error_text(body)}")
    for choice in body.get("choices") or ():
        if choice.get("index", 0) != 0:
            continue
        message = choice.get("message") or {}
        if content := message.get("content"):
            yield TextDelta(content)
        if refusal := message.get("refusal"):
            yield RefusalDelta(refusal)
        yield Finish(choice.get("finish_reason") or "stop")
    if usage := body.get("usage"):
        yield _usage(usage)


def _usage(raw: dict[str, Any]) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    completion = int(raw.get("completion_tokens") or 0)
    return Usage(prompt, completion, int(raw.get("total_tokens") or prompt + completion), raw)


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
        raise UpstreamUnavailable(detail=f"unreadable response body: {raw[:200]!r}") from None
    if not isinstance(body, dict):
        raise UpstreamUnavailable(detail="unexpected response body")
    return body


async def _status_error(response: httpx.Response) -> UpstreamUnavailable:
    raw = await _read_limited(response)
    try:
        text = _error_text(msgspec.json.decode(raw))
    except msgspec.DecodeError:
        text = raw[:300].decode(errors="replace")
    logger.warning("model endpoint answered HTTP %s: %s", response.status_code, text)
    return UpstreamUnavailable(detail=f"HTTP {response.status_code}: {text}")


def _error_text(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:500]
    return str(error or body)[:500]
