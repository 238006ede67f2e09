"""What a reader hands the writer: one ProductRecord per product, already validated cell by cell."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class RowError(Exception):
    """A cell or row that cannot be imported; the message is the reason shown to the user."""


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing Handle column, wrong encoding, …)."""


@dataclass(frozen=True)
class Issue:
    row: int
    handle: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.handle or 'no handle'}): {self.reason}"


@dataclass
class VariantRecord:
    row: int
    sku: str
    options: tuple[str, str, str]
    price: Decimal
    compare_at_price: Decimal | None
    inventory_quantity: int | None  # None: keep the stored quantity (0 for a new variant)
    barcode: str | None  # None: the file has no barcode column
    image_src: str = ""  # Shopify's "Variant Image": the product image showing this variant


@dataclass
class ImageRecord:
    row: int
    src: str  # an http(s) URL, or a bare file name found in --images
    position: int
    alt_text: str


@dataclass
class ProductRecord:
    """A product and all its rows. `fields` holds only the Product fields the file provides."""

    handle: str
    rows: list[int]
    fields: dict[str, Any] = field(default_factory=dict)
    variants: list[VariantRecord] = field(default_factory=list)
    images: list[ImageRecord] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)  # any error skips the whole product
    warnings: list[Issue] = field(default_factory=list)

    def error(self, row: int, reason: str) -> None:
        self.errors.append(Issue(row, self.handle, reason))

    def warn(self, row: int, reason: str) -> None:
        self.warnings.append(Issue(row, self.handle, reason))


@dataclass
class ImportReport:
    """Rows are counted by what happened to their product: created, updated, unchanged or skipped."""

    rows_read: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    products_created: int = 0
    products_updated: int = 0
    products_unchanged: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    images_created: int = 0
    images_updated: int = 0
    image_files_attached: int = 0
    skipped: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        return len(self.skipped)


def finish_record(record: ProductRecord) -> ProductRecord:
    """Checks that need the whole product: option names vs values, repeated SKUs and options."""
    names = record.fields.get("option_names")
    if names == ["Title", "", ""] and all(variant.options == ("Default Title", "", "") for variant in record.variants):
        # Shopify's way of writing "no options": a single variant titled "Default Title".
        names = record.fields["option_names"] = ["", "", ""]
        for variant in record.variants:
            variant.options = ("", "", "")
    if not record.variants:
        record.error(record.rows[0], "the product has no variant rows (each product needs a Variant Price)")
    skus: dict[str, int] = {}
    combos: dict[tuple[str, str, str], int] = {}
    for variant in record.variants:
        if names is not None:
            for number, (name, value) in enumerate(zip(names, variant.options, strict=True), start=1):
                if value and not name:
                    record.error(variant.row, f"Option{number} Value {value!r} has no Option{number} Name")
                elif name and not value:
                    record.error(variant.row, f"Option{number} Value is empty but the product has option {name!r}")
        if variant.sku and variant.sku in skus:
            record.error(variant.row, f"Variant SKU {variant.sku!r} is already used at row {skus[variant.sku]}")
        skus.setdefault(variant.sku, variant.row)
        if variant.options in combos:
            values = " / ".join(value for value in variant.options if value) or "no option values"
            record.error(variant.row, f"options {values!r} repeat the variant at row {combos[variant.options]}")
        combos.setdefault(variant.options, variant.row)
    sources: dict[str, int] = {}
    for image in list(record.images):
        if image.src in sources:
            record.warn(image.row, f"image {image.src!r} is already listed at row {sources[image.src]}; ignored")
            record.images.remove(image)
        sources.setdefault(image.src, image.row)
    for variant in record.variants:
        if variant.image_src and variant.image_src not in sources:
            position = max((image.position for image in record.images), default=0) + 1
            record.images.append(ImageRecord(variant.row, variant.image_src, position, ""))
            sources[variant.image_src] = variant.row
    return record
