"""httpx's transport over asyncio streams, for the long-lived streaming requests to the model.

httpx reaches the network through httpcore, and httpcore on asyncio through anyio. anyio's
socket stream stops reading after every chunk and starts again before the next
(`transport.pause_reading()` / `resume_reading()`: two `epoll_ctl` calls and selector
bookkeeping per read), so that nothing is buffered unread. A streamed reply arrives a token per
chunk, so that was paid per token per chat: 8 % of the app's CPU at 500 chats (py-spy,
bench/chat_load.py, docs/benchmarks.md). asyncio's own StreamReader buffers up to its limit and
pauses only then.

The rest is httpx's: `AsyncioTransport` is httpx's AsyncHTTPTransport with httpcore's connection
pool, given this network backend. httpx has no argument for it (httpcore does), so the pool it
built is replaced (`_pool`; httpx is pinned, and tests/chat/llm/test_transport.py checks that
the streams are these). The pool is httpcore's with its bookkeeping pass mended (`KeepAlivePool`).
"""

# ruff: noqa: ASYNC109 (httpcore's interface takes timeouts as arguments)
from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

# Read up to this much at once; the reader pauses the socket only when this much is unread.
_LIMIT = 256 * 1024

# httpcore's SOCKET_OPTION
_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class AsyncioStream(AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        # Not waiting for the close to finish (as anyio's stream does not): over TLS that would
        # wait for the server's close_notify, up to 30 s, where a Stop closes a reply's stream.
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # httpcore asks before reusing a kept-alive connection: readable there means the
            # server closed it (or sent something unasked). The reader never stops reading,
            # so a close has already reached it.
            return self._reader.at_eof() or self._reader.exception() is not None or self._writer.is_closing()
        if self._writer.is_closing():
            return None  # asyncio's TLS transport has nothing to say once closed
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None


class AsyncioBackend(AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    limit=_LIMIT,
                    local_addr=(local_address, 0) if local_address else None,
                    # Tries the next address (IPv4 after IPv6) after 0.25 s, as anyio does.
                    happy_eyeballs_delay=0.25,
                )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        sock: socket.socket = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[_SocketOption] | None = None
    ) -> AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path, limit=_LIMIT)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class KeepAlivePool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool (HTTP/1.1) with its bookkeeping pass replaced.

    httpcore 1.0.9 (the latest release) runs that pass on every request and every response's
    end, and it had two faults for a process streaming hundreds of replies:
    - it kept an idle connection only while the pool held at most `max_keepalive_connections`
      connections *in all*, busy ones included: with more replies streaming than that, every
      connection was closed the moment its reply ended, and the next turn connected again (a
      TLS handshake, with a real endpoint);
    - it asked every connection for its state, several calls each, and counted them anew per
      idle one: with 500 streams and their kept-alive connections, 4 % of the process's CPU.
    encode/httpcore#1035 and #1000 fix the first (unreleased). Here idle connections are counted
    on their own, queued requests get them first (httpcore closed surplus ones before it looked
    for one to reuse), and a pass looks only at the connections whose request has ended since the
    last pass, the one it hands out (checked then: still open, not expired) and, at most once a
    second, the idle ones (expired, or closed by the server). A connection handed to a request
    that has not started on it yet still reads as idle: it is neither closed as surplus nor handed
    out twice (encode/httpcore#1110).

    httpcore is pinned (requirements/base.in); tests/chat/llm/test_transport.py drives this pass
    through httpx.
    """

    sweep_interval = 1.0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._busy: dict[int, httpcore.AsyncConnectionInterface] = {}  # handed to a request
        self._free: dict[int, httpcore.AsyncConnectionInterface] = {}  # idle, nobody's; oldest first
        self._swept = 0.0

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        busy: dict[int, httpcore.AsyncConnectionInterface] = {}
        queued = []
        for request in self._requests:
            held = request.connection
            if held is None:
                queued.append(request)
            else:
                busy[id(held)] = held
        for key, released in self._busy.items():
            if key not in busy:  # its request is over
                self._let_go(released, closing)
        now = time.monotonic()
        if now - self._swept >= self.sweep_interval:
            self._swept = now
            for idle in list(self._free.values()):
                if idle.is_closed() or idle.has_expired():
                    self._drop(idle, closing)

        for request in queued:
            origin = request.request.url.origin
            connection = self._reuse(origin, closing)
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    if not self._free:
                        break  # full of busy connections: wait for one to be let go
                    self._drop(next(iter(self._free.values())), closing)  # an idle one goes
                connection = self.create_connection(origin)
                self._connections.append(connection)
            request.assign_to_connection(connection)
            busy[id(connection)] = connection
        self._busy = busy

        while len(self._free) > self._max_keepalive_connections:
            self._drop(next(iter(self._free.values())), closing)
        return closing

    def _let_go(self, connection: httpcore.AsyncConnectionInterface, closing: list[Any]) -> None:
        """Keep a connection whose request is over for the next one, or drop it."""
        if connection.is_idle() and not connection.is_closed() and not connection.has_expired():
            self._free[id(connection)] = connection
        else:  # closed, expired, or never connected
            self._drop(connection, closing)

    def _reuse(self, origin: httpcore.Origin, closing: list[Any]) -> httpcore.AsyncConnectionInterface | None:
        """The most recently freed idle connection to `origin` that still works, taken out of the
        free ones (those found closed or expired on the way are dropped)."""
        for key in reversed(list(self._free)):  # a copy: those found broken are dropped on the way
            connection = self._free[key]
            if not connection.can_handle_request(origin):
                continue
            if connection.is_closed() or connection.has_expired() or not connection.is_available():
                self._drop(connection, closing)
                continue
            del self._free[key]
            return connection
        return None

    def _drop(self, connection: httpcore.AsyncConnectionInterface, closing: list[Any]) -> None:
        self._free.pop(id(connection), None)
        with contextlib.suppress(ValueError):
            self._connections.remove(connection)
        if not connection.is_closed():
            closing.append(connection)

    async def aclose(self) -> None:
        self._busy.clear()
        self._free.clear()
        await super().aclose()


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx.AsyncHTTPTransport (no proxy) whose connections are AsyncioStreams."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = KeepAlivePool(
            # What httpx would use: certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR.
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
