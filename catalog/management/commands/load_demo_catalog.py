"""Load the demo catalog (or another file in the same format) into the database.

File format: one JSON object.

    {
      "collections": [
        {"handle": "sale", "title": "Sale", "description": "...", "products": ["<product handle>", ...]}
      ],
      "products": [
        {
          "handle": "tern-daypack", "title": "Tern Daypack", "vendor": "...", "product_type": "...",
          "category": "...", "tags": ["..."], "status": "active|draft|archived",
          "options": ["Capacity", "Color"],             # 0-3 option names
          "description_html": "<p>...</p>",
          "variants": [                                 # at least one, in display order
            {"sku": "TO-DP-20L-BLK", "options": ["20L", "Black"], "price": "89.00",
             "compare_at_price": "99.00", "inventory_quantity": 7, "barcode": ""}
          ],
          "images": [                                   # optional, in display order
            {"file": "tern-daypack-black.jpg", "alt_text": "...", "variant_sku": "TO-DP-20L-BLK"}
          ]
        }
      ]
    }

Prices are decimal strings or JSON numbers; compare_at_price, barcode, inventory_quantity (0), status
(active), category, vendor, product_type, tags and options are optional. A variant lists one
value per product option. Products and collections are matched by handle, variants by SKU
within their product, so re-running updates in place and removes variants no longer listed.
Image files are read from the "images" folder next to the JSON file (scripts/make_demo_images.py
draws the demo ones), copied into media storage once, and indexed for photo match.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.services import CatalogImportError, catalog_load_demo

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "demo" / "products.json"


class Command(BaseCommand):
    help = "Create or update the demo products, variants, images and collections from a JSON file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--file", type=Path, default=DEFAULT_FILE, help=f"JSON catalog to load (default: {DEFAULT_FILE})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}") from error
        except json.JSONDecodeError as error:
            raise CommandError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise CommandError(f"{path} must hold a JSON object with products and collections.")
        try:
            summary = catalog_load_demo(data=data, images_dir=path.parent / "images")
        except CatalogImportError as error:
            raise CommandError(f"{path}: {error}") from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Catalog loaded from {path.name}: "
                f"products {summary.products_created} created, {summary.products_updated} updated, "
                f"{summary.products_unchanged} unchanged; "
                f"variants {summary.variants_created} created, {summary.variants_updated} updated, "
                f"{summary.variants_removed} removed; "
                f"collections {summary.collections_created} created, {summary.collections_updated} updated; "
                f"images {summary.images_created} created, {summary.images_updated} updated, "
                f"{summary.images_removed} removed, {summary.images_indexed} indexed for photo match."
            )
        )
