"""The offline responder: answers from the catalog when no model endpoint is configured.

It says plainly what it is, so a shopper is never led to think a person or a model read their
message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import TYPE_CHECKING

from chat.llm.types import ChatRequest, Finish, Notify, StreamEvent, TextDelta, notify_nobody

if TYPE_CHECKING:
    from catalog.models import Product

INTRO = (
    "I'm the shop's offline assistant: no AI model is configured right now, so I can only "
    "look things up in the catalog for you."
)
INTRO_UNAVAILABLE = (
    "The assistant can't be reached right now, so I'm answering as the shop's offline assistant: "
    "I can only look things up in the catalog for you."
)
NOTHING_FOUND = (
    'I couldn\'t find a product matching that. Try a product name or kind, like "rain jacket" or "running shoes".'
)


class OfflineResponder:
    """`unavailable`: answering because every model endpoint failed, not because none is set."""

    model = "offline"

    def __init__(self, *, unavailable: bool = False) -> None:
        self.unavailable = unavailable

    async def stream(
        self, request: ChatRequest, *, notify: Notify = notify_nobody
    ) -> AsyncGenerator[StreamEvent, None]:
        from django.conf import settings

        text = offline_answer(
            products=request.products,
            currency=settings.SHOP_CURRENCY,
            contact=settings.SHOP_CONTACT,
            intro=INTRO_UNAVAILABLE if self.unavailable else INTRO,
        )
        for piece in _pieces(text):
            yield TextDelta(piece)
            await asyncio.sleep(0)  # let the socket see each piece, as with a real stream
        yield Finish("stop")


def offline_answer(*, products: Sequence[Product], currency: str, contact: str = "", intro: str = INTRO) -> str:
    lines = [intro, ""]
    if products:
        lines += ["Here is what I found:", ""]
        lines += [_product_line(product, currency) for product in products]
    else:
        lines.append(NOTHING_FOUND)
    if contact:
        lines += ["", f"If you'd rather talk to a person, you can reach the shop's staff at {contact}."]
    return "\n".join(lines)


def _product_line(product: Product, currency: str) -> str:
    variants = list(product.variants.all())
    prices = sorted({variant.price for variant in variants})
    if not prices:
        price = "price on request"
    elif len(prices) == 1:
        price = f"{prices[0]:.2f} {currency}".strip()
    else:
        price = f"{prices[0]:.2f}–{prices[-1]:.2f} {currency}".strip()
    in_stock = [variant for variant in variants if variant.inventory_quantity > 0]
    if not variants:
        stock = ""
    elif not in_stock:
        stock = "out of stock"
    elif len(variants) == 1:
        stock = "in stock"
    else:
        options = ", ".join(_options(variant) for variant in in_stock[:8])
        more = "" if len(in_stock) <= 8 else f" and {len(in_stock) - 8} more"
        stock = f"in stock: {options}{more}"
    details = "; ".join(part for part in (price, stock) if part)
    return f"- **{product.title}** — {details}"


def _options(variant: object) -> str:
    values = [getattr(variant, name, "") for name in ("option1", "option2", "option3")]
    return " / ".join(value for value in values if value) or "default"


def _pieces(text: str, size: int = 24) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]
