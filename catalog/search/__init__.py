"""Catalog search: full-text search with typo tolerance, synonyms and filters.

SQLite uses an FTS5 table ranked by bm25, PostgreSQL a tsvector table with a GIN index ranked by
ts_rank; both are kept in sync by database triggers (writers need do nothing, bulk writes
included) and searched the same way:

1. `search_parse` takes filters out of the text ("size 9", "under 50", "in black", "in stock").
2. Each remaining word (minus stop words) becomes an OR group of indexed words: its singular and
   plural forms, else the nearest word by edit distance (typos.py) or the words it begins; plus
   its synonyms (synonyms.py).
3. Tiers, best first, until `limit` products are found: the words in a row in the title; every
   word in the title; every word anywhere; then, to fill the list, any word anywhere. Within a
   tier: bm25/ts_rank with the title weighted most, sold-out products at half their score.
4. Within a tier the score is computed for at most `SAMPLE` products, the first the index finds
   (a large catalog can have tens of thousands matching a common word; scoring them all takes
   far longer than the answer is worth, and they all have the tier's words). Explicit filters'
   option values and stock are checked by the index before that cut, so the sample holds
   candidates that can pass them; the rest after it.
5. Filters read from the text rank the products that pass them first; when none does, the
   closest products are returned instead (their facts then show what there is), from the same
   queries. Explicit filters always hold.

Modules: parse (filters from words), terms, typos, synonyms, filters (SQL), sqlite, postgres,
schema (install/repair).
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.utils import CursorWrapper

from catalog.search.parse import SearchFilters, query_words, search_parse, search_tokens
from catalog.search.schema import backend_for
from catalog.search.terms import terms_build
from catalog.search.typos import vocabulary_get

__all__ = ["SearchFilters", "search_parse", "search_product_ids", "search_tokens"]

# Products scored per tier: enough to choose the best few among, few enough to answer within
# milliseconds when a common word matches a large share of a 100k catalog (bench/catalog_search.py).
SAMPLE = 200


def search_product_ids(
    *, query: str, limit: int = 5, filters: SearchFilters | None = None, using: str = DEFAULT_DB_ALIAS
) -> list[int]:
    """Ids of active products matching the query, best first.

    Args:
        query: the shopper's words; filters stated in them are applied (see search_parse).
        limit: at most this many ids.
        filters: explicit filters; each field given wins over the same one found in the text.
            Filters found in the text are dropped again when they leave nothing (the shopper
            then hears about the closest products, whose facts show what is available);
            explicit filters always hold.

    Returns:
        Up to `limit` ids; [] when the query has no words worth searching for.
    """
    text, parsed = search_parse(query)
    words = query_words(text)
    if not words or limit <= 0:
        return []
    strict = filters or SearchFilters()
    combined = parsed.merged(filters)
    return _search(
        words=words, strict=strict, wanted=combined if combined != strict else None, limit=limit, using=using
    )


def _generation(cursor: CursorWrapper) -> object:
    """A value the index triggers change on every write: a changed catalog reloads the vocabulary."""
    cursor.execute("SELECT generation FROM catalog_search_state WHERE id = 1")
    row = cursor.fetchone()
    return row[0] if row else None


def _search(
    *, words: list[str], strict: SearchFilters, wanted: SearchFilters | None, limit: int, using: str
) -> list[int]:
    connection = connections[using]
    backend = backend_for(connection)
    passing: list[int] = []
    others: list[int] = []
    with connection.cursor() as cursor:
        vocabulary = vocabulary_get(
            key=f"{using}:{connection.settings_dict['NAME']}",
            generation=lambda: _generation(cursor),
            load=lambda: backend.vocabulary(cursor),
        )
        terms = terms_build(words=words, vocabulary=vocabulary)

        def tier(expression: str, *, title_only: bool) -> None:
            found = backend.search(
                cursor,
                expression=expression,
                strict=strict,
                wanted=wanted,
                limit=limit - len(passing),
                sample=SAMPLE,
                exclude=passing + others,
                title_only=title_only,
            )
            passing.extend(pk for pk, passes in found if passes)
            others.extend(pk for pk, passes in found if not passes)

        if terms.phrases:
            tier(backend.phrase_expression(terms.phrases), title_only=True)
        if len(passing) < limit:
            tier(backend.match_expression(terms.terms, every=True, title_only=True), title_only=True)
        if len(passing) < limit:
            tier(backend.match_expression(terms.terms, every=True), title_only=False)
        # Products with only some of the words only fill the list: when those with every word
        # just miss the filters, they are the better answer.
        if len(terms.terms) > 1 and len(passing) + len(others) < limit:
            tier(backend.match_expression(terms.terms, every=False), title_only=False)
    # When the filters read from the text leave nothing: the closest products, whose facts show
    # what there is instead.
    return (passing or others)[:limit]
