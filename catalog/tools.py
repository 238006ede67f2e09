"""Catalog tools the model may call (executed here, on the server, with the shop's data)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from channels.db import database_sync_to_async

from catalog.grounding import product_data
from catalog.models import Product, Variant
from catalog.selectors import SearchFilters, product_search
from chat.llm.tools import Tool, ToolRegistry

MAX_RESULTS = 5


def _search(arguments: dict[str, Any]) -> dict[str, Any]:
    query = str(arguments.get("query") or "").strip()
    if not query:
        return {"error": "query is required"}
    try:
        filters = SearchFilters(
            min_price=_price(arguments.get("min_price")),
            max_price=_price(arguments.get("max_price")),
            in_stock=True if arguments.get("in_stock") else None,
            options=[str(arguments["option"])] if arguments.get("option") else {},
        )
    except (InvalidOperation, ValueError):
        return {"error": "prices must be numbers"}
    # Filters the model sets are kept strictly: no results is an answer it can relay.
    products = product_search(query=query, limit=MAX_RESULTS, filters=filters)
    return {"results": [product_data(product) for product in products]}


def _price(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _get_product(arguments: dict[str, Any]) -> dict[str, Any]:
    products = Product.objects.filter(status=Product.Status.ACTIVE).prefetch_related("variants", "images")
    if handle := arguments.get("handle"):
        product = products.filter(handle=str(handle)).first()
    elif sku := arguments.get("sku"):
        product = products.filter(variants__sku=str(sku)).first()
    else:
        return {"error": "give a handle or a sku"}
    return product_data(product) if product else {"error": "no such product"}


def _check_stock(arguments: dict[str, Any]) -> dict[str, Any]:
    sku = str(arguments.get("sku") or "")
    variant = Variant.objects.select_related("product").filter(sku=sku, product__status=Product.Status.ACTIVE).first()
    if variant is None:
        return {"error": f"no variant with SKU {sku!r}"}
    return {
        "sku": variant.sku,
        "handle": variant.product.handle,
        "title": variant.product.title,
        "options": dict(zip(variant.product.option_names, variant.option_values, strict=False)),
        "inventory_quantity": max(variant.inventory_quantity, 0),
        "in_stock": variant.in_stock,
    }


def catalog_tools_register(registry: ToolRegistry) -> None:
    registry.register(
        Tool(
            name="search_products",
            description="Search the shop's catalog. Returns up to 5 active products with variants, prices and stock.",
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What the shopper is looking for, in words"},
                    "max_price": {"type": "number"},
                    "min_price": {"type": "number"},
                    "in_stock": {"type": "boolean", "description": "Only products that are in stock"},
                    "option": {"type": "string", "description": "An option value such as a size or colour"},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
            handler=database_sync_to_async(_search),
        )
    )
    registry.register(
        Tool(
            name="get_product",
            description="One product by its handle or by the SKU of one of its variants.",
            parameters={
                "type": "object",
                "properties": {"handle": {"type": "string"}, "sku": {"type": "string"}},
                "additionalProperties": False,
            },
            handler=database_sync_to_async(_get_product),
        )
    )
    registry.register(
        Tool(
            name="check_stock",
            description="Current stock of one variant, by SKU.",
            parameters={
                "type": "object",
                "properties": {"sku": {"type": "string"}},
                "required": ["sku"],
                "additionalProperties": False,
            },
            handler=database_sync_to_async(_check_stock),
        )
    )
