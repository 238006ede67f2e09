"""What a reply cost, from the LLM_PRICES setting: currency units per 1M tokens per model, e.g.
`{"gpt-5.2": {"input": 1.75, "cached_input": 0.175, "output": 14.0}}` (`cached_input` optional,
defaulting to the input price)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chat.llm.types import Usage

_KEYS = {"input", "cached_input", "output"}
_REQUIRED = ("input", "output")
# "gpt-5.2-2025-12-11" or "claude-x-20251211": a snapshot is priced as its model.
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")
_PER_TOKENS = Decimal(1_000_000)
_PLACES = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Price:
    """Currency units per 1M tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal


def price_table() -> dict[str, Price]:
    """LLM_PRICES, validated, read now (so an operator or a test can change it).

    Raises ImproperlyConfigured when it is not a mapping of model name to prices, a price is
    missing, negative or not a number, or an unknown key appears (a typo would go unnoticed)."""
    raw: Any = getattr(settings, "LLM_PRICES", {})
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"LLM_PRICES must be a JSON object of model name to prices, got {raw!r}")
    return {model: _price(model, prices) for model, prices in raw.items()}


def price_for(model: str) -> Price | None:
    """The price of `model`, or of the model it is a dated snapshot of; None when unpriced.
    Never by prefix: "gpt-5.2-pro" does not get "gpt-5.2"'s price."""
    table = price_table()
    if model in table:
        return table[model]
    return table.get(_DATE_SUFFIX.sub("", model))


def usage_cost(*, model: str, usage: Usage) -> Decimal | None:
    """What `usage` cost on `model`, rounded half-up to 6 decimal places; None when unpriced.
    Cached tokens are part of the prompt and reasoning tokens part of the completion."""
    price = price_for(model)
    if price is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)  # a gateway's over-report must not go negative
    units = (
        (usage.prompt_tokens - cached) * price.input
        + cached * price.cached_input
        + usage.completion_tokens * price.output
    )
    return (units / _PER_TOKENS).quantize(_PLACES, rounding=ROUND_HALF_UP)


def _price(model: object, prices: object) -> Price:
    if not isinstance(model, str) or not model:
        raise ImproperlyConfigured(f"LLM_PRICES: model names must be non-empty strings, got {model!r}")
    if not isinstance(prices, dict):
        raise ImproperlyConfigured(f'LLM_PRICES["{model}"] must be an object like {{"input": 1.75, "output": 14}}')
    unknown = sorted(set(prices) - _KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f'LLM_PRICES["{model}"] has unknown keys {unknown}; allowed: {", ".join(sorted(_KEYS))}'
        )
    missing = [key for key in _REQUIRED if key not in prices]
    if missing:
        raise ImproperlyConfigured(f'LLM_PRICES["{model}"] lacks {", ".join(missing)}')
    values = {key: _amount(model, key, value) for key, value in prices.items()}
    return Price(
        input=values["input"], cached_input=values.get("cached_input", values["input"]), output=values["output"]
    )


def _amount(model: str, key: str, value: object) -> Decimal:
    # bool is an int to Python, but `true` is no price; floats go through str so 0.175 stays 0.175.
    amount: Decimal | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ImproperlyConfigured(
            f'LLM_PRICES["{model}"]["{key}"] must be a number of at least 0 (per 1M tokens), got {value!r}'
        )
    return amount
