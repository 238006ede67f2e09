"""Where staff edit the catalog."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.db import models
from django.db.models import Count, ForeignKey, QuerySet, Sum
from django.forms import ModelChoiceField
from django.http import HttpRequest

from catalog.models import Collection, Product, ProductImage, Variant
from catalog.services import html_to_text


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = (
        "position",
        "sku",
        "option1",
        "option2",
        "option3",
        "price",
        "compare_at_price",
        "inventory_quantity",
        "barcode",
    )


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ("position", "image", "source_url", "alt_text", "variant")
    # Shop image URLs are https; also opts out of Django 6.0's scheme-default change warning.
    formfield_overrides = {
        models.URLField: {"widget": AdminURLFieldWidget, "assume_scheme": "https"},
    }

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.name == "variant":
            # Offer only this product's variants, not every variant in the shop.
            match = request.resolver_match
            object_id = match.kwargs.get("object_id") if match else None
            kwargs["queryset"] = Variant.objects.filter(product_id=object_id) if object_id else Variant.objects.none()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("title", "vendor", "product_type", "status", "variant_count", "total_stock")
    list_filter = ("status", "vendor", "product_type")
    search_fields = ("title", "handle", "vendor", "tags", "variants__sku")
    prepopulated_fields = {"handle": ("title",)}
    readonly_fields = ("description_text", "created_at", "updated_at")
    inlines = (VariantInline, ProductImageInline)
    fieldsets = (
        (None, {"fields": ("title", "handle", "status", "vendor", "product_type", "category", "tags")}),
        ("Description", {"fields": ("description_html", "description_text")}),
        ("Options", {"fields": ("option1_name", "option2_name", "option3_name")}),
        ("History", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        # Search and the model's grounding read the plain text, so it follows every HTML edit.
        obj.description_text = html_to_text(html_text=obj.description_html)
        super().save_model(request, obj, form, change)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        queryset: QuerySet[Product] = super().get_queryset(request)
        # One query for the changelist instead of two per row.
        return queryset.annotate(
            _variant_count=Count("variants", distinct=True), _total_stock=Sum("variants__inventory_quantity")
        )

    @admin.display(description="Variants", ordering="_variant_count")
    def variant_count(self, product: Product) -> int:
        return int(getattr(product, "_variant_count", 0))

    @admin.display(description="Total stock", ordering="_total_stock")
    def total_stock(self, product: Product) -> int:
        return int(getattr(product, "_total_stock", None) or 0)


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("title", "handle", "product_count")
    search_fields = ("title", "handle")
    prepopulated_fields = {"handle": ("title",)}
    filter_horizontal = ("products",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Collection]:
        queryset: QuerySet[Collection] = super().get_queryset(request)
        return queryset.annotate(_product_count=Count("products"))

    @admin.display(description="Products", ordering="_product_count")
    def product_count(self, collection: Collection) -> int:
        return int(getattr(collection, "_product_count", 0))
