"""Catalog search: relevance, typos, synonyms, filters, and the index following every write.

Runs on SQLite, and on PostgreSQL when the suite runs with DATABASE_URL (scripts/test.sh)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.models import Product, Variant
from catalog.search import search_parse
from catalog.search.schema import search_index_rebuild, search_triggers_missing
from catalog.selectors import SearchFilters, product_search
from tests.catalog.factories import make_product, make_variant

pytestmark = pytest.mark.django_db


def titles(query: str, **kwargs) -> list[str]:
    return [product.title for product in product_search(query=query, **kwargs)]


# --- Reading the shopper's words ----------------------------------------------------------


def test_parse_takes_size_price_and_stock_out_of_the_text() -> None:
    text, filters = search_parse("Trail runners size 9 under 120 in stock?")

    assert text == "Trail runners ?"
    assert filters == SearchFilters(max_price=Decimal("120"), in_stock=True, options={"size": "9"})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rain jacket in black", SearchFilters(options={"color": "black"})),
        ("boots between $20 and $50", SearchFilters(min_price=Decimal("20"), max_price=Decimal("50"))),
        ("hoodie over 30 euros", SearchFilters(min_price=Decimal("30"))),
        ("tee size M, colour: grey", SearchFilters(options={"size": "m", "color": "grey"})),
        ("a tent for up to 4 people", SearchFilters()),
        ("a 40 l pack over 40 litres", SearchFilters()),
        ("is it not available?", SearchFilters()),
        ("black or navy in black or navy", SearchFilters()),
    ],
)
def test_parse_understands_common_phrasings_and_leaves_the_rest(query: str, expected: SearchFilters) -> None:
    assert search_parse(query)[1] == expected


# --- Relevance ----------------------------------------------------------------------------


def test_title_match_beats_description_match() -> None:
    make_product(title="Alpine Pack", description_html="<p>Room for a rain jacket and lunch.</p>")
    make_product(title="Rain Jacket", description_html="<p>Packs small.</p>")

    assert titles("rain jacket") == ["Rain Jacket", "Alpine Pack"]


def test_words_in_a_row_rank_above_the_same_words_apart() -> None:
    make_product(title="Rain Zip Jacket")
    make_product(title="Zip Rain Jacket")

    assert titles("rain jacket") == ["Zip Rain Jacket", "Rain Zip Jacket"]


def test_products_with_every_word_come_before_those_with_some() -> None:
    make_product(title="Hiking Boot", description_html="<p>Waterproof leather.</p>")
    make_product(title="Camp Mug", description_html="<p>Waterproof? No, but it holds coffee.</p>")
    make_product(title="Waterproof Hiking Boot Gaiters")

    assert titles("waterproof hiking boots") == ["Waterproof Hiking Boot Gaiters", "Hiking Boot", "Camp Mug"]


def test_sold_out_products_rank_lower_but_are_still_found() -> None:
    make_product(title="Merino Beanie", variants=[{"inventory_quantity": 0}])
    make_product(title="Merino Beanie", handle="beanie-2", variants=[{"inventory_quantity": 5}])

    results = product_search(query="merino beanie")

    assert [product.handle for product in results] == ["beanie-2", results[1].handle]
    assert len(results) == 2


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("rian jaket", "Rain Jacket"),
        ("waterprof jackets", "Rain Jacket"),
        ("bakcpack", "Daypack Backpack"),
        ("merino beenie", "Merino Beanie"),
    ],
)
def test_typos_find_the_word_meant(query: str, title: str) -> None:
    make_product(title="Rain Jacket", description_html="<p>Waterproof and breathable.</p>")
    make_product(title="Daypack Backpack")
    make_product(title="Merino Beanie")
    make_product(title="Camp Mug")

    assert titles(query)[:1] == [title]


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("sneakers", "Trail Running Shoe"),
        ("trainers", "Trail Running Shoe"),
        ("rucksack", "Daypack Backpack"),
        ("beanie", "Wool Hat"),
        ("winter coat", "Winter Jacket"),
        ("waterproof shell", "Rain Shell"),
    ],
)
def test_shop_synonyms_find_what_the_catalog_calls_it(query: str, title: str) -> None:
    make_product(title="Trail Running Shoe")
    make_product(title="Daypack Backpack")
    make_product(title="Wool Hat")
    make_product(title="Winter Jacket")
    make_product(title="Rain Shell")

    assert titles(query)[:1] == [title]


def test_plural_and_singular_find_each_other() -> None:
    make_product(title="Trail Boots")
    make_product(title="Hiking Sock")

    assert titles("trail boot") == ["Trail Boots"]
    assert titles("hiking socks") == ["Hiking Sock"]


def test_draft_and_archived_products_are_never_found() -> None:
    make_product(title="Camp Stove", status=Product.Status.DRAFT)
    make_product(title="Old Stove", status=Product.Status.ARCHIVED)
    make_product(title="Stove Windscreen")

    assert titles("stove") == ["Stove Windscreen"]
    assert titles("camp stove") == ["Stove Windscreen"]


def test_queries_without_search_words_find_nothing() -> None:
    make_product(title="Jacket", variants=[{"price": "10"}])

    assert titles("what do you have under 50?") == []
    assert titles("\"*' OR 1=1 --") == []


def test_query_syntax_in_the_text_is_searched_as_words() -> None:
    make_product(title="Rain Jacket")

    assert titles('rain" OR jacket* NEAR(') == ["Rain Jacket"]
    assert titles("rain & !jacket | (") == ["Rain Jacket"]


# --- Filters ------------------------------------------------------------------------------


@pytest.fixture
def runners() -> None:
    size_color = {"option1_name": "Size", "option2_name": "Colour"}
    make_product(
        title="Trail Runner",
        **size_color,
        variants=[
            {"option1": "9", "option2": "Black", "price": "110", "inventory_quantity": 2},
            {"option1": "10", "option2": "Ocean Blue", "price": "130", "inventory_quantity": 4},
        ],
    )
    # Size 9 only over 120; under 120 only in size 10.
    make_product(
        title="Trail Runner Pro",
        **size_color,
        variants=[
            {"option1": "9", "option2": "Navy", "price": "150", "inventory_quantity": 5},
            {"option1": "10", "option2": "Navy", "price": "100", "inventory_quantity": 5},
        ],
    )
    # Size 9 under 120, but sold out.
    make_product(
        title="Trail Runner Lite",
        **size_color,
        variants=[{"option1": "9", "option2": "Black/White", "price": "90", "inventory_quantity": 0}],
    )


@pytest.mark.usefixtures("runners")
def test_size_price_and_stock_from_the_text_must_hold_for_one_variant() -> None:
    assert titles("trail runner size 9 under 120 in stock") == ["Trail Runner"]
    assert titles("trail runner size 9 under 120") == ["Trail Runner", "Trail Runner Lite"]
    assert titles("trail runners size 10 over 120") == ["Trail Runner"]


@pytest.mark.usefixtures("runners")
def test_colour_matches_a_word_of_the_option_value() -> None:
    assert titles("trail runner in black") == ["Trail Runner", "Trail Runner Lite"]
    assert titles("trail runner in blue") == ["Trail Runner"]
    assert titles("trail runner in navy in stock") == ["Trail Runner Pro"]


@pytest.mark.usefixtures("runners")
def test_explicit_filters_win_and_always_hold() -> None:
    filters = SearchFilters(max_price=Decimal("95"), options=["9"])
    assert titles("trail runner under 200", filters=filters) == ["Trail Runner Lite"]
    assert titles("trail runner", filters=SearchFilters(max_price=Decimal("50"))) == []
    assert titles("trail runner", filters=SearchFilters(vendor="nobody")) == []


@pytest.mark.usefixtures("runners")
def test_filters_read_from_the_text_give_way_when_they_leave_nothing() -> None:
    # The shopper then hears about the closest products, whose facts show sizes and prices.
    assert sorted(titles("trail runner size 14")) == ["Trail Runner", "Trail Runner Lite", "Trail Runner Pro"]


def test_vendor_and_type_filters_compare_without_case() -> None:
    make_product(title="Shell A", vendor="Northpeak", product_type="Jackets")
    make_product(title="Shell B", vendor="Ridgeline", product_type="Jackets")

    assert titles("shell", filters=SearchFilters(vendor="northpeak")) == ["Shell A"]
    assert titles("shell", filters=SearchFilters(product_type="JACKETS")) == ["Shell A", "Shell B"]


# --- The index follows every write ---------------------------------------------------------


def test_every_index_trigger_is_installed() -> None:
    assert search_triggers_missing() == []


def test_index_follows_product_create_update_and_delete() -> None:
    product = make_product(title="Storm Parka")
    assert titles("storm") == ["Storm Parka"]

    product.title = "Squall Parka"
    product.save()
    assert titles("storm") == []
    assert titles("squall") == ["Squall Parka"]

    product.status = Product.Status.DRAFT
    product.save(update_fields=["status"])
    assert titles("squall") == []

    Product.objects.filter(pk=product.pk).update(status=Product.Status.ACTIVE, description_text="Fleece lined")
    assert titles("fleece") == ["Squall Parka"]

    product.delete()
    assert titles("squall") == []


def test_index_follows_variant_create_update_and_delete() -> None:
    product = make_product(title="Camp Chair", option1_name="Color")
    variant = make_variant(product=product, option1="Ocean", inventory_quantity=0)
    assert titles("ocean") == ["Camp Chair"]
    assert titles("chair in stock") == ["Camp Chair"]  # relaxed: nothing in stock
    assert titles("chair", filters=SearchFilters(in_stock=True)) == []

    variant.option1 = "Forest"
    variant.inventory_quantity = 3
    variant.save()
    assert titles("ocean") == []
    assert titles("forest") == ["Camp Chair"]
    assert titles("chair", filters=SearchFilters(in_stock=True)) == ["Camp Chair"]

    variant.delete()
    assert titles("forest") == []
    assert titles("chair") == ["Camp Chair"]


def test_stock_changes_move_products_up_and_down() -> None:
    first = make_product(title="Enamel Mug", variants=[{"inventory_quantity": 1}])
    make_product(title="Enamel Mug", variants=[{"inventory_quantity": 1}])
    assert product_search(query="enamel mug")[0].pk == first.pk

    Variant.objects.filter(product=first).update(inventory_quantity=0)

    assert product_search(query="enamel mug")[1].pk == first.pk


def test_index_follows_bulk_create_and_bulk_update() -> None:
    products = Product.objects.bulk_create(
        [Product(handle=f"bulk-{n}", title=f"Bulk Lantern {n}", option1_name="Size") for n in range(3)]
    )
    Variant.objects.bulk_create(
        [Variant(product=product, option1="Huge", price=Decimal("5"), sku=f"L{product.pk}") for product in products]
    )
    assert len(titles("lantern huge", limit=10)) == 3

    for product in products:
        product.title = f"Bulk Torch {product.handle}"
    Product.objects.bulk_update(products, ["title"])
    variants = list(Variant.objects.filter(product__in=products))
    for variant in variants:
        variant.option1 = "Tiny"
    Variant.objects.bulk_update(variants, ["option1"])

    assert titles("lantern") == []
    assert len(titles("torch tiny", limit=10)) == 3
    assert titles("huge") == []

    Variant.objects.filter(product__in=products).delete()
    Product.objects.filter(pk__in=[product.pk for product in products]).delete()
    assert titles("torch") == []


def test_typo_correction_learns_words_of_new_products() -> None:
    make_product(title="Rain Jacket")
    assert titles("jaket") == ["Rain Jacket"]

    make_product(title="Kettle")

    assert titles("ketle") == ["Kettle"]


def test_rebuilding_the_index_changes_nothing_found() -> None:
    make_product(title="Trail Boot", variants=[{"option1": "Brown"}])
    before = titles("brown trail boot")

    search_index_rebuild()

    assert titles("brown trail boot") == before == ["Trail Boot"]
