from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Product, Variant


@pytest.mark.django_db
def test_load_demo_catalog_is_idempotent_and_prints_a_summary() -> None:
    first, second = StringIO(), StringIO()

    call_command("load_demo_catalog", stdout=first)
    counts = (Product.objects.count(), Variant.objects.count())
    call_command("load_demo_catalog", stdout=second)

    assert f"products {counts[0]} created, 0 updated" in first.getvalue()
    assert f"products 0 created, 0 updated, {counts[0]} unchanged" in second.getvalue()
    assert (Product.objects.count(), Variant.objects.count()) == counts
    assert len(second.getvalue().strip().splitlines()) == 1


@pytest.mark.django_db
def test_load_demo_catalog_reads_the_given_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    product = {"handle": "mug", "title": "Mug", "variants": [{"sku": "MUG", "price": 16.5}]}
    path.write_text(json.dumps({"collections": [], "products": [product]}))

    call_command("load_demo_catalog", "--file", str(path), stdout=StringIO())

    assert Variant.objects.get(sku="MUG").price == Decimal("16.50")


@pytest.mark.django_db
def test_load_demo_catalog_reports_invalid_files_as_command_errors(tmp_path: Path) -> None:
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    bad_record = tmp_path / "bad.json"
    bad_record.write_text(json.dumps({"products": [{"handle": "x", "title": "X", "variants": []}]}))

    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("load_demo_catalog", "--file", str(not_json))
    with pytest.raises(CommandError, match="product 'x'"):
        call_command("load_demo_catalog", "--file", str(bad_record))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_demo_catalog", "--file", str(tmp_path / "missing.json"))
    assert not Product.objects.exists()
