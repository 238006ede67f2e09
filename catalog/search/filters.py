"""SearchFilters as SQL conditions on a product id, the same on SQLite and PostgreSQL.

SQL here is assembled from constant fragments only; every value is a query parameter (hence the
S608 exemptions).
"""

from __future__ import annotations

import re
from typing import Any

from catalog.search.parse import VALUE_ALIASES, SearchFilters

# Option names a filter name also matches ("color" finds a product's "Colour" option).
NAME_ALIASES: dict[str, tuple[str, ...]] = {"color": ("color", "colour"), "colour": ("color", "colour")}
_OPTION_COLUMNS = (("v.option1", "p.option1_name"), ("v.option2", "p.option2_name"), ("v.option3", "p.option3_name"))


def filters_sql(filters: SearchFilters, *, product_id: str) -> tuple[list[str], list[Any]]:
    """SQL conditions (to AND together) and their parameters, for the product whose id is the
    SQL expression `product_id`. Variant conditions all hold for one variant."""
    conditions: list[str] = []
    params: list[Any] = []
    variant: list[str] = []
    if filters.min_price is not None:
        variant.append("v.price >= %s")
        params.append(filters.min_price)
    if filters.max_price is not None:
        variant.append("v.price <= %s")
        params.append(filters.max_price)
    if filters.in_stock is not None:
        variant.append("v.inventory_quantity > 0" if filters.in_stock else "v.inventory_quantity <= 0")
    option_pairs = (
        [(name, value) for name, value in filters.options.items()]
        if isinstance(filters.options, dict)
        else [(None, value) for value in filters.options]
    )
    for name, value in option_pairs:
        sql, option_params = _option_sql(name, value)
        variant.append(sql)
        params.extend(option_params)
    if variant:
        conditions.append(
            "EXISTS (SELECT 1 FROM catalog_variant AS v JOIN catalog_product AS p ON p.id = v.product_id"  # noqa: S608
            f" WHERE v.product_id = {product_id} AND {' AND '.join(variant)})"
        )
    for column, wanted in (("vendor", filters.vendor), ("product_type", filters.product_type)):
        if wanted:
            conditions.append(
                f"EXISTS (SELECT 1 FROM catalog_product AS p WHERE p.id = {product_id} AND LOWER(p.{column}) = %s)"  # noqa: S608
            )
            params.append(wanted.strip().lower())
    return conditions, params


def passes_sql(filters: SearchFilters | None, *, product_id: str) -> tuple[str, list[Any]]:
    """An SQL expression, 1 when the product passes `filters` (always, without), else 0."""
    conditions, params = filters_sql(filters, product_id=product_id) if filters else ([], [])
    if not conditions:
        return "1", []
    return f"CASE WHEN {' AND '.join(conditions)} THEN 1 ELSE 0 END", params


def option_values(filters: SearchFilters) -> list[tuple[str, ...]]:
    """For each option the filters want: the values (with aliases) that satisfy it."""
    values = filters.options.values() if isinstance(filters.options, dict) else filters.options
    found = []
    for value in values:
        wanted = " ".join(str(value).lower().split())
        found.append(VALUE_ALIASES.get(wanted, (wanted,)))
    return found


def value_words(value: str) -> tuple[str, ...]:
    """The words an index holds for an option value ("9.5" → ("9", "5"))."""
    return tuple(re.findall(r"[^\W_]+", value.lower()))


def _option_sql(name: str | None, value: str) -> tuple[str, list[Any]]:
    """One of the variant's options has `value` (and, with a name, that option's name matches)."""
    wanted = " ".join(str(value).lower().split())
    patterns = [f"% {_escape(alias)} %" for alias in VALUE_ALIASES.get(wanted, (wanted,))]
    names = [f"%{_escape(alias)}%" for alias in NAME_ALIASES.get(name.lower(), (name.lower(),))] if name else []
    columns: list[str] = []
    params: list[Any] = []
    for value_column, name_column in _OPTION_COLUMNS:
        # Padded with spaces, "/" as a space: "black" matches "Black", "Jet Black" and "Black/White".
        padded = f"(' ' || REPLACE(LOWER({value_column}), '/', ' ') || ' ')"
        value_sql = " OR ".join(f"{padded} LIKE %s ESCAPE '\\'" for _ in patterns)
        params.extend(patterns)
        if names:
            name_sql = " OR ".join(f"LOWER({name_column}) LIKE %s ESCAPE '\\'" for _ in names)
            params.extend(names)
            columns.append(f"(({value_sql}) AND ({name_sql}))")
        else:
            columns.append(f"({value_sql})")
    return f"({' OR '.join(columns)})", params


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
