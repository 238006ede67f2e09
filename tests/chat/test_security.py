"""Security checks: the production settings pass Django's deploy check, the headers are sent,
a shopper cannot reach staff channels, and the model API key never shows up anywhere."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps
from django.contrib.auth.models import User
from django.test import AsyncClient

from supportbot.asgi import application
from tests.chat.shopper import Shopper, browser_session
from tests.fakes import Script

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-live-DO-NOT-LEAK-7f3a9c1e5b2d4f6a8c0e"


def test_production_settings_pass_the_deploy_check(tmp_path):
    env = {
        **os.environ,
        "SUPPORTBOT_ENV_FILE": "/dev/null",
        "SUPPORTBOT_VAR_DIR": str(tmp_path),
        "DJANGO_SECRET_KEY": "k3y-" + "a9B$" * 15,
        "DJANGO_ALLOWED_HOSTS": "chat.example.com",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
        "BEHIND_TLS_PROXY": "true",
        "SESSION_COOKIE_SECURE": "true",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "DJANGO_SETTINGS_MODULE": "supportbot.settings",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_security_headers_behind_tls(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_HSTS_SECONDS = 31536000
    response = client.get("/", HTTP_X_FORWARDED_PROTO="https")
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db(transaction=True)
async def test_a_shoppers_session_cannot_open_the_staff_socket():
    session = await browser_session()
    communicator = WebsocketCommunicator(
        application,
        "/ws/staff/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session}".encode())],
    )
    connected, code = await communicator.connect()
    assert not connected and code == 4403


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("turns_idle")
async def test_the_api_key_never_reaches_pages_frames_logs_or_the_database(fake_openai, settings, caplog):
    settings.LLM_API_KEY = API_KEY
    settings.LLM_MAX_RETRIES = 0
    fake_openai.enqueue(
        Script.http_error(401, message=f"Incorrect API key provided: {API_KEY[:12]}…"), Script.stream("Hi")
    )
    caplog.set_level(logging.DEBUG)
    shopper = Shopper(await browser_session())
    await shopper.connect()
    frames = await shopper.turn("hello")
    frames += await shopper.turn("hello again")
    await shopper.disconnect()
    assert fake_openai.requests[0].headers["authorization"] == f"Bearer {API_KEY}"  # it was really used

    admin = await database_sync_to_async(User.objects.create_superuser)("root", "root@example.com", "pw-1234567890")
    client = AsyncClient()
    await client.aforce_login(admin)
    pages = [await client.get(path) for path in ("/", "/staff/live/", "/admin/chat/conversation/", "/healthz")]
    conversation_id = shopper.conversation["id"]
    pages.append(await client.get(f"/admin/chat/conversation/{conversation_id}/change/"))
    assert all(page.status_code == 200 for page in pages)

    def database_text() -> str:
        rows = []
        for model in apps.get_models():
            rows += [repr(row) for row in model._default_manager.values_list()]
        return "\n".join(rows)

    everything = "\n".join(
        [
            *(str(f) for f in frames),
            *(page.content.decode(errors="replace") for page in pages),
            *(record.getMessage() for record in caplog.records),
            await database_sync_to_async(database_text)(),
        ]
    )
    secret = API_KEY[12:]  # the part a gateway's error echoes back does not hold the rest
    assert secret not in everything
    assert API_KEY not in everything


@pytest.mark.django_db
def test_every_form_needs_its_csrf_token():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    admin = User.objects.create_superuser("boss", "boss@example.com", "pw-1234567890")
    assert client.post("/admin/login/", {"username": "boss", "password": "pw-1234567890"}).status_code == 403
    client.force_login(admin)
    for path in ("/admin/chat/conversation/", "/admin/catalog/product/add/", "/admin/password_change/"):
        assert client.post(path, {}).status_code == 403, path
