"""Django's ASGI handler, with the requests' synchronous work on a few long-lived threads.

Django's handler gives every HTTP request a thread of its own (asgiref's ThreadSensitiveContext
without an executor), started for that request and gone after it. On PostgreSQL every page that
touches the database therefore opens a new connection: PostgreSQL starts a backend process for
it, the app spends ~0.7 ms of CPU on the connect (bench/chat_load.py, seventh round), and a burst
of page loads holds as many connections as there are requests in flight, until their threads are
collected ("too many clients" at 1000 chats, docs/benchmarks.md).

Here each request's synchronous work (middleware, view, request signals) runs on one of
HTTP_THREADS threads: the one with the fewest requests in flight when the request arrives. A
request stays on its thread from start to end, as under Django's handler; requests that share a
thread take turns on it between their awaits (their synchronous calls run there one at a time,
as channels' database calls do on its one thread). A thread keeps its database connection
between requests, checked as each request starts by Django (CONN_MAX_AGE, errors) and for a
server that has closed it (supportbot/connections.py), so the process holds at most HTTP_THREADS
connections for HTTP, and a database restart costs no request an error. HTTP_THREADS=0 keeps
Django's thread per request.

The middleware chain and the view run in one call on that thread, as under WSGI. Django's
handler builds an asynchronous chain, and every middleware written for both modes
(MiddlewareMixin: all of Django's, WhiteNoise's, django-csp's) then hands its `process_request`
and `process_response` to the request's thread as calls of their own (asgiref's sync_to_async,
each with its context copied there and back): 19 handovers a page with this project's ten
middleware, 3 with one chain (tests/test_http.py); a page load's CPU went from 3.03 to 2.07 ms
(bench/page_load.py). An async view still runs on the event loop (Django's `async_to_sync` from
the request's thread).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started

from supportbot.connections import connections_dead_close


class PooledASGIHandler(ASGIHandler):
    """ASGIHandler whose requests run their synchronous parts on `threads` shared threads."""

    _middleware_chain: Callable[..., Any]  # BaseHandler's (django-stubs does not declare it)

    def __init__(self, threads: int) -> None:
        super().__init__()
        if threads < 1:
            raise ValueError("PooledASGIHandler needs at least one thread")
        # One executor per thread (max_workers=1): asgiref sends a context's calls to its
        # executor, and a request must keep to one thread (its connection, its thread-locals).
        # Their threads start on first use, so a quiet process starts only one.
        self._executors = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"http-{index}") for index in range(threads)
        ]
        self._in_flight = [0] * threads
        self._used: set[int] = set()
        # Sent in the request's thread, after Django's own check (close_old_connections).
        request_started.connect(_connections_check, sender=type(self), dispatch_uid="supportbot.http")

    def load_middleware(self, is_async: bool = False) -> None:
        """The synchronous chain (WSGI's), handed to the request's thread in one call."""
        super().load_middleware(is_async=False)
        self._middleware_chain = self.adapt_method_mode(True, self._middleware_chain, False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # The least busy thread; the first of equals, so a quiet process keeps reusing one warm
        # thread and connection. Counted on the event loop alone: no lock needed.
        index = min(range(len(self._in_flight)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        self._used.add(index)
        try:
            async with ThreadSensitiveContext(executor=self._executors[index]):
                await self.handle(scope, receive, send)
        finally:
            self._in_flight[index] -= 1

    def connections_close(self) -> None:
        """Close the database connections the threads keep (between tests, so the test database
        can be flushed and dropped). The threads stay, and reconnect on their next query."""
        from django.db import connections

        for index in sorted(self._used):
            self._executors[index].submit(connections.close_all).result(timeout=20)


def _connections_check(sender: type, **kwargs: Any) -> None:
    connections_dead_close()


def http_application(threads: int) -> ASGIHandler:
    """The ASGI application for HTTP: Django's own with `threads` 0, else PooledASGIHandler."""
    return PooledASGIHandler(threads) if threads > 0 else ASGIHandler()
