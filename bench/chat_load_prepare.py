"""chat_load.py's database step (run in a subprocess with the app's environment): migrate, load
the generated catalog once (bench/catalog_search.py's products; kept between runs), empty the
chat tables, and write the shoppers' messages (realistic catalog questions) to a JSON file.

    .venv/bin/python bench/chat_load_prepare.py --products 50000 --queries 2000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")

import django  # noqa: E402

django.setup()

from catalog_search import SEED, product_rows, queries  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from catalog.models import Product, Variant  # noqa: E402
from chat.models import Conversation  # noqa: E402


def load_catalog(count: int) -> None:
    rows = product_rows(count, random.Random(SEED))
    have = Product.objects.filter(handle__startswith="bench-").count()
    if have == count:
        return
    Product.objects.all().delete()
    started = time.perf_counter()
    for offset in range(0, len(rows), 2000):
        chunk = rows[offset : offset + 2000]
        with transaction.atomic():
            products = Product.objects.bulk_create(
                [Product(**{k: v for k, v in row.items() if k != "variants"}) for row in chunk]
            )
            Variant.objects.bulk_create(
                [
                    Variant(product=product, position=position, sku=f"{product.handle}-{position}", **variant)
                    for product, row in zip(products, chunk, strict=True)
                    for position, variant in enumerate(row["variants"], start=1)
                ]
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    print(f"catalog: {count:,} products loaded in {time.perf_counter() - started:.0f} s", flush=True)


def vacuum() -> None:
    """Every run starts from the same tables. A DELETE leaves each row behind as a dead tuple until
    autovacuum comes, and the PostgreSQL these benchmarks ran on has autovacuum off: after a few
    dozen runs chat_message held 120 000 dead rows (and the catalog's search table one per product
    from its first load), every lookup waded through them, and the quiet turn was ~2 ms slower
    than in the first runs."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename ~ '^(chat_|catalog_|django_session)'")
        for (table,) in cursor.fetchall():
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    load_catalog(args.products)
    # Conversations of earlier runs (with their messages) would only slow the history reads.
    Conversation.objects.all().delete()
    if connection.vendor == "postgresql":
        vacuum()
    rng = random.Random(SEED + 1)
    rows = product_rows(min(args.products, 5000), random.Random(SEED))
    path = Path(settings.VAR_DIR) / "queries.json"
    path.write_text(json.dumps(queries(args.queries, rows, rng)))


if __name__ == "__main__":
    main()
