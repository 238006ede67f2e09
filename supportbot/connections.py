"""Kept database connections that the server has closed, found before they are used.

The process keeps its PostgreSQL connections between calls (CONN_MAX_AGE): the chat's database
threads (chat/db.py) and the HTTP threads (supportbot/http.py). When PostgreSQL restarts, or an
administrator ends a backend, an idle connection learns of it only when its next query fails.
Django's CONN_HEALTH_CHECKS would catch that with a `SELECT 1` round trip before each request or
call (off by default, docs/benchmarks.md); this asks the operating system instead: an idle
connection has nothing to read, and PostgreSQL's goodbye (an error message, then end of file) makes
its socket readable. One poll() of the socket, a few microseconds, no round trip. A connection
killed in the middle of a query still fails that query (chat/db.py retries its reads).
"""

from __future__ import annotations

import contextlib
import select

from django.db import connections


def connections_dead_close() -> None:
    """Close this thread's idle PostgreSQL connections whose server side has gone; Django opens a
    new one on the next query."""
    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if raw is None or connection.vendor != "postgresql" or connection.in_atomic_block:
            continue
        try:
            poller = select.poll()  # not select(): socket numbers pass 1024 with many chats open
            poller.register(raw.pgconn.socket, select.POLLIN)
            gone = bool(poller.poll(0))
        except Exception:  # a connection psycopg itself considers closed or broken
            gone = True
        if gone:
            # Unsolicited input on an idle connection is PostgreSQL ending it (or, never here, a
            # notification): close it rather than read it. Django forgets the connection
            # whatever closing it says.
            with contextlib.suppress(Exception):
                connection.close()
