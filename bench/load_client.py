"""Simulated shoppers for chat_load.py: one process drives many websockets (a minimal RFC 6455
client on asyncio streams, so nothing but the standard library and msgspec is needed).

Started by chat_load.py, never by hand. Protocol with its parent, over stdin/stdout lines:
the worker connects every shopper (`GET /` for a session cookie first with --session), prints
`connected`, waits for `go <monotonic start>`, then each shopper sends --turns messages (its first
after a random offset within --spread seconds, the next ones a short pause after `reply.end`),
and the worker prints one JSON line of results. `--idle` only connects, prints `connected`, and
holds the sockets open until stdin closes.

Every token is matched exactly (see upstream_sim.token_parse): per token the delay between the
upstream writing it and this process reading the frame that carries it; per turn the time from
sending the message to the upstream having the request; lost, duplicated and out-of-order tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import struct
import sys
import time
import traceback
import uuid
from typing import Any

import msgspec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from upstream_sim import now_us, token_parse

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, cookie: str = "") -> WebSocket:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: http://{host}:{port}",
        ]
        if cookie:
            headers.append(f"Cookie: {cookie}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return cls(reader, writer)

    def send_text(self, text: str | bytes) -> None:
        self._send(0x1, text.encode() if isinstance(text, str) else text)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        key = int.from_bytes((mask * (length // 4 + 1))[:length], "big")
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(length, "big")
        self.writer.write(head + mask + masked)

    async def recv(self) -> str | None:
        """The next text frame, or None when the server closes."""
        reader = self.reader
        while True:
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            payload = await reader.readexactly(length) if length else b""
            opcode = first & 0x0F
            if opcode == 0x1:
                return payload.decode()
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                return None

    def close(self) -> None:
        try:
            self._send(0x8, struct.pack("!H", 1000))
        finally:
            self.writer.close()


def _masking_check() -> None:
    # The masking above works on whole integers; check it against the obvious byte loop once.
    ws = WebSocket.__new__(WebSocket)
    sent: list[bytes] = []
    ws.writer = type("W", (), {"write": lambda self, data: sent.append(data)})()
    for payload in (b"", b"a", b"abcd", b"abcdefg", b"x" * 300):
        sent.clear()
        ws._send(0x1, payload)
        frame = sent[0]
        offset = 2 if len(payload) < 126 else 4
        mask, body = frame[offset : offset + 4], frame[offset + 4 :]
        assert bytes(b ^ mask[i % 4] for i, b in enumerate(body)) == payload


async def session_cookie(host: str, port: int) -> str:
    """GET / like a browser opening the chat page: the session cookie binds the conversation."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    writer.close()
    cookies = [
        line.split(":", 1)[1].strip().split(";", 1)[0]
        for line in head.split("\r\n")
        if line.lower().startswith("set-cookie:")
    ]
    return "; ".join(cookies)


class Results:
    def __init__(self) -> None:
        self.delays: list[int] = []  # µs, upstream write → frame read, per token
        self.overheads: list[int] = []  # µs, message sent → upstream has the request, per turn
        self.first_tokens: list[int] = []  # µs, message sent → its reply's first token read, per turn
        self.replies: list[int] = []  # µs, message sent → reply.end read, per turn
        self.tokens = self.lost = self.duplicated = self.reordered = self.turns = 0
        self.frames = 0  # reply.delta frames: tokens / frames is how much the app coalesced
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.first = self.last = 0

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items()}


async def shopper_connect(args: argparse.Namespace, entry: asyncio.Semaphore) -> WebSocket:
    """Open the chat page and its socket, as a browser does; return once the `conversation`
    frame arrived. At most --connect-concurrency shoppers connect at once (a crowd arriving,
    not one instant): the connect burst is not what this benchmark measures."""
    async with entry, asyncio.timeout(args.connect_timeout):
        cookie = await session_cookie(args.host, args.port) if args.session else ""
        ws = await WebSocket.connect(args.host, args.port, "/ws/chat/", cookie)
        first = await ws.recv()
        while first is not None and '"type":"ping"' in first:  # a heartbeat may come first
            first = await ws.recv()
        if first is None or '"conversation"' not in first:
            ws.writer.close()
            raise ConnectionError(f"no conversation frame: {first!r:.200}")
        return ws


