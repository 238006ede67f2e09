"""Sites and the widget's socket: origins, site keys, the widget's token, identify, heartbeats,
per-site settings, feature switches and limits — through the real ASGI application."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import secrets
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from chat.models import Conversation, Site
from chat.sites import identify_secret, origin_allowed, origin_normalise, site_config
from supportbot.asgi import application
from tests.chat.media.uploads import DEMO_PHOTO
from tests.chat.shopper import Shopper

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]

SHOP = "https://shop.example.com"


def token() -> str:
    return secrets.token_urlsafe(32)


async def make_site(**fields: Any) -> Site:
    fields.setdefault("name", "Northpeak")
    fields.setdefault("allowed_origins", f"{SHOP}\nhttps://www.shop.example.com")
    site: Site = await database_sync_to_async(Site.objects.create)(**fields)
    return site


class WidgetShopper(Shopper):
    """The widget's iframe: no cookies, a token in a subprotocol, the site key in the URL."""

    def __init__(self, key: str, owner: str | None = None, *, origin: str = "http://localhost", lang: str = "") -> None:
        self.owner = owner or token()
        path = f"/ws/chat/?site={key}" + (f"&lang={lang}" if lang else "")
        self.communicator = WebsocketCommunicator(
            application,
            path,
            headers=[(b"origin", origin.encode())],
            subprotocols=["supportbot.v1", f"supportbot.token.{self.owner}"],
        )
        self.conversation = {}
        self.frames = []


async def refused_at_handshake(communicator: WebsocketCommunicator) -> bool:
    # Closed before accept: Daphne answers the handshake with HTTP 403.
    connected, _code = await communicator.connect()
    return not connected


# --- origins and keys ------------------------------------------------------------------------


def test_origins_compare_by_scheme_host_and_port():
    assert origin_normalise("HTTPS://Shop.Example.com:443") == "https://shop.example.com"
    assert origin_normalise("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert origin_normalise("javascript:alert(1)") == "" and origin_normalise("null") == ""
    config = site_config(Site(name="x", allowed_origins="https://shop.example.com"))
    assert origin_allowed(config, "https://shop.example.com:443")
    assert not origin_allowed(config, "http://shop.example.com")  # another scheme is another origin
    assert not origin_allowed(config, "https://shop.example.com.evil.test")
    assert not origin_allowed(config, "https://evil.test")


async def test_the_sites_own_origins_and_the_app_may_open_the_socket_others_are_refused(offline):
    site = await make_site()
    from_shop = WidgetShopper(site.public_key, origin=SHOP)
    await from_shop.connect()
    from_iframe = WidgetShopper(site.public_key, origin="http://localhost")  # the app's own origin
    await from_iframe.connect()
    for stranger in ("https://evil.test", "http://shop.example.com", "null"):
        assert await refused_at_handshake(WidgetShopper(site.public_key, origin=stranger).communicator)
    # Without a site key only the app's own pages may connect, as before.
    assert await refused_at_handshake(Shopper(origin=SHOP).communicator)
    # Another site's origins do not open this site's socket.
    other = await make_site(name="Other", allowed_origins="https://other.example")
    assert await refused_at_handshake(WidgetShopper(site.public_key, origin="https://other.example").communicator)
    assert not await refused_at_handshake(WidgetShopper(other.public_key, origin="https://other.example").communicator)
    await from_shop.disconnect()
    await from_iframe.disconnect()


async def test_an_unknown_or_disabled_site_key_gets_a_clear_refusal(offline):
    unknown = WidgetShopper("pk_doesnotexist")
    connected, subprotocol = await unknown.communicator.connect()
    assert connected and subprotocol == "supportbot.v1"
    error = await unknown.recv()
    assert error["type"] == "error" and error["code"] == "site_unknown" and "not set up" in error["message"]
    closed = await unknown.communicator.receive_output()
    assert closed == {"type": "websocket.close", "code": 4404}

    site = await make_site(enabled=False)
    disabled = WidgetShopper(site.public_key)
    await disabled.communicator.connect()
    error = await disabled.recv()
    assert error["code"] == "site_disabled" and "switched off" in error["message"]
    assert (await disabled.communicator.receive_output())["code"] == 4403
    assert await database_sync_to_async(Conversation.objects.count)() == 0  # nothing half-made


# --- the widget's token ------------------------------------------------------------------------


async def test_the_token_finds_its_conversation_again_on_the_next_page_and_only_on_its_site(offline):
    site = await make_site()
    owner = token()
    first = WidgetShopper(site.public_key, owner)
    snapshot = await first.connect()
    await first.turn("Do you sell rain jackets?")
    await first.disconnect()

    # The next page of the shop: a new socket with the same token opens the same conversation.
    again = WidgetShopper(site.public_key, owner)
    reopened = await again.connect()
    assert reopened["id"] == snapshot["id"]
    assert reopened["messages"][0]["text"] == "Do you sell rain jackets?"
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=snapshot["id"])
    assert conversation.site_id == site.pk and conversation.owner_hash != owner  # only its hash is kept
    await again.disconnect()

    # The same token on another site, another token, or the app's own page: not this conversation.
    other = await make_site(name="Other")
    for shopper in (WidgetShopper(other.public_key, owner), WidgetShopper(site.public_key)):
        assert (await shopper.connect())["id"] != snapshot["id"]
        await shopper.send({"type": "resume", "conversation": snapshot["id"], "after_seq": 0})
        assert (await shopper.recv())["code"] == "not_found"
        await shopper.disconnect()


