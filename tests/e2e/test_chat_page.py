"""What a shopper sees and clicks on the chat page, in a real browser."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import reply_states
from tests.fakes import Script

pytestmark = pytest.mark.browser

ASSISTANT = ".msg[data-role=assistant]"


def open_chat(page) -> None:
    page.goto("/")
    page.locator("#status[data-state=connected]").wait_for(timeout=10_000)


def send(page, text: str) -> None:
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")


def watch_reply(page, index: int, timeout: float = 10.0) -> list[str]:
    return reply_states(page, ASSISTANT, index, timeout)


def test_reply_appears_token_by_token_with_markdown_rendered(page, fake_openai_server):
    fake_openai_server.reset()
    pieces = ["Our ", "**Cascade** ", "jacket ", "is ", "waterproof ", "and ", "breathable."]
    fake_openai_server.enqueue(Script.stream(pieces, delay=0.15))
    open_chat(page)
    send(page, "Is the Cascade jacket waterproof?")

    user = page.locator(".msg[data-role=user]").last
    assert user.locator(".msg-body").inner_text() == "Is the Cascade jacket waterproof?"
    states = watch_reply(page, 0)
    partial = [s for s in states[:-1] if s.strip() and s.strip() != states[-1].strip()]
    assert len(partial) >= 2, f"expected the reply to grow in visible steps, saw {states}"
    assert states[-1].strip() == "Our Cascade jacket is waterproof and breathable."
    assert page.locator(f"{ASSISTANT} .msg-body strong").inner_text() == "Cascade"
    assert page.locator(ASSISTANT).get_attribute("data-status") == "complete"
    assert page.locator("#input").evaluate("el => el === document.activeElement")
    assert page.errors == []


def test_stop_ends_the_reply_and_closes_the_upstream_request(page, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream_forever(rate=15))
    open_chat(page)
    send(page, "Tell me a long story")
    stop = page.locator("#stop")
    stop.wait_for(state="visible")
    page.locator(f"{ASSISTANT} .msg-body").filter(has_text="tick 2.").wait_for()
    stop.click()
    page.locator(f"{ASSISTANT}[data-status=stopped]").wait_for(timeout=5000)
    assert stop.is_hidden()
    request = fake_openai_server.last_request
    assert request.done.wait(3) and request.client_disconnected
    text = page.locator(f"{ASSISTANT} .msg-body").inner_text()
    time.sleep(0.3)
    assert page.locator(f"{ASSISTANT} .msg-body").inner_text() == text, "nothing arrives after Stop"
    assert page.locator("#send").is_enabled()


def test_reload_keeps_the_conversation_and_another_browser_cannot_see_it(
    page, browser, daphne_server, fake_openai_server
):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("Yes, size 9 is in stock."))
    open_chat(page)
    send(page, "Do you have size 9?")
    watch_reply(page, 0)

    page.reload()
    page.locator("#status[data-state=connected]").wait_for()
    bodies = page.locator(".msg .msg-body").all_inner_texts()
    assert [b.strip() for b in bodies] == ["Do you have size 9?", "Yes, size 9 is in stock."]

    stranger = browser.new_context(base_url=daphne_server)
    other = stranger.new_page()
    open_chat(other)
    assert other.locator(".msg").count() == 0
    stranger.close()


def test_html_and_scripts_in_a_reply_render_as_text(page, fake_openai_server):
    fake_openai_server.reset()
    attack = (
        'Look: <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> '
        "[click me](javascript:window.__pwned=3)"
    )
    fake_openai_server.enqueue(Script.stream(attack, chunk_size=7))
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_chat(page)
    send(page, 'What does <b onmouseover="x">this</b> do?')
    watch_reply(page, 0)

    reply = page.locator(f"{ASSISTANT} .msg-body")
    assert '<img src=x onerror="window.__pwned=1">' in reply.inner_text()
    assert reply.locator("img, script").count() == 0
    assert reply.locator("a[href^='javascript']").count() == 0
    if reply.locator("a").count():  # whatever link remains must be harmless to click
        reply.locator("a").first.click()
    assert page.evaluate("() => window.__pwned") is None
    user = page.locator(".msg[data-role=user] .msg-body")
    assert user.inner_text() == 'What does <b onmouseover="x">this</b> do?' and user.locator("b").count() == 0
    assert dialogs == []

    page.reload()  # stored text is just as inert
    page.locator(f"{ASSISTANT} .msg-body").wait_for()
    assert page.locator(f"{ASSISTANT} .msg-body img").count() == 0
    assert page.evaluate("() => window.__pwned") is None


def test_a_still_working_notice_shows_while_the_model_retries_then_gives_way_to_the_reply(page, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(
        Script.http_error(503, retry_after=0.8), Script.stream(["Sorry ", "for ", "the ", "wait."], delay=0.1)
    )
    open_chat(page)
    send(page, "Hello?")
    notice = page.locator(f"{ASSISTANT} .msg-notice")
    notice.wait_for(timeout=5000)
    assert "Still working" in notice.inner_text()
    states = watch_reply(page, 0)
    assert states[-1].strip() == "Sorry for the wait."
    assert notice.count() == 0


def test_product_cards_show_under_a_reply_that_names_products(page, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("Try the **Cascade 2.5L Rain Jacket**: fully waterproof.", chunk_size=8))
    open_chat(page)
    send(page, "I need a rain jacket")
    card = page.locator(f"{ASSISTANT} .product-card")
    card.wait_for(timeout=5000)
    assert card.count() == 1
    assert card.locator(".product-card-title").inner_text() == "Cascade 2.5L Rain Jacket"
    assert "159.00" in card.locator(".product-card-price").inner_text()
    assert card.locator(".product-card-stock").inner_text() == "In stock"
    assert card.get_attribute("href") == "https://shop.example/products/cascade-rain-jacket"
    assert card.get_attribute("rel") == "noopener noreferrer"
    image = card.locator("img")
    if image.count():  # demo images are served from this origin
        # Lazy-loaded: wait for the load to finish (`complete` is also true after an error).
        expect(image).to_have_js_property("complete", True)
        assert image.evaluate("img => img.naturalWidth > 0")
    page.reload()  # cards come back with the history
    page.locator(f"{ASSISTANT} .product-card").wait_for()
    assert page.errors == []
