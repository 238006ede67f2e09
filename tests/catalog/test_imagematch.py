"""Photo match against the demo catalog: transformed copies of catalog images find their product."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings
from PIL import Image, ImageEnhance

from catalog.imagematch import LIKELY_MATCH, UnusableImage, image_features, image_features_index, photo_match
from catalog.models import Collection, Product, ProductImage, ProductImageFeatures
from catalog.services import catalog_load_demo

DEMO_DIR = Path(__file__).resolve().parents[2] / "catalog" / "demo"
IMAGES = DEMO_DIR / "images"
# (file, product handle): different product types and vendors, and one colourway of two.
SAMPLES = [
    ("cascade-rain-jacket-slate.jpg", "cascade-rain-jacket"),
    ("tern-daypack-moss.jpg", "tern-daypack"),
    ("beacon-400-headlamp.jpg", "beacon-400-headlamp"),
    ("featherlite-2-tent.jpg", "featherlite-2-tent"),
    ("ridge-trail-cap.jpg", "ridge-trail-cap"),
    ("summit-gtx-hiking-boot.jpg", "summit-gtx-hiking-boot"),
]


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


def _crop(image: Image.Image, area: float, x: float, y: float) -> Image.Image:
    side = area**0.5
    width, height = int(image.width * side), int(image.height * side)
    left, top = int((image.width - width) * x), int((image.height - height) * y)
    return image.crop((left, top, left + width, top + height))


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop 60% centre": lambda image: _crop(image, 0.6, 0.5, 0.5),
    "crop 60% corner": lambda image: _crop(image, 0.6, 1.0, 0.0),
    "rotate 20°": lambda image: image.rotate(20, expand=True, fillcolor=(255, 255, 255)),
    "rotate -30°": lambda image: image.rotate(-30, expand=True, fillcolor=(128, 128, 128)),
    "rotate 90°": lambda image: image.rotate(90, expand=True),
    "JPEG quality 30": lambda image: _jpeg(image, 30),
    "brightness +40%": lambda image: ImageEnhance.Brightness(image).enhance(1.4),
    "brightness -40%": lambda image: ImageEnhance.Brightness(image).enhance(0.6),
    "contrast -40%": lambda image: ImageEnhance.Contrast(image).enhance(0.6),
    "scaled to 40%": lambda image: image.resize(
        (image.width * 2 // 5, image.height * 2 // 5), Image.Resampling.LANCZOS
    ),
    "all at once": lambda image: _jpeg(
        ImageEnhance.Brightness(_crop(image.rotate(15, expand=True, fillcolor=(200, 200, 200)), 0.7, 0.3, 0.6))
        .enhance(0.7)
        .resize((300, 300)),
        40,
    ),
}


@pytest.fixture(scope="module")
def demo_catalog(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Path]:
    """The whole demo catalog, loaded (and indexed) once for the module; yields the media folder."""
    media = tmp_path_factory.mktemp("media")
    with override_settings(MEDIA_ROOT=str(media)), django_db_blocker.unblock():
        call_command("load_demo_catalog", stdout=StringIO())
        yield media
        Product.objects.all().delete()
        Collection.objects.all().delete()


def _demo_image(file_name: str) -> Image.Image:
    with Image.open(IMAGES / file_name) as image:
        return image.convert("RGB")


@pytest.mark.django_db
@pytest.mark.parametrize("transform", TRANSFORMS, ids=list(TRANSFORMS))
def test_transformed_copy_of_a_catalog_image_finds_its_product_first_by_a_clear_margin(demo_catalog, transform):
    for file_name, handle in SAMPLES:
        matches = photo_match(TRANSFORMS[transform](_demo_image(file_name)))

        assert matches and matches[0].product.handle == handle, (file_name, matches[:2])
        runner_up = matches[1].score if len(matches) > 1 else 0.0
        assert matches[0].score >= LIKELY_MATCH, (file_name, matches[0].score)
        assert matches[0].score >= 2 * runner_up + 0.1, (file_name, matches[0].score, matches[1:2])


@pytest.mark.django_db
def test_colourway_photo_points_at_its_own_image_and_variant(demo_catalog):
    for colourway, sku in (("slate", "NP-CRJ-SLT-M"), ("forest", "NP-CRJ-FOR-M")):
        photo = _crop(_demo_image(f"cascade-rain-jacket-{colourway}.jpg"), 0.6, 0.5, 0.5)

        best = photo_match(photo)[0]

        assert best.image.variant is not None and best.image.variant.sku == sku


@pytest.mark.django_db
def test_one_entry_per_product_best_first_within_the_limit(demo_catalog):
    matches = photo_match(_demo_image("tern-daypack-black.jpg"), limit=3)

    assert len(matches) <= 3
    assert len({match.product.pk for match in matches}) == len(matches)
    assert [match.score for match in matches] == sorted((match.score for match in matches), reverse=True)
    assert all(0 < match.score <= 1 for match in matches)


@pytest.mark.django_db
def test_unrelated_photos_score_low(demo_catalog):
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    ramp = np.linspace(0, 1, 640)[None, :, None] * np.array([200, 150, 90]) + np.linspace(0, 50, 480)[:, None, None]
    gradient = Image.fromarray(ramp.astype(np.uint8))
    blobs = Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).resize(
        (640, 480), Image.Resampling.BICUBIC
    )

    for photo in (noise, gradient, blobs):
        assert all(match.score < LIKELY_MATCH / 2 for match in photo_match(photo))


@pytest.mark.django_db
def test_products_not_for_sale_are_not_matched(demo_catalog):
    matches = photo_match(_demo_image("summit-parka.jpg"))  # an archived product

    assert "summit-parka" not in {match.product.handle for match in matches}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "convert",
    [
        lambda image: image.convert("CMYK"),
        lambda image: image.convert("RGBA"),
        lambda image: image.convert("P"),
        lambda image: image.convert("L").convert("LA"),
        lambda image: Image.fromarray(np.asarray(image.convert("L"), np.uint16) * 257),  # 16-bit grey
        lambda image: Image.fromarray(np.asarray(image.convert("L"), np.float32) / 255),  # float 0..1
    ],
    ids=["CMYK", "RGBA", "palette", "grey+alpha", "16-bit", "float"],
)
def test_other_colour_modes_and_depths_match_too(demo_catalog, convert):
    photo = convert(_crop(_demo_image("featherlite-2-tent.jpg"), 0.7, 0.2, 0.4))

    assert photo_match(photo)[0].product.handle == "featherlite-2-tent"


def test_transparent_pixels_are_read_as_white_background():
    logo = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    logo.paste((200, 30, 30, 255), (50, 50, 150, 150))
    on_white = Image.new("RGB", (200, 200), "white")
    on_white.paste((200, 30, 30), (50, 50, 150, 150))

    assert np.allclose(image_features(logo).colour, image_features(on_white).colour, atol=0.01)


def test_a_tiny_image_is_refused():
    with pytest.raises(UnusableImage, match="16 or more"):
        image_features(Image.new("RGB", (8, 40)))


@pytest.fixture
def media(db, settings, tmp_path: Path) -> Path:
    """An empty catalog with its own media folder (the module's demo catalog is rolled back in)."""
    Product.objects.all().delete()
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def _small_demo(handles: set[str]) -> dict:
    data = json.loads((DEMO_DIR / "products.json").read_text(encoding="utf-8"))
    return {"collections": [], "products": [p for p in data["products"] if p["handle"] in handles]}


def test_features_are_stored_at_load_and_queries_do_not_read_catalog_files(media):
    summary = catalog_load_demo(data=_small_demo({"tern-daypack", "enamel-camp-mug", "trail-gaiters"}))
    assert summary.images_created == summary.images_indexed == 4
    assert ProductImageFeatures.objects.count() == ProductImage.objects.count() == 4
    stored = ProductImageFeatures.objects.get(image__image__contains="enamel-camp-mug")
    assert len(stored.descriptors) <= 500 * 32

    shutil.rmtree(media)  # a query that recomputed catalog features would fail now

    assert photo_match(_crop(_demo_image("enamel-camp-mug.jpg"), 0.6, 0.5, 0.5))[0].product.handle == "enamel-camp-mug"


def test_reloading_copies_no_file_twice_and_indexes_nothing_new(media):
    data = _small_demo({"tern-daypack", "trail-gaiters"})
    catalog_load_demo(data=data)
    files = sorted(path.name for path in media.rglob("*.jpg"))

    again = catalog_load_demo(data=data)

    assert (again.images_created, again.images_updated, again.images_removed, again.images_indexed) == (0, 0, 0, 0)
    assert sorted(path.name for path in media.rglob("*.jpg")) == files and len(files) == 3


def test_a_changed_image_list_updates_rows_in_place_and_removes_dropped_images(media):
    data = _small_demo({"tern-daypack"})
    catalog_load_demo(data=data)
    images = data["products"][0]["images"]
    images[0]["alt_text"] = "Tern Daypack, black, front"
    del images[1]

    summary = catalog_load_demo(data=data)

    assert (summary.images_updated, summary.images_removed, summary.products_updated) == (1, 1, 1)
    assert list(ProductImage.objects.values_list("alt_text", flat=True)) == ["Tern Daypack, black, front"]


def test_index_images_command_rebuilds_missing_features(media):
    catalog_load_demo(data=_small_demo({"trail-gaiters", "enamel-camp-mug"}))
    ProductImageFeatures.objects.all().delete()
    out = StringIO()

    call_command("index_images", stdout=out)

    assert "indexed: 2, unchanged: 0, failed: 0" in out.getvalue()
    assert image_features_index().unchanged == 2
