"""The shared httpx client for model calls: one connection pool per event loop."""

from __future__ import annotations

import asyncio
import weakref
from urllib.request import getproxies

import httpx
from django.conf import settings

from chat.llm.transport import StreamingTransport

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def http_client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        # Idle connections kept for the next turn (each for 5 s, httpx's keep-alive): as many as
        # requests may be in flight, so a busy process does not connect again per reply.
        keepalive = max(100, settings.LLM_MAX_CONCURRENCY)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=keepalive)
        client = httpx.AsyncClient(
            # Reads are timed per chunk by the streaming client (first token vs. idle), not here.
            timeout=httpx.Timeout(connect=settings.LLM_CONNECT_TIMEOUT, read=None, write=30.0, pool=10.0),
            limits=limits,
            headers={"User-Agent": "supportbot/0.1"},
            # Cheaper reads per token (chat/llm/transport.py). With HTTP(S)_PROXY set, httpx's own
            # transport, which goes through the proxy (a transport given here would not).
            transport=None if getproxies() else StreamingTransport(limits=limits),
        )
        _clients[loop] = client
    return client
