"""chat/llm/transport.py: httpx over asyncio's protocols and httptools, against real servers on
loopback (plain HTTP/1.1 and TLS with a throwaway CA)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import trustme

from chat.llm.transport import StreamingTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=10)


class Server:
    """An HTTP/1.1 server on loopback that runs `handler` per connection and counts them."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    return await reader.readexactly(length) if length else b""


def answer(body: bytes, *, close: bool = False) -> bytes:
    connection = b"close" if close else b"keep-alive"
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: %s\r\n\r\n%s" % (len(body), connection, body)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingTransport(limits=LIMITS), timeout=2.0) as http:
        yield http


async def test_each_chunk_of_a_stream_arrives_before_the_next_is_sent(client):
    got_first = asyncio.Event()

    async def stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for data in (b"data: one\n\n", b"data: two\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            # Nothing more until the client has read this one: a buffering transport hangs here.
            await asyncio.wait_for(got_first.wait(), 2.0)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    lines = []
    async with Server(stream) as server, client.stream("POST", f"http://127.0.0.1:{server.port}/") as response:
        assert response.extensions["network_stream"].get_extra_info("server_addr")[1] == server.port
        async for line in response.aiter_lines():
            if line:
                lines.append(line)
                got_first.set()
    assert lines == ["data: one", "data: two"]


async def test_a_kept_alive_connection_is_reused(client):
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(b"ok"))
            await writer.drain()

    async with Server(keep_alive) as server:
        for _ in range(3):
            assert (await client.get(f"http://127.0.0.1:{server.port}/")).text == "ok"
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_not_reused(client):
    async def one_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Says keep-alive, then closes anyway once idle (as servers do after their idle timeout).
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()

    async with Server(one_answer) as server:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.get(url)).text == "ok"
        await asyncio.sleep(0.1)  # the close reaches the client's socket
        assert (await client.get(url)).text == "ok"
    assert server.connections == 2


class HeldAnswers:
    """A keep-alive handler: `/hold/<name>` is answered once `release(name)` is called, `/now`
    at once; `arrived` counts requests read, `connections` the server's connections so far."""

    def __init__(self) -> None:
        self.events: dict[str, asyncio.Event] = {}
        self.arrived = 0

    def release(self, *names: str) -> None:
        for name in names:
            self.events.setdefault(name, asyncio.Event()).set()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            self.arrived += 1
            path = head.split(b" ")[1].decode()
            if path.startswith("/hold/"):
                await self.events.setdefault(path.removeprefix("/hold/"), asyncio.Event()).wait()
            writer.write(answer(path.encode()))
            await writer.drain()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not condition():
            await asyncio.sleep(0.005)


async def held(http: httpx.AsyncClient, handler: HeldAnswers, urls: list[str]) -> list[asyncio.Task[httpx.Response]]:
    """Send every request at once; return once the server holds them all (each on a connection)."""
    arrived = handler.arrived + len(urls)
    tasks = [asyncio.create_task(http.get(url)) for url in urls]
    await until(lambda: handler.arrived == arrived)
    return tasks


async def test_connections_are_kept_alive_while_more_than_the_limit_are_busy(client):
    # httpcore 1.0.9's pool (before chat/llm/transport.py's) closed a finished connection whenever it held more than
    # the keep-alive limit (10 here) in all, busy ones included: the next request connected again.
    handler = HeldAnswers()
    async with Server(handler) as server:
        base = f"http://127.0.0.1:{server.port}"
        streams = await held(client, handler, [f"{base}/hold/{i}" for i in range(15)])
        handler.release(*(str(i) for i in range(5)))
        assert [(await streams[i]).text for i in range(5)] == [f"/hold/{i}" for i in range(5)]
        # Ten still streaming; the five idle ones take the next five requests.
        again = await asyncio.gather(*(client.get(f"{base}/now") for _ in range(5)))
        assert [r.text for r in again] == ["/now"] * 5
        assert server.connections == 15
        handler.release(*(str(i) for i in range(5, 15)))
        assert [(await task).text for task in streams[5:]] == [f"/hold/{i}" for i in range(5, 15)]


async def test_idle_connections_beyond_the_limit_are_closed_and_each_request_has_its_own(client):
    handler = HeldAnswers()
    async with Server(handler) as server:
        base = f"http://127.0.0.1:{server.port}"
        first = await held(client, handler, [f"{base}/hold/a"] * 15)
        handler.release("a")
        await asyncio.gather(*first)
        # 15 idle, 10 kept. 12 requests answered only once all 12 are in: two given one
        # connection would never all arrive.
        second = await held(client, handler, [f"{base}/hold/b"] * 12)
        handler.release("b")
        assert [(await task).text for task in second] == ["/hold/b"] * 12
        assert server.connections == 15 + 2


