"""The shared, idempotent writer: ProductRecords in, products, variants and images in the database.

Matching, so that a re-import updates in place and never duplicates:
- products by handle;
- variants by SKU within their product, else (blank SKU, or a SKU not stored yet) by option values
  among the product's variants that have no SKU stored (a blank SKU never clears a stored one);
- images by source URL, or by position for images taken from a bare file name.
Nothing is deleted: variants and images missing from the file are left alone.

Products are written in batches with bulk queries, one transaction per batch. If the database
refuses a batch, it is rolled back and its products are retried one transaction each, so only
the product at fault is skipped: a product is stored with all its rows or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files import File
from django.db import DatabaseError, models, transaction
from django.utils import timezone

from catalog.imagematch import image_features_index
from catalog.importers.records import ImageRecord, ImportReport, Issue, ProductRecord, VariantRecord
from catalog.importers.values import image_file_name, is_url
from catalog.models import Product, ProductImage, Variant

BATCH_SIZE = 500  # products per transaction and per prefetch query
_PRODUCT_FIELDS = [
    *("title", "description_html", "description_text", "vendor", "product_type", "category", "tags", "status"),
    *("option1_name", "option2_name", "option3_name", "updated_at"),
]
_VARIANT_FIELDS = [
    *("sku", "option1", "option2", "option3", "price", "compare_at_price", "inventory_quantity", "barcode"),
    *("position", "updated_at"),
]
_IMAGE_FIELDS = ["image", "source_url", "alt_text", "position", "variant", "updated_at"]


def catalog_import_records(
    *,
    records: Iterable[ProductRecord],
    images_dir: Path | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Create or update the products in `records` (from read_shopify_csv or read_jsonl).

    Args:
        records: one per product; a record with errors is skipped whole and reported per row.
        images_dir: a folder to take image files from, matched by the file name in the image URL;
            without it (or when the file is missing) only the URL is stored, to be fetched later.
        dry_run: validate and count against the database without writing anything.
        batch_size: products per transaction.

    Returns:
        An ImportReport: rows created/updated/unchanged/skipped, per-row reasons and warnings.
    """
    report = ImportReport()
    files = _index_folder(images_dir) if images_dir else None
    first_rows: dict[str, int] = {}
    batch: list[ProductRecord] = []
    for record in records:
        report.rows_read += len(record.rows)
        if record.handle and record.handle in first_rows:
            reason = (
                f"this handle already appeared at row {first_rows[record.handle]}; "
                "all rows of a product must be next to each other"
            )
            record.errors.insert(0, Issue(record.rows[0], record.handle, reason))
        first_rows.setdefault(record.handle, record.rows[0])
        if record.errors:
            _skip(report, record)
            continue
        batch.append(record)
        if len(batch) >= batch_size:
            _flush(report, batch, files=files, dry_run=dry_run)
            batch = []
    if batch:
        _flush(report, batch, files=files, dry_run=dry_run)
    if files is not None and not dry_run and report.image_files_attached:
        # Photo match compares against features computed now, never per query.
        image_features_index()
    report.skipped.sort(key=lambda issue: issue.row)
    report.warnings.sort(key=lambda issue: issue.row)
    return report


def _skip(report: ImportReport, record: ProductRecord) -> None:
    reasons: dict[int, list[str]] = defaultdict(list)
    for issue in record.errors:
        reasons[issue.row].append(issue.reason)
    first_bad = min(reasons)
    for row in record.rows:
        reason = "; ".join(reasons[row]) if row in reasons else f"not imported because row {first_bad} is invalid"
        report.skipped.append(Issue(row, record.handle, reason))


