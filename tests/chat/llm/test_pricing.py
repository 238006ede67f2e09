"""Prices from LLM_PRICES: validation, model matching (snapshots yes, prefixes never) and cost."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from chat.llm.pricing import Price, price_for, price_table, usage_cost
from chat.llm.types import Usage

PRICES = {
    "gpt-5.2": {"input": 1.75, "cached_input": 0.175, "output": 14.0},
    "gpt-4o": {"input": "2.5", "output": 10},
    "gpt-4o-2024-05-13": {"input": 5, "output": 15},
}


@pytest.fixture
def prices(settings):
    settings.LLM_PRICES = PRICES


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> Usage:
    return Usage(prompt, completion, prompt + completion, cached_tokens=cached, reasoning_tokens=reasoning)


def test_table_is_decimal_and_cached_input_defaults_to_input(prices):
    table = price_table()
    assert table["gpt-5.2"] == Price(input=Decimal("1.75"), cached_input=Decimal("0.175"), output=Decimal("14.0"))
    assert table["gpt-4o"] == Price(input=Decimal("2.5"), cached_input=Decimal("2.5"), output=Decimal("10"))


def test_no_setting_means_no_prices(settings):
    settings.LLM_PRICES = {}
    assert price_table() == {}
    assert price_for("gpt-5.2") is None
    assert usage_cost(model="gpt-5.2", usage=usage(1000, 100)) is None


@pytest.mark.parametrize("model", ["gpt-5.2", "gpt-5.2-2025-12-11", "gpt-5.2-20251211"])
def test_a_model_and_its_dated_snapshots_share_a_price(prices, model):
    assert price_for(model) == price_table()["gpt-5.2"]


@pytest.mark.parametrize(
    "model", ["gpt-5.2-pro", "gpt-5.2-pro-2025-12-11", "gpt-5.2-chat-latest", "gpt-5", "GPT-5.2", "gpt-5.2-1211", ""]
)
def test_other_models_are_never_priced_by_prefix(prices, model):
    assert price_for(model) is None


def test_an_exact_snapshot_price_wins_over_its_model(prices):
    assert price_for("gpt-4o-2024-05-13") == Price(Decimal(5), Decimal(5), Decimal(15))
    assert price_for("gpt-4o-2024-08-06") == price_table()["gpt-4o"]


def test_cost_splits_cached_prompt_tokens_and_counts_reasoning_as_output(settings):
    settings.LLM_PRICES = {"gpt-5.2": {"input": 2, "cached_input": 0.5, "output": 10}}
    # (1000 - 400) * 2 + 400 * 0.5 + 200 * 10 = 3400 per million; the 50 reasoning tokens are in the 200.
    assert usage_cost(model="gpt-5.2", usage=usage(1000, 200, cached=400, reasoning=50)) == Decimal("0.003400")


def test_cost_is_rounded_half_up_to_six_places(prices):
    cost = usage_cost(model="gpt-5.2-2025-12-11", usage=usage(3, 1, cached=2))
    # 1 * 1.75 + 2 * 0.175 + 1 * 14 = 16.1 per million = 0.0000161
    assert cost == Decimal("0.000016")
    assert cost is not None and cost.as_tuple().exponent == -6
    assert usage_cost(model="gpt-4o", usage=usage(0, 0)) == Decimal("0.000000")


def test_half_a_millionth_rounds_up(settings):
    settings.LLM_PRICES = {"m": {"input": 0.5, "output": 0}}
    assert usage_cost(model="m", usage=usage(1, 0)) == Decimal("0.000001")


def test_cached_tokens_above_the_prompt_do_not_make_the_cost_negative(settings):
    settings.LLM_PRICES = {"m": {"input": 10, "cached_input": 1, "output": 0}}
    assert usage_cost(model="m", usage=usage(100, 0, cached=500)) == Decimal("0.000100")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ({"gpt-5.2": 1.75}, r'LLM_PRICES\["gpt-5.2"\] must be an object'),
        ({"": {"input": 1, "output": 1}}, "non-empty strings"),
        ({"gpt-5.2": {"input": 1, "output": 1, "cache_input": 0.1}}, r"unknown keys \['cache_input'\]"),
        ({"gpt-5.2": {"input": 1}}, "lacks output"),
        ({"gpt-5.2": {"cached_input": 1}}, "lacks input, output"),
        ({"gpt-5.2": {"input": -1, "output": 1}}, r'\["input"\] must be a number of at least 0'),
        ({"gpt-5.2": {"input": 1, "output": "cheap"}}, r"\[\"output\"\] must be a number.*'cheap'"),
        ({"gpt-5.2": {"input": True, "output": 1}}, r'\["input"\] must be a number'),
        ({"gpt-5.2": {"input": None, "output": 1}}, r'\["input"\] must be a number'),
        ({"gpt-5.2": {"input": "NaN", "output": 1}}, r'\["input"\] must be a number'),
        ({"gpt-5.2": {"input": float("inf"), "output": 1}}, r'\["input"\] must be a number'),
    ],
)
def test_bad_tables_are_refused_with_a_clear_message(settings, value, message):
    settings.LLM_PRICES = value
    with pytest.raises(ImproperlyConfigured, match=message):
        price_table()
    with pytest.raises(ImproperlyConfigured):
        price_for("gpt-5.2")