async def test_a_connection_idle_past_its_keep_alive_expiry_is_not_reused():
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=10, keepalive_expiry=0.1)
    handler = HeldAnswers()
    async with (
        httpx.AsyncClient(transport=StreamingTransport(limits=limits), timeout=2.0) as http,
        Server(handler) as server,
    ):
        url = f"http://127.0.0.1:{server.port}/now"
        assert (await http.get(url)).text == "/now"
        assert (await http.get(url)).text == "/now"
        assert server.connections == 1
        await asyncio.sleep(0.2)
        assert (await http.get(url)).text == "/now"
        assert server.connections == 2


async def test_a_refused_connection_is_a_connect_error(client):
    async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pass

    async with Server(nothing) as server:
        port = server.port  # closed again: nothing listens there now
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/")


async def test_a_silent_server_is_a_read_timeout():
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with Server(silent) as server:
        transport = StreamingTransport(limits=LIMITS)
        async with httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(2.0, read=0.2)) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"http://127.0.0.1:{server.port}/")


async def test_a_server_that_breaks_off_mid_body_is_an_error(client):
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()

    async with Server(cut) as server:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_body_without_a_length_ends_with_the_connection(client):
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"it")
        await writer.drain()

    async with Server(until_close) as server:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.get(url)).text == "all of it"
        assert (await client.get(url)).text == "all of it"
    assert server.connections == 2  # a body ended by the close leaves nothing to reuse


async def test_an_interim_answer_is_skipped_for_the_real_one(client):
    async def with_interim(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n")
            writer.write(answer(b"final"))
            await writer.drain()

    async with Server(with_interim) as server:
        url = f"http://127.0.0.1:{server.port}/"
        for _ in range(2):
            response = await client.get(url)
            assert (response.status_code, response.text, "link" in response.headers) == (200, "final", False)
    assert server.connections == 1


async def test_a_streamed_request_body_arrives_whole_in_chunks_and_a_sized_one_as_it_is(client):
    received: list[tuple[bytes, bytes]] = []

    async def echo_head_and_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            if b"transfer-encoding: chunked" in head.lower():
                body = b""
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    body += (await reader.readexactly(size + 2))[:-2]
                await reader.readexactly(2)
            else:
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
            received.append((head, body))
            writer.write(answer(b"%d" % len(body)))
            await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        for i in range(3):
            yield b"part %d;" % i

    async with Server(echo_head_and_body) as server:
        url = f"http://127.0.0.1:{server.port}/upload"
        assert (await client.post(url, content=parts())).text == str(len(b"part 0;part 1;part 2;"))
        # A multipart upload (as chat/llm/transcribe.py sends a voice note) has its length.
        note = bytes(range(256)) * 4096  # 1 MiB: more than one write's worth
        uploaded = await client.post(url, files={"file": ("note.webm", note, "audio/webm")}, data={"model": "m"})
    assert received[0][1] == b"part 0;part 1;part 2;"
    assert note in received[1][1] and int(uploaded.text) == len(received[1][1])
    assert server.connections == 1


async def test_a_body_larger_than_the_read_buffer_arrives_whole(client):
    big = bytes(range(256)) * 8192  # 2 MiB, read slowly: the socket is paused and resumed

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer(big))
            await writer.drain()

    async with Server(large) as server, client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
        received = b""
        async for piece in response.aiter_raw():
            received += piece
            await asyncio.sleep(0.01)
        assert received == big
        assert (await client.get(f"http://127.0.0.1:{server.port}/")).content == big
    assert server.connections == 1


async def test_a_reader_that_falls_behind_stops_the_socket_rather_than_buffering_the_body(client):
    big = bytes(range(256)) * (128 * 1024)  # 32 MiB: more than the kernel's buffers on both sides hold
    sent = asyncio.Event()

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(big))
        await writer.drain()
        sent.set()
        await reader.read()

    async with Server(large) as server, client.stream("GET", f"http://127.0.0.1:{server.port}/") as response:
        pieces = response.aiter_raw()
        received = await anext(pieces)
        await asyncio.sleep(0.3)
        assert not sent.is_set()  # the rest waits in the server, not in this process
        async for piece in pieces:
            received += piece
        assert received == big and sent.is_set()


async def test_a_response_closed_before_its_end_does_not_leave_its_connection_for_reuse(client):
    handler = HeldAnswers()

    async def long_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if b"/long" in head:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nten bytes.")
            await writer.drain()
            await reader.read()  # until the client gives up on it
            return
        writer.write(answer(b"short"))
        await writer.drain()
        await handler(reader, writer)

    async with Server(long_body) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with client.stream("GET", f"{base}/long") as response:
            assert await anext(response.aiter_raw()) == b"ten bytes."
        assert (await client.get(f"{base}/now")).text == "short"
    assert server.connections == 2


