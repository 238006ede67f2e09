"""Writes to the catalog: loading product data and deriving stored text."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils.html import strip_tags

from catalog.imagematch import image_features_index
from catalog.models import Collection, Product, ProductImage, Variant

# Block-level boundaries separate sentences, so "<li>Light</li><li>Warm</li>" reads "Light. Warm."
_BLOCK_BOUNDARY = re.compile(r"<br\s*/?>|</(?:p|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote)\s*>", re.IGNORECASE)
_SEGMENT = "\x00"
_MAX_OPTIONS = 3
DEMO_IMAGES_DIR = Path(__file__).resolve().parent / "demo" / "images"
# Demo image files are stored under this folder of ProductImage.image's upload_to, named by content.
_DEMO_MEDIA_FOLDER = "demo"


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
    images_created: int = 0
    images_updated: int = 0
    images_removed: int = 0
    images_indexed: int = 0


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
def catalog_load_demo(*, data: Mapping[str, Any], images_dir: Path = DEMO_IMAGES_DIR) -> LoadSummary:
    """Create or update products, variants, images and collections from demo catalog data.

    Args:
        data: {"products": [...], "collections": [...]} as documented in
            catalog/management/commands/load_demo_catalog.py.
        images_dir: where the files named in products' "images" lists are.

    Returns:
        Counts of what was created, updated, left unchanged or removed. Rows are matched by
        handle (products, collections), by SKU within a product (variants) and by file content
        (images), so running it again updates in place and copies no file twice. A product's
        variants and demo images missing from the data are removed (a product without an
        "images" key keeps its images); products and collections missing from the data are left
        alone. New images get their photo-match features computed before this returns.

    Raises:
        CatalogImportError: malformed data or a value the models reject; nothing is saved.
    """
    products = data.get("products")
    collections = data.get("collections", [])
    if not isinstance(products, list) or not isinstance(collections, list):
        raise CatalogImportError('Expected an object with lists "products" and "collections".')
    summary = LoadSummary()
    image_ids: list[int] = []
    for index, raw_product in enumerate(products):
        raw = _as_mapping(raw_product, where=f"products[{index}]")
        image_ids += _load_product(raw=raw, images_dir=images_dir, summary=summary)
    for index, raw_collection in enumerate(collections):
        _load_collection(raw=_as_mapping(raw_collection, where=f"collections[{index}]"), summary=summary)
    summary.images_indexed = image_features_index(image_ids=image_ids).indexed
    return summary


def _load_product(*, raw: Mapping[str, Any], images_dir: Path, summary: LoadSummary) -> list[int]:
    """Create or update one product with its variants and images; returns its images' ids."""
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
    images_changed = False
    if "images" in raw:
        images_changed = _sync_images(product=product, raw_images=raw["images"], images_dir=images_dir, summary=summary)
    if created:
        summary.products_created += 1
    elif product_changed or variants_changed or images_changed:
        summary.products_updated += 1
    else:
        summary.products_unchanged += 1
    return list(product.images.values_list("pk", flat=True))


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


def _sync_images(*, product: Product, raw_images: Any, images_dir: Path, summary: LoadSummary) -> bool:
    """Make the product's demo images match the data; returns whether anything changed.

    A file is stored under a name holding a hash of its content, so an unchanged file is found
    again (in the database or, after a database reset, in storage) instead of copied again.
    Images that did not come from the demo loader (uploads, imports) are left alone.
    """
    if not isinstance(raw_images, list):
        raise CatalogImportError(f"product {product.handle!r}: 'images' must be a list.")
    field = ProductImage._meta.get_field("image")
    demo_prefix = field.generate_filename(None, f"{_DEMO_MEDIA_FOLDER}/x").removesuffix("x")
    current = {image.image.name: image for image in product.images.all() if image.image.name.startswith(demo_prefix)}
    variants = {variant.sku: variant for variant in product.variants.all()}
    seen: set[str] = set()
    changed = False
    for position, raw_image in enumerate(raw_images, start=1):
        raw = _as_mapping(raw_image, where=f"product {product.handle!r} images[{position - 1}]")
        file_name = _required_str(raw, "file", where=f"product {product.handle!r} image")
        where = f"image {file_name!r} of product {product.handle!r}"
        sku = _optional_str(raw, "variant_sku", where=where)
        if sku and sku not in variants:
            raise CatalogImportError(f"{where}: no variant with SKU {sku!r} in this product.")
        content = _demo_image_bytes(images_dir, file_name, where=where)
        relative = f"{_DEMO_MEDIA_FOLDER}/{_content_addressed(file_name, content)}"
        name = field.generate_filename(None, relative)
        seen.add(name)
        variant = variants.get(sku)
        values = {
            "alt_text": _optional_str(raw, "alt_text", where=where),
            "variant_id": variant.pk if variant else None,
            "position": position,
        }
        image = current.get(name)
        if image is None:
            image = ProductImage(product=product, **values)
            if field.storage.exists(name):
                image.image.name = name
            else:
                image.image.save(relative, ContentFile(content), save=False)
            _save(image, where=where)
            summary.images_created += 1
            changed = True
        elif _apply(image, values):
            _save(image, where=where)
            summary.images_updated += 1
            changed = True
    stale = [image.pk for name, image in current.items() if name not in seen]
    if stale:
        # Rows only: a content-addressed file may still serve another row or a later load.
        ProductImage.objects.filter(pk__in=stale).delete()
        summary.images_removed += len(stale)
    return changed or bool(stale)


def _demo_image_bytes(images_dir: Path, file_name: str, *, where: str) -> bytes:
    if PurePosixPath(file_name).name != file_name or file_name.startswith("."):
        raise CatalogImportError(f"{where}: 'file' must be a plain file name inside {images_dir}.")
    try:
        return (images_dir / file_name).read_bytes()
    except OSError as error:
        raise CatalogImportError(f"{where}: cannot read {images_dir / file_name}: {error.strerror or error}") from error


def _content_addressed(file_name: str, content: bytes) -> str:
    path = PurePosixPath(file_name)
    return f"{path.stem}-{hashlib.sha256(content).hexdigest()[:12]}{path.suffix.lower()}"


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
