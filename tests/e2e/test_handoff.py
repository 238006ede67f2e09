"""Hand-off in real browsers: a shopper on the chat page and a staff member signed in on the live
page (/staff/live/), each in a browser context of their own, against the real server."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import manage_py, page_open
from tests.fakes import Script

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

BOT = ".msg[data-author=bot]"
STAFF_MSG = ".msg[data-author=staff]"
SHOPPER_MSG = ".msg[data-author=shopper]"
NOTICE = ".msg[data-kind=notice]"
PASSWORD = "browser-test-pw-4821"  # a throwaway user in the test database
SHOP = "Northpeak Outfitters"


def staff_create(env: dict[str, str], username: str, first_name: str) -> None:
    """A superuser (so it has chat.handle_conversation) in the live server's database."""
    manage_py(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        f"User.objects.filter(username={username!r}).exists() or User.objects.create_superuser("
        f"{username!r}, '{username}@example.com', {PASSWORD!r}, first_name={first_name!r})",
    )


@pytest.fixture(scope="module")
def staff_users(live_env: dict[str, str]) -> None:
    staff_create(live_env, "ana", "Ana")
    staff_create(live_env, "ben", "Ben")


@contextmanager
def staff_page(browser: Browser, base_url: str, username: str) -> Iterator[Page]:
    """The live page, signed in through the admin's login form."""
    with page_open(browser, base_url) as page:
        page.goto("/admin/login/?next=/staff/live/")
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(PASSWORD)
        page.locator("input[type=submit]").click()
        page.wait_for_url("**/staff/live/")
        errors(page).clear()  # the admin's login page asks for a /favicon.ico it has not got
        expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=10_000)
        yield page


def open_chat(page: Page) -> str:
    page.goto("/")
    page.locator("#status[data-state=connected]").wait_for(timeout=10_000)
    conversation_id: str = page.evaluate("() => window.supportbotChat.conversationId")
    return conversation_id


def send(page: Page, text: str) -> None:
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")


def reply_done(page: Page, index: int, text: str) -> None:
    reply = page.locator(BOT).nth(index)
    expect(reply).to_have_attribute("data-status", "complete", timeout=10_000)
    expect(reply.locator(".msg-body")).to_have_text(text)


def errors(page: Page) -> list[str]:
    """What page_open collected: uncaught exceptions and console errors (CSP refusals included)."""
    collected: list[str] = page.errors  # type: ignore[attr-defined]
    return collected


def notice(page: Page, code: str):  # -> Locator
    return page.locator(f"{NOTICE}[data-notice-code={code}] .msg-body")


def lobby_entry(staff: Page, conversation_id: str):  # -> Locator
    return staff.locator(f"#lobby-list .lobby-entry[data-id='{conversation_id}']")


