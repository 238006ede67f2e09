"""`import_catalog` with Shopify's product CSV: the fixture holds a multi-variant multi-image
product, an image-only row, variant images, a damaged barcode, drafts and malformed rows."""

from __future__ import annotations

import io
import shutil
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from catalog.importers.records import RowError
from catalog.importers.values import parse_price
from catalog.models import Product, ProductImage, ProductImageFeatures, Variant

FIXTURE = Path(__file__).parent / "fixtures" / "shopify_products.csv"


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_catalog", *args, "--no-progress", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_multi_variant_multi_image_product_is_imported_with_options_prices_stock_and_images() -> None:
    run(str(FIXTURE))

    product = Product.objects.get(handle="tern-daypack")
    assert product.title == "Tern Daypack"
    assert product.vendor == "Tern Outdoor"
    assert product.category == "Luggage & Bags > Backpacks"
    assert product.product_type == "Backpack"
    assert product.tags == ["hiking", "bags"]
    assert product.status == Product.Status.ACTIVE
    assert product.option_names == ["Capacity", "Color"]
    assert product.description_text == "A light daypack for city and trail. Recycled nylon. Laptop sleeve"
    variants = list(product.variants.all())
    assert [(v.sku, v.option_values) for v in variants] == [
        ("TO-DP-20L-BLK", ["20L", "Black"]),
        ("TO-DP-20L-OLV", ["20L", "Olive"]),
        ("TO-DP-30L-BLK", ["30L", "Black"]),
        ("TO-DP-30L-OLV", ["30L", "Olive"]),
    ]
    assert [v.price for v in variants] == [Decimal("89.00"), Decimal("89.00"), Decimal("1299.00"), Decimal("109.00")]
    assert [v.compare_at_price for v in variants] == [Decimal("99.00"), Decimal("99.00"), None, None]
    assert [v.inventory_quantity for v in variants] == [7, 0, 3, -2]
    images = list(product.images.all())
    assert [(image.position, image.alt_text) for image in images] == [
        (1, "Tern Daypack in black"),
        (2, "Tern Daypack in olive"),
        (3, "The back panel"),  # from an image-only row
    ]
    assert images[0].source_url.endswith("/daypack-black.jpg?v=1700000000")
    assert [image.variant.sku if image.variant else None for image in images] == [
        "TO-DP-20L-BLK",
        "TO-DP-20L-OLV",
        None,
    ]
    assert not images[0].image


@pytest.mark.django_db
def test_single_variant_products_and_drafts() -> None:
    run(str(FIXTURE))

    mug = Product.objects.get(handle="enamel-mug")
    assert mug.status == Product.Status.DRAFT  # Status column
    assert mug.option_names == []  # Shopify's "Title: Default Title" means no options
    assert mug.variants.get().option_values == []
    assert mug.description_text == "Camp mug & cup."
    notebook = Product.objects.get(handle="field-notebook")
    assert notebook.status == Product.Status.DRAFT  # Published FALSE, Status blank
    assert [(v.option1, v.price, v.sku) for v in notebook.variants.all()] == [
        ("A5", Decimal("12.50"), ""),
        ("A4", Decimal("14.00"), ""),
    ]


@pytest.mark.django_db
def test_reimport_updates_in_place_without_duplicates(tmp_path: Path) -> None:
    run(str(FIXTURE))
    counts = (Product.objects.count(), Variant.objects.count(), ProductImage.objects.count())
    changed = tmp_path / "products.csv"
    changed.write_text(FIXTURE.read_text().replace(",109.00,", ",119.00,"))

    same = run(str(FIXTURE))
    output = run(str(changed))

    assert (Product.objects.count(), Variant.objects.count(), ProductImage.objects.count()) == counts
    assert Variant.objects.get(sku="TO-DP-30L-OLV").price == Decimal("119.00")
    assert "0 imported (new products), 0 updated, 8 unchanged, 5 skipped" in same
    assert "Products: 0 created, 1 updated, 2 unchanged. Variants: 0 created, 1 updated." in output


