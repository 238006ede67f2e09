"""Writes to the catalog: loading product data and deriving stored text."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.html import strip_tags

from catalog.models import Collection, Product, Variant

# Block-level boundaries separate sentences, so "<li>Light</li><li>Warm</li>" reads "Light. Warm."
_BLOCK_BOUNDARY = re.compile(r"<br\s*/?>|</(?:p|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote)\s*>", re.IGNORECASE)
_SEGMENT = "\x00"
_MAX_OPTIONS = 3


class CatalogImportError(Exception):
    """Catalog data that cannot be loaded; the message names the offending record."""


@dataclass
class LoadSummary:
    products_created: int = 0
    products_updated: int = 0
    products_unchanged: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    variants_removed: int = 0
    collections_created: int = 0
    collections_updated: int = 0


def html_to_text(*, html_text: str) -> str:
    """Plain, single-line text for search and grounding from a product's HTML description."""
    text = html.unescape(strip_tags(_BLOCK_BOUNDARY.sub(_SEGMENT, html_text)))
    segments = [" ".join(segment.split()) for segment in text.split(_SEGMENT)]
    parts: list[str] = []
    for segment in filter(None, segments):
        if parts and parts[-1][-1] not in ".!?:;,":
            parts[-1] += "."
        parts.append(segment)
    return " ".join(parts)


@transaction.atomic
def catalog_load_demo(*, data: Mapping[str, Any]) -> LoadSummary:
    """Create or update products, variants and collections from demo catalog data.

    Args:
        data: {"products": [...], "collections": [...]} as documented in
            catalog/management/commands/load_demo_catalog.py.

    Returns:
        Counts of what was created, updated, left unchanged or removed. Rows are matched by
        handle (products, collections) and by SKU within a product (variants), so running it
        again updates in place. A product's variants missing from the data are removed;
        products and collections missing from the data are left alone.

    Raises:
        CatalogImportError: malformed data or a value the models reject; nothing is saved.
    """
    products = data.get("products")
    collections = data.get("collections", [])
    if not isinstance(products, list) or not isinstance(collections, list):
        raise CatalogImportError('Expected an object with lists "products" and "collections".')
    summary = LoadSummary()
    for index, raw_product in enumerate(products):
        _load_product(raw=_as_mapping(raw_product, where=f"products[{index}]"), summary=summary)
    for index, raw_collection in enumerate(collections):
        _load_collection(raw=_as_mapping(raw_collection, where=f"collections[{index}]"), summary=summary)
    return summary


def _load_product(*, raw: Mapping[str, Any], summary: LoadSummary) -> None:
    handle = _required_str(raw, "handle", where="product")
    where = f"product {handle!r}"
    option_names = _str_list(raw.get("options", []), where=f"{where} options", max_items=_MAX_OPTIONS)
    description_html = _optional_str(raw, "description_html", where=where)
    values: dict[str, Any] = {
        "title": _required_str(raw, "title", where=where),
        "vendor": _optional_str(raw, "vendor", where=where),
        "product_type": _optional_str(raw, "product_type", where=where),
        "category": _optional_str(raw, "category", where=where),
        "status": _optional_str(raw, "status", where=where) or Product.Status.ACTIVE,
        "tags": _str_list(raw.get("tags", []), where=f"{where} tags"),
        "description_html": description_html,
        "description_text": html_to_text(html_text=description_html),
        **_padded("option{}_name", option_names),
    }
    product, created, product_changed = _upsert(Product, handle=handle, values=values, where=where)

    raw_variants = raw.get("variants")
    if not isinstance(raw_variants, list) or not raw_variants:
        raise CatalogImportError(f"{where}: needs a non-empty list of variants.")
    variants_changed = _sync_variants(
        product=product, raw_variants=raw_variants, option_count=len(option_names), summary=summary
    )
    if created:
        summary.products_created += 1
    elif product_changed or variants_changed:
        summary.products_updated += 1
    else:
        summary.products_unchanged += 1


