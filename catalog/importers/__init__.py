"""Catalog import: readers turn a file into ProductRecords, one shared writer stores them.

- shopify_csv.read_shopify_csv: Shopify's product CSV (several rows per product, keyed by Handle).
- jsonl.read_jsonl: JSON Lines, one product per line.
- writer.catalog_import_records: the idempotent, batched writer both readers feed.

`python manage.py import_catalog FILE` (catalog/management/commands/import_catalog.py) ties them
together with a progress bar and a summary.
"""

from catalog.importers.records import ImportFileError, ImportReport, Issue, ProductRecord
from catalog.importers.writer import catalog_import_records

__all__ = ["ImportFileError", "ImportReport", "Issue", "ProductRecord", "catalog_import_records"]
