"""Real Daphne processes sharing one PostgreSQL database and one Redis, as in production.

These tests start their own processes with their own environment, so they do not depend on the
suite's DATABASE_URL / REDIS_URL: they run once, in the default pass of scripts/test.sh (the
scale-out pass only runs tests/chat and tests/catalog). They need PostgreSQL and Redis at
TEST_DATABASE_URL / TEST_REDIS_URL (the defaults of scripts/test.sh) and skip without them —
except with CI=true, where that fails.

Each session gets a database of its own (created here, dropped after; never pytest-django's
`test`) and Redis database SCALEOUT_REDIS_DB (5, or TEST_SCALEOUT_REDIS_DB), flushed before and after.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis

from tests.conftest import require
from tests.fakes.openai_server import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Not used by the suite (db 0) or the benchmarks; TEST_SCALEOUT_REDIS_DB picks another, so two
# checkouts sharing one Redis do not flush each other's.
SCALEOUT_REDIS_DB = int(os.environ.get("TEST_SCALEOUT_REDIS_DB", "5"))
LEASE_SECONDS = 5  # CHAT_TURN_LEASE_SECONDS: a killed process's lease runs out this fast
STAFF_USER, STAFF_PASSWORD = "ana", "scaleout-test-pw-5517"  # a throwaway user in a throwaway database


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _services_reason() -> str:
    """Why PostgreSQL or Redis cannot be used, or "" when both answer."""
    try:
        psycopg.connect(TEST_DATABASE_URL, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL at {TEST_DATABASE_URL} is not reachable ({exc.__class__.__name__})"
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {TEST_REDIS_URL} is not reachable ({exc.__class__.__name__})"
    return ""


def manage_py(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    return done.stdout


@pytest.fixture(scope="session")
def scaleout_env(fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment every Daphne of the session runs with: a fresh, migrated PostgreSQL
    database with one staff user, an empty Redis database, the loopback model."""
    reason = _services_reason()
    require(not reason, reason)
    database = f"supportbot_scaleout_{uuid.uuid4().hex[:8]}"
    admin_url = _with_path(TEST_DATABASE_URL, "/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    redis_url = _with_path(TEST_REDIS_URL, f"/{SCALEOUT_REDIS_DB}")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "CHAT_", "DJANGO_"))},
        "SUPPORTBOT_ENV_FILE": "/dev/null",
        "SUPPORTBOT_VAR_DIR": str(tmp_path_factory.mktemp("scaleout")),
        "DATABASE_URL": _with_path(TEST_DATABASE_URL, f"/{database}"),
        "REDIS_URL": redis_url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECRET_KEY": "scaleout-test-secret-key-" + uuid.uuid4().hex,  # shared: sessions work on both
        "LLM_BASE_URL": fake_openai_server.base_url,
        "LLM_API_KEY": "sk-scaleout-test",
        "LLM_MAX_RETRIES": "0",
        "CHAT_TURN_LEASE_SECONDS": str(LEASE_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        manage_py(env, "migrate", "--noinput", "-v0")
        manage_py(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n"
            f"User.objects.create_superuser({STAFF_USER!r}, 'ana@example.com', {STAFF_PASSWORD!r}, first_name='Ana')",
        )
        yield env
    finally:
        store.flushdb()
        store.close()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


class Daphne:
    """One `daphne supportbot.asgi:application` process on a port of its own."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"daphne-{name}-{self.port}.log"
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "supportbot.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def origin(self) -> str:
        return self.url

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"Daphne {self.name} did not start:\n{self.log()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """A crash: SIGKILL, no graceful shutdown, nothing flushed or stored on the way out."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def rss_kib(self) -> int:
        """Resident memory of the process (from /proc), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.pid}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture
def daphne(
    scaleout_env: dict[str, str], fake_openai_server: FakeOpenAI, tmp_path: Path
) -> Iterator[Callable[..., list[Daphne]]]:
    """Start Daphne processes (`a, b = daphne("A", "B")`, started side by side); every one is
    killed when the test ends, whatever happened. The loopback model is reset before and after."""
    fake_openai_server.reset()
    started: list[Daphne] = []

    def start(*names: str) -> list[Daphne]:
        processes = [Daphne(name, scaleout_env, tmp_path) for name in names]
        started.extend(processes)
        for process in processes:
            process.wait_ready()
        return processes

    try:
        yield start
    finally:
        for process in started:
            process.stop()
            # Captured: pytest shows it when the test failed.
            print(f"----- Daphne {process.name} (port {process.port}) -----\n{process.log()}")
        fake_openai_server.reset()


def messages_stored(env: dict[str, str], conversation_id: str) -> list[dict[str, object]]:
    """The conversation's stored messages, in seq order, read straight from the shared database."""
    with psycopg.connect(env["DATABASE_URL"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        cursor.execute(
            "SELECT id::text AS id, seq, author, kind, notice_code, author_name, text, status, error_code"
            " FROM chat_message WHERE conversation_id = %s AND kind <> 'summary' ORDER BY seq",
            [conversation_id],
        )
        return list(cursor.fetchall())
