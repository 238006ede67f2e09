"""(Re)build the photo-match features of catalog images.

Loaders index the images they write; run this after a change of matching method, after images
were added by other means, or with --force to recompute everything.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from catalog.imagematch import image_features_index


class Command(BaseCommand):
    help = "Compute photo-match features for catalog images that lack current ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true", help="recompute features that are already current")

    def handle(self, *args: Any, **options: Any) -> None:
        summary = image_features_index(force=options["force"])
        message = f"Images indexed: {summary.indexed}, unchanged: {summary.unchanged}, failed: {summary.failed}."
        self.stdout.write(self.style.WARNING(message) if summary.failed else self.style.SUCCESS(message))
