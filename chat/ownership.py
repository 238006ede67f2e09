"""Binding conversations to the browser session that started them.

The chat page puts a random owner token in the Django session (an HTTP response can set the
cookie; a websocket cannot). Conversations store only its hash.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

OWNER_SESSION_KEY = "supportbot_owner"


def owner_hash(token: str) -> str:
    """What a conversation stores of its owner's token."""
    return hashlib.sha256(token.encode()).hexdigest()


def owner_token_ensure(session: SessionBase) -> str:
    token = session.get(OWNER_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[OWNER_SESSION_KEY] = token
    return token


def owner_token_from_session(session_key: str | None) -> str | None:
    """The owner token in the session `session_key` (the cookie the chat page set), or None for a
    missing, unknown or expired session. Loads the session: call it off the event loop."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore
    token = store(session_key).get(OWNER_SESSION_KEY)
    return token if isinstance(token, str) else None


def owner_token_ephemeral() -> str:
    """For a client with no session: its conversation lasts as long as its socket."""
    return secrets.token_urlsafe(32)


TOKEN_SUBPROTOCOL = "supportbot.token."  # noqa: S105 (a prefix, not a secret)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def owner_token_from_subprotocols(scope: dict[str, Any]) -> str | None:
    """The widget's token, sent as a websocket subprotocol `supportbot.token.<token>`.

    The widget runs in a third-party iframe, where browsers withhold cookies; the token lives in
    the iframe's own storage instead. A subprotocol is a header, so the token stays out of URLs
    and access logs. Never echoed back: the server accepts `supportbot.v1` only.
    """
    for value in scope.get("subprotocols", []):
        if isinstance(value, str) and value.startswith(TOKEN_SUBPROTOCOL):
            token = value.removeprefix(TOKEN_SUBPROTOCOL)
            return token if _TOKEN_RE.fullmatch(token) else None
    return None


def owner_token_from_bearer(header: str) -> str | None:
    """The same token on the upload API: `Authorization: Bearer <token>`."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and _TOKEN_RE.fullmatch(token) else None
