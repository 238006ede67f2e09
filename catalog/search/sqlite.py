"""The SQLite engine: an FTS5 table over each product's text, kept in sync by triggers.

`catalog_product_fts` holds one row per active product (rowid = product id): title, vendor,
kind (type and category), tags, option values of its variants, description, handle, and flags:
"instock", or "soldout" when no variant has stock (a product without variants counts as in
stock). Triggers on catalog_product and catalog_variant rewrite a product's row whenever any of
that changes, so `save()`, `QuerySet.update()`, `bulk_create()`, `bulk_update()`, deletes and raw SQL all keep it
in sync. `catalog_product_fts_vocab` (fts5vocab) lists its words for typo correction.

A migration that makes SQLite rebuild catalog_product or catalog_variant (Django does for most
AlterField/RemoveField operations) drops their triggers: it must end with
`catalog.search.schema.search_schema_operation()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.backends.utils import CursorWrapper

from catalog.search.filters import filters_sql, option_values, passes_sql, value_words
from catalog.search.parse import SearchFilters

Term = tuple[tuple[str, ...], ...]

# bm25 weight per column of catalog_product_fts, in order: title counts most.
_WEIGHTS = "10.0, 3.0, 4.0, 3.0, 2.0, 1.0, 1.0, 0.0"
_OUT_OF_STOCK_FACTOR = 0.5

_PRODUCT_TEXT_CHANGED = " OR ".join(
    f"OLD.{column} IS NOT NEW.{column}"
    for column in ("id", "title", "vendor", "product_type", "category", "tags", "description_text", "handle", "status")
)
_VARIANT_TEXT_CHANGED = " OR ".join(
    [f"OLD.{column} IS NOT NEW.{column}" for column in ("product_id", "option1", "option2", "option3")]
    + ["(OLD.inventory_quantity > 0) IS NOT (NEW.inventory_quantity > 0)"]
)


def _row_select(where: str) -> str:
    options = " UNION ".join(
        f"SELECT v.{column} AS value FROM catalog_variant AS v WHERE v.product_id = p.id AND v.{column} <> ''"  # noqa: S608
        for column in ("option1", "option2", "option3")
    )
    return f"""
        INSERT INTO catalog_product_fts
            (rowid, title, vendor, kind, tags, options, description, handle, flags)
        SELECT p.id, p.title, p.vendor, p.product_type || ' ' || p.category,
            CASE WHEN json_valid(p.tags) THEN (SELECT group_concat(j.value, ' ') FROM json_each(p.tags) AS j)
                 ELSE p.tags END,
            (SELECT group_concat(o.value, ' ') FROM ({options}) AS o),
            p.description_text, p.handle,
            CASE WHEN EXISTS (SELECT 1 FROM catalog_variant AS v WHERE v.product_id = p.id AND v.inventory_quantity > 0)
                OR NOT EXISTS (SELECT 1 FROM catalog_variant AS v WHERE v.product_id = p.id)
                THEN 'instock' ELSE 'soldout' END
        FROM catalog_product AS p WHERE p.status = 'active' AND {where};"""  # noqa: S608


def _refresh(product_id: str) -> str:
    return (
        f"DELETE FROM catalog_product_fts WHERE rowid = {product_id};"  # noqa: S608
        f"{_row_select(f'p.id = {product_id}')}"
        "UPDATE catalog_search_state SET generation = random() WHERE id = 1;"
    )


def _trigger(name: str, event: str, table: str, body: str, when: str = "") -> str:
    condition = f" WHEN {when}" if when else ""
    return f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} FOR EACH ROW{condition} BEGIN {body} END"


_TRIGGERS = {
    "catalog_search_product_insert": ("INSERT", "catalog_product", _refresh("NEW.id"), ""),
    "catalog_search_product_update": ("UPDATE", "catalog_product", _refresh("NEW.id"), _PRODUCT_TEXT_CHANGED),
    "catalog_search_product_delete": (
        "DELETE",
        "catalog_product",
        "DELETE FROM catalog_product_fts WHERE rowid = OLD.id;"
        "UPDATE catalog_search_state SET generation = random() WHERE id = 1;",
        "",
    ),
    "catalog_search_variant_insert": ("INSERT", "catalog_variant", _refresh("NEW.product_id"), ""),
    "catalog_search_variant_update": ("UPDATE", "catalog_variant", _refresh("NEW.product_id"), _VARIANT_TEXT_CHANGED),
    "catalog_search_variant_move": (
        "UPDATE",
        "catalog_variant",
        _refresh("OLD.product_id"),
        "OLD.product_id IS NOT NEW.product_id",
    ),
    "catalog_search_variant_delete": ("DELETE", "catalog_variant", _refresh("OLD.product_id"), ""),
}

INSTALL = [
    "CREATE TABLE IF NOT EXISTS catalog_search_state (id INTEGER PRIMARY KEY, generation INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO catalog_search_state (id, generation) VALUES (1, 0)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_product_fts USING fts5("
    "title, vendor, kind, tags, options, description, handle, flags, "
    "tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_product_fts_vocab USING fts5vocab(catalog_product_fts, 'col')",
    *(_trigger(name, *spec) for name, spec in _TRIGGERS.items()),
]
REBUILD = [
    "DELETE FROM catalog_product_fts",
    _row_select("1 = 1"),
    "UPDATE catalog_search_state SET generation = random() WHERE id = 1",
]
REMOVE = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in _TRIGGERS),
    "DROP TABLE IF EXISTS catalog_product_fts_vocab",
    "DROP TABLE IF EXISTS catalog_product_fts",
    "DROP TABLE IF EXISTS catalog_search_state",
]
TRIGGER_NAMES = tuple(_TRIGGERS)


def installed_triggers(cursor: CursorWrapper) -> set[str]:
    cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'catalog_search_%'")
    return {name for (name,) in cursor.fetchall()}


def vocabulary(cursor: CursorWrapper) -> list[tuple[str, int]]:
    """Every indexed word with the number of products it occurs in."""
    # Per column, so the flags ("instock", "soldout") stay out of it; a product that has a word in
    # two columns counts twice, which only matters for ties between corrections.
    cursor.execute("SELECT term, sum(doc) FROM catalog_product_fts_vocab WHERE col <> 'flags' GROUP BY term")
    return [(str(term), int(doc)) for term, doc in cursor.fetchall()]


def match_expression(terms: Sequence[Term], *, every: bool, title_only: bool = False) -> str:
    """An FTS5 query: each term an OR of its alternatives; terms joined by AND (`every`) or OR."""
    groups = [_group(term) for term in terms]
    if title_only:
        groups = [f"title : {group}" for group in groups]
    return (" AND " if every else " OR ").join(groups)


def phrase_expression(phrases: Sequence[tuple[str, ...]]) -> str:
    """Any of the phrases, in the title."""
    return f"title : {_group(phrases)}"


def search(
    cursor: CursorWrapper,
    *,
    expression: str,
    strict: SearchFilters,
    wanted: SearchFilters | None,
    limit: int,
    sample: int,
    exclude: Sequence[int],
    title_only: bool = False,
) -> list[tuple[int, bool]]:
    """(id, passes `wanted`) of active products matching `expression` and `strict`, those that
    pass first, best first. (`title_only` is in the expression here: FTS5 column filters.)

    bm25 is computed for at most `sample` products matching the text (and, as a first cut, the
    option values and stock `strict` wants); the filters proper then hold for one variant.
    """
    expression = " AND ".join([f"({expression})", *_prefilters(strict)])
    inner: list[str] = ["catalog_product_fts MATCH %s"]
    params: list[Any] = [expression]
    if exclude:
        inner.append(f"rowid NOT IN ({', '.join(['%s'] * len(exclude))})")
        params.extend(exclude)
    passes, passes_params = passes_sql(wanted, product_id="candidate.rowid")
    conditions, strict_params = filters_sql(strict, product_id="candidate.rowid")
    outer = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cursor.execute(
        f"SELECT rowid, {passes} AS passes FROM (SELECT rowid, title, flags,"  # noqa: S608 (words are parameters)
        f" bm25(catalog_product_fts, {_WEIGHTS}) AS score"
        f" FROM catalog_product_fts WHERE {' AND '.join(inner)} LIMIT %s) AS candidate {outer}"
        f" ORDER BY passes DESC, score * CASE WHEN flags = 'instock' THEN 1.0 ELSE {_OUT_OF_STOCK_FACTOR} END,"
        " title, rowid LIMIT %s",
        [*passes_params, *params, sample, *strict_params, limit],
    )
    return [(int(row[0]), bool(row[1])) for row in cursor.fetchall()]


def _prefilters(filters: SearchFilters) -> list[str]:
    """Necessary conditions the index can check at once (the exact ones follow in SQL)."""
    found = []
    for values in option_values(filters):
        words = [value_words(value) for value in values]
        if all(words):
            found.append(f"options : {_group(words)}")
    if filters.in_stock:
        found.append('flags : "instock"')
    return found


def _group(alternatives: Sequence[tuple[str, ...]]) -> str:
    # Words are letters and digits only (see catalog.search.parse), so quoting them is safe.
    return "(" + " OR ".join(f'"{" ".join(words)}"' for words in alternatives if words) + ")"
