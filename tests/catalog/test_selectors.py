from __future__ import annotations

from decimal import Decimal

import pytest

from catalog.grounding import reply_cards, reply_cards_possible
from catalog.models import Product, ProductImage
from catalog.selectors import product_facts, product_search, products_with_variants, search_tokens
from tests.catalog.factories import make_product, make_variant


def test_search_tokens_drop_stop_words_short_words_and_plural_s() -> None:
    assert search_tokens(query="Do you have the Trail BOOTS in a size 9?") == ["trail", "boot"]


@pytest.mark.django_db
def test_search_ranks_by_matched_keywords_with_title_matches_first() -> None:
    make_product(title="Rain Jacket", description_html="<p>Waterproof shell for hiking.</p>")
    make_product(title="Hiking Boot", description_html="<p>Waterproof leather.</p>")
    make_product(title="Camp Mug", description_html="<p>Enamel.</p>")

    results = product_search(query="waterproof hiking boots")

    assert [product.title for product in results] == ["Hiking Boot", "Rain Jacket"]


@pytest.mark.django_db
def test_search_breaks_ties_by_title() -> None:
    make_product(title="Zebra Socks", tags=["merino"])
    make_product(title="Alpine Socks", tags=["merino"])

    assert [product.title for product in product_search(query="merino")] == ["Alpine Socks", "Zebra Socks"]


@pytest.mark.django_db
def test_search_matches_vendor_tags_handle_and_variant_options() -> None:
    make_product(title="A", vendor="Northpeak")
    make_product(title="B", tags=["gore-tex"])
    make_product(title="C", handle="summit-boot")
    make_product(title="D", option1_name="Color", variants=[{"option1": "Ocean"}])

    assert [p.title for p in product_search(query="northpeak")] == ["A"]
    assert [p.title for p in product_search(query="gore-tex")] == ["B"]
    assert [p.title for p in product_search(query="summit")] == ["C"]
    assert [p.title for p in product_search(query="ocean blue")] == ["D"]


@pytest.mark.django_db
def test_search_leaves_out_draft_and_archived_products() -> None:
    make_product(title="Camp Stove", status=Product.Status.DRAFT)
    make_product(title="Old Stove", status=Product.Status.ARCHIVED)
    make_product(title="Stove Windscreen")

    assert [product.title for product in product_search(query="stove")] == ["Stove Windscreen"]


@pytest.mark.django_db
def test_search_without_useful_keywords_returns_nothing() -> None:
    make_product(title="The Best Jacket")

    assert product_search(query="what do you have?") == []
    assert product_search(query="   ") == []


@pytest.mark.django_db
def test_search_respects_limit_and_prefetches_variants(django_assert_num_queries) -> None:
    for number in range(4):
        make_product(title=f"Beanie {number}", variants=[{"price": "20.00"}])

    results = product_search(query="beanie", limit=3)

    with django_assert_num_queries(0):
        assert [len(product.variants.all()) for product in results] == [1, 1, 1]


@pytest.mark.django_db
def test_found_products_carry_their_variants_in_order_and_typed_as_the_orm_reads_them(
    django_assert_num_queries,
) -> None:
    boot = make_product(
        title="Trail Boot",
        option1_name="Size",
        description_html="<p>Grippy</p>",
        variants=[
            {"option1": "42", "price": "120.00", "inventory_quantity": 3},
            {"option1": "43", "price": "120.00", "compare_at_price": "150.00", "inventory_quantity": 0},
        ],
    )
    make_variant(product=boot, option1="41", position=0)  # stored last, comes first
    sock = make_product(title="Trail Sock", variants=[{"option1": "M"}])
    trail_map = make_product(title="Trail Map")  # no variants
    draft = make_product(title="Trail Tent", status=Product.Status.DRAFT, variants=[{"option1": "2p"}])

    with django_assert_num_queries(2):  # the products, their variants
        results = products_with_variants([draft.pk, trail_map.pk, boot.pk, sock.pk, 10**9])

    by_title = {product.title: product for product in results}
    assert set(by_title) == {"Trail Boot", "Trail Sock", "Trail Map"}
    assert {product.title for product in product_search(query="trail")} == set(by_title)
    with django_assert_num_queries(0):
        variants = list(by_title["Trail Boot"].variants.all())
        assert [variant.option1 for variant in variants] == ["41", "42", "43"]
        assert all(variant.product is by_title["Trail Boot"] for variant in variants)
        assert variants[2].compare_at_price == Decimal("150.00") and variants[2].price == Decimal("120.00")
        assert variants[1].on_sale is False and variants[2].on_sale is True
        assert list(by_title["Trail Map"].variants.all()) == []
        assert by_title["Trail Boot"].description_text == "Grippy"
    assert by_title["Trail Boot"].description_html == "<p>Grippy</p>"  # left out, read when asked for


