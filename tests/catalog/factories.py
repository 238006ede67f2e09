"""Small builders for catalog rows: each test states only the fields it cares about."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from catalog.models import Product, Variant
from catalog.services import html_to_text

_sequence = itertools.count(1)


def make_product(*, variants: list[dict[str, Any]] | None = None, **fields: Any) -> Product:
    number = next(_sequence)
    fields.setdefault("handle", f"product-{number}")
    fields.setdefault("title", f"Product {number}")
    fields.setdefault("description_text", html_to_text(html_text=fields.get("description_html", "")))
    product = Product.objects.create(**fields)
    for position, variant_fields in enumerate(variants or [], start=1):
        make_variant(product=product, position=position, **variant_fields)
    return product


def make_variant(*, product: Product, **fields: Any) -> Variant:
    fields.setdefault("sku", f"SKU-{next(_sequence)}")
    fields.setdefault("price", Decimal("10.00"))
    if not isinstance(fields["price"], Decimal):
        fields["price"] = Decimal(fields["price"])
    if fields.get("compare_at_price") is not None:
        fields["compare_at_price"] = Decimal(fields["compare_at_price"])
    return Variant.objects.create(product=product, **fields)
