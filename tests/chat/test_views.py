"""The chat page and the health check through Django's test client."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_chat_page_binds_a_session_and_sends_a_strict_csp(client, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.LLM_API_KEY = "sk-never-in-the-page-0123456789"
    response = client.get("/")
    assert response.status_code == 200
    assert "sessionid" in response.cookies and response.cookies["sessionid"]["httponly"]
    assert "csrftoken" in response.cookies
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'self'" in csp
    html = response.content.decode()
    assert settings.LLM_API_KEY not in html and "127.0.0.1:9" not in html
    assert 'data-model-configured="true"' in html and 'id="model-notice"' not in html


def test_chat_page_says_when_no_model_is_configured(client, settings):
    settings.LLM_BASE_URL = ""
    html = client.get("/").content.decode()
    assert 'data-model-configured="false"' in html and "No AI model is configured" in html


def test_the_session_keeps_its_owner_token_across_visits(client):
    client.get("/")
    first = client.session["supportbot_owner"]
    client.get("/")
    assert client.session["supportbot_owner"] == first


def test_health_reports_database_and_mode_without_secrets(client, settings):
    settings.LLM_BASE_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok", "mode": "offline"}


def test_metrics_are_readable_from_loopback_only_or_with_the_token(client, settings):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200 and b"supportbot_turns_total" in response.content
    assert b"supportbot_model_queue" in response.content
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    settings.METRICS_TOKEN = "scrape-me-0123456789"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    allowed = client.get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-me-0123456789")
    assert allowed.status_code == 200
