"""Shop language: words shoppers use for what a catalog calls something else.

A query word is searched together with its synonyms as OR alternatives, so "sneakers" also
finds "Trail Shoe" and "rucksack" finds "Daypack Backpack". Words are in the singular form that
`catalog.search.parse.singular` gives (the search also matches plurals).

- `EQUIVALENTS`: groups of interchangeable words; each finds all the others.
- `BROADER`: a specific word also finds its broader word, not the other way round
  ("beanie" finds hats, but "hat" does not bring up every beanie as a synonym match; it finds
  them anyway when their text says "hat").

Keep it small and shop-wide; a shop with its own jargon can extend these two tables.
"""

from __future__ import annotations

EQUIVALENTS: tuple[frozenset[str], ...] = tuple(
    frozenset(group.split())
    for group in (
        "sneaker trainer",
        "coat jacket",
        "waterproof rain",
        "rucksack backpack knapsack",
        "hoodie sweatshirt",
        "jumper sweater pullover",
        "tee tshirt",
        "pant trouser",
        "flask bottle",
        "sunglass shade",
        "grey gray",
        "colour color",
    )
)

BROADER: dict[str, tuple[str, ...]] = {
    "sneaker": ("shoe",),
    "trainer": ("shoe",),
    "runner": ("shoe",),
    "loafer": ("shoe",),
    "beanie": ("hat",),
    "cap": ("hat",),
    "raincoat": ("jacket", "rain"),
    "parka": ("jacket",),
    "anorak": ("jacket",),
    "windbreaker": ("jacket",),
    "daypack": ("backpack",),
    "jean": ("denim",),
    "legging": ("tight",),
    "mitten": ("glove",),
    "tote": ("bag",),
    "duffel": ("bag",),
    "sleeping": ("sleep",),
    "mug": ("cup",),
}

_LOOKUP: dict[str, tuple[str, ...]] = {}
for _group in EQUIVALENTS:
    for _word in _group:
        _LOOKUP[_word] = tuple(sorted(_group - {_word}))
for _word, _broader in BROADER.items():
    _LOOKUP[_word] = tuple(dict.fromkeys(_LOOKUP.get(_word, ()) + _broader))


def synonyms(word: str) -> tuple[str, ...]:
    """The other words to search for along with `word` (a singular, lowercase word)."""
    return _LOOKUP.get(word, ())
