"""`import_catalog` with JSON Lines: one product per line, nested variants and images."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from catalog.models import Product, ProductImage, Variant

FIXTURE = Path(__file__).parent / "fixtures" / "products.jsonl"


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_catalog", *args, "--no-progress", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_jsonl_products_variants_and_images_are_imported() -> None:
    output = run(str(FIXTURE))

    product = Product.objects.get(handle="tern-daypack")
    assert product.option_names == ["Capacity", "Color"]
    assert product.tags == ["hiking", "bags"]
    assert product.description_text == "A light daypack. Recycled nylon"
    black, olive = product.variants.all()
    assert (black.sku, black.option_values, black.price, black.compare_at_price) == (
        "TO-DP-20L-BLK",
        ["20L", "Black"],
        Decimal("89.00"),
        Decimal("99.00"),
    )
    assert (olive.price, olive.inventory_quantity) == (Decimal("89.00"), 0)
    images = list(product.images.all())
    assert [(image.position, image.alt_text) for image in images] == [(1, "In black"), (2, "In olive"), (3, "")]
    assert [image.variant_id for image in images] == [black.pk, olive.pk, None]
    notebook = Product.objects.get(handle="field-notebook")
    assert notebook.status == Product.Status.DRAFT  # "published": false
    assert [v.price for v in notebook.variants.all()] == [Decimal("12.50"), Decimal("14.00")]
    assert "Rows: 5 read" in output
    assert "3 imported (new products), 0 updated, 0 unchanged, 2 skipped." in output


@pytest.mark.django_db
def test_jsonl_bad_lines_are_skipped_with_their_line_number() -> None:
    output = run(str(FIXTURE))

    assert 'row 4 (desk-lamp): "price" -5 is not a price' in output
    assert "row 5 (no handle): not valid JSON" in output
    assert "row 6 (enamel-mug): barcode '3.65275E+11' looks like a spreadsheet turned it" in output
    assert not Product.objects.filter(handle="desk-lamp").exists()
    assert Variant.objects.get(sku="TO-MUG").barcode == "3.65275E+11"


@pytest.mark.django_db
def test_jsonl_reimport_updates_and_matches_variants_without_sku_by_options(tmp_path: Path) -> None:
    run(str(FIXTURE))
    counts = (Product.objects.count(), Variant.objects.count(), ProductImage.objects.count())
    notebook = {
        "handle": "field-notebook",
        "variants": [{"options": ["A4"], "price": "15.00"}, {"options": ["A5"], "price": 12.5}],
    }
    path = tmp_path / "update.jsonl"
    path.write_text(json.dumps(notebook) + "\n")

    output = run(str(path))
    a4_price = Variant.objects.get(product__handle="field-notebook", option1="A4").price
    again = run(str(FIXTURE))

    assert (Product.objects.count(), Variant.objects.count(), ProductImage.objects.count()) == counts
    assert a4_price == Decimal("15.00")
    assert Product.objects.get(handle="field-notebook").title == "Field Notebook"  # keys left out are kept
    assert "Products: 0 created, 1 updated, 0 unchanged. Variants: 0 created, 2 updated." in output  # new positions
    assert "Products: 0 created, 1 updated, 2 unchanged." in again
