from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from catalog.models import Collection, Product, Variant
from catalog.services import CatalogImportError, catalog_load_demo, html_to_text

DEMO_FILE = Path(__file__).resolve().parents[2] / "catalog" / "demo" / "products.json"


def _data() -> dict[str, Any]:
    return {
        "collections": [{"handle": "sale", "title": "Sale", "products": ["daypack"]}],
        "products": [
            {
                "handle": "daypack",
                "title": "Daypack",
                "vendor": "Tern",
                "product_type": "Backpacks",
                "tags": ["backpack", "hiking"],
                "options": ["Capacity"],
                "description_html": "<p>Light &amp; tough.</p><ul><li>Laptop sleeve</li></ul>",
                "variants": [
                    {"sku": "DP-20", "options": ["20L"], "price": "89.00", "inventory_quantity": 4},
                    {"sku": "DP-30", "options": ["30L"], "price": "109.00", "compare_at_price": "129.00"},
                ],
            }
        ],
    }


@pytest.mark.django_db
def test_loading_twice_creates_nothing_new_and_reports_rows_unchanged() -> None:
    first = catalog_load_demo(data=_data())
    second = catalog_load_demo(data=_data())

    assert (first.products_created, first.variants_created, first.collections_created) == (1, 2, 1)
    assert (second.products_created, second.products_updated, second.products_unchanged) == (0, 0, 1)
    assert (second.variants_created, second.variants_updated, second.variants_removed) == (0, 0, 0)
    assert (Product.objects.count(), Variant.objects.count(), Collection.objects.count()) == (1, 2, 1)


@pytest.mark.django_db
def test_reloading_changed_data_updates_rows_in_place() -> None:
    catalog_load_demo(data=_data())
    variant_ids = set(Variant.objects.values_list("pk", flat=True))
    changed = _data()
    changed["products"][0]["title"] = "Daypack Pro"
    changed["products"][0]["variants"][0]["price"] = "79.00"
    changed["products"][0]["variants"][1]["inventory_quantity"] = 9

    summary = catalog_load_demo(data=changed)

    product = Product.objects.get(handle="daypack")
    assert (summary.products_updated, summary.variants_updated) == (1, 2)
    assert product.title == "Daypack Pro"
    assert Variant.objects.get(sku="DP-20").price == Decimal("79.00")
    assert Variant.objects.get(sku="DP-30").inventory_quantity == 9
    assert set(Variant.objects.values_list("pk", flat=True)) == variant_ids


@pytest.mark.django_db
def test_variants_no_longer_listed_are_removed_and_new_ones_added() -> None:
    catalog_load_demo(data=_data())
    changed = _data()
    changed["products"][0]["variants"] = [
        {"sku": "DP-30", "options": ["30L"], "price": "109.00"},
        {"sku": "DP-40", "options": ["40L"], "price": "129.00"},
    ]

    summary = catalog_load_demo(data=changed)

    assert (summary.variants_created, summary.variants_removed) == (1, 1)
    positions = list(Product.objects.get(handle="daypack").variants.values_list("sku", "position"))
    assert positions == [("DP-30", 1), ("DP-40", 2)]


@pytest.mark.django_db
def test_loader_derives_plain_text_and_option_columns() -> None:
    catalog_load_demo(data=_data())

    product = Product.objects.get(handle="daypack")
    assert product.description_text == "Light & tough. Laptop sleeve"
    assert product.option_names == ["Capacity"]
    assert [variant.option1 for variant in product.variants.all()] == ["20L", "30L"]
    assert list(Collection.objects.get(handle="sale").products.all()) == [product]


@pytest.mark.django_db
def test_bad_record_rolls_back_the_whole_load() -> None:
    data = _data()
    data["products"].append(copy.deepcopy(data["products"][0]) | {"handle": "broken"})
    data["products"][1]["variants"][0]["price"] = "-5.00"

    with pytest.raises(CatalogImportError, match="broken"):
        catalog_load_demo(data=data)

    assert not Product.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"variants": []}, "non-empty list of variants"),
        ({"title": ""}, "'title' must be a non-empty string"),
        ({"status": "sold"}, "status"),
        ({"tags": "hiking"}, "list of strings"),
    ],
)
def test_malformed_product_is_refused_with_its_handle(change: dict[str, Any], message: str) -> None:
    data = _data()
    data["products"][0].update(change)

    with pytest.raises(CatalogImportError, match=message):
        catalog_load_demo(data=data)


@pytest.mark.django_db
def test_variant_with_wrong_number_of_option_values_is_refused() -> None:
    data = _data()
    data["products"][0]["variants"][0]["options"] = ["20L", "Black"]

    with pytest.raises(CatalogImportError, match="has 2 option values, product has 1"):
        catalog_load_demo(data=data)


@pytest.mark.django_db
def test_collection_naming_an_unknown_product_is_refused() -> None:
    data = _data()
    data["collections"][0]["products"].append("no-such-product")

    with pytest.raises(CatalogImportError, match="no-such-product"):
        catalog_load_demo(data=data)


@pytest.mark.django_db
def test_demo_file_loads_about_fifty_products_with_sales_and_stockouts() -> None:
    catalog_load_demo(data=json.loads(DEMO_FILE.read_text(encoding="utf-8")))

    assert 45 <= Product.objects.count() <= 55
    assert Collection.objects.count() >= 2
    assert Variant.objects.filter(inventory_quantity=0).exists()
    assert any(variant.on_sale for variant in Variant.objects.all())


def test_html_to_text_separates_blocks_and_unescapes_entities() -> None:
    html_text = "<p>Features:</p><ul><li>Light</li><li>Warm &amp; dry.</li></ul><p>Fits\n  true</p>"

    assert html_to_text(html_text=html_text) == "Features: Light. Warm & dry. Fits true"
