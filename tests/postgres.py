"""Helpers for tests that need PostgreSQL to do something to a connection."""

from __future__ import annotations

import time

import psycopg
from django.db import connection


def backend_end(pid: int) -> None:
    """End PostgreSQL's backend `pid` and wait until it is gone (its socket closed), as a restart
    of PostgreSQL or an administrator's pg_terminate_backend does to a connection."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(500):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"PostgreSQL's backend {pid} did not end")
