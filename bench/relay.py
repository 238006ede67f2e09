"""The bare relay: the least an app can do to stream a model's reply to a websocket, for
chat_load.py to compare the real app against on the same machine, in the same run.

    .venv/bin/daphne -b 127.0.0.1 -p 18200 bench.relay:application   (with BENCH_UPSTREAM_URL set)

A plain ASGI app (no Django, no Channels, no database), served by the same Daphne as the app.
On connect it sends a `conversation` frame; on each `message` frame it POSTs to the upstream with
the httpx client settings and transport (chat/llm/transport.py) the app uses, and forwards every
content delta as its own `reply.delta` frame the moment it arrives, then `reply.end`. Its garbage
collector is set up as the app's (supportbot/runtime.py, GC_THRESHOLDS): a baseline that does not
pay a cost the app has removed. Not part of the tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec

from supportbot.runtime import gc_thresholds, gc_tune  # the garbage collector only: no Django

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

UPSTREAM = os.environ.get("BENCH_UPSTREAM_URL", "http://127.0.0.1:18100/v1")
_encoder = msgspec.json.Encoder()
_decode = msgspec.json.Decoder().decode
_client: httpx.AsyncClient | None = None


def _transport_module() -> Any:
    """chat/llm/transport.py, loaded by its path: importing the `chat` package would set up Django."""
    path = Path(__file__).resolve().parents[1] / "chat" / "llm" / "transport.py"
    spec = importlib.util.spec_from_file_location("relay_transport", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        # As the app's under the benchmark: its keep-alive limit follows LLM_MAX_CONCURRENCY (lifted).
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        _client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10, read=None, write=30, pool=10),
            limits=limits,
            transport=_transport_module().StreamingTransport(limits=limits),
        )
    return _client


async def reply(send: Send, text: str) -> None:
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": text}]}
    async with client().stream("POST", f"{UPSTREAM}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in _decode(line[6:]).get("choices") or ():
                if content := (choice.get("delta") or {}).get("content"):
                    await send(
                        {
                            "type": "websocket.send",
                            "text": _encoder.encode({"type": "reply.delta", "text": content}).decode(),
                        }
                    )
    await send({"type": "websocket.send", "text": '{"type":"reply.end","status":"complete"}'})


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    tasks: set[asyncio.Task[None]] = set()
    while True:
        event = await receive()
        if event["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": '{"type":"conversation","seq":0,"messages":[]}'})
        elif event["type"] == "websocket.receive":
            frame = _decode(event.get("text") or "{}")
            if frame.get("type") == "message":
                task = asyncio.create_task(reply(send, str(frame.get("text", ""))))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        elif event["type"] == "websocket.disconnect":
            for task in tasks:
                task.cancel()
            return


# Loaded: freeze it and set the collector as the app's process does (supportbot/asgi.py).
gc_tune(gc_thresholds(os.environ.get("GC_THRESHOLDS")))