@pytest.mark.django_db
def test_cards_read_images_once_and_only_for_the_products_a_reply_names(django_assert_num_queries) -> None:
    for number, colour in enumerate(["Red", "Blue", "Green"]):
        product = make_product(title=f"{colour} Beanie", variants=[{"price": "20.00"}])
        ProductImage.objects.create(product=product, source_url=f"https://cdn.example/beanie-{number}.jpg")
    found = product_search(query="beanie")
    assert len(found) == 3

    with django_assert_num_queries(1):  # the images of the two it names, together
        cards = reply_cards(text="The Blue Beanie or the Red Beanie?", candidates=found, looked_up=[], limit=3)
    assert [card["title"] for card in cards] == ["Blue Beanie", "Red Beanie"]
    assert [card["image"] for card in cards] == ["https://cdn.example/beanie-1.jpg", "https://cdn.example/beanie-0.jpg"]
    with django_assert_num_queries(0):  # names none: nothing read
        assert reply_cards(text="We have hats.", candidates=found, looked_up=[], limit=3) == []


@pytest.mark.django_db
def test_whether_a_reply_can_have_cards_is_known_without_the_database(django_assert_num_queries) -> None:
    beanie = make_product(title="Red Beanie", handle="red-beanie")
    mug = make_product(title="Camp Mug", handle="camp-mug")
    with django_assert_num_queries(0):
        assert reply_cards_possible(text="The Red Beanie is warm.", candidates=[beanie, mug], looked_up=[])
        assert not reply_cards_possible(text="We have hats.", candidates=[beanie, mug], looked_up=[])
        # A tool looked up a product the turn did not have: only the database knows its name.
        assert reply_cards_possible(text="We have hats.", candidates=[beanie], looked_up=["camp-mug"])
        assert not reply_cards_possible(text="We have hats.", candidates=[beanie, mug], looked_up=["camp-mug"])


@pytest.mark.django_db
def test_facts_show_price_range_sale_and_per_variant_stock() -> None:
    product = make_product(
        title="Trail Runner",
        handle="trail-runner",
        vendor="Ridgeline",
        product_type="Running Shoes",
        option1_name="Size",
        option2_name="Color",
        variants=[
            {"sku": "TR-9-BLK", "option1": "9", "option2": "Black", "price": "129.00", "inventory_quantity": 3},
            {
                "sku": "TR-10-OCN",
                "option1": "10",
                "option2": "Ocean",
                "price": "109.00",
                "compare_at_price": "129.00",
                "inventory_quantity": 0,
            },
        ],
    )

    assert product_facts(products=[product]) == (
        "Product: Trail Runner (handle: trail-runner)\n"
        "Vendor: Ridgeline; Type: Running Shoes\n"
        "Price: 109.00 to 129.00\n"
        "On sale: 1 of 2 variants are below their compare-at price\n"
        "Variants:\n"
        "- Size: 9, Color: Black; SKU TR-9-BLK; 129.00; in stock: 3\n"
        "- Size: 10, Color: Ocean; SKU TR-10-OCN; 109.00 (on sale, was 129.00); out of stock"
    )


@pytest.mark.django_db
def test_facts_show_single_price_and_trimmed_description_one_paragraph_per_product() -> None:
    long_text = "<p>" + "Warm merino wool. " * 40 + "</p>"
    beanie = make_product(title="Beanie", description_html=long_text, variants=[{"price": "32.00"}])
    mug = make_product(title="Mug", tags=["camping"], variants=[{"price": "16", "compare_at_price": "12"}])

    facts = product_facts(products=[beanie, mug])

    beanie_facts, mug_facts = facts.split("\n\n")
    assert "Price: 32.00\n" in beanie_facts
    description = beanie_facts.split("Description: ")[1]
    assert len(description) <= 303
    assert description.endswith("...")
    # Cut between words, never inside one.
    assert description[:-3].split()[-1] in {"Warm", "merino", "wool"}
    # A compare-at price below the price is not a sale.
    assert "on sale" not in mug_facts.lower()
    assert "Tags: camping" in mug_facts
    assert product_facts(products=[beanie, mug]) == facts
