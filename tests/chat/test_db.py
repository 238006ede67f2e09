"""chat/db.py: a turn's database calls run on threads of their own (PostgreSQL) or channels'
thread (SQLite), see the caller's context, and survive a connection the server dropped."""

from __future__ import annotations

import threading

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


async def test_a_read_retries_once_on_a_connection_the_server_dropped(settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to drop a connection")
    settings.CHAT_DB_THREADS = 1  # one thread: the next call gets the dropped connection
    _terminate(await db_call(_backend_pid))
    with pytest.raises(OperationalError):
        await db_call(_count)
    # The failed call's connection was closed (errors, as channels does); drop the next one too.
    _terminate(await db_call(_backend_pid))
    assert await db_call(_count, retry=True) == 0
