"""Django's database sessions, less three statements per new session.

Django's `create()` inserts a new session's row with `must_create`, and draws another key if that
insert meets an existing one; its key generator looks the key up first all the same. So every new
visitor's first page cost a `SELECT` besides the `INSERT` it needs (docs/benchmarks.md). And
`save()` wraps its one statement in a transaction of its own (`BEGIN`, the statement, `COMMIT`),
for a caller already inside one; outside any, a single statement commits on its own. The rows, the
cookie and everything else are Django's own (SESSION_ENGINE).
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.db import DatabaseError, IntegrityError, connections, router
from django.utils.crypto import get_random_string


class SessionStore(db.SessionStore):
    # New keys are drawn by `create()` and `acreate()` (Django 5.2), which insert them with
    # `must_create`: a key already in use (one chance in 36**32) is the INSERT's to catch.

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    async def _aget_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    def save(self, must_create: bool = False) -> None:
        """Django's `save()`: inside a transaction as a savepoint (so a key already in use leaves
        the caller's transaction usable), outside any as its one statement (a page load's
        session: 1 round trip instead of 3)."""
        if self.session_key is None:
            return self.create()
        using = router.db_for_write(self.model)
        if connections[using].in_atomic_block:
            return super().save(must_create)
        data = self._get_session(no_load=must_create)  # type: ignore[attr-defined]  # (not in the stubs)
        row = self.create_model_instance(data)
        try:
            row.save(force_insert=must_create, force_update=not must_create, using=using)
        except IntegrityError:
            if must_create:
                raise CreateError from None
            raise
        except DatabaseError:
            if not must_create:
                raise UpdateError from None
            raise
        return None
