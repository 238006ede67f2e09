"""Test doubles. ``tests.fakes`` holds the script language of the fake OpenAI server.

The server itself lives in :mod:`tests.fakes.openai_server` (also re-exported here, lazily, so that
``python -m tests.fakes.openai_server`` does not import it twice)::

    from tests.fakes import FakeOpenAI, Script, Headers, Text, Comment, Cut

A :class:`Script` is an ordered tuple of steps run against one request; each step is a small frozen
dataclass with ``run(exchange)``. Use the classmethods for the common shapes (:meth:`Script.stream`,
:meth:`Script.tool_calls`, :meth:`Script.http_error`, :meth:`Script.mid_stream_error`,
:meth:`Script.cut`, :meth:`Script.hang`, :meth:`Script.garbage`, :meth:`Script.completion`,
:meth:`Script.stream_forever`, :meth:`Script.transcription` for ``/audio/transcriptions``), or spell
the steps out, e.g. a slow first byte, a keep-alive comment,
reasoning, then a refusal with CRLF line endings::

    Script(Delay(1.0), Headers(), Comment(), Reasoning("hmm"), Refusal("No."), Finish(), Done(), crlf=True)

Steps that send body bytes send the 200 SSE headers first if :class:`Headers` did not.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from tests.fakes.openai_server import Exchange, FakeOpenAI, RecordedRequest, UploadedFile

__all__ = [
    "DEFAULT_TEXT", "DEFAULT_TRANSCRIPT", "SERVER_ERROR_MESSAGE", "Chunk", "Comment", "Completion", "Cut",
    "Delay", "Done", "ErrorEvent", "Exchange", "FakeOpenAI", "Finish", "FinishReason", "Hang", "Headers",
    "HttpError", "JsonResponse", "Raw", "Reasoning", "RecordedRequest", "Refusal", "Script", "Step", "Text",
    "Ticker", "ToolCall", "ToolCallDelta", "UploadedFile", "Usage",
]  # fmt: skip

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]
DEFAULT_TEXT = "Hello from the fake model."
DEFAULT_TRANSCRIPT = "Hello from the fake transcriber."
SERVER_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"


def __getattr__(name: str) -> Any:
    if name in ("FakeOpenAI", "RecordedRequest", "Exchange", "UploadedFile"):
        from tests.fakes import openai_server

        return getattr(openai_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Step(Protocol):
    """Anything with ``run(exchange)``."""

    def run(self, ex: Exchange) -> None: ...


@dataclass(frozen=True)
class Headers:
    """Send the streaming response head now (status + extra headers); implicit otherwise."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def run(self, ex: Exchange) -> None:
        ex.start_stream(self.status, self.headers)


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (``None``: forever). Before :class:`Headers` it delays the first byte."""

    seconds: float | None

    def run(self, ex: Exchange) -> None:
        ex.pause(self.seconds)


@dataclass(frozen=True)
class Hang(Delay):
    """Send nothing until the client disconnects, the server stops, or ``seconds`` pass (then go on)."""

    seconds: float | None = None


@dataclass(frozen=True)
class Chunk:
    """A raw ``chat.completion.chunk`` with this ``delta`` (and ``finish_reason``)."""

    delta: Mapping[str, Any]
    finish_reason: str | None = None

    def run(self, ex: Exchange) -> None:
        ex.chunk(self.delta, self.finish_reason)


@dataclass(frozen=True)
class Text:
    """A chunk with ``delta.content``."""

    content: str

    def run(self, ex: Exchange) -> None:
        ex.chunk({"content": self.content})


@dataclass(frozen=True)
class Reasoning:
    """A chunk with ``delta.reasoning_content`` (or ``key="reasoning"``, as some gateways send)."""

    text: str
    key: str = "reasoning_content"

    def run(self, ex: Exchange) -> None:
        ex.chunk({self.key: self.text})


@dataclass(frozen=True)
class Refusal:
    """A chunk with ``delta.refusal``."""

    text: str

    def run(self, ex: Exchange) -> None:
        ex.chunk({"refusal": self.text})


@dataclass(frozen=True)
class ToolCallDelta:
    """A ``delta.tool_calls`` fragment; the first per index has id/type/name, later ones only
    ``arguments`` pieces."""

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    type: str | None = None

    def run(self, ex: Exchange) -> None:
        call: dict[str, Any] = {"index": self.index}
        if self.id is not None:
            call["id"] = self.id
        if self.type is not None or self.id is not None:
            call["type"] = self.type or "function"
        fn = {k: v for k, v in (("name", self.name), ("arguments", self.arguments)) if v is not None}
        if fn:
            call["function"] = fn
        ex.chunk({"tool_calls": [call]})


@dataclass(frozen=True)
class Finish:
    """The final choice chunk: empty delta with ``finish_reason``."""

    reason: FinishReason = "stop"

    def run(self, ex: Exchange) -> None:
        ex.chunk({}, self.reason)


@dataclass(frozen=True)
class Usage:
    """The usage chunk (``"choices": []``), sent only if the request set
    ``stream_options.include_usage``. ``completion_tokens=None`` counts the chunks sent so far."""

    prompt_tokens: int = 12
    completion_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def as_dict(self, completion_default: int = 0) -> dict[str, Any]:
        c = completion_default if self.completion_tokens is None else self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": c,
            "total_tokens": self.prompt_tokens + c,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }

    def run(self, ex: Exchange) -> None:
        if ex.include_usage:
            ex.event_json(ex.envelope([], self.as_dict(ex.chunks_sent)))


@dataclass(frozen=True)
class Done:
    """``data: [DONE]``."""

    def run(self, ex: Exchange) -> None:
        ex.event("[DONE]")


@dataclass(frozen=True)
class Comment:
    """An SSE comment line, e.g. ``: keep-alive`` (clients must ignore it)."""

    text: str = "keep-alive"

    def run(self, ex: Exchange) -> None:
        ex.write(f": {self.text}{ex.eol}{ex.eol}".encode())


@dataclass(frozen=True)
class ErrorEvent:
    """A mid-stream ``data: {"error": {...}}`` event (after HTTP 200)."""

    message: str = SERVER_ERROR_MESSAGE
    type: str = "server_error"
    code: str | None = None

    def run(self, ex: Exchange) -> None:
        error = {"message": self.message, "type": self.type, "param": None, "code": self.code}
        ex.event_json({"error": error})


@dataclass(frozen=True)
class Raw:
    """Arbitrary bytes in the body (garbage, broken JSON, a hand-made event)."""

    data: bytes

    def run(self, ex: Exchange) -> None:
        ex.write(self.data)


@dataclass(frozen=True)
class Cut:
    """Drop the connection mid-stream, no ``[DONE]``/terminating chunk (``reset=True``: RST)."""

    reset: bool = False

    def run(self, ex: Exchange) -> None:
        ex.cut(self.reset)


@dataclass(frozen=True)
class Ticker:
    """``count`` text chunks (``None``: until disconnect/stop), ``interval`` s apart; ``{n}`` in
    ``text`` is replaced by the chunk number."""

    text: str = "tick {n}. "
    interval: float = 0.05
    count: int | None = None

    def run(self, ex: Exchange) -> None:
        n = 0
        while self.count is None or n < self.count:
            if n:
                ex.pause(self.interval)
            ex.chunk({"content": self.text.replace("{n}", str(n))})
            n += 1


@dataclass(frozen=True)
class JsonResponse:
    """A complete non-streaming response with this JSON body."""

    body: Any
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def run(self, ex: Exchange) -> None:
        ex.respond(self.status, json.dumps(self.body).encode(), self.headers)


@dataclass(frozen=True)
class HttpError:
    """An HTTP error response with an OpenAI-shaped body ``{"error": {message, type, param, code}}``."""

    status: int = 500
    message: str = SERVER_ERROR_MESSAGE
    type: str = "server_error"
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def run(self, ex: Exchange) -> None:
        err = {"message": self.message, "type": self.type, "param": None, "code": self.code}
        ex.respond(self.status, json.dumps({"error": err}).encode(), self.headers)


@dataclass(frozen=True)
class Completion:
    """A non-streaming ``chat.completion`` JSON body (sent even if the client asked to stream)."""

    content: str | None = DEFAULT_TEXT
    finish_reason: FinishReason = "stop"
    usage: Usage = Usage(completion_tokens=6)
    tool_calls: Sequence[Mapping[str, Any]] = ()

    def run(self, ex: Exchange) -> None:
        msg: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_calls:
            msg["tool_calls"] = [dict(t) for t in self.tool_calls]
        choice = {"index": 0, "message": msg, "logprobs": None, "finish_reason": self.finish_reason}
        body = {**ex.envelope([choice], self.usage.as_dict()), "object": "chat.completion"}
        ex.respond(200, json.dumps(body).encode())


# --------------------------------------------------------------------------- scripts

_USAGE = Usage()
_GARBAGE = b'\x00\x9f\xff\xfe not an event stream {{{\n\ndata: {"id": "chatcmpl-broken", "choices": [\n\n'
_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request: 'messages' is malformed.", "invalid_request_error", None),
    401: ("Incorrect API key provided: sk-****.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
}
_SERVER_ERROR = (SERVER_ERROR_MESSAGE, "server_error", None)


@dataclass(frozen=True)
class ToolCall:
    """A tool call for :meth:`Script.tool_calls`; ``arguments`` may be a dict (JSON-encoded)."""

    name: str
    arguments: str | Mapping[str, Any] = "{}"
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")

    @property
    def arguments_json(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


def _pieces(text: str | Sequence[str], chunk_size: int | None) -> list[str]:
    """``text`` as stream pieces: explicit pieces as given, else words (with their trailing space)
    or ``chunk_size``-character slices."""
    if not isinstance(text, str):
        return list(text)
    if chunk_size is None:
        return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    return [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]


def _opt(step: Step | None) -> list[Step]:
    return [] if step is None else [step]


def _spaced(steps: Sequence[Step], delay: float) -> list[Step]:
    """``steps`` with ``Delay(delay)`` between consecutive ones."""
    out: list[Step] = []
    for i, step in enumerate(steps):
        if i and delay > 0:
            out.append(Delay(delay))
        out.append(step)
    return out


class Script:
    """The steps answering one request, plus the SSE line ending (``crlf=True``: ``\\r\\n``).

    ``Script(*steps)`` spells it out; the classmethods build the usual shapes; ``.then(*steps)``
    appends (e.g. ``Script.stream("Hi", finish_reason=None, usage=None, done=False).then(Hang())``).
    """

    def __init__(self, *steps: Step, crlf: bool = False) -> None:
        self.steps: tuple[Step, ...] = steps
        self.crlf = crlf

    def then(self, *steps: Step) -> Script:
        return Script(*self.steps, *steps, crlf=self.crlf)

    def __repr__(self) -> str:
        return f"Script({', '.join(map(repr, self.steps))}, crlf={self.crlf})"

    @classmethod
    def stream(
        cls,
        text: str | Sequence[str] = DEFAULT_TEXT,
        *,
        chunk_size: int | None = None,
        delay: float = 0.0,
        headers_delay: float = 0.0,
        first_chunk_delay: float = 0.0,
        reasoning: str | Sequence[str] | None = None,
        comment: str | None = None,
        finish_reason: FinishReason | None = "stop",
        usage: Usage | None = _USAGE,
        done: bool = True,
        headers: Mapping[str, str] | None = None,
        crlf: bool = False,
    ) -> Script:
        """A normal streamed reply: ``text`` split into words (or ``chunk_size`` slices, or given as
        explicit pieces) with ``delay`` s between chunks; ``headers_delay`` before the response head
        (slow first byte), ``first_chunk_delay`` after it; optional ``reasoning`` pieces
        (``delta.reasoning_content``) and a ``comment`` line before the first chunk; then
        ``Finish(finish_reason)``, ``usage`` (if requested by the client) and ``[DONE]``. Pass
        ``None``/``False`` to leave any of those three out."""
        steps: list[Step] = [Delay(headers_delay)] if headers_delay > 0 else []
        steps.append(Headers(headers=dict(headers or {})))
        if first_chunk_delay > 0:
            steps.append(Delay(first_chunk_delay))
        if comment is not None:
            steps.append(Comment(comment))
        body: list[Step] = [Reasoning(p) for p in _pieces(reasoning or (), chunk_size)]
        body += [Text(p) for p in _pieces(text, chunk_size)]
        steps += _spaced(body, delay)
        steps += [Finish(finish_reason)] if finish_reason else []
        steps += _opt(usage)
        steps += [Done()] if done else []
        return cls(*steps, crlf=crlf)

    @classmethod
    def tool_calls(
        cls,
        *calls: ToolCall,
        content: str | None = None,
        arg_chunk_size: int = 8,
        delay: float = 0.0,
        usage: Usage | None = _USAGE,
    ) -> Script:
        """Optional ``content`` text, then per call one ``ToolCallDelta`` with index/id/type/name and
        empty arguments followed by the arguments in ``arg_chunk_size`` pieces; ``finish_reason``
        ``tool_calls``, usage, ``[DONE]``."""
        body: list[Step] = [Text(p) for p in _pieces(content or "", None)]
        for i, call in enumerate(calls):
            body.append(ToolCallDelta(i, id=call.id, type="function", name=call.name, arguments=""))
            body += [ToolCallDelta(i, arguments=a) for a in _pieces(call.arguments_json, arg_chunk_size)]
        return cls(Headers(), *_spaced(body, delay), Finish("tool_calls"), *_opt(usage), Done())

    @classmethod
    def http_error(
        cls,
        status: int = 500,
        message: str | None = None,
        *,
        type: str | None = None,
        code: str | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: float | None = None,
        should_retry: bool | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Script:
        """An HTTP error before any streaming, with an OpenAI error body (message/type/code default
        to what OpenAI sends for ``status``) and optional ``Retry-After`` (seconds or an HTTP date),
        ``retry-after-ms`` and ``x-should-retry`` headers, after ``delay`` s."""
        d_message, d_type, d_code = _ERRORS.get(status) or (_SERVER_ERROR if status >= 500 else _ERRORS[400])
        h = dict(headers or {})
        if retry_after is not None:
            h["retry-after"] = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        if retry_after_ms is not None:
            h["retry-after-ms"] = f"{retry_after_ms:g}"
        if should_retry is not None:
            h["x-should-retry"] = "true" if should_retry else "false"
        err = HttpError(status, message or d_message, type or d_type, code or d_code, h)
        return cls(*([Delay(delay)] if delay > 0 else []), err)

    @classmethod
    def mid_stream_error(
        cls,
        text: str | Sequence[str] = "Partial answer",
        *,
        message: str = SERVER_ERROR_MESSAGE,
        type: str = "server_error",
        code: str | None = None,
        delay: float = 0.0,
    ) -> Script:
        """HTTP 200, some ``text`` chunks, then a ``data: {"error": ...}`` event; no ``[DONE]``."""
        return cls.stream(text, delay=delay, finish_reason=None, usage=None, done=False).then(
            ErrorEvent(message, type, code)
        )

    @classmethod
    def cut(cls, text: str | Sequence[str] = "Partial answer", *, reset: bool = False) -> Script:
        """Some ``text`` chunks, then the connection is dropped (FIN, or RST if ``reset``)."""
        return cls.stream(text, finish_reason=None, usage=None, done=False).then(Cut(reset))

    @classmethod
    def hang(
        cls, text: str | Sequence[str] = "", *, timeout: float | None = None, before_headers: bool = False
    ) -> Script:
        """Send nothing more (after the headers and ``text`` chunks, or before any byte if
        ``before_headers``) until the client disconnects, the server stops or ``timeout`` passes."""
        if before_headers:
            return cls(Hang(timeout))
        return cls.stream(text, finish_reason=None, usage=None, done=False).then(Hang(timeout))

    @classmethod
    def garbage(cls, data: bytes = _GARBAGE) -> Script:
        """HTTP 200 ``text/event-stream`` whose body is ``data`` (default: binary junk and a truncated
        JSON event)."""
        return cls(Headers(), Raw(data))

    @classmethod
    def completion(
        cls,
        content: str | None = DEFAULT_TEXT,
        *,
        finish_reason: FinishReason = "stop",
        usage: Usage = Completion.usage,
        tool_calls: Sequence[Mapping[str, Any]] = (),
    ) -> Script:
        """A non-streaming ``chat.completion`` JSON body, whatever ``stream`` the client asked for."""
        return cls(Completion(content, finish_reason, usage, tuple(tool_calls)))

    @classmethod
    def stream_forever(
        cls,
        rate: float = 20.0,
        *,
        text: str = "tick {n}. ",
        count: int | None = None,
        usage: Usage | None = _USAGE,
    ) -> Script:
        """``rate`` chunks per second, ``count`` of them (``None``: until the client goes away or the
        server stops), then ``stop``/usage/``[DONE]`` if it ever ends. For pressing Stop mid-reply."""
        return cls(Headers(), Ticker(text, 1.0 / rate, count), Finish("stop"), *_opt(usage), Done())

    @classmethod
    def transcription(cls, text: str = DEFAULT_TRANSCRIPT, *, delay: float = 0.0) -> Script:
        """An ``/audio/transcriptions`` answer, ``{"text": text}`` (``response_format`` json), after
        ``delay`` s. Queue it with ``FakeOpenAI.enqueue_transcription``; errors are the usual
        :meth:`http_error` scripts."""
        return cls(*([Delay(delay)] if delay > 0 else []), JsonResponse({"text": text}))
