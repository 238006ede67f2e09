"""chat/db.py: a turn's database calls run on threads of their own (PostgreSQL) or channels'
thread (SQLite), see the caller's context, and survive a connection the server dropped."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import translation

from chat.db import db_call
from chat.models import Conversation

pytestmark = pytest.mark.django_db(transaction=True)


def _where() -> tuple[str, str]:
    return threading.current_thread().name, translation.get_language()


async def test_calls_run_off_the_event_loop_with_the_callers_context():
    translation.activate("de")
    try:
        thread, language = await db_call(_where)
    finally:
        translation.deactivate()
    assert thread != threading.current_thread().name
    if connection.vendor == "postgresql":
        assert thread.startswith("chat-db")
    assert language == "de"


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _count() -> int:
    return Conversation.objects.count()


def _terminate(pid: int) -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def _backend_gone(pid: int) -> None:
    """Wait until PostgreSQL's backend `pid` has ended (and so closed its socket)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        for _ in range(500):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} still there")


async def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_call(settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to drop a connection")
    settings.CHAT_DB_THREADS = 1  # one thread: the next call gets the dropped connection
    before = await db_call(_backend_pid)
    _terminate(before)
    _backend_gone(before)
    # A write, which is never retried: it runs on a new connection instead of failing.
    conversation = await db_call(Conversation.objects.create, owner_hash="o" * 64)
    assert await db_call(_count) == 1 and conversation.pk
    assert await db_call(_backend_pid) != before


def _count_losing_the_connection_once(calls: list[int]) -> int:
    """Conversation.objects.count(), but the first time its connection is dropped just before."""
    calls.append(1)
    if len(calls) == 1:
        pid = _backend_pid()
        _terminate(pid)
        _backend_gone(pid)
        # Past the check before the call: this query is the first to meet the closed connection.
    return Conversation.objects.count()


async def test_a_read_retries_once_on_a_connection_dropped_during_the_call(settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to drop a connection")
    settings.CHAT_DB_THREADS = 1
    calls: list[int] = []
    with pytest.raises(OperationalError):
        await db_call(_count_losing_the_connection_once, calls)
    # The failed call's connection was closed (errors, as channels does): the next call works.
    assert await db_call(_count) == 0
    calls.clear()
    assert await db_call(_count_losing_the_connection_once, calls, retry=True) == 0
    assert len(calls) == 2
