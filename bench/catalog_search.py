"""How fast `product_search` answers on a 100k-product catalog, against the old naive search.

    cd /work/main && .venv/bin/python bench/catalog_search.py [--products 100000] [--queries 500]
        [--baseline-queries 60] [--no-postgres]

For each database — a temporary SQLite file, and PostgreSQL when postgres://postgres@127.0.0.1:5432/test
(or BENCH_POSTGRES_URL) is reachable, in a temporary database created and dropped here — a
subprocess runs the migrations, generates the products (1 to 6 variants each, with sizes,
colours, prices and stock; bulk_create, so the search index is filled by its triggers, and the
time that takes is printed too), then times ~500 realistic shopper queries (plain, chatty, with
typos, synonyms and filters) through `catalog.selectors.product_search` end to end (ids,
products, prefetched variants and images) and prints p50/p95/p99 in milliseconds. In the same
process it times the naive search this replaced (icontains on every field, kept below as
`naive_search`) on the first --baseline-queries queries, which take far longer each.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
SEED = 20261124

NOUNS = {
    "Jacket": ["Rain Jacket", "Shell Jacket", "Down Jacket", "Softshell Jacket", "Insulated Jacket", "Windbreaker"],
    "Shoes": ["Trail Runner", "Running Shoe", "Sneaker", "Approach Shoe", "Hiking Shoe", "Slip-On"],
    "Boots": ["Hiking Boot", "Winter Boot", "Chelsea Boot", "Rain Boot", "Mountaineering Boot"],
    "Hats": ["Beanie", "Sun Hat", "Bucket Hat", "Trucker Cap", "Headband"],
    "Bags": ["Backpack", "Daypack", "Duffel Bag", "Tote Bag", "Hip Pack", "Sling Bag"],
    "Tops": ["T-Shirt", "Base Layer", "Hoodie", "Fleece", "Sweater", "Polo", "Tank Top"],
    "Bottoms": ["Hiking Pant", "Shorts", "Leggings", "Joggers", "Rain Pant"],
    "Camp": ["Tent", "Sleeping Bag", "Camp Stove", "Camp Mug", "Headlamp", "Water Bottle", "Camp Chair"],
    "Accessories": ["Gloves", "Socks", "Sunglasses", "Scarf", "Gaiters", "Belt"],
}
_ADJECTIVES = """Alpine Summit Ridge Trail Storm Coastal Urban Classic Ultralight Packable Waterproof Insulated
Merino Recycled Rugged Everyday Expedition Heritage Thermal Breathable Windproof Technical Lightweight Cozy
Vintage Organic Stretch Quickdry Reflective Convertible"""
ADJECTIVES = _ADJECTIVES.split()
_MATERIALS = "Wool Cotton Nylon Leather Canvas Fleece Down Polyester Hemp Linen Gore-Tex Ripstop Suede Bamboo"
MATERIALS = _MATERIALS.split()
_COLOURS = "Black White Navy Olive Grey Red Blue Green Orange Yellow Brown Sand Burgundy Teal Charcoal Pink"
COLOURS = _COLOURS.split()
SIZES_SHOES = [str(n) for n in range(5, 14)] + ["9.5", "10.5", "11.5"]
SIZES_CLOTHES = ["XS", "S", "M", "L", "XL", "XXL"]
_FEATURES = (
    "taped seams|pit zips|a two-way zip|a stowable hood|reinforced toe caps|a grippy outsole|a padded laptop sleeve|"
    "hip belt pockets|flatlock seams|odor control|UPF 50 sun protection|a brushed lining|adjustable cuffs|"
    "a cinch cord|a hydration sleeve|a roll-top closure|a wide toe box|a rockered sole|a reflective trim"
)
FEATURES = _FEATURES.split("|")
_USES = "hiking|commuting|trail running|camping|travel|skiing|climbing|festivals|fishing|dog walks|city days"
USES = _USES.split("|")


_SYLLABLES = "ka ri to ne sa lu mo vi ze pa dor fen kas tril vo mar sel bri qua nox yel"


def pseudo_word(rng: random.Random) -> str:
    syllables = _SYLLABLES.split()
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()


def product_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    vendors = [f"{pseudo_word(rng)} {rng.choice(['Outdoor', 'Gear', 'Co', 'Works', 'Supply'])}" for _ in range(150)]
    models = [pseudo_word(rng) for _ in range(4000)]
    rows = []
    for number in range(count):
        product_type = rng.choice(list(NOUNS))
        noun = rng.choice(NOUNS[product_type])
        title = " ".join(filter(None, [rng.choice(models) if rng.random() < 0.5 else "", rng.choice(ADJECTIVES), noun]))
        if rng.random() < 0.3:
            title += f" {rng.choice(['2', 'II', 'Pro', 'Lite', 'Plus', 'X'])}"
        material = rng.choice(MATERIALS)
        features = rng.sample(FEATURES, 3)
        description = (
            f"A {rng.choice(ADJECTIVES).lower()} {noun.lower()} in {material.lower()} for {rng.choice(USES)} "
            f"and {rng.choice(USES)}. It has {features[0]}, {features[1]} and {features[2]}. "
            f"Made by people who love {rng.choice(USES)}; weighs {rng.randint(80, 2400)} g."
        )
        sizes = SIZES_SHOES if product_type in {"Shoes", "Boots"} else SIZES_CLOTHES
        has_size = product_type not in {"Camp", "Bags"}
        colours = rng.sample(COLOURS, rng.randint(1, 3))
        variants = []
        price = Decimal(rng.randint(8, 400)) + Decimal("0.99") - 1
        for colour in colours:
            for size in rng.sample(sizes, rng.randint(1, 2)) if has_size else [""]:
                variants.append(
                    {
                        "option1": size or colour,
                        "option2": colour if size else "",
                        "price": price + rng.choice([0, 0, 10, 20]),
                        "inventory_quantity": rng.choice([0, 0, 1, 3, 8, 20]),
                    }
                )
        rows.append(
            {
                "handle": f"bench-{number}",
                "title": title,
                "vendor": rng.choice(vendors),
                "product_type": product_type,
                "tags": rng.sample([material.lower(), *USES, "sale", "new", "bestseller"], 3),
                "description_text": description,
                "status": rng.choices(["active", "draft", "archived"], [90, 5, 5])[0],
                "option1_name": "Size" if has_size else "Color",
                "option2_name": "Color" if has_size else "",
                "variants": variants[:6],
            }
        )
    return rows


def typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["swap", "drop", "double", "replace"])
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeiourstln") + word[i + 1 :]


def queries(count: int, rows: list[dict[str, Any]], rng: random.Random) -> list[str]:
    result = []
    templates = [
        "{q}",
        "do you have {q}?",
        "I'm looking for {q} size {size}",
        "{q} under {price}",
        "{q} in {colour}",
        "{q} in stock",
        "{q} size {size} under {price} in stock",
        "any {q} in {colour} under {price}?",
        "hi, is the {q} available in {colour}?",
    ]
    synonyms = ["sneakers", "trainers", "rucksack", "winter coat", "beanie", "waterproof shell", "knapsack", "parka"]
    for _ in range(count):
        row = rng.choice(rows)
        words = row["title"].split()
        kind = rng.random()
        if kind < 0.35:
            q = " ".join(words[-2:]).lower()
        elif kind < 0.55:
            q = " ".join(typo(word.lower(), rng) for word in words[-2:])
        elif kind < 0.65:
            q = rng.choice(synonyms)
        elif kind < 0.75:
            q = f"{rng.choice(MATERIALS).lower()} {rng.choice(list(NOUNS.values()))[0].lower()}"
        elif kind < 0.85:
            q = row["title"].lower()
        else:
            q = f"{rng.choice(USES)} {rng.choice(['gear', 'layers', 'bag', 'shoes', 'jacket'])}"
        template = rng.choice(templates)
        result.append(
            template.format(
                q=q,
                size=rng.choice([*SIZES_SHOES, "M", "L"]),
                price=rng.choice([30, 50, 80, 120, 200]),
                colour=rng.choice(COLOURS).lower(),
            )
        )
    return result


def naive_search(*, query: str, limit: int = 5) -> list[Any]:
    """The search this engine replaced (catalog/selectors.py before it), kept for comparison."""
    from django.db.models import Case, Exists, IntegerField, OuterRef, Prefetch, Q, Value, When

    from catalog.models import Product, Variant
    from catalog.selectors import search_tokens

    def token_score(token: str) -> Case:
        other = Q()
        for field in ("description_text", "vendor", "product_type", "category", "tags", "handle"):
            other |= Q(**{f"{field}__icontains": token})
        option = Variant.objects.filter(product=OuterRef("pk")).filter(
            Q(option1__icontains=token) | Q(option2__icontains=token) | Q(option3__icontains=token)
        )
        return Case(
            When(title__icontains=token, then=Value(2)),
            When(other, then=Value(1)),
            When(Exists(option), then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )

    tokens = search_tokens(query=query)
    if not tokens:
        return []
    score = functools.reduce(operator.add, (token_score(token) for token in tokens))
    products = (
        Product.objects.filter(status=Product.Status.ACTIVE)
        .alias(search_score=score)
        .filter(search_score__gt=0)
        .order_by("-search_score", "title", "pk")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("position", "pk")))
    )
    return list(products[:limit])


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "mean": statistics.fmean(ordered), "n": len(ordered)}


def timed(function: Any, qs: list[str]) -> tuple[list[float], int]:
    samples, empty = [], 0
    for q in qs:
        started = time.perf_counter()
        found = function(query=q, limit=5)
        samples.append((time.perf_counter() - started) * 1000)
        empty += not found
    return samples, empty


def worker(args: argparse.Namespace) -> None:
    """Runs inside the subprocess, with the environment pointing Django at the database to use."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from catalog.models import Product, Variant
    from catalog.search.schema import backend_for
    from catalog.selectors import product_search

    call_command("migrate", verbosity=0)
    rng = random.Random(SEED)
    rows = product_rows(args.products, rng)
    started = time.perf_counter()
    batch = 2000
    for offset in range(0, len(rows), batch):
        chunk = rows[offset : offset + batch]
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
    load_seconds = time.perf_counter() - started
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    variants = Variant.objects.count()
    qs = queries(args.queries, rows, rng)

    started = time.perf_counter()
    product_search(query="warm up the vocabulary", limit=5)
    vocabulary_ms = (time.perf_counter() - started) * 1000
    with connection.cursor() as cursor:
        vocabulary_words = len(backend_for(connection).vocabulary(cursor))
    timed(product_search, qs[:20])  # warm caches
    samples, empty = timed(product_search, qs)
    baseline, baseline_empty = timed(naive_search, qs[: args.baseline_queries])
    print(
        json.dumps(
            {
                "backend": connection.vendor,
                "products": len(rows),
                "variants": variants,
                "load_seconds": load_seconds,
                "vocabulary_ms": vocabulary_ms,
                "vocabulary_words": vocabulary_words,
                "search": percentiles(samples),
                "search_empty": empty,
                "naive": percentiles(baseline),
                "naive_empty": baseline_empty,
                "examples": [[q, [p.title for p in product_search(query=q, limit=3)]] for q in qs[:8]],
            }
        )
    )


