"""supportbot/http.py: HTTP requests run their synchronous work on a few long-lived threads that
keep their database connections, instead of a new thread and connection per request."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from channels.testing import HttpCommunicator
from django.core.signals import request_finished, request_started
from django.db import connection
from django.db.backends.signals import connection_created

from supportbot.asgi import application
from supportbot.http import PooledASGIHandler, http_application
from tests.postgres import backend_end

pytestmark = pytest.mark.django_db(transaction=True)


class Seen:
    """Which threads ran the requests' signals, and how many database connections were opened."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []
        self.connections = 0

    def on_started(self, sender: object, **kwargs: object) -> None:
        self.started.append(threading.current_thread().name)

    def on_finished(self, sender: object, **kwargs: object) -> None:
        self.finished.append(threading.current_thread().name)

    def on_connection(self, sender: object, **kwargs: object) -> None:
        self.connections += 1


@pytest.fixture
def seen() -> Iterator[Seen]:
    record = Seen()
    request_started.connect(record.on_started)
    request_finished.connect(record.on_finished)
    connection_created.connect(record.on_connection)
    yield record
    request_started.disconnect(record.on_started)
    request_finished.disconnect(record.on_finished)
    connection_created.disconnect(record.on_connection)


async def _get(app: object, path: str) -> dict[str, object]:
    communicator = HttpCommunicator(app, "GET", path, headers=[(b"host", b"localhost")])
    response: dict[str, object] = await communicator.get_response(timeout=10)
    await communicator.wait(timeout=10)  # the request's end too (its request_finished)
    return response


async def test_page_loads_reuse_one_warm_thread_and_its_connection(seen: Seen):
    # Each is a new visitor: its session is stored (a database write) by the request's thread.
    for _ in range(8):
        response = await _get(application, "/")
        assert response["status"] == 200
    assert len(set(seen.started)) == 1 and seen.started[0].startswith("http-0"), seen.started
    assert seen.finished == seen.started
    assert seen.connections == 1


async def test_djangos_own_handler_opens_a_thread_and_a_connection_per_request(seen: Seen):
    # The behaviour the pool replaces (HTTP_THREADS=0), measured the same way.
    app = http_application(0)
    assert not isinstance(app, PooledASGIHandler)
    for _ in range(4):
        assert (await _get(app, "/"))["status"] == 200
    assert len(set(seen.started)) == 4
    assert seen.connections == 4
    # Their threads have ended; their connections close when collected (or the test database
    # could not be dropped at the end).
    gc.collect()


async def test_requests_in_flight_together_spread_over_the_threads(seen: Seen):
    app = PooledASGIHandler(3)
    try:
        # Unknown widget keys: a read each (the site lookup), all in flight at once.
        responses = await asyncio.gather(*(_get(app, f"/widget/nokey{i}/") for i in range(9)))
        assert {response["status"] for response in responses} == {404}
        assert {name.split("_")[0] for name in seen.started} == {"http-0", "http-1", "http-2"}
        assert sorted(seen.finished) == sorted(seen.started)
        assert seen.connections <= 3
    finally:
        app.connections_close()


@pytest.mark.parametrize("path", ["/", "/widget/nokey/"])
async def test_a_request_goes_to_its_thread_once_for_its_middleware_and_view(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    handover = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await handover(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    app = PooledASGIHandler(1)
    try:
        response = await _get(app, path)
        assert response["status"] in {200, 404}
        # The request's start, its middleware and view, the response's close (with the request's
        # end); a 404 is logged from a thread too. Django's asynchronous chain handed over each
        # middleware's process_request and process_response on its own: 19 for "/".
        assert len(calls) == (3 if response["status"] == 200 else 4), calls
    finally:
        app.connections_close()


async def test_an_async_view_still_runs_on_the_event_loop():
    app = PooledASGIHandler(1)
    try:
        response = await _get(app, "/healthz")
        assert response["status"] == 200, response
        body = json.loads(response["body"])  # type: ignore[arg-type]
        assert body["channel_layer"] == "ok"  # the in-memory layer answers on this loop only
    finally:
        app.connections_close()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


async def test_a_connection_the_database_closed_costs_no_request_an_error(seen: Seen):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to close a connection")
    app = PooledASGIHandler(1)
    try:
        assert (await _get(app, "/"))["status"] == 200
        assert seen.connections == 1
        # The first thread's connection, ended as a restart of PostgreSQL would.
        backend_end(app._executors[0].submit(_backend_pid).result(timeout=10))
        # Without the check, the thread's next query would fail and the page would be a 500.
        assert (await _get(app, "/"))["status"] == 200
        assert seen.connections == 2
    finally:
        app.connections_close()


def test_the_entry_point_uses_the_pool_of_the_setting():
    from django.conf import settings

    http = application.application_mapping["http"]
    assert isinstance(http, PooledASGIHandler)
    assert len(http._executors) == settings.HTTP_THREADS == 4
    with pytest.raises(ValueError):
        PooledASGIHandler(0)
