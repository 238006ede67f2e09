"""What the bot and the shopper see of catalog products: facts as data for the model, cards for
the chat. Both read prefetched products only (no queries per product): variants for both, images
for cards (reply_cards reads them for the products it shows)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import prefetch_related_objects

from catalog.models import Product, Variant

LOW_STOCK = 3
DESCRIPTION_CHARS = 300
# A model may write a product title with different spacing or punctuation; compare word runs.
_WORDS = re.compile(r"[a-z0-9]+")


# A turn on a storefront sets its site's product link (chat/replies.py); unset: SHOP_PRODUCT_URL.
product_url_template: ContextVar[str | None] = ContextVar("product_url_template", default=None)


def product_url(product: Product) -> str | None:
    template = product_url_template.get()
    if template is None:
        template = settings.SHOP_PRODUCT_URL
    return template.format(handle=product.handle) if template else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _variant_data(variant: Variant, option_names: list[str]) -> dict[str, Any]:
    options = dict(zip(option_names, variant.option_values, strict=False))
    data: dict[str, Any] = {"sku": variant.sku, "options": options, "price": _money(variant.price)}
    if variant.on_sale:
        data["compare_at_price"] = _money(variant.compare_at_price)
    data["stock"] = max(variant.inventory_quantity, 0)
    return data


def product_data(product: Product) -> dict[str, Any]:
    """One product as plain data for the model (and for tool results)."""
    variants = list(product.variants.all())
    prices = [variant.price for variant in variants]
    data: dict[str, Any] = {
        "handle": product.handle,
        "title": product.title,
        "vendor": product.vendor,
        "type": product.product_type,
        "price_min": _money(min(prices)) if prices else None,
        "price_max": _money(max(prices)) if prices else None,
        "currency": settings.SHOP_CURRENCY,
        "in_stock": any(variant.in_stock for variant in variants),
        "variants": [_variant_data(variant, product.option_names) for variant in variants[:40]],
        "description": product.description_text[:DESCRIPTION_CHARS],
    }
    if url := product_url(product):
        data["url"] = url
    return data


def _stock_state(variants: Sequence[Variant]) -> str:
    stock = sum(max(variant.inventory_quantity, 0) for variant in variants)
    if stock <= 0:
        return "out_of_stock"
    return "low_stock" if stock <= LOW_STOCK else "in_stock"


def _image_url(product: Product) -> str | None:
    for image in product.images.all():
        if image.image:
            return str(image.image.url)
        if image.source_url.startswith("https://"):
            return image.source_url
    return None


def product_card(product: Product) -> dict[str, Any]:
    """A card for the chat: structured data the page renders itself, never HTML."""
    variants = list(product.variants.all())
    prices = sorted(variant.price for variant in variants)
    on_sale = [variant for variant in variants if variant.on_sale]
    return {
        "handle": product.handle,
        "title": product.title,
        "price": _money(prices[0]) if prices else None,
        "price_max": _money(prices[-1]) if len(prices) > 1 and prices[-1] != prices[0] else None,
        "compare_at_price": _money(max(v.compare_at_price or Decimal(0) for v in on_sale)) if on_sale else None,
        "currency": settings.SHOP_CURRENCY,
        "stock": _stock_state(variants),
        "image": _image_url(product),
        "url": product_url(product),
    }


def _words(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def products_mentioned(text: str, candidates: Iterable[Product]) -> list[Product]:
    """The candidates a reply refers to by title (or handle), in the order it mentions them."""
    haystack = _words(text)
    found: list[tuple[int, Product]] = []
    for product in candidates:
        positions = [haystack.find(_words(name)) for name in (product.title, product.handle.replace("-", " "))]
        hits = [p for p in positions if p >= 0]
        if hits:
            found.append((min(hits), product))
    return [product for _, product in sorted(found, key=lambda pair: pair[0])]


def products_by_handle(*, handles: Sequence[str]) -> list[Product]:
    """Active products by handle, in the order given, ready for facts and cards."""
    found = Product.objects.filter(handle__in=handles, status=Product.Status.ACTIVE).prefetch_related(
        "variants", "images"
    )
    by_handle = {product.handle: product for product in found}
    return [by_handle[handle] for handle in handles if handle in by_handle]


def reply_cards_possible(*, text: str, candidates: Sequence[Product], looked_up: Sequence[str]) -> bool:
    """Whether reply_cards could find any: the reply names one of `candidates`, or its tools looked
    up products beyond them. In memory: a caller skips the database call when it would find none."""
    known = {product.handle for product in candidates}
    return any(handle not in known for handle in looked_up) or bool(products_mentioned(text, candidates))


def reply_cards(
    *, text: str, candidates: Sequence[Product], looked_up: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    """Cards for the products a reply names, among those it was given and those its tools looked
    up (by handle). Synchronous (database reads)."""
    known = {product.handle for product in candidates}
    pool = list(candidates) + products_by_handle(handles=[h for h in dict.fromkeys(looked_up) if h not in known])
    shown = products_mentioned(text, pool)[:limit]
    # The turn's catalog lookup leaves images out (a statement on the turn's path for the few
    # products a reply names, if any); those already read are not read again.
    prefetch_related_objects(shown, "images")
    return [product_card(product) for product in shown]
