"""Delete uploads that were never sent with a message (removed from the composer, or the
shopper left). Run it from a scheduler, e.g. hourly: `manage.py media_cleanup`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from chat.media.services import attachments_orphans_delete


class Command(BaseCommand):
    help = "Delete photos and voice notes uploaded but never sent (older than CHAT_UPLOAD_ORPHAN_HOURS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, default=settings.CHAT_UPLOAD_ORPHAN_HOURS)

    def handle(self, *args: Any, hours: int, **options: Any) -> None:
        deleted = attachments_orphans_delete(older_than=timedelta(hours=hours))
        self.stdout.write(f"Deleted {deleted} unsent upload(s) older than {hours} h.")
