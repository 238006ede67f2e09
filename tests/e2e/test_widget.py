"""The storefront widget in a real browser: a shop's page on one origin (a tiny HTTP server here,
with a strict Content-Security-Policy) embeds the chat served by the app on another.

The app is on http://localhost:<daphne port>; the shop on http://127.0.0.2:<port> and a shop the
site does not allow on http://127.0.0.3:<port>: different origins, all secure contexts (loopback).
Not 127.0.0.1 for the shops: it is one of the app's own hosts (DJANGO_ALLOWED_HOSTS), whose pages
may always open the chat socket, so it could not show a refusal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from chat.context import FACTS_PREAMBLE
from tests.e2e.conftest import ROOT, chromium_launch, manage_py, page_open, reply_states
from tests.fakes import Script

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Frame, FrameLocator, Page, Playwright

pytestmark = pytest.mark.browser

SITE_KEY = "pk_e2e_storefront_0001"
PHOTO = ROOT / "catalog" / "demo" / "images" / "cascade-rain-jacket-forest.jpg"
WIDGET = "iframe[src*='/widget/']"
ASSISTANT = ".msg[data-role=assistant]:not([data-greeting])"
# The shop's own script: queues setContext before the loader has run (the documented pattern)
# and records CSP violations on the host page.
SHOP_JS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
window.__unread = [];
window.addEventListener("supportbot:unread", (e) => window.__unread.push(e.detail.count));
window.SupportBot = window.SupportBot || { q: [] };
const product = document.currentScript.dataset.product;
if (product) window.SupportBot.q.push(["setContext", { product }]);
const identity = document.getElementById("identity");
if (identity) window.SupportBot.q.push(["identify", JSON.parse(identity.textContent)]);
"""


@dataclass
class Storefront:
    origin: str
    app: str  # the chat app's origin, as the shop's tag names it
    identify_secret: str
    server: ThreadingHTTPServer

    def product(self, handle: str) -> str:
        return f"{self.origin}/product/{handle}"