@pytest.mark.django_db
def test_malformed_rows_are_reported_by_row_and_their_products_are_not_stored() -> None:
    output = run(str(FIXTURE))

    assert "Rows: 13 read" in output
    assert "8 imported (new products), 0 updated, 0 unchanged, 5 skipped." in output
    assert "Skipped rows (5):" in output
    assert "row 11 (desk-lamp): Variant Price '1,299' is ambiguous" in output
    assert "row 10 (desk-lamp): not imported because row 11 is invalid" in output
    assert "row 12 (no handle): no Handle" in output
    assert "row 14 (wool-socks): has 37 cells but the header has 36 (an unquoted comma?)" in output
    assert not Product.objects.filter(handle__in=["desk-lamp", "wool-socks"]).exists()
    assert not Variant.objects.filter(sku__in=["DL-BR", "WS-M"]).exists()  # their valid rows are not stored either


@pytest.mark.django_db
def test_damaged_barcode_is_kept_as_text_with_a_warning() -> None:
    output = run(str(FIXTURE))

    assert Variant.objects.get(sku="TO-MUG").barcode == "3.65275E+11"
    assert "Warnings (1):" in output
    assert "row 7 (enamel-mug): Variant Barcode '3.65275E+11' looks like a spreadsheet turned it" in output


@pytest.mark.django_db
def test_images_dir_attaches_the_file_named_in_the_url_path(tmp_path: Path, settings) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    folder = tmp_path / "images"
    folder.mkdir()
    Image.effect_noise((96, 96), 64).convert("RGB").save(folder / "daypack-black.jpg")

    output = run(str(FIXTURE), "--images", str(folder))
    again = run(str(FIXTURE), "--images", str(folder))

    image = ProductImage.objects.get(position=1, product__handle="tern-daypack")
    assert image.image.name.startswith("catalog/daypack-black")
    assert Path(image.image.path).read_bytes() == (folder / "daypack-black.jpg").read_bytes()
    assert image.source_url.endswith("daypack-black.jpg?v=1700000000")  # kept to re-fetch or de-duplicate
    assert "1 files attached" in output
    assert "0 files attached" in again
    assert "image file 'daypack-olive.jpg' is not in the --images folder; its URL is kept" in output
    assert len(list((tmp_path / "media" / "catalog").iterdir())) == 1
    # Photo-match features are computed at import, not at query time.
    assert ProductImageFeatures.objects.filter(image=image).exists()


@pytest.mark.django_db
def test_dry_run_validates_without_writing() -> None:
    output = run(str(FIXTURE), "--dry-run")

    assert output.startswith("Dry run: nothing was written")
    assert "Products: 3 created" in output
    assert "Skipped rows (5):" in output
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_rows_of_a_product_must_be_together(tmp_path: Path) -> None:
    lines = FIXTURE.read_text().splitlines()
    path = tmp_path / "split.csv"
    path.write_text("\n".join([*lines[:3], lines[6], lines[3]]) + "\n")  # daypack, mug, daypack again

    output = run(str(path))

    assert "row 5 (tern-daypack): this handle already appeared at row 2" in output
    assert Variant.objects.filter(product__handle="tern-daypack").count() == 2


@pytest.mark.django_db
def test_a_file_without_a_handle_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("Name,Price\nMug,5\n")

    with pytest.raises(CommandError, match="No Handle column"):
        run(str(path))


@pytest.mark.django_db
def test_progress_bar_stays_off_when_stderr_is_not_a_tty(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "products.csv")
    err = io.StringIO()

    call_command("import_catalog", str(tmp_path / "products.csv"), stdout=StringIO(), stderr=err)

    assert err.getvalue() == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("19.99", "19.99"),
        ("1,299.00", "1299.00"),
        ("$1,299.00", "1299.00"),
        ("USD 5", "5"),
        ("1.299,00 €", "1299.00"),
        ("12,50", "12.50"),
        ("1 299,50", "1299.50"),
        ("1,234,567", "1234567"),
    ],
)
def test_lenient_prices(raw: str, expected: str) -> None:
    assert parse_price(raw, column="Variant Price") == Decimal(expected)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1,299", "ambiguous"),
        ("1.299", "ambiguous"),
        ("19.999", "ambiguous"),
        ("19.9999", "more than 2 decimal places"),
        ("-5", "negative"),
        ("(5.00)", "negative"),
        ("1.2E+3", "scientific notation"),
        ("19.99abc", "not a price"),
        ("free", "not a price"),
    ],
)
def test_ambiguous_or_broken_prices_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(RowError, match=reason):
        parse_price(raw, column="Variant Price")
