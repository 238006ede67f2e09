"""Shopify's product CSV (the columns of its public product_template.csv), read into ProductRecords.

One product spans consecutive rows with the same Handle. Its first row carries the product
columns (Title, Body (HTML), Vendor, Product Category, Type, Tags, Published, Status, Option1..3
Name); every row may carry a variant (Option1..3 Value, Variant SKU, Variant Price, Variant
Compare At Price, Variant Inventory Qty, Variant Barcode, Variant Image) and/or an image (Image
Src, Image Position, Image Alt Text). Other columns (SEO, weight, tax, gift card, …) are ignored.
Headers match case- and space-insensitively. Row numbers count the header as row 1, as a
spreadsheet shows them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import IO

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
    check_handle,
    check_image_src,
    check_length,
    looks_scientific,
    parse_bool,
    parse_int,
    parse_optional_price,
    parse_price,
    parse_status,
    parse_tags,
)
from catalog.services import html_to_text

_VARIANT_COLUMNS = (
    "option1 value",
    "option2 value",
    "option3 value",
    "variant sku",
    "variant price",
    "variant compare at price",
    "variant inventory qty",
    "variant barcode",
)
_TEXT_FIELDS = (("title", "Title"), ("vendor", "Vendor"), ("product_type", "Type"), ("category", "Product Category"))

Cell = Callable[[str], str]


def read_shopify_csv(stream: IO[bytes]) -> Iterator[ProductRecord]:
    """Yield one ProductRecord per run of rows sharing a Handle, plus one per row without a Handle.

    Raises:
        ImportFileError: no Handle column, or the file is not UTF-8 text.
    """
    reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
    row_number = 1
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("The file is empty.")
        names = [" ".join(name.split()).lower() for name in header]
        columns = {name: index for index, name in enumerate(names)}
        if "handle" not in columns:
            raise ImportFileError(f"No Handle column, so this is not a Shopify product CSV (header: {header[:6]}).")
        current: ProductRecord | None = None
        for row_number, cells in enumerate(reader, start=2):
            cell = _cell_getter(names, cells)
            handle = cell("handle").strip()
            if not handle:
                reason = "empty row" if not any(value.strip() for value in cells) else "no Handle"
                yield ProductRecord(handle="", rows=[row_number], errors=[_issue(row_number, reason)])
                continue
            if current is None or handle != current.handle:
                if current is not None:
                    yield finish_record(current)
                current = ProductRecord(handle=handle, rows=[])
                first = True
            else:
                first = False
            current.rows.append(row_number)
            try:
                if len(cells) > len(header):
                    raise RowError(f"has {len(cells)} cells but the header has {len(header)} (an unquoted comma?)")
                _read_row(current, cell, columns, row_number=row_number, first=first)
            except RowError as error:
                current.error(row_number, str(error))
        if current is not None:
            yield finish_record(current)
    except UnicodeDecodeError as error:
        raise ImportFileError(f"Row {row_number + 1} is not UTF-8 text; save the file as “CSV UTF-8”.") from error
    except csv.Error as error:
        raise ImportFileError(f"Row {row_number + 1} cannot be read as CSV: {error}.") from error


def _issue(row: int, reason: str) -> Issue:
    return Issue(row, "", reason)


def _cell_getter(names: list[str], cells: list[str]) -> Cell:
    values = dict(zip(names, cells, strict=False))  # a short row leaves its last columns blank
    return lambda name: values.get(name, "")


def _read_row(record: ProductRecord, cell: Cell, columns: dict[str, int], *, row_number: int, first: bool) -> None:
    if first:
        check_handle(record.handle)
        record.fields.update(_product_fields(cell, columns))
    has_variant = any(cell(name).strip() for name in _VARIANT_COLUMNS)
    if has_variant:
        record.variants.append(_variant(record, cell, columns, row_number=row_number))
    src = cell("image src").strip()
    if src:
        position = cell("image position").strip()
        record.images.append(
            ImageRecord(
                row=row_number,
                src=check_image_src(src, column="Image Src"),
                position=parse_int(position, column="Image Position", minimum=1)
                if position
                else len(record.images) + 1,
                alt_text=check_length(cell("image alt text").strip(), field="alt_text", column="Image Alt Text"),
            )
        )
    if not first and not has_variant and not src:
        raise RowError("has neither variant nor image data")


def _product_fields(cell: Cell, columns: dict[str, int]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for field, column in _TEXT_FIELDS:
        if column.lower() in columns and (column != "Title" or cell("title").strip()):
            fields[field] = check_length(cell(column.lower()).strip(), field=field, column=column)
    if "body (html)" in columns:
        body = cell("body (html)").strip()
        fields["description_html"] = body
        fields["description_text"] = html_to_text(html_text=body)
    if "tags" in columns:
        fields["tags"] = parse_tags(cell("tags"))
    if cell("status").strip():
        fields["status"] = parse_status(cell("status"))
    elif cell("published").strip():
        fields["status"] = "active" if parse_bool(cell("published"), column="Published") else "draft"
    if "option1 name" in columns:
        fields["option_names"] = [
            check_length(cell(f"option{number} name").strip(), field="option_name", column=f"Option{number} Name")
            for number in (1, 2, 3)
        ]
    return fields


def _variant(record: ProductRecord, cell: Cell, columns: dict[str, int], *, row_number: int) -> VariantRecord:
    price = cell("variant price")
    if not price.strip():
        raise RowError("Variant Price is empty")
    quantity = cell("variant inventory qty").strip()
    barcode = cell("variant barcode").strip()
    sku = check_length(cell("variant sku").strip(), field="sku", column="Variant SKU")
    for column, value in (("Variant Barcode", barcode), ("Variant SKU", sku)):
        if looks_scientific(value):
            record.warn(
                row_number,
                f"{column} {value!r} looks like a spreadsheet turned it into a number and its digits are lost; "
                "kept as text — re-export with the column formatted as text",
            )
    image_src = cell("variant image").strip()
    return VariantRecord(
        row=row_number,
        sku=sku,
        options=(
            check_length(cell("option1 value").strip(), field="option", column="Option1 Value"),
            check_length(cell("option2 value").strip(), field="option", column="Option2 Value"),
            check_length(cell("option3 value").strip(), field="option", column="Option3 Value"),
        ),
        price=parse_price(price, column="Variant Price"),
        compare_at_price=parse_optional_price(cell("variant compare at price"), column="Variant Compare At Price"),
        inventory_quantity=parse_int(quantity, column="Variant Inventory Qty") if quantity else None,
        barcode=check_length(barcode, field="barcode", column="Variant Barcode")
        if "variant barcode" in columns
        else None,
        image_src=check_image_src(image_src, column="Variant Image") if image_src else "",
    )
