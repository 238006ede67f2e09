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
import socket
import ssl
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
    """httpcore's connection pool (HTTP/1.1) with its one bookkeeping pass replaced.

    httpcore 1.0.9 (the latest release) keeps an idle connection only while the pool holds at
    most `max_keepalive_connections` connections *in all*, busy ones included: with more replies
    streaming than that, every connection is closed the moment its reply ends, and the chat's
    next turn connects again (a TLS handshake, with a real endpoint). It also counts them anew
    for every idle connection, on every request and every reply's end (O(n²) in connections).
    encode/httpcore#1035 and #1000 fix both; neither is released. This pass counts idle
    connections only, hands queued requests the idle connections first (httpcore closes
    surplus idle ones before it looks for one to reuse), and is linear in connections and
    requests. A connection handed to a request that has not started on it yet still reads as
    idle: it is neither closed as surplus nor handed out twice (encode/httpcore#1110).

    httpcore is pinned (requirements/base.in); tests/chat/llm/test_transport.py drives this pass
    through httpx.
    """

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        taken = {id(request.connection) for request in self._requests if request.connection is not None}
        kept: list[httpcore.AsyncConnectionInterface] = []
        idle: list[httpcore.AsyncConnectionInterface] = []  # free to reuse or close, oldest first
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():  # its keep-alive ran out, or the server closed it
                closing.append(connection)
                continue
            kept.append(connection)
            if connection.is_idle() and id(connection) not in taken:
                idle.append(connection)

        for request in self._requests:
            if not request.is_queued():
                continue
            origin = request.request.url.origin
            reuse = next((c for c in idle if c.can_handle_request(origin) and c.is_available()), None)
            if reuse is not None:
                idle.remove(reuse)
                request.assign_to_connection(reuse)
                continue
            if len(kept) >= self._max_connections:
                if not idle:
                    break  # the pool is full of busy connections: wait for one to be let go
                # Make room: an idle connection to another origin goes.
                other = idle.pop(0)
                kept.remove(other)
                closing.append(other)
            connection = self.create_connection(origin)
            kept.append(connection)
            request.assign_to_connection(connection)

        surplus = idle[: max(0, len(idle) - self._max_keepalive_connections)]
        if surplus:
            gone = {id(connection) for connection in surplus}
            kept = [connection for connection in kept if id(connection) not in gone]
            closing.extend(surplus)
        self._connections = kept
        return closing


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