def _sync_variants(*, product: Product, raw_variants: Sequence[Any], option_count: int, summary: LoadSummary) -> bool:
    """Make the product's variants match the data; returns whether anything changed."""
    current = list(product.variants.all())
    existing = {variant.sku: variant for variant in current if variant.sku}
    seen: set[str] = set()
    changed = False
    for position, raw_variant in enumerate(raw_variants, start=1):
        raw = _as_mapping(raw_variant, where=f"product {product.handle!r} variants[{position - 1}]")
        sku = _required_str(raw, "sku", where=f"product {product.handle!r} variant")
        where = f"variant {sku!r} of product {product.handle!r}"
        if sku in seen:
            raise CatalogImportError(f"{where}: SKU appears twice.")
        seen.add(sku)
        options = _str_list(raw.get("options", []), where=f"{where} options", max_items=_MAX_OPTIONS)
        if len(options) != option_count:
            raise CatalogImportError(f"{where}: has {len(options)} option values, product has {option_count}.")
        compare_at = raw.get("compare_at_price")
        values: dict[str, Any] = {
            "price": _decimal(raw.get("price"), where=f"{where} price"),
            "compare_at_price": None if compare_at is None else _decimal(compare_at, where=f"{where} compare"),
            "inventory_quantity": _int(raw.get("inventory_quantity", 0), where=f"{where} inventory"),
            "barcode": _optional_str(raw, "barcode", where=where),
            "position": position,
            **_padded("option{}", options),
        }
        variant = existing.get(sku)
        if variant is None:
            _save(Variant(product=product, sku=sku, **values), where=where)
            summary.variants_created += 1
            changed = True
        elif _apply(variant, values):
            _save(variant, where=where)
            summary.variants_updated += 1
            changed = True
    # Includes variants without a SKU (e.g. added by hand): the data is the truth for its products.
    stale = [variant.pk for variant in current if variant.sku not in seen]
    if stale:
        Variant.objects.filter(pk__in=stale).delete()
        summary.variants_removed += len(stale)
    return changed or bool(stale)


def _load_collection(*, raw: Mapping[str, Any], summary: LoadSummary) -> None:
    handle = _required_str(raw, "handle", where="collection")
    where = f"collection {handle!r}"
    values = {
        "title": _required_str(raw, "title", where=where),
        "description": _optional_str(raw, "description", where=where),
    }
    product_handles = _str_list(raw.get("products", []), where=f"{where} products")
    products = list(Product.objects.filter(handle__in=product_handles))
    missing = sorted(set(product_handles) - {product.handle for product in products})
    if missing:
        raise CatalogImportError(f"{where}: unknown product handles {', '.join(missing)}.")

    collection, created, changed = _upsert(Collection, handle=handle, values=values, where=where)
    if set(collection.products.values_list("pk", flat=True)) != {product.pk for product in products}:
        collection.products.set(products)
        changed = True
    if created:
        summary.collections_created += 1
    elif changed:
        summary.collections_updated += 1


_Handled = TypeVar("_Handled", Product, Collection)


def _upsert(
    model: type[_Handled], *, handle: str, values: Mapping[str, Any], where: str
) -> tuple[_Handled, bool, bool]:
    """The row with this handle, created or updated from `values`: (row, created, changed)."""
    instance = model.objects.filter(handle=handle).first()
    if instance is None:
        instance = model(handle=handle, **values)
        _save(instance, where=where)
        return instance, True, True
    changed = _apply(instance, values)
    if changed:
        _save(instance, where=where)
    return instance, False, changed


def _apply(instance: models.Model, values: Mapping[str, Any]) -> bool:
    """Set only the differing fields; returns whether any did (unchanged rows keep updated_at)."""
    changed = False
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed = True
    return changed


def _save(instance: models.Model, *, where: str) -> None:
    try:
        instance.full_clean()
    except ValidationError as error:
        details = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
        raise CatalogImportError(f"{where}: {details}") from error
    instance.save()


def _padded(template: str, items: Sequence[str]) -> dict[str, str]:
    """Spread up to three values over Shopify's numbered columns (option1..option3)."""
    return {template.format(number): (items[number - 1] if number <= len(items) else "") for number in (1, 2, 3)}


def _as_mapping(value: Any, *, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogImportError(f"{where}: expected an object.")
    return value


def _required_str(raw: Mapping[str, Any], key: str, *, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogImportError(f"{where}: {key!r} must be a non-empty string.")
    return value.strip()


def _optional_str(raw: Mapping[str, Any], key: str, *, where: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CatalogImportError(f"{where}: {key!r} must be a string.")
    return value.strip()


def _str_list(value: Any, *, where: str, max_items: int | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CatalogImportError(f"{where}: expected a list of strings.")
    if max_items is not None and len(value) > max_items:
        raise CatalogImportError(f"{where}: at most {max_items} allowed.")
    return [item.strip() for item in value]


def _decimal(value: Any, *, where: str) -> Decimal:
    # str() first: a float's shortest repr ("19.99") is what the author wrote, Decimal(19.99) is not.
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise CatalogImportError(f'{where}: expected a decimal such as "19.99".')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise CatalogImportError(f"{where}: {value!r} is not a number.") from error
    if not number.is_finite():
        raise CatalogImportError(f"{where}: {value!r} is not a finite number.")
    return number


def _int(value: Any, *, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogImportError(f"{where}: expected a whole number.")
    return value
