"""A real Daphne process and a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import require
from tests.fakes.openai_server import FakeOpenAI

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_env(fake_openai_server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment Daphne runs with: a fresh, migrated SQLite database with the demo catalog.
    `manage_py(live_env, ...)` works on that same database (e.g. to create a staff user)."""
    var_dir = tmp_path_factory.mktemp("live")
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "SUPPORTBOT_VAR_DIR": str(var_dir),
        "LLM_BASE_URL": fake_openai_server.base_url,
        "LLM_API_KEY": "sk-browser-test",
        "SHOP_NAME": "Northpeak Outfitters",
        "SHOP_PRODUCT_URL": "https://shop.example/products/{handle}",
    }
    manage_py(env, "migrate", "--noinput", "-v0")
    manage_py(env, "load_demo_catalog", "-v0")
    return env


def manage_py(env: dict[str, str], *args: str) -> str:
    """Run `manage.py` with the live server's environment; its output (errors go to stderr)."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True
    )
    return done.stdout


@pytest.fixture(scope="session")
def daphne_server(live_env: dict[str, str]) -> Iterator[str]:
    """Daphne serving the app from a fresh SQLite database, pointed at the loopback model."""
    var_dir = Path(live_env["SUPPORTBOT_VAR_DIR"])
    port = _free_port()
    log = (var_dir / "daphne.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "supportbot.asgi:application"],
        cwd=ROOT,
        env=live_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"Daphne did not start:\n{(var_dir / 'daphne.log').read_text()}")
        time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """One Playwright per module: a module may launch more than one Chromium (e.g. a fake mic)."""
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (make test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


def chromium_launch(playwright: Playwright, extra_args: Sequence[str] = ()) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = chromium_launch(playwright_driver)
    yield browser
    browser.close()


@contextmanager
def page_open(browser: Browser, base_url: str) -> Iterator[Page]:
    """A page in a fresh context (a browser session of its own). `page.errors` collects uncaught
    exceptions and console errors, which a test can assert is empty."""
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    errors: list[str] = []
    page.errors = errors  # type: ignore[attr-defined]
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, daphne_server: str) -> Iterator[Page]:
    with page_open(browser, daphne_server) as page:
        yield page


def reply_states(scope: Any, selector: str, index: int, timeout: float = 10.0, during: Any = None) -> list[str]:
    """Poll the `index`-th reply matching `selector` (in a page or a frame) until it stops
    streaming; every distinct text seen. `during(text)` runs on each new one (e.g. to cut the
    connection mid-reply)."""
    reply = scope.locator(selector).nth(index)
    reply.wait_for(timeout=timeout * 1000)
    states: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = reply.locator(".msg-body").inner_text()
        if not states or states[-1] != text:
            states.append(text)
            if during:
                during(text)
        if reply.get_attribute("data-status") not in {"streaming", None}:
            return [*states, reply.locator(".msg-body").inner_text()]
        time.sleep(0.02)
    raise AssertionError(f"the reply was still streaming after {timeout}s: {states[-1:]}")
