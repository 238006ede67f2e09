"""Fixtures shared by the whole suite.

Services: tests that need PostgreSQL, Redis or Chromium skip (with the reason) on a machine that
lacks them, but never when CI=true: there a missing service fails the run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from django.conf import settings as django_settings

from tests.fakes.openai_server import FakeOpenAI

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip the test when `condition` is false — or fail it in CI, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: nothing may be skipped)")
    pytest.skip(reason)


def pytest_report_header(config: pytest.Config) -> str:
    database = "PostgreSQL" if django_settings.DATABASE_URL else "SQLite"
    layer = "Redis" if django_settings.REDIS_URL else "in-memory"
    return f"supportbot setup: database={database}, channel layer/journal/cache={layer}"


@pytest.fixture(autouse=True)
def fresh_channel_layer() -> None:
    """Each test runs in its own event loop; channels-redis binds locks to the loop that first
    used them, so every test gets a layer of its own (as each Daphne process has one)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture(scope="session")
def fake_openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(fake_openai_server: FakeOpenAI, settings) -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible server, with the app pointed at it for this test."""
    fake_openai_server.reset()
    settings.LLM_BASE_URL = fake_openai_server.base_url
    settings.LLM_API_KEY = "sk-test-key-for-the-fake-server"
    settings.LLM_MODEL = "gpt-5.2"
    settings.LLM_FIRST_TOKEN_TIMEOUT = 5.0
    settings.LLM_IDLE_TIMEOUT = 5.0
    yield fake_openai_server
    fake_openai_server.reset()


@pytest.fixture
def rate_window() -> None:
    """Start the test well inside one of chat/ratelimit.py's per-minute windows: a test that counts
    hits against a limit fails when the wall clock's minute turns between its hits (the count
    starts again) or its refusal comes in the window's last second ("wait 1 second")."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.05)


@pytest.fixture
def offline(settings) -> None:
    """No model endpoint: the offline responder answers."""
    settings.LLM_BASE_URL = ""


@pytest.fixture
async def turns_idle() -> AsyncIterator[None]:
    """Wait for replies still running when a test ends, so none leaks into the next test."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from chat.turns import supervisor

    yield
    async with asyncio.timeout(10):
        await supervisor.wait_idle()
    # The ORM ran in asgiref's worker thread: close its connections so the test database can go.
    await sync_to_async(connections.close_all)()


@pytest.fixture(autouse=True)
def chat_db_pool_closed() -> Iterator[None]:
    """chat/db.py's threads keep connections of their own (PostgreSQL): close them after each
    test, so the test database can be flushed and, at the end, dropped."""
    yield
    from chat.db import db_pool_close

    db_pool_close()


@pytest.fixture(autouse=True)
def http_connections_closed() -> Iterator[None]:
    """The HTTP threads of supportbot.asgi (supportbot/http.py) keep their connections too."""
    yield
    import sys

    asgi = sys.modules.get("supportbot.asgi")
    close = getattr(getattr(asgi, "django_asgi_app", None), "connections_close", None)
    if close is not None:
        close()


@pytest.fixture(autouse=True)
def attachments_dir(settings, tmp_path_factory) -> Iterator[object]:
    """Uploads go to a folder of the test's own, so a test can see exactly what was stored."""
    from pathlib import Path

    folder: Path = tmp_path_factory.mktemp("attachments")
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": folder}},
    }
    yield folder
