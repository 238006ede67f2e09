"""chat/db.py: a turn's database calls run on threads of their own (PostgreSQL) or channels'
thread (SQLite), see the caller's context, and survive a connection the server dropped."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection
from django.utils import translation

from chat.db import db_call
from chat.models import Conversation
from tests.postgres import backend_end

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


async def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_call(settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to drop a connection")
    settings.CHAT_DB_THREADS = 1  # one thread: the next call gets the dropped connection
    before = await db_call(_backend_pid)
    backend_end(before)
    # A write, which is never retried: it runs on a new connection instead of failing.
    conversation = await db_call(Conversation.objects.create, owner_hash="o" * 64)
    assert await db_call(_count) == 1 and conversation.pk
    assert await db_call(_backend_pid) != before


def _count_losing_the_connection_once(calls: list[int]) -> int:
    """Conversation.objects.count(), but the first time its connection is dropped just before."""
    calls.append(1)
    if len(calls) == 1:
        backend_end(_backend_pid())
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
