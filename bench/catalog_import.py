"""How fast `import_catalog` reads a 100k-row Shopify CSV: a first import, then a re-import.

    cd /work/main && .venv/bin/python bench/catalog_import.py [--rows 100000] [--no-postgres] [--no-migrations]

Generates the CSV in a temporary folder (4 variants and 3 images per product: 4 variant rows and
1 image-only row, so 5 rows a product), then for each database runs `manage.py migrate` and
`manage.py import_catalog FILE --no-progress` twice in a subprocess and prints rows/s and seconds.
Databases: a temporary SQLite file; and PostgreSQL when postgres://postgres@127.0.0.1:5432/test
(or BENCH_POSTGRES_URL) is reachable, in a temporary database created and dropped here.
--no-migrations builds the tables from the models instead of running the migrations (as
pytest --no-migrations does), for when a migration in progress is broken. Not part of the tests.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
HEADER = [
    "Handle",
    "Title",
    "Body (HTML)",
    "Vendor",
    "Product Category",
    "Type",
    "Tags",
    "Published",
    "Option1 Name",
    "Option1 Value",
    "Option2 Name",
    "Option2 Value",
    "Option3 Name",
    "Option3 Value",
    "Variant SKU",
    "Variant Grams",
    "Variant Inventory Tracker",
    "Variant Inventory Qty",
    "Variant Inventory Policy",
    "Variant Fulfillment Service",
    "Variant Price",
    "Variant Compare At Price",
    "Variant Requires Shipping",
    "Variant Taxable",
    "Variant Barcode",
    "Image Src",
    "Image Position",
    "Image Alt Text",
    "Gift Card",
    "SEO Title",
    "SEO Description",
    "Variant Image",
    "Variant Weight Unit",
    "Variant Tax Code",
    "Cost per item",
    "Status",
    "",
]
ROWS_PER_PRODUCT = 5


def write_csv(path: Path, *, rows: int) -> None:
    cdn = "https://cdn.shopify.com/s/files/1/0000/0001/products"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        for number in range(rows // ROWS_PER_PRODUCT):
            handle_ = f"bench-product-{number}"
            body = (
                f"<p>Product {number} is <strong>light</strong> and sturdy.</p><ul><li>Recycled</li><li>Warm</li></ul>"
            )
            for index, (size, color) in enumerate([("S", "Black"), ("S", "Olive"), ("M", "Black"), ("M", "Olive")]):
                row = {
                    "Handle": handle_,
                    "Option1 Value": size,
                    "Option2 Value": color,
                    "Variant SKU": f"BP-{number}-{size}-{color}",
                    "Variant Inventory Qty": str(number % 17),
                    "Variant Price": f"{10 + number % 90}.{index}0",
                    "Variant Compare At Price": "120.00" if index == 0 else "",
                    "Variant Barcode": f"{number:08d}{index:04d}",
                    "Variant Inventory Tracker": "shopify",
                    "Variant Inventory Policy": "deny",
                    "Variant Fulfillment Service": "manual",
                    "Variant Requires Shipping": "TRUE",
                    "Variant Taxable": "TRUE",
                    "Variant Weight Unit": "kg",
                }
                if index == 0:
                    row |= {
                        "Title": f"Bench Product {number}",
                        "Body (HTML)": body,
                        "Vendor": f"Vendor {number % 50}",
                        "Type": "Backpack",
                        "Tags": "bench, bags",
                        "Published": "TRUE",
                        "Option1 Name": "Size",
                        "Option2 Name": "Color",
                        "Status": "active",
                    }
                if index < 2:
                    src = f"{cdn}/{handle_}-{color.lower()}.jpg?v=1"
                    row |= {"Image Src": src, "Image Position": str(index + 1), "Variant Image": src}
                writer.writerow(row)
            writer.writerow({"Handle": handle_, "Image Src": f"{cdn}/{handle_}-back.jpg?v=1", "Image Position": "3"})


def manage(*args: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def bench(label: str, csv_path: Path, *, env: dict[str, str], rows: int) -> None:
    manage(
        "migrate",
        "-v0",
        *(["--run-syncdb"] if "bench_settings" in env.get("DJANGO_SETTINGS_MODULE", "") else []),
        env=env,
    )
    for run in ("first import", "re-import"):
        seconds, output = manage("import_catalog", str(csv_path), "--no-progress", env=env)
        summary = re.search(r"Rows: .*", output)
        figures = f"{label:10} {run:12} {rows / seconds:9,.0f} rows/s {seconds:7.1f} s"
        print(f"{figures}   {summary.group(0) if summary else ''}")


def postgres_database(url: str) -> tuple[str, str] | None:
    """(admin URL, name) of a fresh temporary database, or None when PostgreSQL is not reachable."""
    try:
        import psycopg

        name = f"supportbot_bench_{os.getpid()}"
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return url, name
    except Exception as error:  # any failure means "not available here"
        print(f"PostgreSQL skipped: {error}")
        return None


def drop_postgres_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-migrations", action="store_true", help="build tables from the models")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "products.csv"
        started = time.perf_counter()
        write_csv(csv_path, rows=options.rows)
        rows = options.rows // ROWS_PER_PRODUCT * ROWS_PER_PRODUCT
        size = csv_path.stat().st_size / 1e6
        print(
            f"{rows:,} rows ({size:.1f} MB) generated in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs"
        )
        env = {**os.environ, "SUPPORTBOT_ENV_FILE": "/dev/null", "SUPPORTBOT_VAR_DIR": str(folder / "var")}
        env.pop("DATABASE_URL", None)
        if options.no_migrations:
            (folder / "bench_settings.py").write_text(
                "from supportbot.settings import *  # noqa\n"
                "MIGRATION_MODULES = {app.split('.')[-1]: None for app in INSTALLED_APPS}\n"
            )
            env |= {"DJANGO_SETTINGS_MODULE": "bench_settings", "PYTHONPATH": f"{folder}:{ROOT}"}
        bench("SQLite", csv_path, env=env, rows=rows)
        database = None if options.no_postgres else postgres_database(POSTGRES_URL)
        if database is not None:
            url, name = database
            try:
                bench("PostgreSQL", csv_path, env=env | {"DATABASE_URL": url.rsplit("/", 1)[0] + f"/{name}"}, rows=rows)
            finally:
                drop_postgres_database(url, name)


if __name__ == "__main__":
    main()
