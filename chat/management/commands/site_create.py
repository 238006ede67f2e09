"""Create (or, with --key of an existing site, update) a storefront Site from the command line,
and print what the shop needs: its key, its identify secret and the tag to paste. The admin does
the same with a form; this is for scripts and first setups.

    manage.py site_create "Northpeak" --origin https://shop.example.com --origin https://www.shop.example.com
    manage.py site_create "Northpeak DE" --origin https://shop.example.de --language de --color "#0a7d4f" \\
        --position left --greeting "Hallo! Fragen zu Größen?" --no-voice
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from chat.models import Site
from chat.sites import identify_secret, origin_normalise, site_cache_clear


class Command(BaseCommand):
    help = (
        "Create a storefront site for the chat widget and print its public key, identify secret and embed tag. "
        "With --key of an existing site, update that site instead (only the options given change)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="The shop's name, shown in the chat header.")
        parser.add_argument(
            "--origin",
            action="append",
            default=None,
            metavar="URL",
            help="A page origin allowed to embed the chat, scheme://host[:port]; repeat for several.",
        )
        parser.add_argument("--key", help="The public key to use (pk_…); an existing site with it is updated.")
        parser.add_argument("--language", help="The chat's language (en, de, es); '' follows the shopper's browser.")
        parser.add_argument("--color", help="The brand colour, #rrggbb.")
        parser.add_argument("--position", choices=["right", "left"], help="Bottom corner of the launcher.")
        parser.add_argument("--greeting", help="Shown next to the launcher and at the top of a new chat.")
        parser.add_argument("--disabled", action="store_true", help="Create or leave the site switched off.")
        parser.add_argument("--no-photos", action="store_true", help="Shoppers cannot send photos.")
        parser.add_argument("--no-voice", action="store_true", help="Shoppers cannot send voice notes.")
        parser.add_argument("--no-handoff", action="store_true", help="Shoppers cannot ask for a person.")
        parser.add_argument(
            "--app-url", default="https://BOT", help="The chat app's address, for the printed embed tag."
        )

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        key = options["key"]
        if key is not None and not re.fullmatch(r"pk_[A-Za-z0-9_-]{8,37}", key):
            raise CommandError("--key must look like pk_ followed by 8 to 37 letters, digits, - or _.")
        with transaction.atomic():
            site = Site.objects.select_for_update().filter(public_key=key).first() if key else None
            created = site is None
            if site is None:
                site = Site(name=name, **({"public_key": key} if key else {}))
            site.name = name
            self._apply(site, options, created=created)
            try:
                site.full_clean()
            except ValidationError as error:
                raise CommandError("; ".join(f"{f}: {' '.join(m)}" for f, m in error.message_dict.items())) from error
            site.save()
        site_cache_clear(site)
        app = options["app_url"].rstrip("/")
        self.stdout.write(f"{'Created' if created else 'Updated'} site {site.name!r}.")
        self.stdout.write(f"public_key: {site.public_key}")
        self.stdout.write(f"identify_secret: {identify_secret(site)}")
        self.stdout.write(f"allowed_origins: {' '.join(site.origins) or '(none: only the app itself)'}")
        tag = f'<script src="{app}/static/supportbot/widget.js" data-site="{site.public_key}" async></script>'
        self.stdout.write(f"embed: {tag}")

    def _apply(self, site: Site, options: dict[str, Any], *, created: bool) -> None:
        if options["origin"] is not None:
            origins = [origin_normalise(origin) or origin for origin in options["origin"]]
            site.allowed_origins = "\n".join(dict.fromkeys(origins))
        for option, field in (("language", "language"), ("color", "brand_color"), ("position", "position")):
            if options[option] is not None:
                setattr(site, field, options[option])
        if options["greeting"] is not None:
            site.greeting = options["greeting"]
        # Switches: given flags turn features off; a new site without them has everything on.
        if options["disabled"] or created:
            site.enabled = not options["disabled"]
        switches = (("no_photos", "photos_enabled"), ("no_voice", "voice_enabled"), ("no_handoff", "handoff_enabled"))
        for flag, field in switches:
            if options[flag] or created:
                setattr(site, field, not options[flag])
