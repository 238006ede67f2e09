"""Delete conversations nobody has touched for longer than the retention period, with their
messages, feedback, photos and voice notes (files included). Run it from a scheduler, e.g. daily:
`manage.py purge_conversations` (CHAT_RETENTION_DAYS) or `manage.py purge_conversations --days 90`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chat.review.privacy import conversations_purge


class Command(BaseCommand):
    help = "Delete conversations (messages, files, feedback) with no activity for N days; 0 keeps everything."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help="Retention in days (default: CHAT_RETENTION_DAYS; 0: keep all)."
        )

    def handle(self, *args: Any, days: int | None, **options: Any) -> None:
        if days is None:
            days = settings.CHAT_RETENTION_DAYS
        if days < 0:
            raise CommandError("--days must be 0 (keep everything) or more.")
        if days == 0:
            self.stdout.write("Retention is off (0 days): nothing deleted. Set CHAT_RETENTION_DAYS or pass --days.")
            return
        counts = conversations_purge(older_than_days=days)
        self.stdout.write(f"Deleted {counts} with no activity for more than {days} day(s).")