async def shopper(
    args: argparse.Namespace,
    number: int,
    results: Results,
    ready: asyncio.Queue[int],
    go: asyncio.Future[float],
    entry: asyncio.Semaphore,
) -> None:
    rng = random.Random(args.seed * 100_003 + number)
    try:
        ws = await shopper_connect(args, entry)
    except Exception as exc:
        # Counted (its tokens are lost tokens in chat_load.py) and out of the run.
        key = f"connect:{type(exc).__name__}"
        if key not in results.errors:
            print(f"shopper {number}: {exc!r:.300}", file=sys.stderr, flush=True)
        results.errors[key] = results.errors.get(key, 0) + 1
        ready.put_nowait(-1)
        return
    ready.put_nowait(number)
    start = await go
    deadline = start + args.deadline
    await asyncio.sleep(max(0.0, start + rng.random() * args.spread - time.monotonic()))
    queries: list[str] = args.query_list
    for _ in range(args.turns):
        text = rng.choice(queries)
        sent = now_us()
        ws.send_text(_encode({"type": "message", "text": text, "client_msg_id": str(uuid.uuid4())}))
        expected = 0
        seen: set[int] = set()
        while True:
            left = deadline - time.monotonic()
            try:
                async with asyncio.timeout(min(args.turn_timeout, max(0.0, left))):
                    raw = await ws.recv()
            except TimeoutError:
                # A saturated app: the run ends at --deadline all the same, with what it lost.
                key = "turn_timeout" if left > args.turn_timeout else "deadline"
                results.errors[key] = results.errors.get(key, 0) + 1
                return
            received = now_us()
            if raw is None:
                results.errors["closed"] = results.errors.get("closed", 0) + 1
                return
            frame = _decode(raw)
            kind = frame.get("type")
            if kind == "reply.delta":
                tokens, arrival = token_parse(frame["text"], received)
                if arrival is not None:
                    results.overheads.append(arrival - sent)
                if not seen and tokens:
                    results.first_tokens.append(received - sent)
                for index, sent_at in tokens:
                    results.delays.append(received - sent_at)
                    if index in seen:
                        results.duplicated += 1
                    elif index != expected:
                        results.reordered += 1
                    seen.add(index)
                    expected = max(expected, index + 1)
                results.tokens += len(tokens)
                results.frames += 1
                results.first = results.first or received
                results.last = received
            elif kind == "reply.end":
                status = frame.get("status", "?")
                results.statuses[status] = results.statuses.get(status, 0) + 1
                results.replies.append(received - sent)
                results.lost += args.tokens - len(seen)
                break
            elif kind == "error":
                code = frame.get("code", "?")
                results.errors[code] = results.errors.get(code, 0) + 1
                if "message_id" not in frame:  # a frame error: no reply follows
                    break
        results.turns += 1
        await asyncio.sleep(args.think * (0.5 + rng.random()))
    ws.close()


async def idle(args: argparse.Namespace) -> None:
    sockets = []
    failures = 0
    for batch in range(0, args.count, 100):
        opened = await asyncio.gather(
            *(WebSocket.connect(args.host, args.port, "/ws/chat/") for _ in range(min(100, args.count - batch))),
            return_exceptions=True,
        )
        for ws in opened:
            if isinstance(ws, WebSocket):
                sockets.append(ws)
            else:
                failures += 1
        firsts = await asyncio.gather(*(ws.recv() for ws in sockets[-len(opened) :]), return_exceptions=True)
        failures += sum(1 for f in firsts if not isinstance(f, str))
    print(json.dumps({"connected": len(sockets), "failures": failures}), flush=True)
    # Keep answering pings while the parent measures; stdin closing means done.
    readers = [asyncio.create_task(_drain(ws)) for ws in sockets]
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for task in readers:
        task.cancel()
    for ws in sockets:
        ws.close()


async def _drain(ws: WebSocket) -> None:
    while await ws.recv() is not None:
        pass


async def load(args: argparse.Namespace) -> None:
    results = Results()
    ready: asyncio.Queue[int] = asyncio.Queue()
    go: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    entry = asyncio.Semaphore(args.connect_concurrency)
    tasks = [asyncio.create_task(shopper(args, args.first + i, results, ready, go, entry)) for i in range(args.count)]
    waiting = asyncio.ensure_future(asyncio.gather(*tasks, return_exceptions=True))
    connected = 0
    while connected < args.count and not waiting.done():
        getter: asyncio.Future[Any] = asyncio.ensure_future(ready.get())
        await asyncio.wait({getter, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            connected += 1
        else:
            getter.cancel()
    print("connected", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    go.set_result(float(line.split()[1]))
    for outcome in await waiting:
        if isinstance(outcome, BaseException):
            name = type(outcome).__name__
            if not results.errors.get(name):
                traceback.print_exception(outcome, file=sys.stderr)
            results.errors[name] = results.errors.get(name, 0) + 1
    print(json.dumps(results.as_dict()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="number of this worker's first shopper")
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=200, help="tokens the upstream sends per reply")
    parser.add_argument("--spread", type=float, default=2.0)
    parser.add_argument("--think", type=float, default=0.5)
    parser.add_argument("--session", action="store_true")
    parser.add_argument("--queries", default="", help="JSON file with a list of shopper messages")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--turn-timeout", type=float, default=60.0, help="seconds without a frame mid-turn")
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds after the start the run ends at")
    parser.add_argument("--connect-concurrency", type=int, default=20, help="shoppers connecting at once")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="seconds to get the conversation frame")
    parser.add_argument("--idle", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    _masking_check()
    if args.idle:
        asyncio.run(idle(args))
        return
    with open(args.queries) as file:
        args.query_list = json.load(file)
    asyncio.run(load(args))


if __name__ == "__main__":
    main()
