"""Reads from the catalog: product search and the facts block that grounds the model."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from catalog.models import Product, Variant
from catalog.search import SearchFilters, search_parse, search_product_ids, search_tokens
from supportbot.rows import models_from_sql

__all__ = ["SearchFilters", "product_facts", "product_search", "search_parse", "search_tokens"]

_DESCRIPTION_CHARS = 300


def product_search(*, query: str, limit: int = 5, filters: SearchFilters | None = None) -> list[Product]:
    """Active products matching the shopper's words, best first, variants prefetched (images are
    read for the cards a reply shows: catalog.grounding.reply_cards).

    Full-text search (SQLite FTS5 / PostgreSQL tsvector, see catalog/search/) that tolerates
    typos, knows shop synonyms and applies filters written in the query ("size 9", "under 120",
    "in black", "in stock"; see catalog.search.parse) or given in `filters` (which win, and are
    never dropped; filters read from the text are dropped again when they leave nothing).
    Returns [] when the query has no useful keywords.
    """
    ids = search_product_ids(query=query, limit=limit, filters=filters)
    if not ids:
        return []
    by_id = {product.pk: product for product in products_with_variants(ids)}
    return [by_id[pk] for pk in ids if pk in by_id]


# Every column but the HTML description and the timestamps: facts, cards and tools read the plain
# text, the HTML of a real product page is often the largest value of the row, and each
# timestamp costs Django's Python loader ~4 µs to read (~0.2 ms a turn for five products and
# their variants; bench/turn_steps.py, docs/benchmarks.md). Column names from the models' own fields;
# every value is a parameter. What is left out is deferred: reading it is a query of its own.
_UNREAD = {"description_html", "created_at", "updated_at"}
_PRODUCT_COLUMNS = ", ".join(f.column for f in Product._meta.concrete_fields if f.name not in _UNREAD)
_VARIANT_COLUMNS = ", ".join(f.column for f in Variant._meta.concrete_fields if f.name not in _UNREAD)
_PRODUCT_SQL = "SELECT {columns} FROM catalog_product WHERE id IN ({ids}) AND status = %s"
_VARIANT_SQL = "SELECT {columns} FROM catalog_variant WHERE product_id IN ({ids}) ORDER BY position, id"


def products_with_variants(ids: Sequence[int]) -> list[Product]:
    """The active products of `ids` (in no order), each with its variants in position order at
    `product.variants.all()`, as `prefetch_related` leaves them: two statements of SQL.

    Written as SQL: every turn with catalog words runs it, and the ORM spent 2.35 ms of CPU on the
    two querysets for five products and their 19 variants, against 1.45 ms for this
    (docs/benchmarks.md)."""
    if not ids:
        return []
    marks = ", ".join(["%s"] * len(ids))
    sql = _PRODUCT_SQL.format(columns=_PRODUCT_COLUMNS, ids=marks)
    products = models_from_sql(Product, sql, [*ids, Product.Status.ACTIVE])
    if not products:
        return []
    found = [product.pk for product in products]
    variants: dict[int, list[Variant]] = {pk: [] for pk in found}
    sql = _VARIANT_SQL.format(columns=_VARIANT_COLUMNS, ids=", ".join(["%s"] * len(found)))
    for variant in models_from_sql(Variant, sql, found):
        variants[variant.product_id].append(variant)
    cache_name = Product.variants.rel.cache_name
    for product in products:
        own = variants[product.pk]
        for variant in own:
            Variant.product.field.set_cached_value(variant, product)
        # What prefetch_related stores: the related queryset, already evaluated.
        related = product.variants.all()
        related._result_cache, related._prefetch_done = own, True  # type: ignore[attr-defined]
        product.__dict__.setdefault("_prefetched_objects_cache", {})[cache_name] = related
    return products


def product_facts(*, products: Sequence[Product]) -> str:
    """Plain-text facts about the products for the model to answer from, one paragraph each.

    Prices are shown as plain decimals without a currency; variants in position order.
    The same products always give the same text.
    """
    return "\n\n".join(_product_paragraph(product) for product in products)


def _product_paragraph(product: Product) -> str:
    variants = sorted(product.variants.all(), key=lambda variant: (variant.position, variant.pk or 0))
    lines = [f"Product: {product.title} (handle: {product.handle})"]
    kind = [f"Vendor: {product.vendor}" if product.vendor else "", f"Type: {product.product_type}"]
    if any(part.partition(": ")[2] for part in kind):
        lines.append("; ".join(part for part in kind if part.partition(": ")[2]))
    if product.status != Product.Status.ACTIVE:
        lines.append(f"Status: {product.get_status_display().lower()} (not for sale)")
    lines.append(_price_line(variants))
    on_sale = [variant for variant in variants if variant.on_sale]
    if on_sale:
        lines.append(f"On sale: {len(on_sale)} of {len(variants)} variants are below their compare-at price")
    if variants:
        lines.append("Variants:")
        lines.extend(_variant_line(product, variant) for variant in variants)
    if product.tags:
        lines.append(f"Tags: {', '.join(product.tags)}")
    if product.description_text:
        lines.append(f"Description: {_truncate(product.description_text, _DESCRIPTION_CHARS)}")
    return "\n".join(lines)


def _price_line(variants: Sequence[Variant]) -> str:
    if not variants:
        return "Price: not listed"
    low = min(variant.price for variant in variants)
    high = max(variant.price for variant in variants)
    return f"Price: {_money(low)}" if low == high else f"Price: {_money(low)} to {_money(high)}"


def _variant_line(product: Product, variant: Variant) -> str:
    names = (product.option1_name, product.option2_name, product.option3_name)
    values = (variant.option1, variant.option2, variant.option3)
    pairs = zip(names, values, strict=True)
    options = ", ".join(f"{name}: {value}" if name else value for name, value in pairs if value)
    price = _money(variant.price)
    if variant.on_sale and variant.compare_at_price is not None:
        price += f" (on sale, was {_money(variant.compare_at_price)})"
    stock = f"in stock: {variant.inventory_quantity}" if variant.in_stock else "out of stock"
    parts = [options or "Default", f"SKU {variant.sku}" if variant.sku else "no SKU", price, stock]
    return "- " + "; ".join(parts)


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    # Cut at a word boundary so the model never sees half a word (e.g. "waterpr").
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:.")
    return f"{cut}..."
