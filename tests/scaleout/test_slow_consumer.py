"""A client that never reads (issue 8, "slow consumer"): while a long reply streams to it, the
server's memory must stay bounded. A raw websocket client with a tiny receive buffer sends one
message and then never reads; we sample the Daphne process's resident memory as the reply
streams, after a reading client got the same reply (so caches and what a reply of that size costs
by itself are already paid for, and freed memory is reused). Sampling stops half a second before
the reply's last chunk: storing a 9 MiB reply then costs tens of MiB that the allocator keeps, the
same with or without a slow client, and would hide what this test is about.

The bound comes from flow control (chat/backpressure.py): a socket whose client leaves more than
CHAT_UNACKED_BYTES unacknowledged is closed (4008), so Daphne never holds more than about that
for it (measured: +0.2–0.4 MiB). Without it (the same test with a 1 GiB limit), resident memory
grew ~3 MiB/s once the kernel's socket buffers were full, +8.7 MiB by the end of the 9.2 MiB
reply, and stayed while the socket was open."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
import uuid

from websockets.exceptions import ConnectionClosed

from chat.backpressure import TOO_SLOW
from tests.fakes import Script
from tests.fakes.openai_server import FakeOpenAI
from tests.scaleout.clients import Socket, shopper_session
from tests.scaleout.conftest import Daphne, messages_stored

CHUNK = "x" * 4000 + " {n}. "  # ~4 KB a chunk
RATE = 400  # chunks a second: ~1.6 MB/s of reply text
COUNT = 2400  # 6 s, ~9.6 MB in all
WINDOW = 1024 * 1024  # CHAT_UNACKED_BYTES (its default), set explicitly on the process under test
# The two slow sockets may each leave the window (and a frame) in Daphne's buffers before they are
# closed; 1 MiB more for the rest of the process.
ALLOWED_GROWTH_KIB = (2 * WINDOW + 1024 * 1024) // 1024
ACK_EVERY = 32 * 1024  # as the pages do


def never_reading_socket(server: Daphne, session: str) -> socket.socket:
    """A websocket opened by hand (so nothing reads behind our back), with a small receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {server.origin}\r\nCookie: sessionid={session}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def text_frame(payload: str) -> bytes:
    """One masked client text frame (RFC 6455)."""
    data = payload.encode()
    mask = os.urandom(4)
    size = len(data)
    head = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + struct.pack("!H", size))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def reply_streams(fake: FakeOpenAI, count: int) -> None:
    fake.enqueue(Script.stream_forever(rate=RATE, count=count, text=CHUNK))


async def read_reply(sock: Socket, *, ack: bool) -> int | None:
    """Read like the pages do until `reply.end` (acking after it and every ACK_EVERY bytes), or
    without ever acking until the server closes the socket; returns its close code then."""
    frames = len(sock.frames)  # already received on this socket
    unacked = 0
    try:
        while True:
            raw = await sock.connection.recv()
            frames += 1
            unacked += len(raw)
            frame = json.loads(raw)
            if ack and (frame["type"] == "reply.end" or unacked >= ACK_EVERY):
                await sock.send({"type": "ack", "frames": frames})
                unacked = 0
            if frame["type"] == "reply.end":
                return None
    except ConnectionClosed:
        return sock.connection.close_code


async def rss_settled(server: Daphne) -> int:
    """The process's resident memory once it stops moving (a reply's end is stored after it is sent)."""
    previous = server.rss_kib()
    for _ in range(20):
        await asyncio.sleep(0.25)
        if (now := server.rss_kib()) == previous:
            return now
        previous = now
    return previous


def server_dropped(sock: socket.socket, timeout: float) -> bool:
    """Read what is left; True once the server's side is gone (end of stream or reset). A client
    that stopped reading never gets to the 4008 close frame, which waits behind what it did not
    read: Daphne (autobahn) drops the connection when the close handshake times out (1 s)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def test_a_client_that_never_reads_does_not_grow_server_memory_without_bound(
    fake_openai_server, scaleout_env, tmp_path
):
    fake_openai_server.reset()
    server = Daphne("A", {**scaleout_env, "CHAT_UNACKED_BYTES": str(WINDOW)}, tmp_path)
    try:
        server.wait_ready()
        await never_reading_client_is_cut_off(server, fake_openai_server, scaleout_env)
    finally:
        server.stop()
        print(f"----- Daphne {server.name} (port {server.port}) -----\n{server.log()}")
        fake_openai_server.reset()


async def never_reading_client_is_cut_off(server: Daphne, fake: FakeOpenAI, env: dict[str, str]) -> None:
    # Warm-up: the same reply to a client that reads and acks it — whole, never cut off.
    reader = await Socket.open(server, "/ws/chat/", await shopper_session(server))
    await reader.recv()
    reply_streams(fake, COUNT)
    await reader.say("Warm up")
    assert await read_reply(reader, ack=True) is None, "a client that acks gets the whole reply"
    await reader.close()
    baseline = await rss_settled(server)

    session = await shopper_session(server)
    # A second socket of the same shopper that reads as fast as it can but never acks.
    hasty = await Socket.open(server, "/ws/chat/", session)
    conversation_id = (await hasty.recv())["id"]
    hasty_closed = asyncio.create_task(read_reply(hasty, ack=False))
    sock = never_reading_socket(server, session)
    try:
        reply_streams(fake, COUNT)
        sock.sendall(
            text_frame(
                json.dumps({"type": "message", "text": "Tell me everything", "client_msg_id": str(uuid.uuid4())})
            )
        )
        request = (await asyncio.to_thread(fake.wait_for_requests, 2, 10))[-1]
        samples = []
        last_chunk = time.monotonic() + (COUNT - 1) / RATE
        while time.monotonic() < last_chunk - 0.5:
            await asyncio.sleep(0.25)
            samples.append(server.rss_kib() - baseline)
        await asyncio.to_thread(request.wait, 10)
        assert request.completed, "the reply streamed to its end while its clients did not read"
        figures = (
            f"RSS over the baseline every 0.25 s while {COUNT * len(CHUNK) // 1024} KiB streamed, "
            f"CHAT_UNACKED_BYTES {WINDOW // 1024} KiB: {samples} KiB"
        )
        print(figures)
        assert max(samples) < ALLOWED_GROWTH_KIB, figures
        assert await hasty_closed == TOO_SLOW, "closed by the server with 4008, long before the reply's end"
        assert server_dropped(sock, timeout=5), "the server let go of the socket that never read"
    finally:
        sock.close()
        hasty_closed.cancel()
    # The turn never waited for its clients: the reply is stored whole.
    deadline = time.monotonic() + 10
    while not (rows := messages_stored(env, conversation_id)) or rows[-1]["author"] != "bot":
        assert time.monotonic() < deadline, "the reply was never stored"
        await asyncio.sleep(0.1)
    assert rows[-1]["status"] == "complete" and len(str(rows[-1]["text"])) == sum(
        len(CHUNK.replace("{n}", str(n))) for n in range(COUNT)
    )
