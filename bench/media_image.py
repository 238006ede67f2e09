"""How fast `image_process` normalises a 12-megapixel phone photo, against a naive version.

    cd /work/main && .venv/bin/python bench/media_image.py [--runs 15]

Pinned to one core (the media pool gives each upload one thread). Builds a 4032×3024 JPEG in
memory with photo-like content (smooth colour, texture, sensor noise), EXIF orientation 6, GPS,
XMP and a colour profile, at quality 90 — a few MB, like a phone's. Times `image_process` (2
warm-ups, then --runs runs) and prints the median and p90 in milliseconds against the 150 ms
target; then, in the same process, a naive pipeline (full-size decode, exif_transpose, Lanczos
resize to 2048, then the same model copy and thumbnail) for the ratio. Not part of the tests.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    DJANGO_SETTINGS_MODULE="supportbot.settings",
    SUPPORTBOT_ENV_FILE=os.devnull,
    SUPPORTBOT_VAR_DIR=tempfile.mkdtemp(prefix="bench-image-"),
)

import django  # noqa: E402

django.setup()

from PIL import Image, ImageOps  # noqa: E402

from chat.media.images import image_process, model_size  # noqa: E402
from tests.chat.media.imagefiles import jpeg_with_metadata, photo_like  # noqa: E402

TARGET_MS = 150.0
SIZE = (4032, 3024)


def naive(data: bytes) -> None:
    """What image_process replaced: decode every pixel, turn, then shrink with Lanczos."""
    with Image.open(io.BytesIO(data)) as source:
        image = ImageOps.exif_transpose(source.convert("RGB"))
    image.thumbnail((2048, 2048), Image.Resampling.LANCZOS, reducing_gap=None)
    image.info = {}
    model = image.resize(model_size(image.size, "high"), Image.Resampling.LANCZOS)
    thumb = model.copy()
    thumb.thumbnail((320, 320), Image.Resampling.LANCZOS, reducing_gap=None)
    for output, quality in ((image, 88), (model, 85), (thumb, 80)):
        output.save(io.BytesIO(), "JPEG", quality=quality)


def timed(fn: Callable[[bytes], object], data: bytes, runs: int) -> list[float]:
    for _ in range(2):
        fn(data)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(data)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(timings: list[float]) -> tuple[float, float]:
    return statistics.median(timings), statistics.quantiles(timings, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})

    data = jpeg_with_metadata(photo_like(SIZE), orientation=6, quality=90)
    result = image_process(data)
    print(f"input: {SIZE[0]}x{SIZE[1]} JPEG q90, EXIF orientation 6 + GPS, {len(data) / 1e6:.2f} MB; one core")
    print(
        f"output: stored {result.width}x{result.height} ({len(result.stored) / 1e3:.0f} kB), "
        f"model {result.model_width}x{result.model_height} ({len(result.model) / 1e3:.0f} kB), "
        f"thumb {len(result.thumb) / 1e3:.0f} kB"
    )
    fast_median, fast_p90 = summary(timed(image_process, data, args.runs))
    naive_median, naive_p90 = summary(timed(naive, data, args.runs))
    verdict = "met" if fast_p90 <= TARGET_MS else "MISSED"
    print(f"image_process: median {fast_median:.1f} ms, p90 {fast_p90:.1f} ms over {args.runs} runs")
    print(f"target: <= {TARGET_MS:.0f} ms ({verdict} at p90)")
    print(
        f"naive (full decode + exif_transpose + Lanczos resize): median {naive_median:.1f} ms, p90 {naive_p90:.1f} ms"
    )
    print(f"ratio: naive / image_process = {naive_median / fast_median:.1f}x at the median")


if __name__ == "__main__":
    main()
