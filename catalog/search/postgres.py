"""The PostgreSQL engine: a tsvector per product in catalog_product_search, with a GIN index,
kept in sync by statement-level triggers (with transition tables, so a bulk write refreshes all
its products in one go).

The document uses the 'simple' configuration (no stemming, no stop words: the Python side does
both, the same as for SQLite), weighted A title, B vendor/type/category, C tags/option
values/handle, D description. The table has no foreign key to catalog_product, so Django's
TRUNCATE-based flush keeps working; a TRUNCATE trigger empties it along with the products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.backends.utils import CursorWrapper

from catalog.search.filters import filters_sql, option_values, passes_sql, value_words
from catalog.search.parse import SearchFilters

Term = tuple[tuple[str, ...], ...]

# ts_rank weights for {D, C, B, A}.
_WEIGHTS = "'{0.1, 0.2, 0.4, 1.0}'"
_OUT_OF_STOCK_FACTOR = 0.5

# Words split at every non-alphanumeric character, as SQLite's unicode61 tokenizer does: the
# default parser would read "Black/White" as a file path and "a@b.c" as an email, one lexeme each.
_WORDS_FUNCTION = """
CREATE OR REPLACE FUNCTION catalog_search_words(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT regexp_replace($1, '[^[:alnum:]]+', ' ', 'g')
$$
"""
_REFRESH_FUNCTION = """
CREATE OR REPLACE FUNCTION catalog_search_refresh(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM catalog_product_search WHERE product_id = ANY(ids);
    INSERT INTO catalog_product_search (product_id, title, in_stock, title_document, document)
    SELECT p.id, p.title,
        EXISTS (SELECT 1 FROM catalog_variant AS v WHERE v.product_id = p.id AND v.inventory_quantity > 0)
            OR NOT EXISTS (SELECT 1 FROM catalog_variant AS v WHERE v.product_id = p.id),
        to_tsvector('simple', catalog_search_words(p.title)),
        setweight(to_tsvector('simple', catalog_search_words(p.title)), 'A')
        || setweight(to_tsvector('simple',
            catalog_search_words(concat_ws(' ', p.vendor, p.product_type, p.category))), 'B')
        || setweight(jsonb_to_tsvector('simple', p.tags, '["string"]'), 'C')
        || setweight(to_tsvector('simple', catalog_search_words(concat_ws(' ', p.handle, (
            SELECT string_agg(DISTINCT o.value, ' ')
            FROM catalog_variant AS v CROSS JOIN LATERAL (VALUES (v.option1), (v.option2), (v.option3)) AS o(value)
            WHERE v.product_id = p.id AND o.value <> '')))), 'C')
        || setweight(to_tsvector('simple', catalog_search_words(p.description_text)), 'D')
    FROM catalog_product AS p WHERE p.id = ANY(ids) AND p.status = 'active';
    UPDATE catalog_search_state SET generation = nextval('catalog_search_generation')
    WHERE id = 1 AND cardinality(ids) > 0;
$$
"""
_PRODUCT_CHANGED = " OR ".join(
    f"n.{column} IS DISTINCT FROM o.{column}"
    for column in ("title", "vendor", "product_type", "category", "tags", "description_text", "handle", "status")
)
_VARIANT_CHANGED = " OR ".join(
    [f"n.{column} IS DISTINCT FROM o.{column}" for column in ("product_id", "option1", "option2", "option3")]
    + ["(n.inventory_quantity > 0) IS DISTINCT FROM (o.inventory_quantity > 0)"]
)
# name: (table, event, transition tables, body)
_TRIGGERS = {
    "catalog_search_product_insert": (
        "catalog_product",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM catalog_search_refresh(ARRAY(SELECT id FROM new_rows));",
    ),
    "catalog_search_product_update": (
        "catalog_product",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "PERFORM catalog_search_refresh(ARRAY("  # noqa: S608
        f"SELECT n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id WHERE {_PRODUCT_CHANGED}));",
    ),
    "catalog_search_product_delete": (
        "catalog_product",
        "DELETE",
        "OLD TABLE AS old_rows",
        "PERFORM catalog_search_refresh(ARRAY(SELECT id FROM old_rows));",
    ),
    "catalog_search_product_truncate": ("catalog_product", "TRUNCATE", "", "TRUNCATE catalog_product_search;"),
    "catalog_search_variant_insert": (
        "catalog_variant",
        "INSERT",
        "NEW TABLE AS new_rows",
        "PERFORM catalog_search_refresh(ARRAY(SELECT DISTINCT product_id FROM new_rows));",
    ),
    "catalog_search_variant_update": (
        "catalog_variant",
        "UPDATE",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "PERFORM catalog_search_refresh(ARRAY("  # noqa: S608
        f"SELECT n.product_id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id WHERE {_VARIANT_CHANGED} "
        f"UNION SELECT o.product_id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id WHERE {_VARIANT_CHANGED}));",
    ),
    "catalog_search_variant_delete": (
        "catalog_variant",
        "DELETE",
        "OLD TABLE AS old_rows",
        "PERFORM catalog_search_refresh(ARRAY(SELECT DISTINCT product_id FROM old_rows));",
    ),
    "catalog_search_variant_truncate": (
        "catalog_variant",
        "TRUNCATE",
        "",
        "PERFORM catalog_search_refresh(ARRAY(SELECT id FROM catalog_product));",
    ),
}


def _trigger_sql(name: str, table: str, event: str, transitions: str, body: str) -> list[str]:
    referencing = f" REFERENCING {transitions}" if transitions else ""
    return [
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body} RETURN NULL; END $$",
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"CREATE TRIGGER {name} AFTER {event} ON {table}{referencing} FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


INSTALL = [
    "CREATE TABLE IF NOT EXISTS catalog_search_state (id integer PRIMARY KEY, generation bigint NOT NULL)",
    "CREATE SEQUENCE IF NOT EXISTS catalog_search_generation",
    "INSERT INTO catalog_search_state (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS catalog_product_search ("
    "product_id bigint PRIMARY KEY, title varchar(255) NOT NULL, "
    "in_stock boolean NOT NULL, title_document tsvector NOT NULL, document tsvector NOT NULL)",
    # fastupdate off: new entries go straight into the index instead of a pending list that every
    # search scans until (auto)vacuum merges it, which made searches after an import 2-10x slower.
    "CREATE INDEX IF NOT EXISTS catalog_product_search_document ON catalog_product_search USING gin (document)"
    " WITH (fastupdate = off)",
    "CREATE INDEX IF NOT EXISTS catalog_product_search_title ON catalog_product_search USING gin (title_document)"
    " WITH (fastupdate = off)",
    _WORDS_FUNCTION,
    _REFRESH_FUNCTION,
    *(statement for name, spec in _TRIGGERS.items() for statement in _trigger_sql(name, *spec)),
]
REBUILD = [
    "TRUNCATE catalog_product_search",
    "SELECT catalog_search_refresh(ARRAY(SELECT id FROM catalog_product))",
]
REMOVE = [
    *(f"DROP TRIGGER IF EXISTS {name} ON {spec[0]}" for name, spec in _TRIGGERS.items()),
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in _TRIGGERS),
    "DROP FUNCTION IF EXISTS catalog_search_refresh(bigint[])",
    "DROP FUNCTION IF EXISTS catalog_search_words(text)",
    "DROP TABLE IF EXISTS catalog_product_search",
    "DROP SEQUENCE IF EXISTS catalog_search_generation",
    "DROP TABLE IF EXISTS catalog_search_state",
]
TRIGGER_NAMES = tuple(_TRIGGERS)


def installed_triggers(cursor: CursorWrapper) -> set[str]:
    cursor.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'catalog\\_search\\_%%' AND NOT tgisinternal")
    return {name for (name,) in cursor.fetchall()}


def vocabulary(cursor: CursorWrapper) -> list[tuple[str, int]]:
    """Every indexed word with the number of products it occurs in."""
    cursor.execute("SELECT word, ndoc FROM ts_stat('SELECT document FROM catalog_product_search')")
    return [(str(word), int(ndoc)) for word, ndoc in cursor.fetchall()]


def match_expression(terms: Sequence[Term], *, every: bool, title_only: bool = False) -> str:
    """A tsquery: each term an OR of its alternatives; terms joined by AND (`every`) or OR."""
    return (" & " if every else " | ").join(_group(term) for term in terms)


def phrase_expression(phrases: Sequence[tuple[str, ...]]) -> str:
    """Any of the phrases (searched in the title: see `search`)."""
    return _group(phrases)


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
    """(id, passes `wanted`) of active products matching `expression` (in the title only:
    `title_only`) and `strict`, those that pass first, best first.

    ts_rank is computed for at most `sample` products matching the text (and, as a first cut,
    the option values and stock `strict` wants); the filters proper then hold for one variant.
    """
    # The title has a GIN index of its own: a weight-restricted query (:A) on the whole document
    # would have to recheck every product that has the word anywhere.
    column = "s.title_document" if title_only else "s.document"
    inner: list[str] = [f"{column} @@ to_tsquery('simple', %s)"]
    params: list[Any] = [expression]
    for prefilter in _prefilters(strict):
        inner.append("s.document @@ to_tsquery('simple', %s)")
        params.append(prefilter)
    if strict.in_stock:
        inner.append("s.in_stock")
    if exclude:
        inner.append("NOT (s.product_id = ANY(%s))")
        params.append(list(exclude))
    passes, passes_params = passes_sql(wanted, product_id="candidate.product_id")
    conditions, strict_params = filters_sql(strict, product_id="candidate.product_id")
    outer = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    cursor.execute(
        f"SELECT product_id, {passes} AS passes FROM (SELECT s.product_id, s.title, s.in_stock,"  # noqa: S608 (words are parameters)
        f" ts_rank({_WEIGHTS}, s.document, to_tsquery('simple', %s)) AS score"
        f" FROM catalog_product_search AS s WHERE {' AND '.join(inner)} LIMIT %s) AS candidate {outer}"
        f" ORDER BY passes DESC, score * CASE WHEN in_stock THEN 1.0 ELSE {_OUT_OF_STOCK_FACTOR} END DESC,"
        " title, product_id LIMIT %s",
        [*passes_params, expression, *params, sample, *strict_params, limit],
    )
    return [(int(row[0]), bool(row[1])) for row in cursor.fetchall()]


def _prefilters(filters: SearchFilters) -> list[str]:
    """Necessary conditions the index can check at once (the exact ones follow in SQL)."""
    found = []
    for values in option_values(filters):
        words = [value_words(value) for value in values]
        if all(words):
            found.append(_group(words))
    return found


def _group(alternatives: Sequence[tuple[str, ...]], weight: str = "") -> str:
    # Words are letters and digits only (see catalog.search.parse), so quoting them is safe.
    phrases = [
        " <-> ".join(f"'{word}':{weight}" if weight else f"'{word}'" for word in words) for words in alternatives
    ]
    return "(" + " | ".join(f"({phrase})" for phrase in phrases if phrase) + ")"
