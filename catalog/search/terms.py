"""From a shopper's words to search terms: each word with its alternatives (its singular and
plural forms the catalog has, a typo correction, synonyms), searched as an OR group.

Alternatives are exact indexed words, never prefix queries: a prefix has to be expanded over the
whole index at query time, which made common words several times slower. The vocabulary knows
which forms exist, so "boot" becomes ("boot" OR "boots") only where the catalog has both.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalog.search.parse import singular
from catalog.search.synonyms import synonyms
from catalog.search.typos import Vocabulary

_MAX_COMPLETIONS = 4


@dataclass(frozen=True)
class Terms:
    # One tuple of alternatives per query word; an alternative of several words is a phrase.
    terms: tuple[tuple[tuple[str, ...], ...], ...]
    # The query's words as meant (typos corrected), in order, one tuple per form of the last
    # word: products with them in a row rank first.
    phrases: tuple[tuple[str, ...], ...]


def terms_build(*, words: list[str], vocabulary: Vocabulary) -> Terms:
    """Search terms for query words (lowercase, letters and digits only, see query_words)."""
    terms: list[tuple[tuple[str, ...], ...]] = []
    meant: list[list[str]] = []
    for word in words:
        base = singular(word)
        primary = _forms(base, word, vocabulary)
        if not primary:
            correction = vocabulary.correct(base) or vocabulary.correct(word)
            primary = _forms(singular(correction), correction, vocabulary) if correction else []
        if not primary:
            primary = vocabulary.completions(base, limit=_MAX_COMPLETIONS)
        # Unknown everywhere: keep the word, so the products having every word are none.
        primary = primary or [word]
        alternatives = list(primary)
        for synonym in synonyms(singular(primary[0])):
            alternatives += _forms(synonym, synonym, vocabulary) or [synonym]
        terms.append(tuple((alternative,) for alternative in dict.fromkeys(alternatives)))
        meant.append(primary)
    phrases: tuple[tuple[str, ...], ...] = ()
    if len(meant) > 1:
        head = tuple(forms[0] for forms in meant[:-1])
        phrases = tuple((*head, last) for last in meant[-1])
    return Terms(tuple(terms), phrases)


def _forms(base: str, word: str, vocabulary: Vocabulary) -> list[str]:
    """The singular and plural forms of a word that the catalog has."""
    if not base.isalpha():
        return [word] if vocabulary.has(word) else []
    candidates = [base, word, f"{base}s", f"{base}es"]
    if base.endswith("y"):
        candidates.append(f"{base[:-1]}ies")
    return [form for form in dict.fromkeys(candidates) if vocabulary.has(form)]
