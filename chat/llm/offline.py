"""The offline responder: answers from the catalog when no model endpoint is configured.

It says plainly what it is, so a shopper is never led to think a person or a model read their
message. It speaks the language active while it streams (the turn runs in the conversation's),
or `language` when given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from django.utils import formats, translation
from django.utils.translation import gettext, gettext_lazy, ngettext

from chat.llm.types import ChatRequest, Finish, Notify, StreamEvent, TextDelta, notify_nobody

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from catalog.models import Product

INTRO = gettext_lazy(
    "I'm the shop's offline assistant: no AI model is configured right now, so I can only "
    "look things up in the catalog for you."
)
INTRO_UNAVAILABLE = gettext_lazy(
    "The assistant can't be reached right now, so I'm answering as the shop's offline assistant: "
    "I can only look things up in the catalog for you."
)
NOTHING_FOUND = gettext_lazy(
    'I couldn\'t find a product matching that. Try a product name or kind, like "rain jacket" or "running shoes".'
)
OPTIONS_SHOWN = 8


class OfflineResponder:
    """`unavailable`: answering because every model endpoint failed, not because none is set."""

    model = "offline"

    def __init__(self, *, unavailable: bool = False, language: str = "") -> None:
        self.unavailable = unavailable
        self.language = language

    async def stream(
        self, request: ChatRequest, *, notify: Notify = notify_nobody
    ) -> AsyncGenerator[StreamEvent, None]:
        from django.conf import settings

        with translation.override(self.language or translation.get_language()):
            text = offline_answer(
                products=request.products,
                currency=settings.SHOP_CURRENCY,
                contact=_site_contact(),
                intro=INTRO_UNAVAILABLE if self.unavailable else INTRO,
            )
        for piece in _pieces(text):
            yield TextDelta(piece)
            await asyncio.sleep(0)  # let the socket see each piece, as with a real stream
        yield Finish("stop")


def offline_answer(
    *, products: Sequence[Product], currency: str, contact: str = "", intro: StrOrPromise = INTRO
) -> str:
    """The whole answer, in the active language."""
    lines = [str(intro), ""]
    if products:
        lines += [gettext("Here is what I found:"), ""]
        lines += [_product_line(product, currency) for product in products]
    else:
        lines.append(str(NOTHING_FOUND))
    if contact:
        lines += [
            "",
            gettext("If you'd rather talk to a person, you can reach the shop's staff at %(contact)s.")
            % {"contact": contact},
        ]
    return "\n".join(lines)


def _product_line(product: Product, currency: str) -> str:
    variants = list(product.variants.all())
    prices = sorted({variant.price for variant in variants})
    if not prices:
        price = gettext("price on request")
    elif len(prices) == 1:
        price = f"{_amount(prices[0])} {currency}".strip()
    else:
        price = f"{_amount(prices[0])}–{_amount(prices[-1])} {currency}".strip()
    in_stock = [variant for variant in variants if variant.inventory_quantity > 0]
    if not variants:
        stock = ""
    elif not in_stock:
        stock = gettext("out of stock")
    elif len(variants) == 1:
        stock = gettext("in stock")
    else:
        options = ", ".join(_options(variant) for variant in in_stock[:OPTIONS_SHOWN])
        hidden = len(in_stock) - OPTIONS_SHOWN
        if hidden > 0:
            stock = ngettext(
                "in stock: %(options)s and %(count)d more",
                "in stock: %(options)s and %(count)d more",
                hidden,
            ) % {"options": options, "count": hidden}
        else:
            stock = gettext("in stock: %(options)s") % {"options": options}
    details = "; ".join(part for part in (price, stock) if part)
    return f"- **{product.title}** — {details}"


def _amount(value: Decimal) -> str:
    # 12.50 in English, 12,50 in German and Spanish.
    return formats.number_format(value, 2)


def _options(variant: object) -> str:
    values = [getattr(variant, name, "") for name in ("option1", "option2", "option3")]
    # The variant Shopify calls "Default Title": a product without options.
    return " / ".join(value for value in values if value) or gettext("default")


def _pieces(text: str, size: int = 24) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _site_contact() -> str:
    # Imported here: chat.llm must import without Django's apps loaded (chat.sites needs models).
    from chat.sites import site_current

    return site_current().contact
