"""How well and how fast a shopper's photo finds its product: every demo catalog image, under
every transform the photo-match tests use (crops, rotations, JPEG q30, lighting, scaling, all at
once), matched against the indexed demo catalog.

    cd /work/main && .venv/bin/python bench/photo_match.py

Prints the top-1 rate, the score margin over the runner-up (median and minimum over correct
answers), and query time p50/p95 (features of the query photo plus matching; catalog features
were computed at load). Uses a fresh SQLite database in a temporary folder. Not part of the tests.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    DJANGO_SETTINGS_MODULE="supportbot.settings",
    SUPPORTBOT_ENV_FILE=os.devnull,
    SUPPORTBOT_VAR_DIR=tempfile.mkdtemp(prefix="bench-photo-"),
)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from PIL import Image  # noqa: E402

from catalog.imagematch import photo_match  # noqa: E402
from tests.catalog.test_imagematch import TRANSFORMS  # noqa: E402

DEMO = ROOT / "catalog" / "demo"


def main() -> None:
    call_command("migrate", verbosity=0)
    call_command("load_demo_catalog", verbosity=0)
    expected = {
        image["file"]: product["handle"]
        for product in json.loads((DEMO / "products.json").read_text())["products"]
        if product.get("status", "active") == "active"
        for image in product.get("images", [])
    }
    correct, total, margins, timings = 0, 0, [], []
    for file_name, handle in sorted(expected.items()):
        with Image.open(DEMO / "images" / file_name) as original:
            source = original.convert("RGB")
        for transform in TRANSFORMS.values():
            photo = transform(source)
            started = time.perf_counter()
            matches = photo_match(photo)
            timings.append((time.perf_counter() - started) * 1000)
            total += 1
            if matches and matches[0].product.handle == handle:
                correct += 1
                runner_up = matches[1].score if len(matches) > 1 else 0.0
                margins.append(matches[0].score - runner_up)
    timings.sort()
    print(f"images: {len(expected)}, transforms: {len(TRANSFORMS)}, queries: {total}")
    print(f"top-1 correct: {correct}/{total} ({100 * correct / total:.1f} %)")
    print(f"score margin over runner-up: median {statistics.median(margins):.2f}, min {min(margins):.2f}")
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(f"query time: p50 {statistics.median(timings):.0f} ms, p95 {p95:.0f} ms")


if __name__ == "__main__":
    main()
