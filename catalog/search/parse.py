"""Reading a shopper's words: which words to search for and which filters they state.

`search_parse` understands, case-insensitively (prices may carry $ € £ or "dollars", "usd",
"eur", "euros", "bucks", "pounds", "gbp"; decimals with "." or ","):

- maximum price: "under 50", "below 50", "less than 50", "cheaper than 50", "up to 50",
  "at most 50", "max 50", "no more than 50", "within 50", "<50"
- minimum price: "over 50", "above 50", "more than 50", "at least 50", "min 50", "from 50",
  "starting at 50", ">50"
- price range: "between 20 and 50", "from 20 to 50", "20-50 dollars", "$20 to $50"
- stock: "in stock", "in-stock", "available" (not after "not") → only variants with stock
- size: "size 9", "size 10.5", "in size M", "us size 9", "sz 9", "size: large", "size xl"
- colour: "in black", "in navy", "colour: grey", "color red" for the common colour words in
  `COLOURS` (a bare colour, as in "black boots", stays a search word: it matches titles and
  option values without requiring a variant of that colour)

Vendors and product types are not guessed from the text; pass them in `SearchFilters`.
Everything else is left in the returned text. Price, stock and option filters all apply to one
and the same variant ("size 9 under 120 in stock" wants a size-9 variant under 120 with stock).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

# Words that say nothing about which product a shopper means; matching them would rank
# every product that mentions "the" or "have".
_STOP_WORDS_TEXT = """
a about above after again all also am an and any are as at be been being below between both but by
can could did do does doing during each few for from further get got had has have having he her here
hers him his how i if in into is it its just let like looking me more most my need no nor not now of
off on once only or other our out over own please same she should show so some such than that the
their them then there these they this those through to too under until up us very want was we were
what when where which while who whom why will with would you your yours buy sell shop store product
products item items hi hello hey thanks thank size sizes color colour colors colours price cost much
stock available
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
MAX_WORDS = 8
_MIN_WORD_LENGTH = 2

_COLOURS_TEXT = """
black white grey gray red blue navy green olive yellow orange pink purple brown beige tan cream charcoal
khaki teal burgundy maroon silver gold ivory coral mint turquoise lavender sand stone natural indigo denim
"""
COLOURS = frozenset(_COLOURS_TEXT.split())
# Option values a shopper may write either way; matched against variants as alternatives.
VALUE_ALIASES: dict[str, tuple[str, ...]] = {
    "s": ("s", "small"),
    "small": ("small", "s"),
    "m": ("m", "medium"),
    "medium": ("medium", "m"),
    "l": ("l", "large"),
    "large": ("large", "l"),
    "xl": ("xl", "x-large", "extra large"),
    "x-large": ("x-large", "xl", "extra large"),
    "extra large": ("extra large", "xl", "x-large"),
    "xxl": ("xxl", "2xl"),
    "2xl": ("2xl", "xxl"),
    "grey": ("grey", "gray"),
    "gray": ("gray", "grey"),
}


@dataclass(frozen=True)
class SearchFilters:
    """Conditions on the products a search returns.

    Prices, stock and options apply to one variant together: a product matches when one of its
    variants satisfies all of them. `options` is either {option name: value} (e.g.
    {"size": "9", "color": "black"}; the name matches an option name containing it, "color" and
    "colour" alike) or a list of values each of which one of the variant's options must have.
    Values compare case-insensitively; a word value also matches a word inside a longer value
    ("blue" matches "Ocean Blue"). `vendor` and `product_type` compare case-insensitively.
    """

    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool | None = None
    options: dict[str, str] | list[str] = field(default_factory=dict)
    product_type: str | None = None
    vendor: str | None = None

    def __bool__(self) -> bool:
        return self != SearchFilters()

    def merged(self, explicit: SearchFilters | None) -> SearchFilters:
        """These filters with every field `explicit` sets taking precedence."""
        if explicit is None:
            return self
        changes = {name: value for name, value in explicit.__dict__.items() if value not in (None, {}, [])}
        return replace(self, **changes)


