"""Binding conversations to the browser session that started them.

The chat page puts a random owner token in the Django session (an HTTP response can set the
cookie; a websocket cannot). Conversations store only its hash.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.sessions.backends.base import SessionBase

OWNER_SESSION_KEY = "supportbot_owner"


def owner_token_ensure(session: SessionBase) -> str:
    token = session.get(OWNER_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[OWNER_SESSION_KEY] = token
    return token


async def owner_token_from_scope(scope: dict[str, Any]) -> str | None:
    """The session's owner token, or None for a client without a (valid) session cookie."""
    session = scope.get("session")
    if session is None or not session.session_key:
        return None
    token = await session.aget(OWNER_SESSION_KEY)
    return token if isinstance(token, str) else None


def owner_token_ephemeral() -> str:
    """For a client with no session: its conversation lasts as long as its socket."""
    return secrets.token_urlsafe(32)