def _page(app: str, key: str, product: str, *, extra: str = "", head: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop: {product or "home"}</title>
{head}
<script src="/shop.js" data-product="{product}"></script>
</head><body>
<h1>{product or "Home"}</h1>
<nav><a id="to-gaiters" href="/product/trail-gaiters">Trail gaiters</a> <a id="home" href="/">Home</a></nav>
{extra}
<script src="{app}/static/supportbot/widget.js" data-site="{key}" async></script>
</body></html>"""


def _handler(app: str, key: str, *, strict: bool) -> type[BaseHTTPRequestHandler]:
    # A shop page as strict as they come: scripts from itself and the chat app only, frames from
    # the chat app only, no inline anything, no styles, no fetch/XHR/websocket.
    policy = (
        f"default-src 'none'; script-src 'self' {app}; frame-src {app}; connect-src 'none'; "
        "style-src 'none'; img-src 'none'; base-uri 'none'; form-action 'none'"
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/shop.js":
                self._send(200, "text/javascript", SHOP_JS)
            elif self.path == "/favicon.ico":
                self._send(404, "text/plain", "")
            elif self.path == "/forged":
                # An iframe that claims to be on an allowed shop: frame-ancestors still says no.
                forged = f'<iframe id="forged" src="{app}/widget/{key}/?parent={self.server.allowed}"></iframe>'  # type: ignore[attr-defined]
                self._send(200, "text/html", _page(app, key, "", extra=forged))
            elif self.path.startswith("/signed-in"):
                # The shop's server signed who the customer is; the page passes it on.
                identity = json.dumps(self.server.identity)  # type: ignore[attr-defined]
                head = f'<script type="application/json" id="identity">{identity}</script>'
                self._send(200, "text/html", _page(app, key, "cascade-rain-jacket", head=head))
            elif self.path == "/plain":
                self._send(200, "text/html", "<!doctype html><title>plain</title><p>plain</p>", csp=False)
            else:
                product = self.path.removeprefix("/product/") if self.path.startswith("/product/") else ""
                self._send(200, "text/html", _page(app, key, product))

        def _send(self, status: int, kind: str, body: str, csp: bool = True) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if strict and csp:
                self.send_header("Content-Security-Policy", policy)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _serve(host: str, handler: type[BaseHTTPRequestHandler], allowed: str = "") -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer((host, 0), handler)
    server.allowed = allowed  # type: ignore[attr-defined]
    server.identity = {}  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


# Playwright turns Chromium's third-party storage partitioning off (its --disable-features list),
# which leaves an iframe from another site no localStorage at all. Browsers ship with it on
# (Chrome, and Safari and Firefox in their own way): the widget's iframe gets storage of its own
# per shop. A --disable-features of our own replaces Playwright's list (the last one counts).
CHROMIUM_FEATURES = "--disable-features=" + ",".join(
    [
        "AvoidUnnecessaryBeforeUnloadCheckSync",
        "DestroyProfileOnBrowserClose",
        "HttpsUpgrades",
        "HttpsFirstBalancedModeAutoEnable",
        "MediaRouter",
        "PaintHolding",
        "OptimizationHints",
        "NetworkTimeServiceQuerying",
        "PreconnectToSearch",
    ]
)


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = chromium_launch(playwright_driver, [CHROMIUM_FEATURES])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def app_origin(daphne_server: str) -> str:
    return daphne_server.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def storefront(app_origin: str, live_env: dict[str, str]) -> Iterator[Storefront]:
    server, origin = _serve("127.0.0.2", _handler(app_origin, SITE_KEY, strict=True))
    out = manage_py(live_env, "site_create", "Northpeak Outfitters", "--key", SITE_KEY, "--origin", origin)
    secret = re.search(r"^identify_secret: (\w+)$", out, re.MULTILINE)
    assert secret, out
    yield Storefront(origin=origin, app=app_origin, identify_secret=secret.group(1), server=server)
    server.shutdown()


@pytest.fixture(scope="module")
def other_origin(app_origin: str, storefront: Storefront) -> Iterator[str]:
    """A page from an origin the site does not allow."""
    server, origin = _serve("127.0.0.3", _handler(app_origin, SITE_KEY, strict=False), allowed=storefront.origin)
    yield origin
    server.shutdown()


@pytest.fixture
def shop_page(browser: Browser, storefront: Storefront) -> Iterator[Page]:
    with page_open(browser, storefront.origin) as page:
        yield page


# --- Helpers ---------------------------------------------------------------------------------


def chat(page: Page) -> FrameLocator:
    return page.frame_locator(WIDGET)


def chat_frame(page: Page) -> Frame:
    handle = page.locator(WIDGET).element_handle()
    frame = handle.content_frame() if handle else None
    assert frame is not None
    return frame


def open_chat(page: Page) -> FrameLocator:
    widget = chat(page)
    widget.locator("#launcher").click()
    widget.locator("#status[data-state=connected]").wait_for(timeout=10_000)
    return widget


def send(widget: FrameLocator, text: str) -> None:
    widget.locator("#input").fill(text)
    widget.locator("#input").press("Enter")


def watch_reply(widget: FrameLocator, index: int, timeout: float = 15.0, during: Any = None) -> list[str]:
    return reply_states(widget, ASSISTANT, index, timeout, during)


def facts_sent(request) -> list[dict]:
    facts = [
        m["content"]
        for m in request.json["messages"]
        if m["role"] == "system" and m["content"].startswith(FACTS_PREAMBLE)
    ]
    assert len(facts) == 1
    data: list[dict] = json.loads(facts[0].removeprefix(FACTS_PREAMBLE))
    return data


def errors(page: Page) -> list[str]:
    """Uncaught exceptions and console errors of the page and its frames (conftest.page_open)."""
    collected: list[str] = page.errors  # type: ignore[attr-defined]
    return collected


def csp_errors(page: Page) -> list[str]:
    return [e for e in errors(page) if "Content Security Policy" in e or "Refused to" in e]


# --- Tests -----------------------------------------------------------------------------------


def test_a_shop_with_a_strict_csp_embeds_the_chat_and_gets_a_streamed_reply(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    pieces = ["The ", "**Cascade** ", "is ", "fully ", "waterproof ", "and ", "breathable."]
    fake_openai_server.enqueue(Script.stream(pieces, delay=0.15))
    page = shop_page
    page.goto(storefront.product("cascade-rain-jacket"))
    widget = chat(page)
    launcher = widget.locator("#launcher")
    launcher.wait_for()
    assert launcher.get_attribute("aria-expanded") == "false" and launcher.get_attribute("aria-label")
    # The loader sized the iframe from the chat's `state` message, without a style attribute string.
    iframe = page.locator(WIDGET)
    box = iframe.bounding_box()
    assert box and 60 <= box["width"] <= 400 and 60 <= box["height"] <= 300, box
    # No socket until the shopper opens the chat.
    assert chat_frame(page).evaluate("() => window.supportbotChat.socketOpen") is False

    widget = open_chat(page)
    assert launcher.get_attribute("aria-expanded") == "true"
    assert iframe.bounding_box()["height"] > 400  # the panel is open
    send(widget, "Is this jacket waterproof?")
    states = watch_reply(widget, 0)
    partial = [s for s in states[:-1] if s.strip() and s.strip() != states[-1].strip()]
    assert len(partial) >= 2, f"expected the reply to grow in visible steps, saw {states}"
    assert states[-1].strip() == "The Cascade is fully waterproof and breathable."
    assert widget.locator(f"{ASSISTANT} .msg-body strong").inner_text() == "Cascade"
    assert widget.locator("#messages").get_attribute("role") == "log"
    # Announced once, when finished.
    widget.locator("#announcer").filter(has_text="fully waterproof and breathable").wait_for(timeout=2000)

    # Nothing refused on the shop's page or in the iframe; the shop's page got no style element.
    assert page.evaluate("() => window.__violations") == []
    assert page.evaluate("() => document.querySelectorAll('style, link[rel=stylesheet]').length") == 0
    assert csp_errors(page) == [] and errors(page) == []

    # Escape closes the panel and gives the focus back to the launcher.
    widget.locator("#input").focus()
    page.keyboard.press("Escape")
    assert launcher.get_attribute("aria-expanded") == "false"
    assert chat_frame(page).evaluate("() => document.activeElement.id") == "launcher"


def test_the_product_page_the_shopper_is_on_grounds_the_answer(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("Size 9 in Ocean is in stock."))
    page = shop_page
    page.goto(storefront.product("ridgeline-trail-runner-2"))
    widget = open_chat(page)
    send(widget, "Is this in stock in size 9?")
    watch_reply(widget, 0)
    facts = facts_sent(fake_openai_server.last_request)
    assert facts[0]["handle"] == "ridgeline-trail-runner-2"
    assert any(v["sku"] == "RL-TR2-OCN-09" and v["stock"] == 5 for v in facts[0]["variants"])


def test_the_next_page_of_the_shop_keeps_the_conversation_open(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("Yes, it packs into its own pocket."), Script.stream("They fit size 9."))
    page = shop_page
    page.goto(storefront.product("cascade-rain-jacket"))
    widget = open_chat(page)
    send(widget, "Does it pack small?")
    watch_reply(widget, 0)

    page.locator("#to-gaiters").click()
    page.wait_for_url("**/product/trail-gaiters")
    widget = chat(page)
    # Open again without a click (the panel's state survives navigation), history included.
    widget.locator("#status[data-state=connected]").wait_for(timeout=10_000)
    assert widget.locator("#launcher").get_attribute("aria-expanded") == "true"
    bodies = [b.strip() for b in widget.locator(".msg:not([data-greeting]) .msg-body").all_inner_texts()]
    assert bodies == ["Does it pack small?", "Yes, it packs into its own pocket."]
    # The new page's product goes with the next message.
    send(widget, "And these gaiters?")
    watch_reply(widget, 1)
    assert facts_sent(fake_openai_server.last_request)[0]["handle"] == "trail-gaiters"


def test_a_reply_cut_off_by_a_lost_connection_arrives_in_full(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    words = [f"word{i} " for i in range(30)]
    fake_openai_server.enqueue(Script.stream(words, delay=0.1))
    page = shop_page
    page.goto(storefront.product("cascade-rain-jacket"))
    widget = open_chat(page)
    frame = chat_frame(page)
    send(widget, "Tell me everything")
    cut: dict[str, Any] = {"done": False, "status": None}

    def drop_mid_reply(text: str) -> None:
        if cut["done"] or "word3" not in text:
            return
        cut["done"] = True
        page.context.set_offline(True)
        # The iframe hears the browser go offline; its socket is replaced when the network is back.
        frame.wait_for_function("() => document.getElementById('status').dataset.state === 'offline'")
        cut["status"] = "offline"
        time.sleep(0.8)  # the reply keeps streaming on the server meanwhile
        page.context.set_offline(False)

    states = watch_reply(widget, 0, timeout=20, during=drop_mid_reply)
    assert cut["status"] == "offline"
    assert frame.evaluate("() => window.supportbotChat.connections") >= 2, "the socket was replaced"
    assert states[-1].strip() == "".join(words).strip()
    widget.locator("#status[data-state=connected]").wait_for(timeout=10_000)
    assert widget.locator(ASSISTANT).count() == 1
    assert widget.locator(f"{ASSISTANT}[data-status=complete]").count() == 1


def test_a_reply_while_the_chat_is_closed_shows_a_badge_and_tells_the_host(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream([f"part{i} " for i in range(12)], delay=0.1))
    page = shop_page
    page.goto(storefront.product("cascade-rain-jacket"))
    widget = open_chat(page)
    send(widget, "Which colours are there?")
    widget.locator(f"{ASSISTANT}[data-status=streaming]").wait_for()
    widget.locator("#minimise").click()  # closed while the reply streams in
    launcher = widget.locator("#launcher")
    assert launcher.get_attribute("aria-expanded") == "false"
    badge = widget.locator("#badge")
    badge.wait_for(state="visible", timeout=10_000)
    assert badge.inner_text() == "1"
    assert "1" in (launcher.get_attribute("aria-label") or "")
    page.wait_for_function("() => window.__unread.includes(1)")
    assert page.evaluate("() => window.SupportBot.unread") == 1

    launcher.click()  # opening reads it
    badge.wait_for(state="hidden")
    page.wait_for_function("() => window.__unread.at(-1) === 0")
    assert widget.locator(f"{ASSISTANT}[data-status=complete]").count() == 1


def test_a_signed_in_customer_is_identified_to_the_chat(shop_page, storefront, fake_openai_server, live_env):
    fake_openai_server.reset()
    user_id, email = "cust_1042", "ana@example.com"
    signature = hmac.new(storefront.identify_secret.encode(), f"{user_id}\n{email}".encode(), hashlib.sha256)
    identity = {"user_id": user_id, "email": email, "name": "Ana", "signature": signature.hexdigest()}
    storefront.server.identity = identity
    page = shop_page
    page.goto(f"{storefront.origin}/signed-in")
    widget = open_chat(page)
    send(widget, "Where is my order?")
    watch_reply(widget, 0)
    conversation = chat_frame(page).evaluate("() => window.supportbotChat.conversationId")
    script = (
        "from chat.models import Conversation; "
        f"c = Conversation.objects.get(pk='{conversation}'); print(c.shopper_id, c.shopper_email, c.shopper_name)"
    )
    assert manage_py(live_env, "shell", "--no-imports", "-c", script).split() == [user_id, email, "Ana"]
    assert errors(page) == []


def test_reset_after_the_customer_signs_out_forgets_the_chat_in_this_browser(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("Your order ships tomorrow."))
    page = shop_page
    page.goto(storefront.product("cascade-rain-jacket"))
    widget = open_chat(page)
    send(widget, "Where is my order 1042?")
    watch_reply(widget, 0)
    before = chat_frame(page).evaluate("() => window.supportbotChat.conversationId")

    page.evaluate("() => window.SupportBot.reset()")  # the shop's sign-out handler
    frame = chat_frame(page)
    wait_for = "() => window.supportbotChat.connected && window.supportbotChat.conversationId"
    frame.wait_for_function(f"{wait_for} && window.supportbotChat.conversationId !== '{before}'", timeout=10_000)
    assert widget.locator(".msg:not([data-greeting])").count() == 0
    # A reload (the next person at this computer) does not bring the old chat back.
    page.reload()
    widget = chat(page)  # still open: the panel's state survives a reload
    widget.locator("#status[data-state=connected]").wait_for(timeout=10_000)
    after = chat_frame(page).evaluate("() => window.supportbotChat.conversationId")
    assert after != before
    assert "order 1042" not in widget.locator("#messages").inner_text()
    assert errors(page) == []


def test_a_photo_from_the_widget_is_uploaded_and_shown_without_cookies(shop_page, storefront, fake_openai_server):
    fake_openai_server.reset()
    fake_openai_server.enqueue(Script.stream("That is the Cascade 2.5L Rain Jacket in Forest."))
    page = shop_page
    page.goto(storefront.product("cascade-rain-jacket"))
    widget = open_chat(page)
    widget.locator("#photo-input").set_input_files(PHOTO)
    chip = widget.locator("#attachments .chip[data-kind=image]")
    chip.wait_for()
    expect(chip).to_have_attribute("data-state", "ready", timeout=15_000)
    widget.locator("#send").click()
    watch_reply(widget, 0)
    photo = widget.locator(".msg[data-role=user] .att-photo-img")
    photo.wait_for()
    frame = chat_frame(page)
    frame.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    # The iframe stored nothing in cookies: the token and the signed links did the work.
    assert page.context.cookies() == []
    assert errors(page) == []


def test_a_page_from_an_origin_the_site_does_not_allow_gets_no_chat(browser, storefront, other_origin, app_origin):
    with page_open(browser, other_origin) as page:
        page.goto(f"{other_origin}/product/cascade-rain-jacket")
        time.sleep(2)
        # The browser refuses to render the widget page in this frame (frame-ancestors).
        assert any("frame-ancestors" in e for e in errors(page)), errors(page)
        assert page.frame_locator(WIDGET).locator("#launcher").count() == 0
        assert page.locator(WIDGET).evaluate("el => getComputedStyle(el).visibility") == "hidden"

        # Claiming to be an allowed shop in ?parent= changes nothing: the browser checks the embedder.
        page.goto(f"{other_origin}/forged")
        time.sleep(1.5)
        assert page.frame_locator("#forged").locator("#launcher").count() == 0

        # A websocket opened straight from this origin is refused at the handshake.
        page.goto(f"{other_origin}/plain")
        outcome = page.evaluate(SOCKET_PROBE, f"{app_origin.replace('http', 'ws')}/ws/chat/?site={SITE_KEY}")
        assert outcome == "refused"

    with page_open(browser, storefront.origin) as page:
        # The allowed origin may (the contract: app origin or one of the site's origins).
        page.goto(f"{storefront.origin}/plain")
        outcome = page.evaluate(SOCKET_PROBE, f"{app_origin.replace('http', 'ws')}/ws/chat/?site={SITE_KEY}")
        assert outcome == "open"


SOCKET_PROBE = """(url) => new Promise((resolve) => {
  const token = "A".repeat(43);
  const socket = new WebSocket(url, ["supportbot.v1", "supportbot.token." + token]);
  socket.onopen = () => { socket.close(); resolve("open"); };
  socket.onerror = () => resolve("refused");
  setTimeout(() => resolve("timeout"), 5000);
})"""
