"""A loopback OpenAI-compatible model that streams a fixed reply at a set rate, for chat_load.py.

    .venv/bin/python bench/upstream_sim.py --port 18100 [--tokens 200] [--rate 50] [--ttft 0.2]

`POST /v1/chat/completions` (any body; only `stream` is honoured, always on) answers after
--ttft seconds with --tokens content chunks, one every 1/--rate seconds, then a finish chunk,
the usage chunk and `data: [DONE]` — the OpenAI streaming format over HTTP/1.1 keep-alive with
chunked encoding. Any number of concurrent requests: one scheduler (a heap of due times, woken
once per millisecond at most) writes every stream, so 50 000 chunks/s cost one loop, not 50 000
timers. No framework, no limits, nothing retried.

Each chunk is stamped so a client can match it exactly (see `token_text` / `token_parse`):
the first content chunk is `|@<arrival>` (when this request's body had fully arrived), then
`|<index>.<sent>` for index 0, 1, 2…; times are CLOCK_MONOTONIC microseconds (the same clock in
every process of the machine) modulo 2**32, in hex. Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import os
import signal
import time

import msgspec

WRAP = 1 << 32  # stamps are microseconds modulo this (about 71 minutes)


def now_us() -> int:
    return time.monotonic_ns() // 1000


def stamp(us: int) -> str:
    return format(us % WRAP, "x")


def unwrap(stamp_us: int, reference_us: int) -> int:
    """The full microsecond time nearest to `reference_us` whose low bits are `stamp_us`."""
    base = reference_us - reference_us % WRAP + stamp_us
    candidates = (base - WRAP, base, base + WRAP)
    return min(candidates, key=lambda value: abs(value - reference_us))


def token_text(index: int) -> str:
    return f"|{index:x}.{stamp(now_us())}"


def token_parse(text: str, reference_us: int) -> tuple[list[tuple[int, int]], int | None]:
    """The (index, sent µs) pairs in a run of reply text, and the request's arrival time if the
    text holds it."""
    tokens: list[tuple[int, int]] = []
    arrival = None
    for part in text.split("|"):
        if not part:
            continue
        if part[0] == "@":
            arrival = unwrap(int(part[1:], 16), reference_us)
            continue
        index, _, sent = part.partition(".")
        tokens.append((int(index, 16), unwrap(int(sent, 16), reference_us)))
    return tokens, arrival


_encode = msgspec.json.Encoder().encode


def _chunk(content: str | None, *, finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": {"content": content} if content else {}, "finish_reason": finish}]
    body = _encode(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "bench",
            "choices": choices,
            "usage": usage,
        }
    )
    event = b"data: " + body + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


DONE = b"data: [DONE]\n\n"
HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)


class Stream:
    __slots__ = ("arrival", "done", "index", "transport")

    def __init__(self, transport: asyncio.Transport, arrival: int) -> None:
        self.transport = transport
        self.arrival = arrival
        self.index = -1  # -1: the arrival stamp is next
        self.done = asyncio.get_running_loop().create_future()


class Upstream:
    def __init__(self, *, tokens: int, rate: float, ttft: float) -> None:
        self.tokens = tokens
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.ttft = ttft
        self._heap: list[tuple[float, int, Stream]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self.requests = 0
        self.chunks = 0

    def start(self, transport: asyncio.Transport, arrival: int) -> asyncio.Future[None]:
        self.requests += 1
        stream = Stream(transport, arrival)
        transport.write(HEAD)
        heapq.heappush(self._heap, (time.monotonic() + self.ttft, next(self._order), stream))
        self._wake.set()
        return stream.done

    async def run(self) -> None:
        heap = self._heap
        while True:
            if not heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = time.monotonic()
            due = heap[0][0]
            if due > now:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(due - now, 0.0005))
                continue
            # Write everything due now; a stream falling behind schedule keeps its own pace.
            while heap and heap[0][0] <= now:
                when, _, stream = heapq.heappop(heap)
                if self._step(stream):
                    heapq.heappush(heap, (max(when + self.interval, now), next(self._order), stream))
            await asyncio.sleep(0)

    def _step(self, stream: Stream) -> bool:
        """Write the stream's next chunk; False when it is over."""
        transport = stream.transport
        if transport.is_closing():
            if not stream.done.done():
                stream.done.set_result(None)
            return False
        if stream.index == -1:
            transport.write(_chunk(f"|@{stamp(stream.arrival)}"))
        elif stream.index < self.tokens:
            transport.write(_chunk(token_text(stream.index)))
            self.chunks += 1
        else:
            tail = _chunk(None, finish="stop")
            usage = {"prompt_tokens": 500, "completion_tokens": self.tokens + 1, "total_tokens": 501 + self.tokens}
            transport.write(tail + _chunk(None, usage=usage) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(DONE), DONE))
            if not stream.done.done():
                stream.done.set_result(None)
            return False
        stream.index += 1
        return True


class Connection(asyncio.Protocol):
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._next()

    def _next(self) -> None:
        if self.busy or self.transport is None:
            return
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].decode("latin-1")
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return
        arrival = now_us()
        self.buffer = self.buffer[end:]
        if not head.startswith("POST"):
            self.transport.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            self._next()
            return
        self.busy = True
        self.upstream.start(self.transport, arrival).add_done_callback(self._finished)

    def _finished(self, _: asyncio.Future[None]) -> None:
        self.busy = False
        self._next()


async def serve(host: str, port: int, upstream: Upstream) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(upstream), host, port, backlog=4096)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.create_task(upstream.run())
    print(f"upstream ready on http://{host}:{port}/v1 (pid {os.getpid()})", flush=True)
    async with server:
        await stop.wait()
    runner.cancel()
    print(f"upstream: {upstream.requests} requests, {upstream.chunks} token chunks", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18100)
    parser.add_argument("--tokens", type=int, default=200, help="content chunks per reply")
    parser.add_argument("--rate", type=float, default=50.0, help="chunks per second per stream (0: no pause)")
    parser.add_argument("--ttft", type=float, default=0.2, help="seconds before the first chunk")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, Upstream(tokens=args.tokens, rate=args.rate, ttft=args.ttft)))


if __name__ == "__main__":
    main()
