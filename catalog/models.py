"""Products, their variants and images, and collections.

Field names follow Shopify's product CSV (Handle, Title, Body (HTML), Vendor, Product Category,
Type, Tags, Status, Option1..3 Name/Value, Variant SKU/Price/Compare At Price/Inventory Qty/
Barcode, Image Src/Position/Alt Text) so an import can map columns one to one.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from supportbot.models import TimeStampedModel


class Product(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAFT = "draft", "Draft"
        ARCHIVED = "archived", "Archived"

    handle = models.SlugField(max_length=255, unique=True)
    title = models.CharField(max_length=255)
    description_html = models.TextField(blank=True)
    # Derived from description_html on write; what search and the model's grounding read.
    description_text = models.TextField(blank=True)
    vendor = models.CharField(max_length=255, blank=True)
    product_type = models.CharField(max_length=255, blank=True)
    category = models.CharField(max_length=255, blank=True)
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    option1_name = models.CharField(max_length=255, blank=True)
    option2_name = models.CharField(max_length=255, blank=True)
    option3_name = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ("title",)
        indexes = (models.Index(fields=["vendor"]), models.Index(fields=["product_type"]))

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if not isinstance(self.tags, list) or not all(isinstance(tag, str) for tag in self.tags):
            raise ValidationError({"tags": "Tags must be a list of strings."})

    @property
    def option_names(self) -> list[str]:
        return [name for name in (self.option1_name, self.option2_name, self.option3_name) if name]

    @property
    def price_range(self) -> tuple[Decimal, Decimal] | None:
        """Lowest and highest variant price, or None without variants (uses prefetched variants)."""
        prices = [variant.price for variant in self.variants.all()]
        return (min(prices), max(prices)) if prices else None


class Variant(TimeStampedModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    sku = models.CharField(max_length=255, blank=True, db_index=True)
    option1 = models.CharField(max_length=255, blank=True)
    option2 = models.CharField(max_length=255, blank=True)
    option3 = models.CharField(max_length=255, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    compare_at_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Not constrained to >= 0: Shopify reports oversold stock as a negative quantity.
    inventory_quantity = models.IntegerField(default=0)
    barcode = models.CharField(max_length=64, blank=True)
    position = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("position", "pk")
        indexes = (models.Index(fields=["product", "position"]),)
        constraints = (
            models.CheckConstraint(condition=Q(price__gte=0), name="catalog_variant_price_gte_0"),
            models.CheckConstraint(
                condition=Q(compare_at_price__isnull=True) | Q(compare_at_price__gte=0),
                name="catalog_variant_compare_at_price_gte_0",
            ),
            # Imports match variants by SKU within their product, so a SKU must not repeat there.
            models.UniqueConstraint(
                fields=["product", "sku"], condition=~Q(sku=""), name="catalog_variant_unique_sku_per_product"
            ),
        )

    def __str__(self) -> str:
        options = " / ".join(self.option_values)
        return f"{self.sku or 'no SKU'} ({options})" if options else self.sku or f"Variant {self.pk}"

    @property
    def option_values(self) -> list[str]:
        return [value for value in (self.option1, self.option2, self.option3) if value]

    @property
    def in_stock(self) -> bool:
        return self.inventory_quantity > 0

    @property
    def on_sale(self) -> bool:
        return self.compare_at_price is not None and self.compare_at_price > self.price


class ProductImage(TimeStampedModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    variant = models.ForeignKey(Variant, on_delete=models.SET_NULL, null=True, blank=True, related_name="images")
    image = models.ImageField(upload_to="catalog/", blank=True)
    # Shopify's "Image Src": kept even after the file is fetched, to re-download or de-duplicate.
    source_url = models.URLField(max_length=2000, blank=True)
    alt_text = models.CharField(max_length=512, blank=True)
    position = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("position", "pk")
        indexes = (models.Index(fields=["product", "position"]),)
        constraints = (
            models.CheckConstraint(
                condition=~Q(image="") | ~Q(source_url=""), name="catalog_productimage_has_file_or_url"
            ),
        )

    def __str__(self) -> str:
        return self.alt_text or self.source_url or self.image.name or f"Image {self.pk}"

    def clean(self) -> None:
        if self.variant is not None and self.variant.product_id != self.product_id:
            raise ValidationError({"variant": "The variant must belong to the same product."})


class Collection(TimeStampedModel):
    handle = models.SlugField(max_length=255, unique=True)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    products = models.ManyToManyField(Product, related_name="collections", blank=True)

    class Meta:
        ordering = ("title",)

    def __str__(self) -> str:
        return self.title


class ProductImageFeatures(TimeStampedModel):
    """Photo-match features of one catalog image (catalog/imagematch.py), computed when it is stored.

    Arrays are stored as raw bytes (little-endian); `version` says how they were computed, so a
    change of method re-indexes instead of comparing incompatible features.
    """

    image = models.OneToOneField(ProductImage, on_delete=models.CASCADE, primary_key=True, related_name="features")
    version = models.PositiveSmallIntegerField()
    # The file the features describe: a new file under the same row makes them stale.
    source_name = models.CharField(max_length=255)
    keypoints = models.BinaryField()  # float32 (n, 2): x, y in the normalised image
    descriptors = models.BinaryField()  # uint8 (n, 32): ORB
    colour_histogram = models.BinaryField()  # float32 (bins,)

    class Meta:
        verbose_name_plural = "product image features"

    def __str__(self) -> str:
        return f"Features of image {self.image_id}"
