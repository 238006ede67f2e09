"""The model client's own CPU per streamed chunk, against a bare read of the same stream.

    .venv/bin/python bench/stream_client.py [--tokens 2000] [--rounds 15] [--streams 1] [--rate 0]

Starts bench/upstream_sim.py with no pause between chunks and reads its reply, in rounds that
alternate (so both see the same machine):

- bare: httpx over the app's transport, `aiter_lines`, msgspec decoding each `data:` line —
  bench/relay.py's read, the least a reader can do;
- app: `chat.llm.chat_client_get()` — the tool loop, the router (pool slot, failover), the client
  (SSE framing, chunk events, the per-chunk timer): the path every token of a turn takes before
  the turn's coalescer.

Prints the median CPU time per chunk of each (µs, process CPU over the round) and app / bare.
--streams reads that many replies at once; --rate paces each reply's chunks (per second; 0: no
pause, many chunks per network read). Under load each network read brings a chunk or a few:
`--streams 200 --rate 50 --tokens 200` is that case, where what a reader costs per read counts
more than what it costs per byte. Not part of the tests; chat_load.py measures the whole app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PORT = 18190
UPSTREAM = f"http://127.0.0.1:{PORT}/v1"

os.environ.setdefault("SUPPORTBOT_ENV_FILE", "/dev/null")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
os.environ.pop("DATABASE_URL", None)  # the client reads no database
os.environ.pop("REDIS_URL", None)
os.environ["LLM_BASE_URL"] = UPSTREAM
os.environ["LLM_API_KEY"] = "bench"
os.environ["LLM_MODEL"] = "bench"

import django  # noqa: E402

django.setup()

import msgspec  # noqa: E402

from chat.llm import chat_client_get  # noqa: E402
from chat.llm.http import http_client  # noqa: E402
from chat.llm.types import ChatRequest, TextDelta  # noqa: E402

_decode = msgspec.json.Decoder().decode
BODY = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "hello"}]}


async def bare() -> int:
    chunks = 0
    async with http_client().stream("POST", f"{UPSTREAM}/chat/completions", json=BODY) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in _decode(line[6:]).get("choices") or ():
                if (choice.get("delta") or {}).get("content"):
                    chunks += 1
    return chunks


async def app() -> int:
    chunks = 0
    request = ChatRequest(messages=[{"role": "user", "content": "hello"}], tools=())
    async for event in chat_client_get().stream(request):
        if isinstance(event, TextDelta):
            chunks += 1
    return chunks


async def round_of(reader: str, streams: int) -> float:
    """µs of process CPU per content chunk, over `streams` replies read at once."""
    read = bare if reader == "bare" else app
    cpu = time.process_time()
    counts = await asyncio.gather(*(read() for _ in range(streams)))
    return (time.process_time() - cpu) * 1e6 / sum(counts)


async def run(args: argparse.Namespace) -> None:
    results: dict[str, list[float]] = {"bare": [], "app": []}
    for reader in ("bare", "app"):  # warm-up: connections, imports, caches
        await round_of(reader, args.streams)
    for _ in range(args.rounds):
        for reader in ("bare", "app"):
            results[reader].append(await round_of(reader, args.streams))
    bare_us, app_us = statistics.median(results["bare"]), statistics.median(results["app"])
    pace = f"{args.rate:g} a second" if args.rate else "no pause"
    print(f"{args.tokens} chunks ({pace}) x {args.streams} stream(s), {args.rounds} rounds; median CPU per chunk:")
    print(f"  bare read  {bare_us:7.1f} µs")
    print(f"  app client {app_us:7.1f} µs   ({app_us / bare_us:.2f}x bare, +{app_us - bare_us:.1f} µs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0, help="chunks per second per reply (0: no pause)")
    args = parser.parse_args()
    sim_args = ["--port", str(PORT), "--tokens", str(args.tokens), "--rate", str(args.rate), "--ttft", "0"]
    sim_args = [sys.executable, str(ROOT / "bench" / "upstream_sim.py"), *sim_args]
    sim = subprocess.Popen(sim_args, stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        asyncio.run(run(args))
    finally:
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