_NUM = r"(\d+(?:[.,]\d{1,2})?)"
_SYMBOL = r"[$€£]"
_CURRENCY_WORD = r"(?:dollars?|usd|eur(?:os?)?|bucks|pounds?|gbp)\b"
_AMOUNT = rf"(?:{_SYMBOL}\s*)?{_NUM}(?:\s*(?:{_SYMBOL}|{_CURRENCY_WORD}))?"
# "over 40 litres" or "up to 4 people" are about the product, not its price.
_NOT_A_UNIT = r"(?!\d|[.,]\d|\s*(?:(?:l|lit[er]{2}s?|kg|g|cm|mm|ml|oz|lbs?|people|persons?|inch(?:es)?)\b|[%\"']))"
_RANGE = re.compile(
    rf"\b(?:between|from)\s+{_AMOUNT}\s*(?:and|to|-)\s*{_AMOUNT}"
    rf"|{_SYMBOL}\s*{_NUM}\s*(?:-|to)\s*{_SYMBOL}?\s*{_NUM}"
    rf"|\b{_NUM}\s*(?:-|to)\s*{_NUM}\s*(?:{_SYMBOL}|{_CURRENCY_WORD})",
    re.IGNORECASE,
)
_MAX = re.compile(
    r"(?:\b(?:under|below|less\s+than|cheaper\s+than|up\s+to|at\s+most|max(?:imum)?|no\s+more\s+than|within)"
    rf"|<=?)\s*{_AMOUNT}{_NOT_A_UNIT}",
    re.IGNORECASE,
)
_MIN = re.compile(
    rf"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?|from|starting\s+at)|>=?)\s*{_AMOUNT}{_NOT_A_UNIT}",
    re.IGNORECASE,
)
_STOCK = re.compile(r"(?<!not\s)(?<!n't\s)\b(?:in[-\s]stock|available)\b", re.IGNORECASE)
_SIZE_VALUE = r"(\d+(?:[.,]\d)?|xxs|xs|s|m|l|xl|xxl|xxxl|[23]xl|small|medium|large|x-large|extra\s+large|one\s+size)"
_SIZE = re.compile(
    rf"\b(?:in\s+)?(?:(?:a|an)\s+)?(?:(?:us|uk|eu)\s+)?(?:size|sz)\s*:?\s*{_SIZE_VALUE}(?!\w|[.,]\d)", re.IGNORECASE
)
_COLOUR = re.compile(
    rf"\b(?:in(?:\s+the)?|colou?r\s*:?)\s+({'|'.join(sorted(COLOURS))})\b(?!\s*(?:or\s|/)\s*\w)", re.IGNORECASE
)


def search_parse(query: str) -> tuple[str, SearchFilters]:
    """Split a shopper's message into the words to search for and the filters it states.

    Args:
        query: free text, e.g. "trail runners size 9 under 120 in stock".

    Returns:
        (the text without the filter phrases, the filters found), e.g.
        ("trail runners", SearchFilters(max_price=Decimal("120"), in_stock=True, options={"size": "9"})).
        See the module docstring for every phrase understood. Never raises.
    """
    text = query
    min_price = max_price = None
    if match := _RANGE.search(text):
        low, high = sorted(filter(None, (_amount(g) for g in match.groups() if g)))[:2] or (None, None)
        min_price, max_price = low, high
        text = _cut(text, match)
    if max_price is None and (match := _MAX.search(text)):
        max_price = _amount(match.group(1))
        text = _cut(text, match)
    if min_price is None and (match := _MIN.search(text)):
        min_price = _amount(match.group(1))
        text = _cut(text, match)
    in_stock = None
    if match := _STOCK.search(text):
        in_stock = True
        text = _cut(text, match)
    options: dict[str, str] = {}
    if match := _SIZE.search(text):
        options["size"] = " ".join(match.group(1).lower().replace(",", ".").split())
        text = _cut(text, match)
    if match := _COLOUR.search(text):
        options["color"] = match.group(1).lower()
        text = _cut(text, match)
    filters = SearchFilters(min_price=min_price, max_price=max_price, in_stock=in_stock, options=options)
    return " ".join(text.split()), filters


def query_words(text: str) -> list[str]:
    """Distinct lowercase words worth searching for, in order, at most MAX_WORDS."""
    words: list[str] = []
    for word in re.findall(r"[^\W_]+", text.lower()):
        if len(word) >= _MIN_WORD_LENGTH and word not in STOP_WORDS and word not in words:
            words.append(word)
    return words[:MAX_WORDS]


def singular(word: str) -> str:
    """A crude English singular ("boots" → "boot", "dresses" → "dress", "hoodies" → "hoodie")."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith(("ss", "us", "is")) or not word.endswith("s"):
        return word
    return word[:-1]


def search_tokens(*, query: str) -> list[str]:
    """Distinct lowercase keywords of a query, in order, without stop words or very short words."""
    tokens: list[str] = []
    for word in query_words(query):
        # The singular is a substring of the plural, so substring matching loses nothing.
        stem = word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
        if stem not in tokens:
            tokens.append(stem)
    return tokens


def _amount(text: str | None) -> Decimal | None:
    if not text:
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _cut(text: str, match: re.Match[str]) -> str:
    return f"{text[: match.start()]} {text[match.end() :]}"