async def test_a_malformed_token_is_ignored_and_never_echoed(offline):
    site = await make_site()
    shopper = WidgetShopper(site.public_key, owner="short")
    connected, subprotocol = await shopper.communicator.connect()
    assert connected and subprotocol == "supportbot.v1"  # never the token subprotocol
    assert (await shopper.recv())["type"] == "conversation"  # an ephemeral conversation instead
    await shopper.disconnect()


async def test_a_new_conversation_takes_the_pages_language(offline):
    site = await make_site()
    shopper = WidgetShopper(site.public_key, lang="de")
    snapshot = await shopper.connect()
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=snapshot["id"])
    assert conversation.language == "de"
    await shopper.disconnect()
    fixed = await make_site(name="Tienda", language="es")
    spanish = WidgetShopper(fixed.public_key)
    snapshot = await spanish.connect()
    assert (await database_sync_to_async(Conversation.objects.get)(pk=snapshot["id"])).language == "es"
    await spanish.disconnect()


# --- identify ----------------------------------------------------------------------------------


def signature(secret: str, user_id: str, email: str) -> str:
    return hmac.new(secret.encode(), f"{user_id}\n{email}".encode(), hashlib.sha256).hexdigest()


async def test_identify_with_the_shops_signature_is_stored_a_forged_one_is_refused(offline):
    site = await make_site()
    secret = identify_secret(site)
    shopper = WidgetShopper(site.public_key)
    snapshot = await shopper.connect()
    forged = {"type": "identify", "user_id": "cust-42", "email": "ana@example.com", "name": "Ana"}
    await shopper.send({**forged, "signature": signature("guessed", "cust-42", "ana@example.com")})
    assert (await shopper.recv())["code"] == "identify_invalid"
    # Signed for another email: refused too (the email is part of what is signed).
    await shopper.send({**forged, "signature": signature(secret, "cust-42", "eve@example.com")})
    assert (await shopper.recv())["code"] == "identify_invalid"
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=snapshot["id"])
    assert conversation.shopper_id == ""

    await shopper.send({**forged, "signature": signature(secret, "cust-42", "ana@example.com")})
    assert await shopper.recv() == {"type": "identify.ack", "verified": True, "name": "Ana"}
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=snapshot["id"])
    assert (conversation.shopper_id, conversation.shopper_email, conversation.shopper_name) == (
        "cust-42",
        "ana@example.com",
        "Ana",
    )
    # The secret is derived, never stored: rotating the version changes it.
    site.secret_version += 1
    assert identify_secret(site) != secret
    await shopper.disconnect()


async def test_identify_keeps_working_while_the_deployment_rotates_its_secret_key(offline, settings):
    site = await make_site()
    old_secret = identify_secret(site)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-" + secrets.token_urlsafe(20)
    assert identify_secret(site) != old_secret
    shopper = WidgetShopper(site.public_key)
    await shopper.connect()
    await shopper.send({"type": "identify", "user_id": "7", "email": "", "signature": signature(old_secret, "7", "")})
    assert (await shopper.recv())["type"] == "identify.ack"  # the shop's server still has the old one
    settings.SECRET_KEY_FALLBACKS = []
    await shopper.send({"type": "identify", "user_id": "7", "email": "", "signature": signature(old_secret, "7", "")})
    assert (await shopper.recv())["code"] == "identify_invalid"  # fallback dropped: the old one ends
    await shopper.disconnect()


