"""Lenient, never-guessing parsers for the cells of a catalog file.

Each parser returns the clean value or raises RowError with a reason in plain words, which the
import report shows next to the row number.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from catalog.importers.records import RowError
from catalog.models import Product

# Currency signs and codes around a price: "$19.99", "19,99 €", "USD 1,299.00", "US$ 5", "120 kr".
_SYMBOLS = "$€£¥₹₩₽¢₺₴₪₫฿₱₦₡₲₵₸₼₾"
_AFFIX = rf"(?:[A-Z]{{1,3}}\s*[{_SYMBOLS}]?|[{_SYMBOLS}]|kr\.?|zł|Kč|Fr\.)"
_PRICE_TEXT = re.compile(rf"\s*(?:{_AFFIX})?\s*(?P<number>.*?)\s*(?:{_AFFIX})?\s*")
_GROUP = r"[\s'\u00a0\u202f]"  # spaces and apostrophes group thousands in both conventions
_PLAIN = re.compile(r"\d+(?:\.\d{1,2})?")
_DOT_DECIMAL = re.compile(r"\d{1,3}(?:,\d{3})+\.\d{1,2}|\d{1,3}(?:,\d{3}){2,}")  # 1,299.00 / 1,299,000
_COMMA_DECIMAL = re.compile(r"\d{1,3}(?:\.\d{3})+,\d{1,2}|\d{1,3}(?:\.\d{3}){2,}|\d+,\d{1,2}")  # 1.299,00 / 12,50
_SPACED = re.compile(rf"\d{{1,3}}(?:{_GROUP}\d{{3}})+(?:[.,]\d{{1,2}})?")  # 1 299,00 / 1'299.00
_AMBIGUOUS = re.compile(r"\d{1,3}[.,]\d{3}")  # 1,299 or 1.299: a thousands separator or a decimal one?
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
MAX_PRICE = Decimal("9999999999.99")  # max_digits=12, decimal_places=2
_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_url_validator = URLValidator(schemes=["http", "https"])

LIMITS = {  # the model's max_length per field, checked here because bulk writes skip full_clean()
    "handle": 255,
    "title": 255,
    "vendor": 255,
    "product_type": 255,
    "category": 255,
    "option_name": 255,
    "sku": 255,
    "option": 255,
    "barcode": 64,
    "source_url": 2000,
    "alt_text": 512,
}


def parse_price(raw: str, *, column: str) -> Decimal:
    """A price such as "19.99", "$1,299.00", "1.299,00 €" or "12,50"; ambiguous forms are refused."""
    match = _PRICE_TEXT.fullmatch(raw)
    text = match.group("number") if match else raw.strip()
    if _SCIENTIFIC.fullmatch(text):
        raise RowError(f"{column} {raw!r} is in scientific notation; the exact amount is lost")
    if text.startswith("-") or (text.startswith("(") and text.endswith(")")):
        raise RowError(f"{column} {raw!r} is negative")
    if _PLAIN.fullmatch(text):
        number = text
    elif _DOT_DECIMAL.fullmatch(text):
        number = text.replace(",", "")
    elif _COMMA_DECIMAL.fullmatch(text):
        number = text.replace(".", "").replace(",", ".")
    elif _SPACED.fullmatch(text):
        number = re.sub(_GROUP, "", text).replace(",", ".")
    elif _AMBIGUOUS.fullmatch(text):
        raise RowError(
            f"{column} {raw!r} is ambiguous (a thousands separator or a decimal point?); write it as "
            f"{text.replace(',', '').replace('.', '')}.00 or {text.replace(',', '.')}"
        )
    elif re.fullmatch(r"\d+[.,]\d{3,}", text):
        raise RowError(f"{column} {raw!r} has more than 2 decimal places")
    else:
        raise RowError(f"{column} {raw!r} is not a price")
    price = Decimal(number)
    if price > MAX_PRICE:
        raise RowError(f"{column} {raw!r} is too large")
    return price


def parse_optional_price(raw: str, *, column: str) -> Decimal | None:
    return parse_price(raw, column=column) if raw.strip() else None


def parse_int(raw: str, *, column: str, minimum: int | None = None) -> int:
    """A whole number; "12.0" (a spreadsheet's float) is accepted, "12.5" is not."""
    text = raw.strip().replace(",", "") if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+", raw.strip()) else raw.strip()
    match = re.fullmatch(r"(-?\d+)(?:\.0+)?", text)
    if match is None or len(match.group(1)) > 10:
        raise RowError(f"{column} {raw!r} is not a whole number")
    value = int(match.group(1))
    if minimum is not None and value < minimum:
        raise RowError(f"{column} {raw!r} must be at least {minimum}")
    return value


def parse_status(raw: str) -> str:
    status = raw.strip().lower()
    if status not in Product.Status.values:
        raise RowError(f"Status {raw!r} is not one of active, draft, archived")
    return status


def parse_bool(raw: str, *, column: str) -> bool:
    text = raw.strip().lower()
    if text in {"true", "yes", "1"}:
        return True
    if text in {"false", "no", "0"}:
        return False
    raise RowError(f"{column} {raw!r} is not true or false")


def parse_tags(raw: str) -> list[str]:
    """Shopify's comma-separated tags, trimmed, without blanks or repeats, in their order."""
    return list(dict.fromkeys(tag.strip() for tag in raw.split(",") if tag.strip()))


def looks_scientific(raw: str) -> bool:
    """A code a spreadsheet turned into a number such as 3.65275E+11: its digits are gone."""
    return _SCIENTIFIC.fullmatch(raw.strip()) is not None


def check_handle(handle: str) -> str:
    if not _SLUG.fullmatch(handle):
        raise RowError(f"Handle {handle!r} may only contain letters, digits, hyphens and underscores")
    return check_length(handle, field="handle", column="Handle")


def check_length(value: str, *, field: str, column: str) -> str:
    if len(value) > LIMITS[field]:
        raise RowError(f"{column} is longer than {LIMITS[field]} characters")
    return value


def check_image_src(src: str, *, column: str) -> str:
    """An http(s) URL, or a bare file name to take from --images."""
    if "/" not in src and "\\" not in src and ":" not in src:
        return src  # a file name such as "mug.jpg"
    if not _valid_url(src):
        raise RowError(f"{column} {src!r} is not an http(s) URL or a file name")
    return check_length(src, field="source_url", column=column)


@functools.lru_cache(maxsize=4096)  # a variant's image repeats its product's image URL
def _valid_url(src: str) -> bool:
    try:
        _url_validator(src)
    except ValidationError:
        return False
    return True


def image_file_name(src: str) -> str:
    """The file name in an image URL's path ("…/files/mug.jpg?v=17" → "mug.jpg"), or the bare name."""
    return unquote(urlsplit(src).path).rsplit("/", 1)[-1]


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))
