"""How many SQL statements a turn costs, counted on every connection of every thread (the
turn's database work runs on chat/db.py's threads). A count, not a timing: the speed itself is
measured by bench/chat_load.py (docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.core.management import call_command
from django.db.backends.signals import connection_created

from chat.cache import cache_run
from chat.handoff import STAFF_SEEN_KEY
from tests.chat.shopper import Shopper, browser_session
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


class Statements:
    def __init__(self) -> None:
        self.sql: list[str] = []
        self.recording = False
        self.wrapped: list[Any] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self.recording:
            self.sql.append(sql)
        return execute(sql, params, many, context)

    def wrap(self, connection: Any) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)
            self.wrapped.append(connection)

    def unwrap(self) -> None:
        for connection in self.wrapped:
            connection.execute_wrappers.remove(self)


@pytest.fixture
async def statements() -> AsyncIterator[Statements]:
    """Every statement of every thread: connections opened from now on, and the one of channels'
    database thread (where the turn's calls run on SQLite), which outlives a test."""
    from django.db import connections

    recorder = Statements()

    def created(sender: Any, connection: Any, **kwargs: Any) -> None:
        recorder.wrap(connection)

    connection_created.connect(created)
    await database_sync_to_async(lambda: recorder.wrap(connections["default"]))()
    yield recorder
    connection_created.disconnect(created)
    await database_sync_to_async(recorder.unwrap)()


# Transaction control differs by backend (SQLite's BEGIN goes through execute, PostgreSQL's not).
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def _statements(sql: list[str]) -> list[str]:
    return [statement for statement in sql if not statement.lstrip().upper().startswith(_CONTROL)]


async def _turn_statements(shopper: Shopper, fake_openai: Any, statements: Statements, text: str) -> list[str]:
    from chat.turns import supervisor

    fake_openai.enqueue(Script.stream("They are waterproof, and come in sizes 7 to 12."))
    statements.sql.clear()
    statements.recording = True
    await shopper.turn(text)
    await supervisor.wait_idle()
    statements.recording = False
    return _statements(statements.sql)


def _listing(sql: list[str]) -> str:
    return "\n".join(f"{n:3} {statement[:160]}" for n, statement in enumerate(sql, 1))


def _chat_side(sql: list[str]) -> list[str]:
    """The statements that are not the catalog lookup (whose full-text tiers depend on the words)."""
    return [statement for statement in sql if "catalog_" not in statement]


# A plain text turn, besides its catalog lookup: check (1); store the message (2); read the
# conversation (1) and the history: the latest summary and the messages after it (1; their
# attachments only when some have any; the conversation's first message has none to read); store
# the reply with its usage (2).
CHAT_STATEMENTS = 7
FIRST_TURN_STATEMENTS = 6


async def test_a_plain_text_turn_costs_a_fixed_number_of_statements(fake_openai, statements):
    await database_sync_to_async(call_command)("load_demo_catalog", verbosity=0)
    # No staff page seen lately (an earlier test's counts as open for CHAT_STAFF_ONLINE_SECONDS).
    await cache_run(lambda: cache.delete(STAFF_SEEN_KEY))
    shopper = Shopper(await browser_session())
    await shopper.connect()
    question = "Are the trail runners waterproof?"
    first = await _turn_statements(shopper, fake_openai, statements, "Which sizes do the trail runners come in?")
    assert len(_chat_side(first)) == FIRST_TURN_STATEMENTS, _listing(first)
    sql = await _turn_statements(shopper, fake_openai, statements, question)
    assert len(_chat_side(sql)) == CHAT_STATEMENTS, _listing(sql)
    # No staff page is open: nothing is read for the staff lobby.
    assert not [statement for statement in sql if "COUNT(" in statement.upper()], _listing(sql)

    # Ten more turns of history cost no statement more (nothing is read per earlier message).
    for n in range(10):
        await _turn_statements(shopper, fake_openai, statements, f"And in size {n + 3}?")
    longer = await _turn_statements(shopper, fake_openai, statements, question)
    assert len(longer) == len(sql), _listing(longer)
    await shopper.disconnect()


# A new visitor's socket: its session (1), its latest conversation (1; none) and the new one (1).
# The snapshot of a conversation with nothing in it yet needs no statement.
CONNECT_STATEMENTS = 3


async def test_a_new_visitors_socket_costs_a_fixed_number_of_statements(fake_openai, statements):
    session = await browser_session()
    shopper = Shopper(session)
    statements.recording = True
    conversation = await shopper.connect()
    statements.recording = False
    sql = _statements(statements.sql)
    assert len(sql) == CONNECT_STATEMENTS, _listing(sql)
    assert conversation["messages"] == [] and conversation["seq"] == 0 and conversation["status"] == "bot"

    # Back with a conversation that has messages: its session, the conversation, its messages and
    # their attachments (the row is not read again for the snapshot).
    from chat.turns import supervisor

    fake_openai.enqueue(Script.stream("Hello!"))
    await shopper.turn("Hi")
    await supervisor.wait_idle()
    await shopper.disconnect()
    again = Shopper(session)
    statements.sql.clear()
    statements.recording = True
    snapshot = await again.connect()
    statements.recording = False
    sql = _statements(statements.sql)
    assert [m["text"] for m in snapshot["messages"]] == ["Hi", "Hello!"]
    assert snapshot["id"] == conversation["id"]
    assert len(sql) == 4, _listing(sql)
    await again.disconnect()