@dataclass
class _Outcome:
    """What one attempt at a batch did; merged into the report only once the batch is committed."""

    created: list[ProductRecord] = field(default_factory=list)
    updated: list[ProductRecord] = field(default_factory=list)
    unchanged: list[ProductRecord] = field(default_factory=list)
    rejected: list[ProductRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    saved_files: list[ProductImage] = field(default_factory=list)


def _flush(report: ImportReport, batch: list[ProductRecord], *, files: dict[str, Path] | None, dry_run: bool) -> None:
    try:
        outcome = _attempt(batch, files=files, dry_run=dry_run)
    except DatabaseError:
        if len(batch) == 1:
            raise
        for record in batch:  # find the product at fault: each in its own transaction
            try:
                _merge(report, _attempt([record], files=files, dry_run=dry_run))
            except DatabaseError as error:
                record.error(record.rows[0], f"the database refused the product: {error}")
                _skip(report, record)
        return
    _merge(report, outcome)


def _attempt(batch: list[ProductRecord], *, files: dict[str, Path] | None, dry_run: bool) -> _Outcome:
    outcome = _Outcome()
    warning_counts = [len(record.warnings) for record in batch]
    try:
        with transaction.atomic():
            _write(batch, outcome, files=files, dry_run=dry_run)
    except BaseException:
        for image in outcome.saved_files:  # the rows pointing at them were rolled back
            image.image.delete(save=False)
        for record, count in zip(batch, warning_counts, strict=True):  # a retry warns again
            del record.warnings[count:]
        raise
    return outcome


def _merge(report: ImportReport, outcome: _Outcome) -> None:
    for records, name in ((outcome.created, "created"), (outcome.updated, "updated"), (outcome.unchanged, "unchanged")):
        setattr(report, f"products_{name}", getattr(report, f"products_{name}") + len(records))
        rows = sum(len(record.rows) for record in records)
        setattr(report, f"rows_{name}", getattr(report, f"rows_{name}") + rows)
        for record in records:
            report.warnings.extend(record.warnings)
    for record in outcome.rejected:
        _skip(report, record)
    for name, count in outcome.counts.items():
        setattr(report, name, getattr(report, name) + count)


def _write(batch: list[ProductRecord], outcome: _Outcome, *, files: dict[str, Path] | None, dry_run: bool) -> None:
    existing = {product.handle: product for product in Product.objects.filter(handle__in=[r.handle for r in batch])}
    variants: dict[int, list[Variant]] = defaultdict(list)
    images: dict[int, list[ProductImage]] = defaultdict(list)
    for variant in Variant.objects.filter(product__in=existing.values()):
        variants[variant.product_id].append(variant)
    for image in ProductImage.objects.filter(product__in=existing.values()):
        images[image.product_id].append(image)

    now = timezone.now()
    pairs: list[tuple[ProductRecord, Product, str]] = []
    new_products: list[Product] = []
    changed_products: list[Product] = []
    for record in batch:
        product = existing.get(record.handle)
        if not _prevalidate(record, product, files=files):
            outcome.rejected.append(record)
            continue
        values = _product_values(record)
        if product is None:
            product = Product(handle=record.handle, **values)
            new_products.append(product)
            pairs.append((record, product, "created"))
        elif _apply(product, values, now=now):
            changed_products.append(product)
            pairs.append((record, product, "updated"))
        else:
            pairs.append((record, product, "unchanged"))
    _save(Product, new_products, changed_products, _PRODUCT_FIELDS, dry_run=dry_run)

    variant_plans = [_plan_variants(record, product, variants[product.pk], now=now) for record, product, _ in pairs]
    _save(
        Variant,
        [v for plan in variant_plans for v in plan.new],
        [v for plan in variant_plans for v in plan.changed],
        _VARIANT_FIELDS,
        dry_run=dry_run,
    )
    new_images: list[ProductImage] = []
    changed_images: list[ProductImage] = []
    for (record, product, state), plan in zip(pairs, variant_plans, strict=True):
        image_new, image_changed = _plan_images(
            record, product, images[product.pk], plan.by_src, files=files, dry_run=dry_run, now=now, outcome=outcome
        )
        new_images += image_new
        changed_images += image_changed
        if state == "created":
            outcome.created.append(record)
        elif state == "updated" or plan.new or plan.changed or image_new or image_changed:
            outcome.updated.append(record)
        else:
            outcome.unchanged.append(record)
    _save(ProductImage, new_images, changed_images, _IMAGE_FIELDS, dry_run=dry_run)
    outcome.counts.update(
        variants_created=sum(len(plan.new) for plan in variant_plans),
        variants_updated=sum(len(plan.changed) for plan in variant_plans),
        images_created=len(new_images),
        images_updated=len(changed_images),
    )


def _prevalidate(record: ProductRecord, product: Product | None, *, files: dict[str, Path] | None) -> bool:
    """Checks that need the database or the image folder; False (with errors recorded) skips the product."""
    if product is None and not record.fields.get("title"):
        record.error(record.rows[0], "a new product needs a Title on its first row")
    for image in record.images:
        if is_url(image.src):
            continue
        if files is None:
            record.error(image.row, f"image {image.src!r} is a file name, not a URL, and no --images folder was given")
        elif image.src not in files:
            record.error(image.row, f"image file {image.src!r} is not in the --images folder")
    return not record.errors


def _product_values(record: ProductRecord) -> dict[str, Any]:
    values = dict(record.fields)
    names = values.pop("option_names", None)
    if names is not None:
        values.update(option1_name=names[0], option2_name=names[1], option3_name=names[2])
    return values


def _apply(instance: models.Model, values: dict[str, Any], *, now: Any) -> bool:
    """Set only the differing fields; returns whether any did (unchanged rows keep updated_at)."""
    changed = False
    for name, value in values.items():
        if getattr(instance, name) != value:
            setattr(instance, name, value)
            changed = True
    if changed:
        instance.updated_at = now  # type: ignore[attr-defined]  # bulk_update skips auto_now
    return changed


def _save(model: type[models.Model], new: list[Any], changed: list[Any], fields: list[str], *, dry_run: bool) -> None:
    if dry_run:
        return
    if new:
        model._default_manager.bulk_create(new, batch_size=BATCH_SIZE)
    if changed:
        model._default_manager.bulk_update(changed, fields, batch_size=BATCH_SIZE)


@dataclass
class _VariantPlan:
    new: list[Variant] = field(default_factory=list)
    changed: list[Variant] = field(default_factory=list)
    by_src: dict[str, Variant] = field(default_factory=dict)  # the first variant naming each image


def _plan_variants(record: ProductRecord, product: Product, current: list[Variant], *, now: Any) -> _VariantPlan:
    plan = _VariantPlan()
    by_sku = {variant.sku: variant for variant in current if variant.sku}
    matched: dict[int, Variant] = {}
    for index, incoming in enumerate(record.variants):
        if incoming.sku and incoming.sku in by_sku:
            matched[index] = by_sku[incoming.sku]
    taken = {id(variant) for variant in matched.values()}
    for index, incoming in enumerate(record.variants):
        if index in matched:
            continue
        for variant in current:
            same = (variant.option1, variant.option2, variant.option3) == incoming.options
            if same and id(variant) not in taken and not (variant.sku and incoming.sku):
                matched[index] = variant
                taken.add(id(variant))
                break
    for index, incoming in enumerate(record.variants):
        values = _variant_values(incoming, position=index + 1)
        found = matched.get(index)
        if found is None:
            found = Variant(product=product, **values)
            plan.new.append(found)
        elif _apply(found, values, now=now):
            plan.changed.append(found)
        if incoming.image_src:
            plan.by_src.setdefault(incoming.image_src, found)
    return plan


def _variant_values(incoming: VariantRecord, *, position: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "option1": incoming.options[0],
        "option2": incoming.options[1],
        "option3": incoming.options[2],
        "price": incoming.price,
        "compare_at_price": incoming.compare_at_price,
        "position": position,
    }
    if incoming.sku:
        values["sku"] = incoming.sku
    if incoming.inventory_quantity is not None:
        values["inventory_quantity"] = incoming.inventory_quantity
    if incoming.barcode is not None:
        values["barcode"] = incoming.barcode
    return values


def _plan_images(
    record: ProductRecord,
    product: Product,
    current: list[ProductImage],
    variant_by_src: dict[str, Variant],
    *,
    files: dict[str, Path] | None,
    dry_run: bool,
    now: Any,
    outcome: _Outcome,
) -> tuple[list[ProductImage], list[ProductImage]]:
    by_url = {image.source_url: image for image in current if image.source_url}
    by_position = {image.position: image for image in current if not image.source_url}
    new: list[ProductImage] = []
    changed: list[ProductImage] = []
    for incoming in record.images:
        url = incoming.src if is_url(incoming.src) else ""
        image = by_url.get(url) if url else by_position.get(incoming.position)
        variant = variant_by_src.get(incoming.src)
        values: dict[str, Any] = {"source_url": url, "alt_text": incoming.alt_text, "position": incoming.position}
        if image is None:
            image = ProductImage(product=product, variant=variant, **values)
            new.append(image)
            attached = _attach_file(image, incoming, record, files=files, dry_run=dry_run, outcome=outcome)
        else:
            attached = _attach_file(image, incoming, record, files=files, dry_run=dry_run, outcome=outcome)
            # Compared by id: reading image.variant would cost a query per image.
            values["variant_id"] = variant.pk if variant is not None else None
            if _apply(image, values, now=now) or attached:
                image.updated_at = now
                changed.append(image)
    return new, changed


def _attach_file(
    image: ProductImage,
    incoming: ImageRecord,
    record: ProductRecord,
    *,
    files: dict[str, Path] | None,
    dry_run: bool,
    outcome: _Outcome,
) -> bool:
    """Store the image's file from --images unless it already has one; returns whether it did."""
    if files is None or image.image:
        return False
    name = image_file_name(incoming.src)
    path = files.get(name)
    if path is None:
        record.warn(incoming.row, f"image file {name!r} is not in the --images folder; its URL is kept to fetch later")
        return False
    if not dry_run:
        try:
            with path.open("rb") as handle:
                image.image.save(name, File(handle), save=False)
        except OSError as error:
            record.warn(incoming.row, f"image file {name!r} cannot be read ({error.strerror}); its URL is kept")
            return False
        outcome.saved_files.append(image)
    outcome.counts["image_files_attached"] += 1
    return True


def _index_folder(folder: Path) -> dict[str, Path]:
    """File name → path for every file under `folder` (the first one wins if a name repeats)."""
    index: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            index.setdefault(path.name, path)
    return index
