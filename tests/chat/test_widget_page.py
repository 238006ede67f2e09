"""The widget's iframe page (/widget/<key>/), the demo storefront and `manage.py site_create`,
through Django's test client."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chat.models import Site
from chat.sites import identify_secret
from chat.widget_views import DEMO_SITE_NAME
from tests.catalog.factories import make_product

pytestmark = pytest.mark.django_db

SHOP = "https://shop.example.com"


def make_site(**fields) -> Site:
    fields.setdefault("name", "Northpeak")
    fields.setdefault("allowed_origins", f"{SHOP}\nhttp://localhost:8080")
    return Site.objects.create(**fields)


def widget(client, site_or_key, parent: str | None = SHOP, **headers):
    key = site_or_key if isinstance(site_or_key, str) else site_or_key.public_key
    query = {} if parent is None else {"parent": parent}
    return client.get(f"/widget/{key}/", query, **headers)


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def data(html: str, name: str) -> str:
    """The value of the first data-<name> attribute in the page."""
    match = re.search(rf'data-{name}="([^"]*)"', html)
    assert match, f"no data-{name} in the page"
    return match.group(1)


def test_frame_ancestors_are_self_and_exactly_the_sites_origins(client):
    site = make_site(
        allowed_origins="https://shop.example.com\nhttps://WWW.shop.example.com:443\nhttp://localhost:8080/"
    )
    response = widget(client, site)
    assert response.status_code == 200
    assert directives(response)["frame-ancestors"] == [
        "'self'",
        "https://shop.example.com",
        "https://www.shop.example.com",
        "http://localhost:8080",
    ]
    # The rest of the policy is the app's strict one.
    assert directives(response)["script-src"] == ["'self'"]
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response


def test_another_sites_origins_do_not_leak_into_the_policy(client):
    make_site(name="Other", allowed_origins="https://other.example")
    site = make_site(allowed_origins=SHOP)
    assert directives(widget(client, site))["frame-ancestors"] == ["'self'", SHOP]


def test_the_app_itself_may_always_frame_the_widget(client):
    site = make_site(allowed_origins="")
    response = widget(client, site, parent="http://testserver")
    assert response.status_code == 200
    assert directives(response)["frame-ancestors"] == ["'self'"]


def test_the_page_carries_the_sites_settings_for_the_scripts(client, settings):
    settings.CHAT_HEARTBEAT_SECONDS = 17
    site = make_site(brand_color="#0a7d4f", position="left", greeting="Hi! Need a size?")
    html = widget(client, site, parent="https://shop.example.com/").content.decode()
    assert data(html, "site-key") == site.public_key
    assert data(html, "parent-origin") == SHOP  # normalised: no trailing slash
    assert data(html, "brand-color") == "#0a7d4f"
    assert data(html, "position") == "left"
    assert data(html, "greeting") == "Hi! Need a size?"
    assert data(html, "shop-name") == "Northpeak"
    assert data(html, "ws-path") == "/ws/chat/"
    assert data(html, "heartbeat-seconds") == "17"
    assert data(html, "max-chars") == str(settings.CHAT_MAX_MESSAGE_CHARS)
    assert data(html, "max-attachments") == str(settings.CHAT_MAX_ATTACHMENTS)
    assert 'role="log"' in html and 'id="launcher"' in html and 'aria-expanded="false"' in html
    # Scripts only from files, catalog first; no inline script or style.
    scripts = re.findall(r"<script[^>]*>", html)
    assert all("src=" in tag for tag in scripts)
    assert "jsi18n/en.js" in scripts[0]
    assert "<style" not in html and "style=" not in html


def test_the_widget_page_sets_no_cookies(client):
    response = widget(client, make_site())
    assert response.status_code == 200
    assert not response.cookies


def test_an_unknown_key_gets_a_404_page_that_says_so(client):
    response = widget(client, "pk_doesnotexist0000")
    assert response.status_code == 404
    assert "This chat does not exist" in response.content.decode()
    assert "X-Frame-Options" not in response


def test_a_switched_off_site_gets_a_403_page(client):
    response = widget(client, make_site(enabled=False))
    assert response.status_code == 403
    assert "This chat is switched off" in response.content.decode()
    assert 'id="chat"' not in response.content.decode()


@pytest.mark.parametrize(
    "parent",
    [
        "https://evil.example",
        "http://shop.example.com",  # another scheme is another origin
        "https://shop.example.com:8443",
        "https://sub.shop.example.com",
        "javascript:alert(1)",
        "",
        None,
    ],
)
def test_a_parent_that_is_not_allowed_gets_a_403_page(client, parent):
    response = widget(client, make_site(), parent=parent)
    assert response.status_code == 403
    html = response.content.decode()
    assert "This website is not allowed to show this chat" in html
    assert 'id="chat"' not in html and "<script" not in html


def test_the_sites_language_wins_over_the_browser(client):
    site = make_site(language="de")
    response = widget(client, site, HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")
    html = response.content.decode()
    assert '<html lang="de"' in html and data(html, "language") == "de"
    assert response["Content-Language"] == "de"
    assert "jsi18n/de.js" in html


def test_without_a_site_language_the_browsers_is_used(client):
    site = make_site(language="")
    html = widget(client, site, HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="es"' in html and data(html, "language") == "es"
    html = widget(client, site, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert data(html, "language") == "en"


def test_refusals_are_in_the_sites_language(client):
    site = make_site(language="de")
    response = widget(client, site, parent="https://evil.example")
    assert response.status_code == 403 and '<html lang="de"' in response.content.decode()


def test_feature_switches_reach_the_page(client):
    site = make_site(photos_enabled=False, voice_enabled=True, handoff_enabled=False)
    html = widget(client, site).content.decode()
    assert data(html, "photos") == "false" and data(html, "voice") == "true"
    assert data(html, "handoff") == "false"
    assert re.search(r'id="handoff"[^>]*widget-off|widget-off[^>]*id="handoff"', html.replace("\n", " "))


def test_with_photos_and_voice_off_nothing_can_be_attached(client):
    site = make_site(photos_enabled=False, voice_enabled=False)
    html = widget(client, site).content.decode()
    assert data(html, "max-attachments") == "0"


def test_everything_on_by_default(client):
    html = widget(client, make_site()).content.decode()
    assert data(html, "photos") == "true" and data(html, "voice") == "true" and data(html, "handoff") == "true"
    assert "widget-off" not in html


# --- The demo storefront -------------------------------------------------------------------


def test_the_demo_store_lists_products_and_embeds_the_real_loader_tag(client):
    make_product(handle="cascade-rain-jacket", title="Cascade 2.5L Rain Jacket", variants=[{"price": "159.00"}])
    response = client.get("/demo/store/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cascade 2.5L Rain Jacket" in html and "/demo/store/cascade-rain-jacket/" in html
    site = Site.objects.get(name=DEMO_SITE_NAME)
    tag = f'<script src="http://testserver/static/supportbot/widget.js" data-site="{site.public_key}" async></script>'
    assert tag in html
    client.get("/demo/store/")
    assert Site.objects.filter(name=DEMO_SITE_NAME).count() == 1


def test_a_demo_product_page_shows_the_product_and_sets_the_context_from_a_file(client):
    make_product(
        handle="trail-gaiters",
        title="Trail Gaiters",
        option1_name="Size",
        variants=[{"price": "25.00", "option1": "S", "inventory_quantity": 4}, {"price": "27.00", "option1": "L"}],
    )
    response = client.get("/demo/store/trail-gaiters/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1" in html and "Trail Gaiters" in html and "25.00 USD – 27.00 USD" in html
    assert 'data-product-handle="trail-gaiters"' in html and "/static/demo/product.js" in html
    assert "Sold out" in html  # the L variant
    scripts = re.findall(r"<script[^>]*>", html)
    assert all("src=" in tag for tag in scripts)
    assert client.get("/demo/store/no-such-thing/").status_code == 404


def test_the_demo_site_may_be_framed_by_the_app_itself(client):
    client.get("/demo/store/")
    site = Site.objects.get(name=DEMO_SITE_NAME)
    assert widget(client, site, parent="http://testserver").status_code == 200


# --- manage.py site_create ------------------------------------------------------------------


def test_site_create_prints_the_key_the_secret_and_the_tag():
    out = StringIO()
    call_command("site_create", "Northpeak", "--origin", "https://Shop.example.com/", "--language", "de", stdout=out)
    site = Site.objects.get(name="Northpeak")
    text = out.getvalue()
    assert f"public_key: {site.public_key}" in text
    assert f"identify_secret: {identify_secret(site)}" in text
    assert f'data-site="{site.public_key}"' in text
    assert site.origins == ["https://shop.example.com"] and site.language == "de" and site.enabled


def test_site_create_with_an_existing_key_updates_only_what_is_given():
    call_command("site_create", "Northpeak", "--key", "pk_test_fixed_key_01", "--origin", SHOP, stdout=StringIO())
    call_command("site_create", "Northpeak 2", "--key", "pk_test_fixed_key_01", "--no-voice", stdout=StringIO())
    site = Site.objects.get(public_key="pk_test_fixed_key_01")
    assert site.name == "Northpeak 2" and site.origins == [SHOP]
    assert not site.voice_enabled and site.photos_enabled and site.enabled


def test_site_create_refuses_bad_values():
    with pytest.raises(CommandError, match="origin"):
        call_command("site_create", "Bad", "--origin", "shop.example.com/path", stdout=StringIO())
    with pytest.raises(CommandError, match="--key"):
        call_command("site_create", "Bad", "--key", "nope", stdout=StringIO())
    assert not Site.objects.filter(name="Bad").exists()