async def test_identify_on_the_apps_own_page_is_refused(offline):
    shopper = Shopper()
    await shopper.connect()
    await shopper.send({"type": "identify", "user_id": "x", "signature": "00"})
    assert (await shopper.recv())["code"] == "identify_invalid"
    await shopper.disconnect()


# --- heartbeats ----------------------------------------------------------------------------------


async def test_a_quiet_socket_gets_pings_and_a_ping_gets_a_pong(offline, settings):
    settings.CHAT_HEARTBEAT_SECONDS = 1
    site = await make_site()
    shopper = WidgetShopper(site.public_key)
    await shopper.connect()
    await shopper.send({"type": "ping"})
    assert await shopper.recv() == {"type": "pong"}
    started = asyncio.get_running_loop().time()
    assert await shopper.recv(timeout=3) == {"type": "ping"}
    assert await shopper.recv(timeout=3) == {"type": "ping"}
    assert asyncio.get_running_loop().time() - started >= 1.5  # about one a second, not a flood
    await shopper.disconnect()


# --- per-site settings, switches and limits -------------------------------------------------------


async def test_the_sites_prompt_and_models_reach_the_model(fake_openai):
    site = await make_site(
        system_prompt="You are the assistant of Northpeak. Always answer in haiku.",
        model="gpt-5.2-chat-latest",
        model_premium="gpt-5.2-pro",
        premium_tier_enabled=False,
    )
    shopper = WidgetShopper(site.public_key)
    await shopper.connect()
    await shopper.turn("My jacket arrived broken, I want a refund")  # premium words, premium switched off
    body = fake_openai.requests[-1].json
    assert body["model"] == "gpt-5.2-chat-latest"
    assert "Always answer in haiku." in body["messages"][0]["content"]
    await shopper.disconnect()


async def test_switched_off_features_are_refused_by_the_server(offline):
    site = await make_site(handoff_enabled=False, photos_enabled=False, voice_enabled=True)
    shopper = WidgetShopper(site.public_key)
    snapshot = await shopper.connect()
    await shopper.send({"type": "handoff"})
    error = await shopper.recv()
    assert error["code"] == "feature_disabled"
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=snapshot["id"])
    assert conversation.handoff_requested_at is None
    response = await upload(site, shopper.owner, snapshot["id"], DEMO_PHOTO.read_bytes())
    assert response.status_code == 403 and response.json()["error"]["code"] == "feature_disabled"
    await shopper.disconnect()


@pytest.mark.usefixtures("rate_window")
async def test_a_sites_message_limit_counts_all_its_shoppers_together(offline):
    site = await make_site(messages_per_minute=2)
    shoppers = [WidgetShopper(site.public_key) for _ in range(3)]
    for shopper in shoppers:
        await shopper.connect()
    for shopper in shoppers[:2]:
        assert (await shopper.turn("hello"))[-1]["type"] == "reply.end"
    await shoppers[2].say("hello")
    refused = await shoppers[2].recv()
    assert refused["code"] == "rate_limited" and refused["retry_after"] >= 1
    other = WidgetShopper((await make_site(name="Other")).public_key)  # other sites are not affected
    await other.connect()
    assert (await other.turn("hello"))[-1]["type"] == "reply.end"
    for shopper in [*shoppers, other]:
        await shopper.disconnect()


async def test_a_sites_connection_cap_turns_the_next_socket_away_politely(offline):
    site = await make_site(connections_max=1)
    first = WidgetShopper(site.public_key)
    await first.connect()
    second = WidgetShopper(site.public_key)
    connected, _ = await second.communicator.connect()
    assert connected
    error = await second.recv()
    assert error["code"] == "too_many_connections" and "busy" in error["message"]
    assert (await second.communicator.receive_output())["code"] == 4429
    await first.disconnect()
    third = WidgetShopper(site.public_key)  # the first one's place is free again
    await third.connect()
    await third.disconnect()


# --- the upload API from the widget ----------------------------------------------------------------


