"""JSON Lines: one product per line, the demo loader's shape plus images and variant images.

    {"handle": "tern-daypack", "title": "Tern Daypack", "description_html": "<p>…</p>",
     "vendor": "…", "product_type": "…", "category": "…", "tags": ["…"] or "a, b",
     "status": "active|draft|archived", "published": true,
     "options": ["Capacity", "Color"],
     "variants": [{"sku": "TO-DP-20L-BLK", "options": ["20L", "Black"], "price": "89.00",
                   "compare_at_price": "99.00", "inventory_quantity": 7, "barcode": "0123456789012",
                   "image": "https://cdn.example.com/daypack-black.jpg"}],
     "images": [{"src": "https://cdn.example.com/daypack-black.jpg", "position": 1, "alt": "…"}]}

Only "handle" and at least one variant with a "price" are required ("title" too for a new
product). A key left out keeps the stored value; "status" wins over "published" (false → draft).
Prices are JSON numbers or strings read like the CSV's ("$1,299.00"); an image "src" is an
http(s) URL or a file name taken from --images. Blank lines are ignored; row numbers are line numbers.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO, Any

from catalog.importers.records import (
    ImageRecord,
    ImportFileError,
    Issue,
    ProductRecord,
    RowError,
    VariantRecord,
    finish_record,
)
from catalog.importers.values import (
    MAX_PRICE,
    check_handle,
    check_image_src,
    check_length,
    looks_scientific,
    parse_price,
    parse_status,
    parse_tags,
)
from catalog.services import html_to_text

_TEXT_FIELDS = ("title", "vendor", "product_type", "category")


def read_jsonl(stream: IO[bytes]) -> Iterator[ProductRecord]:
    """Yield one ProductRecord per non-blank line.

    Raises:
        ImportFileError: the file is not UTF-8 text.
    """
    line_number = 0
    try:
        for line_number, line in enumerate(io.TextIOWrapper(stream, encoding="utf-8-sig"), start=1):
            if line.strip():
                yield _record(line, line_number)
    except UnicodeDecodeError as error:
        raise ImportFileError(f"Line {line_number + 1} is not UTF-8 text.") from error


def _record(line: str, line_number: int) -> ProductRecord:
    try:
        raw = json.loads(line, parse_float=Decimal)
    except json.JSONDecodeError as error:
        reason = f"not valid JSON ({error.msg} at character {error.pos + 1})"
        return ProductRecord(handle="", rows=[line_number], errors=[_issue(line_number, reason)])
    if not isinstance(raw, dict):
        return ProductRecord(handle="", rows=[line_number], errors=[_issue(line_number, "expected a JSON object")])
    handle = raw.get("handle")
    record = ProductRecord(handle=handle.strip() if isinstance(handle, str) else "", rows=[line_number])
    try:
        if not record.handle:
            raise RowError('"handle" must be a non-empty string')
        check_handle(record.handle)
        record.fields = _product_fields(raw)
        record.variants = [_variant(record, item, line_number) for item in _objects(raw, "variants")]
        record.images = [_image(item, line_number, index) for index, item in enumerate(_objects(raw, "images"))]
    except RowError as error:
        record.error(line_number, str(error))
        return record
    return finish_record(record)


def _issue(row: int, reason: str) -> Issue:
    return Issue(row, "", reason)


def _product_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if name in raw:
            fields[name] = check_length(_text(raw, name), field=name, column=name)
    if "description_html" in raw:
        fields["description_html"] = _text(raw, "description_html")
        fields["description_text"] = html_to_text(html_text=fields["description_html"])
    if "tags" in raw:
        tags = raw["tags"]
        if isinstance(tags, str):
            fields["tags"] = parse_tags(tags)
        elif isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
            fields["tags"] = parse_tags(",".join(tags))
        else:
            raise RowError('"tags" must be a list of strings or a comma-separated string')
    if raw.get("status") is not None:
        fields["status"] = parse_status(_text(raw, "status"))
    elif raw.get("published") is not None:
        if not isinstance(raw["published"], bool):
            raise RowError('"published" must be true or false')
        fields["status"] = "active" if raw["published"] else "draft"
    if "options" in raw:
        names = _strings(raw["options"])
        fields["option_names"] = [check_length(name, field="option_name", column="option name") for name in names]
    return fields


def _variant(record: ProductRecord, raw: Mapping[str, Any], line_number: int) -> VariantRecord:
    if raw.get("price") is None:
        raise RowError("a variant has no price")
    sku = check_length(_text(raw, "sku"), field="sku", column="sku")
    barcode = check_length(_text(raw, "barcode"), field="barcode", column="barcode") if "barcode" in raw else None
    if barcode and looks_scientific(barcode):
        reason = f"barcode {barcode!r} looks like a spreadsheet turned it into a number and its digits are lost"
        record.warn(line_number, f"{reason}; kept as text")
    quantity = raw.get("inventory_quantity")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int)):
        raise RowError(f'"inventory_quantity" {quantity!r} is not a whole number')
    image = _text(raw, "image")
    options = [check_length(value, field="option", column="option") for value in _strings(raw.get("options", []))]
    compare_at = raw.get("compare_at_price")
    return VariantRecord(
        row=line_number,
        sku=sku,
        options=(options[0], options[1], options[2]),
        price=_price(raw["price"], key="price"),
        compare_at_price=None if compare_at is None else _price(compare_at, key="compare_at_price"),
        inventory_quantity=quantity,
        barcode=barcode,
        image_src=check_image_src(image, column="variant image") if image else "",
    )


def _image(raw: Mapping[str, Any], line_number: int, index: int) -> ImageRecord:
    src = _text(raw, "src")
    if not src:
        raise RowError(f'images[{index}] has no "src"')
    position = raw.get("position", index + 1)
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise RowError(f'images[{index}] "position" must be a whole number of at least 1')
    return ImageRecord(
        row=line_number,
        src=check_image_src(src, column="image src"),
        position=position,
        alt_text=check_length(_text(raw, "alt"), field="alt_text", column="image alt"),
    )


def _price(value: Any, *, key: str) -> Decimal:
    if isinstance(value, str):
        return parse_price(value, column=key)
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise RowError(f'"{key}" must be a number or a string such as "19.99"')
    price = Decimal(value)
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise RowError(f'"{key}" {value} is not a price between 0 and {MAX_PRICE}')
    if price != price.quantize(Decimal("0.01")):  # 19.990 is fine, 19.995 would need rounding
        raise RowError(f'"{key}" {value} has more than 2 decimal places')
    return price.quantize(Decimal("0.01"))


def _objects(raw: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = raw.get(key, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise RowError(f'"{key}" must be a list of objects')
    return items


def _strings(value: Any) -> list[str]:
    """Up to three option names or values, padded to three."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value) or len(value) > 3:
        raise RowError('"options" must be a list of at most 3 strings')
    return [item.strip() for item in value] + [""] * (3 - len(value))


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(f'"{key}" must be a string')
    return value.strip()
