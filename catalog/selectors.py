"""Reads from the catalog: product search and the facts block that grounds the model."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Sequence
from decimal import Decimal

from django.db.models import Case, Exists, IntegerField, OuterRef, Prefetch, Q, Value, When

from catalog.models import Product, Variant

# Words that say nothing about which product a shopper means; matching them would rank
# every product that mentions "the" or "have".
_STOP_WORDS_TEXT = """
a about above after again all also am an and any are as at be been being below between both but by
can could did do does doing during each few for from further get got had has have having he her here
hers him his how i if in into is it its just let like looking me more most my need no nor not now of
off on once only or other our out over own please same she should show so some such than that the
their them then there these they this those through to too under until up us very want was we were
what when where which while who whom why will with would you your yours buy sell shop store product
products item items hi hello hey thanks thank size sizes color colour colors colours price cost much
stock available
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_MIN_TOKEN_LENGTH = 2
# Bounds the query's cost: every token adds a CASE over several LIKEs.
_MAX_TOKENS = 8
_TITLE_WEIGHT = 2
_OTHER_WEIGHT = 1
_DESCRIPTION_CHARS = 300


def search_tokens(*, query: str) -> list[str]:
    """Distinct lowercase keywords of a query, in order, without stop words or very short words."""
    tokens: list[str] = []
    for word in re.findall(r"\w+", query.lower()):
        if len(word) < _MIN_TOKEN_LENGTH or word in STOP_WORDS:
            continue
        # A crude singular ("boots" -> "boot") so substring matching also finds "Trail Boot";
        # the singular is a substring of the plural, so nothing that matched before is lost.
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        if word not in tokens:
            tokens.append(word)
    return tokens[:_MAX_TOKENS]


def product_search(*, query: str, limit: int = 5) -> list[Product]:
    """Active products matching the query's keywords, best first, with variants prefetched.

    Each distinct keyword found in the title scores 2, found elsewhere (description, vendor,
    type, category, tags, handle, variant option values) scores 1; ties go by title. Plain
    case-insensitive substring matching, so it runs the same on SQLite and PostgreSQL.
    Returns [] when the query has no useful keywords.
    """
    tokens = search_tokens(query=query)
    if not tokens or limit <= 0:
        return []
    score = functools.reduce(operator.add, (_token_score(token) for token in tokens))
    products = (
        Product.objects.filter(status=Product.Status.ACTIVE)
        .alias(search_score=score)
        .filter(search_score__gt=0)
        .order_by("-search_score", "title", "pk")
        .prefetch_related(Prefetch("variants", queryset=Variant.objects.order_by("position", "pk")))
    )
    return list(products[:limit])


def _token_score(token: str) -> Case:
    other_fields = Q()
    for field in ("description_text", "vendor", "product_type", "category", "tags", "handle"):
        other_fields |= Q(**{f"{field}__icontains": token})
    option_match = Variant.objects.filter(product=OuterRef("pk")).filter(
        Q(option1__icontains=token) | Q(option2__icontains=token) | Q(option3__icontains=token)
    )
    return Case(
        When(title__icontains=token, then=Value(_TITLE_WEIGHT)),
        When(other_fields, then=Value(_OTHER_WEIGHT)),
        When(Exists(option_match), then=Value(_OTHER_WEIGHT)),
        default=Value(0),
        output_field=IntegerField(),
    )


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