async def upload(site: Site, owner: str, conversation_id: str, data: bytes, **headers: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return await AsyncClient().post(
        f"/api/conversations/{conversation_id}/attachments",
        {"file": SimpleUploadedFile("photo.jpg", data)},
        headers={"Authorization": f"Bearer {owner}", "X-Supportbot-Site": site.public_key, **headers},
    )


async def test_the_widget_uploads_with_its_token_and_reads_back_through_signed_links(offline):
    site = await make_site()
    shopper = WidgetShopper(site.public_key)
    snapshot = await shopper.connect()
    # From the iframe: the app's own origin (the test client's host is "testserver").
    response = await upload(site, shopper.owner, snapshot["id"], DEMO_PHOTO.read_bytes(), Origin="http://testserver")
    assert response.status_code == 201, response.content
    body = response.json()
    # No cookies in the iframe: the link itself carries the proof.
    assert (await AsyncClient().get(body["url"])).status_code == 200
    assert (await AsyncClient().get(body["thumb_url"])).status_code == 200
    assert (await AsyncClient().get(body["url"].split("?")[0])).status_code == 404

    # Another token, another site's key, or a page from another origin: refused, nothing stored.
    assert (await upload(site, token(), snapshot["id"], DEMO_PHOTO.read_bytes())).status_code == 404
    other = await make_site(name="Other")
    assert (await upload(other, shopper.owner, snapshot["id"], DEMO_PHOTO.read_bytes())).status_code == 404
    evil = await upload(site, shopper.owner, snapshot["id"], DEMO_PHOTO.read_bytes(), Origin="https://evil.test")
    assert evil.status_code == 404
    from_shop = await upload(site, shopper.owner, snapshot["id"], DEMO_PHOTO.read_bytes(), Origin=SHOP)
    assert from_shop.status_code == 201
    count = await database_sync_to_async(lambda: Conversation.objects.get(pk=snapshot["id"]).attachments.count())()
    assert count == 2

    # The photo goes out with a message, as on the app's own page.
    await shopper.send(
        {"type": "message", "text": "this one", "client_msg_id": str(uuid.uuid4()), "attachments": [body["id"]]}
    )
    ack = (await shopper.recv_until("message.ack"))[-1]
    assert [a["id"] for a in ack["message"]["attachments"]] == [body["id"]]
    await shopper.recv_until("reply.end")
    await shopper.disconnect()


async def test_the_apps_own_page_still_needs_its_csrf_token_for_uploads(offline):
    from tests.chat.media.uploads import Browser

    browser = await Browser().open()
    forged = AsyncClient(enforce_csrf_checks=True)
    forged.cookies = browser.client.cookies
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = await forged.post(
        f"/api/conversations/{browser.conversation_id}/attachments",
        {"file": SimpleUploadedFile("photo.jpg", DEMO_PHOTO.read_bytes())},
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"


# --- admin -----------------------------------------------------------------------------------------


async def test_staff_see_the_embed_tag_and_secret_and_filter_conversations_by_site(offline):
    from django.contrib.auth.models import User

    site = await make_site()
    shopper = WidgetShopper(site.public_key)
    await shopper.connect()
    await shopper.disconnect()
    other = Shopper()
    await other.connect()
    await other.disconnect()
    admin_user = await database_sync_to_async(User.objects.create_superuser)("boss", password="pw-123456789")
    client = AsyncClient()
    await client.aforce_login(admin_user)
    page = html.unescape((await client.get(f"/admin/chat/site/{site.pk}/change/")).content.decode())
    assert f'data-site="{site.public_key}"' in page and "/static/supportbot/widget.js" in page
    assert identify_secret(site) in page
    listing = (await client.get(f"/admin/chat/conversation/?site__id__exact={site.pk}")).content.decode()
    assert listing.count('class="action-select"') == 1
    # The site's settings, once saved, reach the next socket at once (the cache is cleared).
    response = await client.post(
        f"/admin/chat/site/{site.pk}/change/",
        {
            "name": "Northpeak",
            "allowed_origins": SHOP,
            "brand_color": "#112233",
            "position": "left",
            "language": "",
            "greeting": "",
            "system_prompt": "",
            "contact": "",
            "product_url": "",
            "model": "",
            "model_quick": "",
            "model_premium": "",
            "messages_per_minute": 0,
            "connections_max": 0,
            "uploads_per_hour": 0,
            # enabled unticked: switched off
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    refused = WidgetShopper(site.public_key)
    await refused.communicator.connect()
    assert (await refused.recv())["code"] == "site_disabled"


def test_origins_must_be_origins():
    from django.core.exceptions import ValidationError

    site = Site(name="x", allowed_origins="https://shop.example.com/products\nshop.example.com")
    with pytest.raises(ValidationError) as error:
        site.full_clean()
    assert "allowed_origins" in error.value.message_dict
