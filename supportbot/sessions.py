"""Django's database sessions, less one query per new session.

Django's `create()` inserts a new session's row with `must_create`, and draws another key if that
insert meets an existing one; its key generator looks the key up first all the same. So every new
visitor's first page cost a `SELECT` besides the `INSERT` it needs (docs/benchmarks.md). The
rows, the cookie and everything else are Django's own (SESSION_ENGINE).
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
    # New keys are drawn by `create()` and `acreate()` (Django 5.2), which insert them with
    # `must_create`: a key already in use (one chance in 36**32) is the INSERT's to catch.

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)