def run_backend(args: argparse.Namespace, *, database_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as var_dir:
        env = {**os.environ, "SUPPORTBOT_ENV_FILE": "/dev/null", "SUPPORTBOT_VAR_DIR": var_dir}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        if database_url:
            env["DATABASE_URL"] = database_url
        command = [
            sys.executable,
            __file__,
            "--worker",
            f"--products={args.products}",
            f"--queries={args.queries}",
            f"--baseline-queries={args.baseline_queries}",
        ]
        output = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def with_postgres(args: argparse.Namespace) -> dict[str, Any] | None:
    import psycopg
    from psycopg import sql

    try:
        admin = psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        print(f"PostgreSQL skipped: {POSTGRES_URL} is not reachable ({exc.__class__.__name__})")
        return None
    name = f"supportbot_bench_{uuid.uuid4().hex[:12]}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        base = POSTGRES_URL.rsplit("/", 1)[0]
        return run_backend(args, database_url=f"{base}/{name}")
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def report(result: dict[str, Any]) -> None:
    search, naive = result["search"], result["naive"]
    print(
        f"\n{result['backend']}: {result['products']:,} products, {result['variants']:,} variants, "
        f"loaded with bulk_create in {result['load_seconds']:.1f} s (index kept by triggers); "
        f"vocabulary {result['vocabulary_words']:,} words, first load {result['vocabulary_ms']:.0f} ms"
    )
    for label, figures, empty in (("product_search", search, result["search_empty"]), ("naive", naive, None)):
        nothing = f", {empty} found nothing" if empty is not None else ""
        print(
            f"  {label:15} p50 {figures['p50']:8.2f} ms   p95 {figures['p95']:8.2f} ms   p99 {figures['p99']:8.2f} ms"
            f"   mean {figures['mean']:8.2f} ms   ({figures['n']} queries{nothing})"
        )
    for query, titles in result["examples"]:
        print(f"    {query!r:55} → {titles}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--baseline-queries", type=int, default=60)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(ROOT))
        worker(args)
        return
    report(run_backend(args, database_url=None))
    if not args.no_postgres and (result := with_postgres(args)) is not None:
        report(result)


if __name__ == "__main__":
    main()
