"""supportbot/sessions.py: Django's database sessions without a lookup per new key, and without a
transaction around a single statement."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

import supportbot.sessions
from supportbot.sessions import SessionStore

pytestmark = pytest.mark.django_db(transaction=True)


def _session_statements(queries: list[dict[str, str]]) -> list[str]:
    return [q["sql"] for q in queries if "django_session" in q["sql"]]


def test_a_new_visitors_page_stores_its_session_with_one_insert():
    client = Client()
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/")
    assert response.status_code == 200
    statements = _session_statements(captured.captured_queries)
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("INSERT"), statements
    key = response.cookies["sessionid"].value
    assert Session.objects.filter(session_key=key).exists()

    # The returning visitor's session is read, not created again.
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    assert [s.lstrip().upper()[:6] for s in _session_statements(captured.captured_queries)] == ["SELECT"]


def test_a_key_already_in_use_is_not_taken_over(monkeypatch):
    first = SessionStore()
    first["owner"] = "first"
    first.create()
    first.save()
    # The next key drawn is the one in use, then a fresh one: the INSERT refuses the first.
    keys = itertools.chain([first.session_key], iter(lambda: "k" * 32, None))
    monkeypatch.setattr(supportbot.sessions, "get_random_string", lambda length, chars: next(keys))
    second = SessionStore()
    second["owner"] = "second"
    second.create()
    second.save()
    assert second.session_key == "k" * 32
    assert SessionStore(first.session_key).load() == {"owner": "first"}
    assert SessionStore(second.session_key).load() == {"owner": "second"}


def _session_writes(client: Client) -> list[tuple[str, bool]]:
    """Each statement on django_session a page load runs, and whether it ran inside a transaction."""
    seen: list[tuple[str, bool]] = []

    def wrapper(execute, sql, params, many, context):
        if "django_session" in sql:
            seen.append((sql.lstrip().split()[0].upper(), context["connection"].in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        assert client.get("/").status_code == 200
    return seen


def test_a_page_stores_its_session_in_one_statement_without_a_transaction_around_it():
    client = Client()
    assert _session_writes(client) == [("INSERT", False)]
    session = client.session
    session["seen"] = True
    session.save()  # an UPDATE, alone as well
    store = SessionStore(session.session_key)
    assert store.load()["seen"] is True


def test_inside_a_transaction_a_key_in_use_leaves_it_usable():
    first = SessionStore()
    first.create()
    with transaction.atomic():
        taken = SessionStore(first.session_key)
        with pytest.raises(CreateError):
            taken.save(must_create=True)
        # The caller's transaction goes on: Django's savepoint, as without this module.
        other = SessionStore()
        other["after"] = 1
        other.create()
    assert SessionStore(other.session_key).load() == {"after": 1}
    with pytest.raises(UpdateError):
        SessionStore("x" * 32).save()  # a session that is gone is not created again by an update
