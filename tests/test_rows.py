"""supportbot/rows.py: our own SQL read into model instances exactly as `.raw()` reads it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import Model

from catalog.models import Product, Variant
from chat.models import Conversation, Message, Site
from supportbot.rows import models_from_sql
from tests.catalog.factories import make_product

pytestmark = pytest.mark.django_db


def _key(conversation: Conversation) -> Any:
    """The id as the database takes it (a string of hex digits on SQLite)."""
    return Conversation._meta.pk.get_db_prep_value(conversation.pk, connection)


def _loaded(instance: Model) -> dict[str, Any]:
    """Every field value the instance holds (deferred ones are absent from __dict__)."""
    return {
        f.attname: instance.__dict__[f.attname]
        for f in instance._meta.concrete_fields
        if f.attname in instance.__dict__
    }


def _same_as_raw(model: type[Model], sql: str, params: list[Any]) -> list[Any]:
    ours = models_from_sql(model, sql, params)
    theirs = list(model._default_manager.raw(sql, params))
    assert [_loaded(a) for a in ours] == [_loaded(b) for b in theirs]
    assert [type(v) for a in ours for v in _loaded(a).values()] == [
        type(v) for b in theirs for v in _loaded(b).values()
    ]
    for instance in ours:
        assert instance._state.adding is False and instance._state.db == "default"
    return ours


def test_all_columns_come_back_typed_as_the_orm_reads_them() -> None:
    site = Site.objects.create(name="Shop", allowed_origins="https://shop.example")
    conversation = Conversation.objects.create(owner_hash="o" * 64, site=site)
    (found,) = _same_as_raw(Conversation, "SELECT * FROM chat_conversation WHERE id = %s", [_key(conversation)])
    assert found.pk == conversation.pk and found.site_id == site.pk
    assert found.created_at == Conversation.objects.get().created_at  # aware datetime on both databases
    (shop,) = _same_as_raw(Site, "SELECT * FROM chat_site WHERE id = %s", [site.pk])
    assert shop.enabled is True and shop.name == "Shop"


def test_columns_left_out_are_deferred_and_read_when_asked_for() -> None:
    product = make_product(description_html="<p>Warm</p>", variants=[{"price": "12.50", "compare_at_price": "20"}])
    sql = "SELECT id, handle, title, status FROM catalog_product WHERE id = %s"
    (found,) = _same_as_raw(Product, sql, [product.pk])
    assert found.get_deferred_fields() >= {"description_html", "vendor", "created_at"}
    assert found.description_html == "<p>Warm</p>"  # a query of its own, as with .raw()
    (variant,) = _same_as_raw(Variant, "SELECT * FROM catalog_variant WHERE product_id = %s", [product.pk])
    assert variant.price == Decimal("12.50") and isinstance(variant.price, Decimal)
    assert variant.compare_at_price == Decimal("20.00")


def test_columns_in_another_order_and_extra_columns_become_attributes() -> None:
    conversation = Conversation.objects.create(owner_hash="o" * 64)
    Message.objects.create(
        conversation=conversation, seq=1, role="user", author="shopper", text="hi", parts=[{"type": "text"}]
    )
    sql = "SELECT parts, text, 7 AS lucky, seq, id FROM chat_message WHERE conversation_id = %s"
    (found,) = _same_as_raw(Message, sql, [_key(conversation)])
    assert found.parts == [{"type": "text"}] and found.text == "hi" and found.seq == 1
    assert found.lucky == 7


def test_the_same_statement_again_and_no_rows() -> None:
    first, second = make_product(title="First"), make_product(title="Second")
    sql = "SELECT * FROM catalog_product WHERE id = %s"
    assert models_from_sql(Product, sql, [first.pk])[0].title == "First"
    assert models_from_sql(Product, sql, [second.pk])[0].title == "Second"  # the kept plan
    assert models_from_sql(Product, sql, [second.pk + 1000]) == []


def test_a_statement_without_the_primary_key_is_refused() -> None:
    product = make_product()
    with pytest.raises(FieldDoesNotExist):
        models_from_sql(Product, "SELECT handle, title FROM catalog_product WHERE id = %s", [product.pk])


def test_the_statement_is_counted_like_any_query(django_assert_num_queries) -> None:
    product = make_product()
    with django_assert_num_queries(1) as captured:
        models_from_sql(Product, "SELECT * FROM catalog_product WHERE id = %s", [product.pk])
    assert "catalog_product" in captured.captured_queries[0]["sql"]
