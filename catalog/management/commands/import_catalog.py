"""Import products from a Shopify product CSV or a JSON Lines file; safe to run again.

    python manage.py import_catalog products_export.csv [--images DIR] [--dry-run] [--no-progress]
    python manage.py import_catalog products.jsonl

Formats (chosen by extension: .jsonl/.ndjson is JSON Lines, anything else Shopify CSV; or --format):
- Shopify CSV: the columns of Shopify's product_template.csv, one product over several rows keyed
  by Handle; see catalog/importers/shopify_csv.py for the columns read.
- JSON Lines: one product per line; schema in catalog/importers/jsonl.py:

    {"handle": "…", "title": "…", "description_html": "…", "vendor": "…", "product_type": "…",
     "category": "…", "tags": ["…"], "status": "active|draft|archived", "options": ["Size"],
     "variants": [{"sku": "…", "options": ["M"], "price": "19.99", "compare_at_price": null,
                   "inventory_quantity": 3, "barcode": "…", "image": "<an images[].src>"}],
     "images": [{"src": "https://…/a.jpg", "position": 1, "alt": "…"}]}

Re-importing updates in place: products by handle, variants by SKU (or option values without
one), images by URL. Nothing is deleted. A product with any bad row is skipped whole; the summary
lists skipped rows (row number, handle, reason) and warnings such as barcodes a spreadsheet has
turned into 3.65275E+11. Images: with --images DIR the file named in each image URL's path is
taken from DIR; otherwise only the URL is stored (source_url), to fetch later. No network access.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm  # type: ignore[import-untyped]

from catalog.importers import ImportFileError, ImportReport, Issue, catalog_import_records
from catalog.importers.jsonl import read_jsonl
from catalog.importers.shopify_csv import read_shopify_csv

SHOWN_ISSUES = 50
_READERS = {"shopify-csv": read_shopify_csv, "jsonl": read_jsonl}


class Command(BaseCommand):
    help = "Create or update products from a Shopify product CSV or a JSON Lines file (see the module docstring)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the .csv (Shopify) or .jsonl file to import")
        parser.add_argument(
            "--format", choices=["auto", *_READERS], default="auto", help="file format (default: by extension)"
        )
        parser.add_argument(
            "--images", type=Path, metavar="DIR", help="folder holding the image files named in the image URLs"
        )
        parser.add_argument("--dry-run", action="store_true", help="validate and count without writing anything")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (also off when not a TTY)")
        parser.add_argument("--batch-size", type=int, default=500, help="products per transaction (default: 500)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        images: Path | None = options["images"]
        if images is not None and not images.is_dir():
            raise CommandError(f"--images {images} is not a folder.")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        file_format = options["format"]
        if file_format == "auto":
            file_format = "jsonl" if path.suffix.lower() in {".jsonl", ".ndjson"} else "shopify-csv"
        started = time.monotonic()
        try:
            with path.open("rb") as raw, _progress(raw, path, disable=options["no_progress"]) as stream:
                report = catalog_import_records(
                    records=_READERS[file_format](stream),
                    images_dir=images,
                    dry_run=options["dry_run"],
                    batch_size=options["batch_size"],
                )
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror or error}") from error
        except ImportFileError as error:
            raise CommandError(f"{path}: {error}") from error
        self._summarize(report, seconds=time.monotonic() - started, dry_run=options["dry_run"])

    def _summarize(self, report: ImportReport, *, seconds: float, dry_run: bool) -> None:
        write = self.stdout.write
        if dry_run:
            write("Dry run: nothing was written; the counts say what an import would do.")
        write(
            f"Rows: {report.rows_read} read in {seconds:.1f} s: {report.rows_created} imported (new products), "
            f"{report.rows_updated} updated, {report.rows_unchanged} unchanged, {report.rows_skipped} skipped."
        )
        write(
            f"Products: {report.products_created} created, {report.products_updated} updated, "
            f"{report.products_unchanged} unchanged. Variants: {report.variants_created} created, "
            f"{report.variants_updated} updated. Images: {report.images_created} created, "
            f"{report.images_updated} updated, {report.image_files_attached} files attached."
        )
        self._issues("Skipped rows", report.skipped, style=self.style.ERROR)
        self._issues("Warnings", report.warnings, style=self.style.WARNING)

    def _issues(self, title: str, issues: list[Issue], *, style: Any) -> None:
        if not issues:
            return
        self.stdout.write(style(f"{title} ({len(issues)}):"))
        for issue in issues[:SHOWN_ISSUES]:
            self.stdout.write(f"  {issue}")
        if len(issues) > SHOWN_ISSUES:
            self.stdout.write(f"  … and {len(issues) - SHOWN_ISSUES} more.")


@contextmanager
def _progress(raw: IO[bytes], path: Path, *, disable: bool) -> Iterator[IO[bytes]]:
    """`raw`, read through a progress bar on stderr (bytes read of the file's size)."""
    bar = tqdm(
        total=path.stat().st_size,
        unit="B",
        unit_scale=True,
        desc=f"Importing {path.name}",
        file=sys.stderr,
        disable=disable or not sys.stderr.isatty(),
    )
    try:
        yield io.BufferedReader(_ProgressReader(raw, bar))
    finally:
        bar.close()


class _ProgressReader(io.RawIOBase):
    """A byte stream that advances a progress bar by what is read through it."""

    def __init__(self, raw: IO[bytes], bar: tqdm) -> None:
        super().__init__()
        self._raw = raw
        self._bar = bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self._bar.update(count)
        return int(count)
