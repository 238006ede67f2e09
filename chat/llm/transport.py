"""httpx's transport over asyncio streams, for the long-lived streaming requests to the model.

httpx reaches the network through httpcore, and httpcore on asyncio through anyio. anyio's
socket stream stops reading after every chunk and starts again before the next
(`transport.pause_reading()` / `resume_reading()`: two `epoll_ctl` calls and selector
bookkeeping per read), so that nothing is buffered unread. A streamed reply arrives a token per
chunk, so that was paid per token per chat: 8 % of the app's CPU at 500 chats (py-spy,
bench/chat_load.py, docs/benchmarks.md). asyncio's own StreamReader buffers up to its limit and
pauses only then.

The rest is httpx's: `AsyncioTransport` is httpx's AsyncHTTPTransport with the same connection
pool, given this network backend. httpx has no argument for it (httpcore does), so the pool it
built is replaced (`_pool`; httpx is pinned, and tests/chat/llm/test_transport.py checks that
the streams are these).
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


class AsyncioTransport(httpx.AsyncHTTPTransport):
    """httpx.AsyncHTTPTransport (no proxy) whose connections are AsyncioStreams."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            # What httpx would use: certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR.
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