def sends_then_waits(raw: bytes) -> Handler:
    """A handler that answers one request with `raw` and keeps the connection until the client closes it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(raw)
        await writer.drain()
        await reader.read()

    return handler


async def test_a_malformed_response_is_a_protocol_error(client):
    async with Server(sends_then_waits(b"HTTP/1.1 200 OK\r\ncontent-length: nonsense\r\n\r\n")) as server:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed response"):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_server_that_closes_without_answering_is_a_protocol_error(client):
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with Server(hang_up) as server:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.get(f"http://127.0.0.1:{server.port}/")


async def test_a_head_request_ends_at_the_head(client):
    async with Server(sends_then_waits(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")) as server:
        response = await client.head(f"http://127.0.0.1:{server.port}/")
    assert (response.status_code, response.headers["content-length"], response.content) == (200, "1234", b"")


async def test_at_the_connection_limit_a_request_waits_for_one_and_gives_up_at_the_pool_timeout():
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    handler = HeldAnswers()
    async with (
        httpx.AsyncClient(transport=StreamingTransport(limits=limits), timeout=httpx.Timeout(2.0, pool=0.2)) as http,
        Server(handler) as server,
    ):
        base = f"http://127.0.0.1:{server.port}"
        streams = await held(http, handler, [f"{base}/hold/a", f"{base}/hold/b"])
        with pytest.raises(httpx.PoolTimeout):
            await http.get(f"{base}/now")
        waiting = asyncio.create_task(http.get(f"{base}/now"))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # both connections busy
        handler.release("a")
        assert (await waiting).text == "/now"  # on the connection "a" let go
        handler.release("b")
        await asyncio.gather(*streams)
        assert server.connections == 2


async def test_a_cancelled_request_frees_its_connection_slot():
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    handler = HeldAnswers()
    async with (
        httpx.AsyncClient(transport=StreamingTransport(limits=limits), timeout=httpx.Timeout(2.0, pool=0.5)) as http,
        Server(handler) as server,
    ):
        base = f"http://127.0.0.1:{server.port}"
        (stuck,) = await held(http, handler, [f"{base}/hold/never"])
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert (await http.get(f"{base}/now")).text == "/now"
        assert server.connections == 2  # the cancelled one's connection was closed, not reused


async def test_https_with_a_trusted_certificate_and_refused_with_an_untrusted_one(monkeypatch, tmp_path):
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)

    async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"secure"))
        await writer.drain()
        await reader.read()  # open until the client is done

    async with Server(hello, ssl_context=server_context) as server:
        url = f"https://localhost:{server.port}/"
        # Not trusted by the default bundle: refused.
        async with httpx.AsyncClient(transport=StreamingTransport(limits=LIMITS), timeout=2.0) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(url)
        # Trusted through SSL_CERT_FILE, as an operator with a private CA would configure it.
        bundle = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        trusting = httpx.AsyncClient(transport=StreamingTransport(limits=LIMITS), timeout=2.0)
        async with trusting, trusting.stream("GET", url) as response:
            assert response.extensions["network_stream"].get_extra_info("ssl_object") is not None
            assert (await response.aread()) == b"secure"


async def test_the_model_client_goes_through_the_environments_proxy(monkeypatch):
    """httpx honours HTTP(S)_PROXY only with its own transport: with a proxy configured the app's
    client keeps it (chat/llm/http.py)."""
    from chat.llm.http import http_client

    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n")[0])
        writer.write(answer(b"via proxy", close=True))
        await writer.drain()

    async with Server(proxy) as server:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        response = await http_client().get("http://model.invalid/v1/models")
    assert response.text == "via proxy"
    assert seen == [b"GET http://model.invalid/v1/models HTTP/1.1"]


async def test_the_app_keeps_as_many_connections_alive_as_requests_may_be_in_flight(settings):
    from chat.llm.http import http_client

    settings.LLM_MAX_CONCURRENCY = 150
    handler = HeldAnswers()
    async with Server(handler) as server:
        url = f"http://127.0.0.1:{server.port}/hold/x"
        first = await held(http_client(), handler, [url] * 120)
        handler.release("x")
        await asyncio.gather(*first)
        # More than the floor of 100 idle at once, all kept for the next turns.
        again = await asyncio.gather(*(http_client().get(url) for _ in range(120)))
        assert {r.text for r in again} == {"/hold/x"}
        assert server.connections == 120
    await http_client().aclose()
