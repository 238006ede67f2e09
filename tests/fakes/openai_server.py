"""A real HTTP server on loopback speaking the OpenAI chat-completions wire format, for tests.

It runs in a background thread (stdlib ``ThreadingHTTPServer``), so anything can reach it over TCP:
the app under test via httpx, a Daphne subprocess in a browser test, curl. Each
``POST /v1/chat/completions`` runs the next queued :class:`~tests.fakes.Script` (FIFO), else
``fake.default``; the script language (steps and builders) is documented in :mod:`tests.fakes`::

    with FakeOpenAI() as fake:
        fake.enqueue(Script.stream("Hello world", chunk_size=3, delay=0.05), Script.http_error(429))
        ...  # point the app at fake.base_url
        req = fake.wait_for_requests(1)[0].wait()
        assert req.headers["authorization"] == "Bearer sk-test" and req.completed

``POST /v1/audio/transcriptions`` (multipart ``file`` + ``model``) runs the next script queued with
``enqueue_transcription`` (its own FIFO, so it never takes a chat script), else
``fake.transcription_default`` (``{"text": "Hello from the fake transcriber."}``); the recorded
request has the form fields in ``req.form`` and the files in ``req.files``::

    fake.enqueue_transcription(Script.http_error(429, retry_after=0.1), Script.transcription("blue shirt"))
    ...
    req = fake.requests[-1]
    assert req.form["model"] == "whisper-1" and req.files["file"].filename == "voice-note.mp3"

Waiting steps poll the socket and the stop flag every 10 ms, so a client disconnect is recorded as
``client_disconnected`` almost at once and ``stop()`` never hangs.
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
import json
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import httpx

from tests.fakes import Script

__all__ = ["ClientGone", "Exchange", "FakeOpenAI", "RecordedRequest", "Stopping", "UploadedFile", "main"]

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_POLL = 0.01
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class ClientGone(Exception):
    """The client closed the connection before the script finished."""


class Stopping(Exception):
    """The server is shutting down."""


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass
class RecordedRequest:
    """One request as received. ``completed``: every step of the script ran (a :class:`Cut` script
    counts as completed). ``client_disconnected``: the client went away before the end. ``done`` is
    set when handling ends (check the two flags only after it is set, e.g. ``req.wait()``)."""

    method: str
    path: str
    headers: httpx.Headers  # case-insensitive
    raw_body: bytes
    body: Any
    received_at: float
    completed: bool = False
    client_disconnected: bool = False
    finished_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    client_port: int = 0  # the client's side of the connection: equal ports, one kept-alive connection
    # A multipart/form-data body: its text fields and its files, by field name.
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def json(self) -> dict[str, Any]:
        """The JSON body if it was an object, else ``{}``."""
        return self.body if isinstance(self.body, dict) else {}

    def wait(self, timeout: float = 5.0) -> RecordedRequest:
        """Block until handling ended; raise ``TimeoutError`` otherwise."""
        if not self.done.wait(timeout):
            raise TimeoutError(f"request to {self.path} still being handled after {timeout}s")
        return self


# --------------------------------------------------------------------------- exchange


class Exchange:
    """What a step sees: the request and primitives to write the response on the socket."""

    def __init__(self, handler: _Handler, request: RecordedRequest, crlf: bool) -> None:
        self._h = handler
        self.request = request
        body = request.json
        self.model = str(body.get("model") or "fake-model")
        opts = body.get("stream_options")
        self.include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        self.completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.request_id = f"req_{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.eol = "\r\n" if crlf else "\n"
        self.headers_sent = False
        self.finished = False  # the response is complete (or the connection cut): stop running steps
        self.chunks_sent = 0

    # -- liveness
    def check(self) -> None:
        """Raise :class:`Stopping` / :class:`ClientGone` if the server stops / the peer closed."""
        if self._h.server.stopping.is_set():
            raise Stopping
        sock = self._h.connection
        try:
            if not select.select([sock], [], [], 0)[0]:
                return
            gone = sock.recv(1, socket.MSG_PEEK) == b""  # readable + EOF = client closed
        except (OSError, ValueError):
            gone = True
        if gone:
            raise ClientGone

    def pause(self, seconds: float | None) -> None:
        """Sleep ``seconds`` (``None``: until disconnect or stop), polling :meth:`check`."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            self.check()
            left = _POLL if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return
            self._h.server.stopping.wait(min(_POLL, left))

    # -- writing
    def start_stream(self, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        """Send the status line and headers of a chunked (by default SSE) response."""
        base = {"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache", "Transfer-Encoding": "chunked"}
        self._send_head(status, {**base, **(headers or {})})

    def respond(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Send a complete non-chunked response (JSON by default) and finish."""
        h = {"Content-Type": "application/json", **(headers or {}), "Content-Length": str(len(body))}
        self._send_head(status, h)
        self._h.wfile.write(body)
        self.finished = True

    def _send_head(self, status: int, headers: Mapping[str, str]) -> None:
        if self.headers_sent:
            raise RuntimeError("response headers were already sent")
        self.check()
        self._h.send_response(status)
        for k, v in {"x-request-id": self.request_id, **headers}.items():
            self._h.send_header(k, v)
        self._h.end_headers()
        self.headers_sent = True

    def write(self, data: bytes) -> None:
        """Write ``data`` as one HTTP chunk (sending the SSE headers first if needed)."""
        if not self.headers_sent:
            self.start_stream()
        if data:
            self.check()
            self._h.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def event(self, data: str) -> None:
        """Write one SSE event ``data: <data>`` followed by a blank line."""
        self.write(f"data: {data}{self.eol}{self.eol}".encode())

    def event_json(self, obj: Any) -> None:
        self.event(json.dumps(obj, separators=(",", ":"), ensure_ascii=False))

    def envelope(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        """The ``chat.completion.chunk`` object around ``choices``."""
        head = {"id": self.completion_id, "object": "chat.completion.chunk", "created": self.created}
        tail = {"system_fingerprint": "fp_fake", "choices": choices, "usage": usage}
        return {**head, "model": self.model, **tail}

    def chunk(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> None:
        """Send a ``chat.completion.chunk`` with one choice; the first one gets the assistant role."""
        d = {"role": "assistant", **delta} if self.chunks_sent == 0 else dict(delta)
        choice = {"index": 0, "delta": d, "logprobs": None, "finish_reason": finish_reason}
        self.event_json(self.envelope([choice], None))
        self.chunks_sent += 1

    def end(self) -> None:
        """Terminate the chunked body (a script with no body steps yields an empty SSE stream)."""
        if not self.headers_sent:
            self.start_stream()
        if not self.finished:
            self._h.wfile.write(b"0\r\n\r\n")
            self.finished = True

    def cut(self, reset: bool = False) -> None:
        """Drop the connection now: FIN without the terminating chunk, or an RST if ``reset``."""
        sock = self._h.connection
        self._h.close_connection = True
        self.finished = True
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._h.rfile.close()
            sock.close()
        else:
            sock.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # flush each small SSE write at once
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_request(self) -> RecordedRequest:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = httpx.Headers(self.headers.items())
        req = RecordedRequest(
            self.command, self.path, headers, raw, body, time.monotonic(), client_port=self.client_address[1]
        )
        if headers.get("content-type", "").startswith("multipart/form-data"):
            req.form, req.files = _multipart(headers["content-type"], raw)
        self.server.owner._record(req)
        return req

    def do_GET(self) -> None:
        self._run(self._read_request(), _NOT_FOUND)

    def do_POST(self) -> None:
        req = self._read_request()
        path = req.path.split("?")[0].rstrip("/")
        if path == "/v1/audio/transcriptions":
            ok = "file" in req.files and req.form.get("model")
            self._run(req, self.server.owner._next_transcription() if ok else _BAD_TRANSCRIPTION)
        elif path != "/v1/chat/completions":
            self._run(req, _NOT_FOUND)
        elif req.body is None:
            self._run(req, _BAD_JSON)
        else:
            self._run(req, self.server.owner._next_script())

    def _run(self, req: RecordedRequest, script: Script) -> None:
        ex = Exchange(self, req, script.crlf)
        try:
            for step in script.steps:
                if ex.finished:
                    break
                step.run(ex)
            ex.end()
            req.completed = True
        except (ClientGone, *_GONE):
            req.client_disconnected = True
            self.close_connection = True
        except Stopping:
            self.close_connection = True
        except BaseException:
            self.close_connection = True
            raise
        finally:
            req.finished_at = time.monotonic()
            req.done.set()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the handler threads itself, with a deadline
    request_queue_size = 128

    def __init__(self, owner: FakeOpenAI, host: str, port: int) -> None:
        super().__init__((host, port), _Handler)
        self.owner = owner
        self.stopping = threading.Event()
        self.handlers: dict[_Handler, threading.Thread] = {}
        self.handlers_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-response is part of what this server is for, not an error.
        if isinstance(sys.exc_info()[1], _GONE):
            return
        super().handle_error(request, client_address)

    def track(self, handler: _Handler, alive: bool) -> None:
        with self.handlers_lock:
            if alive:
                self.handlers[handler] = threading.current_thread()
            else:
                self.handlers.pop(handler, None)

    def close_all(self, timeout: float) -> None:
        """Shut down every open connection (waking idle keep-alive reads) and join the handlers."""
        self.stopping.set()
        with self.handlers_lock:
            handlers = dict(self.handlers)
        for handler in handlers:
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in handlers.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class FakeOpenAI:
    """Fake OpenAI chat-completions server on ``127.0.0.1`` (free port unless ``port``).

    ``start()``/``stop()`` or ``with FakeOpenAI() as fake:``; point the client at ``fake.base_url``.
    ``enqueue(script, ...)`` queues scripts for the next requests (FIFO), ``default`` answers when the
    queue is empty (``Script.stream()``: "Hello from the fake model." word by word). ``requests``
    lists what came in. All methods are thread-safe.
    """

    def __init__(self, default: Script | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default: Script = default or Script.stream()
        self.transcription_default: Script = Script.transcription()
        self._transcriptions: deque[Script] = deque()
        self._host, self._port = host, port
        self._lock = threading.Condition()
        self._queue: deque[Script] = deque()
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is None:
            self._server = _Server(self, self._host, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="fake-openai",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving; hanging/streaming handlers notice within ~10 ms; never blocks past ``timeout``."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_all(timeout)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not running; call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what an OpenAI client takes as its base URL."""
        return f"http://{self._host}:{self.port}/v1"

    def enqueue(self, *scripts: Script) -> None:
        """Queue ``scripts``; each answers one later chat-completions request, in order."""
        with self._lock:
            self._queue.extend(scripts)

    def enqueue_transcription(self, *scripts: Script) -> None:
        """Queue ``scripts``; each answers one later ``/audio/transcriptions`` request, in order."""
        with self._lock:
            self._transcriptions.extend(scripts)

    @property
    def pending(self) -> int:
        """How many queued scripts are not consumed yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("FakeOpenAI has not received any request")
            return self._requests[-1]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests arrived (raise ``TimeoutError`` otherwise)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests within {timeout}s, got {len(self._requests)}")
            return list(self._requests)

    def reset(self) -> None:
        """Forget queued scripts and recorded requests (``default`` stays)."""
        with self._lock:
            self._queue.clear()
            self._transcriptions.clear()
            self._requests.clear()

    def _next_script(self) -> Script:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def _next_transcription(self) -> Script:
        with self._lock:
            return self._transcriptions.popleft() if self._transcriptions else self.transcription_default

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)
            self._lock.notify_all()


_NOT_FOUND = Script.http_error(404, "Unknown request URL. Check the URL for typos.", code="unknown_url")
_BAD_JSON = Script.http_error(400, "We could not parse the JSON body of your request.")
_BAD_TRANSCRIPTION = Script.http_error(400, "A multipart body with a 'file' and a 'model' field is required.")


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    """The text fields and files of a multipart/form-data body (stdlib MIME parser)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    form: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    if not message.is_multipart():
        return form, files
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            form[name] = data.decode(errors="replace")
        else:
            files[name] = UploadedFile(filename, part.get_content_type(), data)
    return form, files


CLI_SCRIPTS: dict[str, Script] = {
    "default": Script.stream(),
    "slow": Script.stream("This is a deliberately slow reply, one word at a time. " * 8, delay=0.15),
    "forever": Script.stream_forever(rate=10),
    "error429": Script.http_error(429, retry_after=1),
    "hang": Script.hang("Thinking"),
}


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.fakes.openai_server --port 0 --script slow``: print the base URL, serve until
    killed (SIGINT/SIGTERM)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", choices=sorted(CLI_SCRIPTS), default="default")
    args = parser.parse_args(argv)

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)
    with FakeOpenAI(CLI_SCRIPTS[args.script], host=args.host, port=args.port) as fake:
        print(fake.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