def test_staff_take_over_chat_and_return_to_the_bot(browser, daphne_server, fake_openai_server, staff_users):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("We have three rain jackets."))
    with page_open(browser, daphne_server) as shopper, staff_page(browser, daphne_server, "ana") as staff:
        conversation_id = open_chat(shopper)
        send(shopper, "Do you have rain jackets?")
        reply_done(shopper, 0, "We have three rain jackets.")

        shopper.locator("#handoff").click()
        expect(notice(shopper, "handoff_requested")).to_contain_text(
            "Someone from our team is online"  # the live page is open: staff count as online
        )
        expect(shopper.locator("#conversation-state")).to_have_text(
            "Waiting for a person — the assistant keeps helping meanwhile"
        )
        expect(shopper.locator("#handoff")).to_be_hidden()

        # The lobby updates live: waiting, first in the list.
        entry = lobby_entry(staff, conversation_id)
        expect(entry).to_have_attribute("data-status", "waiting")
        expect(entry.locator(".badge")).to_have_text(re.compile(r"^Waiting (under a minute|\d+ min)$"))
        expect(staff.locator("#lobby-list .lobby-entry").first).to_have_attribute("data-id", conversation_id)

        entry.locator("button").click()
        expect(staff.locator(f"#messages {SHOPPER_MSG} .msg-body")).to_have_text("Do you have rain jackets?")
        expect(staff.locator(f"#messages {BOT} .msg-body")).to_have_text("We have three rain jackets.")
        expect(staff.locator("#input")).to_be_disabled()
        staff.locator("#take").click()

        expect(notice(shopper, "staff_joined")).to_have_text("Ana from our team joined the chat.")
        expect(shopper.locator("#conversation-state")).to_have_text("You're chatting with Ana")
        expect(staff.locator("#take")).to_be_disabled()
        expect(staff.locator("#release")).to_be_enabled()
        expect(staff.locator("#conversation-owner")).to_have_text("You're handling this conversation.")

        staff.locator("#input").press_sequentially("Hi, I'm Ana", delay=20)
        expect(shopper.locator("#typing-line")).to_have_text("Ana is typing…")
        staff.locator("#input").press_sequentially(" from the shop.", delay=5)
        staff.locator("#input").press("Enter")
        staff_msg = shopper.locator(STAFF_MSG).last
        expect(staff_msg.locator(".msg-author")).to_have_text(f"Ana · {SHOP} team")
        expect(staff_msg.locator(".msg-body")).to_have_text("Hi, I'm Ana from the shop.")
        expect(shopper.locator("#typing-line")).to_be_hidden()
        expect(staff.locator(f"#messages {STAFF_MSG}")).to_have_attribute("data-status", "complete")
        expect(staff.locator(f"#messages {STAFF_MSG} .msg-author")).to_have_text("Ana (you)")

        # The staff socket drops: the page reconnects and follows the same conversation again.
        staff.evaluate("() => window.supportbotStaff.disconnect()")
        expect(staff.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        expect(staff.locator("#input")).to_be_disabled()
        expect(staff.locator("#connection")).to_have_attribute("data-state", "connected", timeout=10_000)
        expect(staff.locator(f"#messages {STAFF_MSG} .msg-body")).to_have_text("Hi, I'm Ana from the shop.")
        expect(staff.locator("#input")).to_be_enabled()

        # The shopper types back: staff see it; the bot stays quiet while Ana has the chat.
        model_calls = len(fake_openai_server.requests)
        shopper.locator("#input").press_sequentially("Great", delay=20)
        expect(staff.locator("#typing-line")).to_have_text("The shopper is typing…")
        shopper.locator("#input").fill("Great, is the Cascade one waterproof?")
        shopper.locator("#input").press("Enter")
        expect(staff.locator(f"#messages {SHOPPER_MSG}").last.locator(".msg-body")).to_have_text(
            "Great, is the Cascade one waterproof?"
        )
        time.sleep(1.0)  # a bot reply would have started by now
        assert shopper.locator(BOT).count() == 1
        assert staff.locator(f"#messages {BOT}").count() == 1
        assert len(fake_openai_server.requests) == model_calls

        staff.locator("#release").click()
        expect(notice(shopper, "returned_to_bot")).to_have_text("Ana handed the chat back to the assistant.")
        expect(shopper.locator("#conversation-state")).to_be_hidden()
        expect(shopper.locator("#handoff")).to_be_visible()
        expect(staff.locator("#input")).to_be_disabled()
        expect(staff.locator("#take")).to_be_enabled()

        fake_openai_server.enqueue(Script.stream("Yes, the Cascade is fully waterproof."))
        send(shopper, "So is it waterproof?")
        reply_done(shopper, 1, "Yes, the Cascade is fully waterproof.")
        expect(staff.locator(f"#messages {BOT}").nth(1).locator(".msg-body")).to_have_text(
            "Yes, the Cascade is fully waterproof."
        )
        assert errors(shopper) == []
        assert errors(staff) == []


def test_a_conversation_another_staff_member_has_cannot_be_taken(
    browser, daphne_server, fake_openai_server, staff_users
):
    fake_openai_server.reset()
    with (
        page_open(browser, daphne_server) as shopper,
        staff_page(browser, daphne_server, "ana") as ana,
        staff_page(browser, daphne_server, "ben") as ben,
    ):
        conversation_id = open_chat(shopper)
        send(shopper, "Hello?")
        reply_done(shopper, 0, "Hello from the fake model.")
        shopper.locator("#handoff").click()

        lobby_entry(ben, conversation_id).locator("button").click()
        expect(ben.locator("#take")).to_be_enabled()
        lobby_entry(ana, conversation_id).locator("button").click()
        ana.locator("#take").click()
        expect(ana.locator("#release")).to_be_enabled()

        expect(ben.locator("#conversation-owner")).to_have_text("Ana is handling this conversation.")
        expect(ben.locator("#take")).to_be_disabled()
        expect(ben.locator("#close")).to_be_disabled()
        expect(ben.locator("#input")).to_be_disabled()
        expect(lobby_entry(ben, conversation_id).locator(".badge")).to_have_text("With Ana")
        expect(lobby_entry(ana, conversation_id).locator(".badge")).to_have_text("With you")

        # Had Ben pressed Take over a moment earlier, the server says so plainly.
        ben.evaluate("() => document.getElementById('take').disabled = false")
        ben.locator("#take").click()
        expect(ben.locator("#notice")).to_have_text("Ana is handling this conversation.")
        assert errors(ana) == [] and errors(ben) == []


def test_feedback_end_rating_and_a_new_chat(page, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("The Cascade costs 99.00."))
    first_id = open_chat(page)
    send(page, "How much is the Cascade jacket?")
    reply_done(page, 0, "The Cascade costs 99.00.")

    reply = page.locator(BOT).first
    down = reply.get_by_role("button", name="Not helpful")
    up = reply.get_by_role("button", name="Helpful answer")
    expect(down).to_have_attribute("aria-pressed", "false")
    down.click()
    form = reply.locator(".feedback-form")
    form.get_by_label("Wrong price or stock").check()
    form.get_by_label("Anything else? (optional)").fill("It is 159.00 on the site.")
    form.get_by_role("button", name="Send").click()
    expect(down).to_have_attribute("aria-pressed", "true")
    expect(up).to_have_attribute("aria-pressed", "false")
    expect(form).to_have_count(0)
    expect(reply.locator(".feedback-thanks")).to_have_text("Thanks for your feedback")

    page.reload()  # the choice comes back with the history
    page.locator("#status[data-state=connected]").wait_for()
    expect(page.locator(BOT).first.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")

    page.locator("#end").click()
    page.get_by_role("button", name="Yes, end chat").click()
    expect(notice(page, "closed")).to_have_text("The chat was ended.")
    expect(page.locator("#conversation-state")).to_have_text("This chat has ended")
    expect(page.locator("#closing")).to_be_visible()
    expect(page.locator("#input")).to_be_disabled()
    expect(page.locator("#closed-hint")).to_be_visible()
    expect(page.locator("#end")).to_be_hidden()

    stars = page.get_by_role("radiogroup", name="How did we do?")
    stars.locator("label[for=rating-4]").click()
    expect(stars.get_by_role("radio", name="4 stars: very good")).to_be_checked()
    page.locator("#rating-comment").fill("Quick and friendly.")
    page.get_by_role("button", name="Send rating").click()
    expect(page.locator("#rating-thanks")).to_have_text("Thank you! You rated this chat 4 out of 5.")
    expect(page.locator("#rating-form")).to_be_hidden()

    page.get_by_role("button", name="Start a new chat").click()
    expect(page.locator("#closing")).to_be_hidden()
    expect(page.locator(".msg")).to_have_count(0)
    expect(page.locator("#input")).to_be_enabled()
    expect(page.locator("#handoff")).to_be_visible()
    assert page.evaluate("() => window.supportbotChat.conversationId") != first_id
    assert page.errors == []
