from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from catalog.models import Product
from tests.catalog.factories import make_product


@pytest.mark.django_db
def test_product_changelist_shows_variant_count_and_total_stock(admin_client: Client) -> None:
    make_product(title="Beanie", variants=[{"inventory_quantity": 4}, {"inventory_quantity": 0}])

    response = admin_client.get(reverse("admin:catalog_product_changelist"))

    assert response.status_code == 200
    row = next(result for result in response.context["cl"].result_list if result.title == "Beanie")
    assert (row._variant_count, row._total_stock) == (2, 4)


@pytest.mark.django_db
def test_product_search_by_sku_finds_the_product_once(admin_client: Client) -> None:
    make_product(title="Beanie", variants=[{"sku": "AC-RMB-CHR"}, {"sku": "AC-RMB-NVY"}])

    response = admin_client.get(reverse("admin:catalog_product_changelist"), {"q": "AC-RMB"})

    assert [product.title for product in response.context["cl"].result_list] == ["Beanie"]


@pytest.mark.django_db
def test_editing_the_html_description_in_admin_refreshes_the_plain_text(admin_client: Client) -> None:
    product = make_product(title="Mug", handle="mug", description_html="<p>Old</p>")
    form = {
        "title": "Mug",
        "handle": "mug",
        "status": "active",
        "tags": "[]",
        "description_html": "<p>Enamel &amp; steel</p>",
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
        "images-TOTAL_FORMS": "0",
        "images-INITIAL_FORMS": "0",
    }

    response = admin_client.post(reverse("admin:catalog_product_change", args=[product.pk]), form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.description_text == "Enamel & steel"


@pytest.mark.django_db
def test_collection_change_page_renders(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:catalog_collection_add"))

    assert response.status_code == 200
    assert Product.objects.count() == 0
