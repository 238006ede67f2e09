"""httpx's transport for the model's streams: HTTP/1.1 on asyncio's protocols, parsed by httptools.

A streamed reply arrives a token per chunk, and at 500 chats the process reads ~25 000 chunks a
second. httpx's own transport (httpcore, h11, anyio; from the second round an asyncio backend
and a mended pool of ours) spent 18 % of the app's CPU there: h11 parses each chunk in Python,
and each passes through httpcore's connection, its pool's byte stream and their context
managers. httptools is llhttp (the parser of Node.js and of uvicorn) in C: the protocol's
`data_received` hands it the bytes, and the body comes out of its callback straight into the
buffer the response's stream reads (docs/benchmarks.md, tenth round).

httpx stays the client: the request is built, sent, redirected and decoded by it; this is only
what httpx calls a transport. It speaks HTTP/1.1 (what the model endpoints answer streams with),
over TCP or TLS (httpx's certificate bundle, SSL_CERT_FILE and SSL_CERT_DIR), with connections
kept alive per origin. A proxy needs httpx's own transport (chat/llm/http.py keeps it then).
"""

# ruff: noqa: ASYNC109 (timeouts come from httpx's request, not from an argument of ours)
from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

# Body bytes buffered unread before the socket stops reading (and starts again below it).
_LIMIT = 256 * 1024
# A kept-alive connection is checked for its expiry when used; the others at most this often.
_SWEEP_SECONDS = 1.0

_Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, its response parsed as the bytes come."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: httptools.HttpResponseParser | None = None
        self._head_only = False
        self._headers: list[tuple[bytes, bytes]] = []
        self._reason = b""
        self._head: asyncio.Future[int] | None = None  # the response's status, once its head is in
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._complete = False
        self._keep_alive = False
        self._error: httpx.TransportError | None = None
        self._writable: asyncio.Future[None] | None = None  # set while asyncio's write buffer is full

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # nothing was asked: a kept-alive connection is not to be trusted
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols, which this transport does not"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))

    def eof_received(self) -> None:
        self._ended(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(exc)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # httptools's callbacks

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None and self._head is not None
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._headers, self._reason = [], b""
            return
        if not self._head.done():
            self._head.set_result(status)
        if self._head_only:  # llhttp cannot tell that a HEAD's answer has no body
            self._keep_alive = False
            self._finish()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _LIMIT and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        assert self._parser is not None
        if self._head is None or not self._head.done() or self._complete:
            return  # the end of an interim answer, or of a HEAD's already finished
        self._keep_alive = self._keep_alive and self._parser.should_keep_alive()
        self._finish()

    # the transport's side

    def send(self, head: bytes, body: bytes, *, head_only: bool, keep_alive: bool) -> asyncio.Future[int]:
        assert self.transport is not None
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._keep_alive = keep_alive
        self._headers, self._reason = [], b""
        self._complete = False
        self._head = asyncio.get_running_loop().create_future()
        self.transport.write(head + body if body else head)
        return self._head

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise httpx.WriteError("the connection closed while the request was being sent")
        self.transport.write(data)

    async def drain(self, timeout: float | None) -> None:
        if self._writable is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._writable
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request") from None
        if self.closed:
            raise httpx.WriteError("the connection closed while the request was being sent")

    def response_head(self) -> tuple[list[tuple[bytes, bytes]], dict[str, Any]]:
        assert self._parser is not None
        version = self._parser.get_http_version()
        extensions = {
            "http_version": b"HTTP/" + version.encode(),
            "reason_phrase": self._reason,
            "network_stream": self,
        }
        return self._headers, extensions

    async def body(self, timeout: float | None) -> AsyncIterator[bytes]:
        """The response's body as it comes, what arrived meanwhile in one piece."""
        loop = asyncio.get_running_loop()
        while True:
            if self._body:
                data = self._body.popleft() if len(self._body) == 1 else b"".join(self._body)
                self._body.clear()
                self._buffered = 0
                if self._reading_paused and self.transport is not None:
                    self._reading_paused = False
                    self.transport.resume_reading()
                yield data
                continue
            if self._complete:
                return
            if self._error is not None:
                raise self._error
            self._waiter = loop.create_future()
            try:
                if timeout is None:
                    await self._waiter
                else:
                    async with asyncio.timeout(timeout):
                        await self._waiter
            except TimeoutError:
                raise httpx.ReadTimeout("timed out waiting for the response") from None
            finally:
                self._waiter = None

    @property
    def reusable(self) -> bool:
        """Its response read to the end, and both sides willing to go on."""
        return self._complete and self._keep_alive and not self.closed and not self._body

    def done_with_response(self) -> None:
        self._parser = None
        self._head = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def get_extra_info(self, name: str) -> Any:
        """httpcore's names, as httpx's `network_stream` extension has them."""
        if self.transport is None:
            return None
        key = {"client_addr": "sockname", "server_addr": "peername"}.get(name, name)
        return self.transport.get_extra_info(key)

    # inside

    def _finish(self) -> None:
        self._complete = True
        self._wake()

    def _ended(self, exc: Exception | None) -> None:
        """The server closed its side (or the connection broke)."""
        if self._head is None or self._complete or self._error is not None:
            return
        if not self._head.done():
            error: httpx.TransportError = httpx.RemoteProtocolError(
                "the server closed the connection without sending a response"
            )
            if isinstance(exc, OSError):
                error = httpx.ReadError(f"the connection broke before the response: {exc}")
            self._fail(error)
        elif exc is None and not self._length_given():
            # A body without a length ends when the connection does.
            self._keep_alive = False
            self._finish()
        elif isinstance(exc, OSError):
            self._fail(httpx.ReadError(f"the connection broke during the response: {exc}"))
        else:
            self._fail(httpx.RemoteProtocolError("the server closed the connection before the response's end"))

    def _length_given(self) -> bool:
        return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in self._headers)

    def _fail(self, error: httpx.TransportError) -> None:
        if self._error is None:
            self._error = error
        self._keep_alive = False
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
            self._head.exception()  # retrieved: a caller cancelled meanwhile would not see it
        self._wake()
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, connection: _Connection, pool: StreamingTransport, read_timeout: float | None) -> None:
        self._connection = connection
        self._pool = pool
        self._read_timeout = read_timeout
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The connection's generator itself, not one around it: a resumption fewer per chunk.
        return self._connection.body(self._read_timeout)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.release(self._connection)


class StreamingTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 for httpx on asyncio's protocols with httptools, connections kept per origin.

    `limits` as httpx has them: `max_connections` (None: as many as requests at once; at the limit
    a request waits for one, up to the pool timeout), `max_keepalive_connections` idle ones kept
    (the oldest closed first), each for `keepalive_expiry` seconds.
    """

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_connections = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = math.inf if limits.keepalive_expiry is None else limits.keepalive_expiry
        # What httpx would use: certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR.
        self._ssl_context = ssl_context or httpx.create_ssl_context()
        self._ssl_context.set_alpn_protocols(["http/1.1"])
        self._idle: dict[_Origin, list[_Connection]] = {}  # per origin, the most recently freed last
        self._idle_count = 0
        self._open = 0
        # Requests waiting for a connection at `max_connections`, first come first served.
        self._slot_waiters: deque[tuple[_Origin, asyncio.Future[_Connection | None]]] = deque()
        self._swept = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        connection = self._reuse(origin)
        if connection is None:
            connection = await self._slot(origin, timeouts.get("pool"))
        if connection is None:
            connection = await self._connect(request, origin, timeouts)
        try:
            status = await self._exchange(connection, request, timeouts)
        except BaseException:
            connection.close()
            self.release(connection)
            raise
        headers, extensions = connection.response_head()
        return httpx.Response(
            status,
            headers=headers,
            stream=_ResponseStream(connection, self, timeouts.get("read")),
            extensions=extensions,
        )

    async def _exchange(self, connection: _Connection, request: httpx.Request, timeouts: dict[str, Any]) -> int:
        """Send the request, wait for the response's head; its status."""
        url = request.url
        lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), url.raw_path)]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in request.headers.raw)
        lines.append(b"\r\n")
        head = b"".join(lines)
        keep_alive = request.headers.get("connection", "").lower() != "close"
        head_only = request.method == "HEAD"
        try:
            body = request.content
        except httpx.RequestNotRead:  # a streamed body (multipart from a file, say)
            answer = connection.send(head, b"", head_only=head_only, keep_alive=keep_alive)
            await self._send_stream(connection, request, timeouts.get("write"))
        else:
            answer = connection.send(head, body, head_only=head_only, keep_alive=keep_alive)
            await connection.drain(timeouts.get("write"))
        read_timeout = timeouts.get("read")
        try:
            async with asyncio.timeout(read_timeout):
                return await answer
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the response") from None

    async def _send_stream(self, connection: _Connection, request: httpx.Request, timeout: float | None) -> None:
        chunked = "chunked" in request.headers.get("transfer-encoding", "").lower()
        stream = request.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        async for part in stream:
            if part:
                connection.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                await connection.drain(timeout)
        if chunked:
            connection.write(b"0\r\n\r\n")
            await connection.drain(timeout)

    async def _connect(self, request: httpx.Request, origin: _Origin, timeouts: dict[str, Any]) -> _Connection:
        """A new connection, in a slot `_slot` counted (freed again if it fails)."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = scheme == "https"
        server_hostname = request.extensions.get("sni_hostname") or host
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=self._ssl_context if tls else None,
                    server_hostname=server_hostname if tls else None,
                    # Tries the next address (IPv4 after IPv6) after 0.25 s, as httpx's own does.
                    happy_eyeballs_delay=0.25,
                )
        except TimeoutError:
            self._free_slot()
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except (OSError, ssl.SSLError) as exc:
            self._free_slot()
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        except BaseException:
            self._free_slot()
            raise
        return connection

    def _reuse(self, origin: _Origin) -> _Connection | None:
        """The most recently freed idle connection to `origin` that still works."""
        now = time.monotonic()
        if now - self._swept >= _SWEEP_SECONDS:
            self._sweep(now)
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if not connection.closed and now - connection.idle_since < self._expiry:
                return connection
            self._drop(connection)
        return None

    def release(self, connection: _Connection) -> None:
        """A response is over: keep its connection for the next request, or close it."""
        if connection.reusable and self._slot_waiters:
            connection.done_with_response()
            if not self._hand_over(connection):
                self._drop(connection)  # a request to another origin waits: its slot goes there
        elif connection.reusable and self._max_idle != 0:
            connection.done_with_response()
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_count += 1
            if self._max_idle is not None and self._idle_count > self._max_idle:
                self._drop_oldest_idle()
        else:
            self._drop(connection)

    def _sweep(self, now: float) -> None:
        """Close the idle connections past their expiry, and forget those the server closed."""
        self._swept = now
        for origin, idle in list(self._idle.items()):
            keep = [c for c in idle if not c.closed and now - c.idle_since < self._expiry]
            for connection in idle:
                if connection not in keep:
                    self._drop(connection)
            self._idle_count -= len(idle) - len(keep)
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    def _drop_oldest_idle(self) -> None:
        oldest = min((idle[0] for idle in self._idle.values() if idle), key=lambda c: c.idle_since, default=None)
        if oldest is not None:
            self._idle[oldest.origin].remove(oldest)
            self._idle_count -= 1
            self._drop(oldest)

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._free_slot()

    async def _slot(self, origin: _Origin, timeout: float | None) -> _Connection | None:
        """Count a new connection in, waiting while `max_connections` are open: None when this
        request may connect, or a kept-alive connection to its origin handed over meanwhile."""
        if self._max_connections is None or self._open < self._max_connections:
            self._open += 1
            return None
        if self._idle_count:  # idle ones to other origins: the oldest makes room
            self._drop_oldest_idle()
            self._open += 1
            return None
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append((origin, waiter))
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():  # handed over just as this request gave up
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed)
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._slot_waiters.remove((origin, waiter))
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("timed out waiting for a connection") from None
            raise

    def _hand_over(self, connection: _Connection) -> bool:
        """Give a freed connection to the first request waiting for one to its origin."""
        for entry in self._slot_waiters:
            origin, waiter = entry
            if origin == connection.origin and not waiter.done():
                self._slot_waiters.remove(entry)
                waiter.set_result(connection)
                return True
        return False

    def _free_slot(self) -> None:
        while self._slot_waiters:
            _, waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # its slot now: the count stays
                return
        self._open -= 1

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._open -= self._idle_count
        self._idle.clear()
        self._idle_count = 0
