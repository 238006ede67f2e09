"""The storefront widget's iframe page (/widget/<key>/) and the demo storefront (/demo/store/).

The loader a shop pastes (static/supportbot/widget.js) adds one iframe pointing here, so the chat
runs on the app's own origin: the shop's CSS cannot reach it, and the shop's page cannot read it.
Who may frame the page is the site's allowed origins (CSP frame-ancestors, checked by the
browser); the `parent` the loader names is checked against the same list, because the iframe
posts its messages to that origin.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from csp.constants import SELF
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.translation import get_supported_language_variant
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from catalog.models import Product
from chat.llm import model_configured
from chat.models import Site
from chat.sites import SiteConfig, origin_allowed, origin_normalise, site_config, site_get_by_key

DEMO_SITE_NAME = "Demo store"


def _own_origin(request: HttpRequest) -> str:
    return origin_normalise(f"{request.scheme}://{request.get_host()}")


def _language(request: HttpRequest, config: SiteConfig) -> str:
    """The site's language, else the shopper's (LocaleMiddleware read Accept-Language)."""
    wanted = config.language or getattr(request, "LANGUAGE_CODE", "") or settings.LANGUAGE_CODE
    try:
        return get_supported_language_variant(wanted)
    except LookupError:
        return settings.LANGUAGE_CODE


def _jsi18n_url(language: str) -> str:
    # The JavaScript catalog (/jsi18n/<lang>.js) of the page's language.
    return reverse("jsi18n", args=[language])


def _frame_ancestors(config: SiteConfig | None) -> list[str]:
    origins = [origin_normalise(origin) for origin in config.origins] if config else []
    return [SELF, *dict.fromkeys(origin for origin in origins if origin)]


def _widget_response(
    request: HttpRequest, context: dict[str, Any], *, status: int, config: SiteConfig | None, language: str
) -> HttpResponse:
    with translation.override(language):
        response = render(request, "chat/widget.html", {**context, "language": language}, status=status)
    response["Content-Language"] = language
    # django-csp reads this attribute (what its @csp_replace decorator sets): only the site's
    # storefronts (and the app itself, for the demo store) may frame the chat.
    response._csp_replace = {"frame-ancestors": _frame_ancestors(config)}  # type: ignore[attr-defined]
    return response


def _refusal(
    request: HttpRequest, *, status: int, title: str, message: str, config: SiteConfig | None, language: str
) -> HttpResponse:
    context = {"error": {"title": title, "message": message}, "shop_name": config.name if config else ""}
    return _widget_response(request, context, status=status, config=config, language=language)


@require_safe
@never_cache
@xframe_options_exempt
def widget_page(request: HttpRequest, public_key: str) -> HttpResponse:
    """The chat in the storefront's iframe. `?parent=` is the embedding page's origin."""
    site = site_get_by_key(public_key)
    if site is None:
        language = _language(request, SiteConfig())
        with translation.override(language):
            title, message = _("Chat not found"), _("This chat does not exist. Check the site key in the widget's tag.")
        return _refusal(request, status=404, title=title, message=message, config=None, language=language)
    config = site_config(site)
    language = _language(request, config)
    if not config.enabled:
        with translation.override(language):
            title, message = _("Chat unavailable"), _("This chat is switched off at the moment.")
        return _refusal(request, status=403, title=title, message=message, config=config, language=language)
    parent = origin_normalise(request.GET.get("parent", ""))
    if not parent or not (parent == _own_origin(request) or origin_allowed(config, parent)):
        with translation.override(language):
            title, message = _("Chat unavailable"), _("This website is not allowed to show this chat.")
        return _refusal(request, status=403, title=title, message=message, config=config, language=language)
    media_on = settings.CHAT_MAX_ATTACHMENTS > 0 and (config.photos or config.voice)
    context = {
        "site_key": config.public_key,
        "parent_origin": parent,
        "shop_name": config.name,
        "brand_color": config.brand_color,
        "position": config.position,
        "greeting": config.greeting,
        "photos": config.photos,
        "voice": config.voice,
        "handoff": config.handoff,
        "ws_path": "/ws/chat/",
        "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
        "model_configured": model_configured(),
        "max_attachments": settings.CHAT_MAX_ATTACHMENTS if media_on else 0,
        "image_max_bytes": settings.CHAT_IMAGE_MAX_BYTES,
        "audio_max_bytes": settings.CHAT_AUDIO_MAX_BYTES,
        "audio_max_seconds": settings.CHAT_AUDIO_MAX_SECONDS,
        "heartbeat_seconds": settings.CHAT_HEARTBEAT_SECONDS,
        "jsi18n_url": _jsi18n_url(language),
    }
    return _widget_response(request, context, status=200, config=config, language=language)


# --- The demo storefront: a product list and product pages that embed the widget ----------------


def demo_site() -> Site:
    """The demo store's Site. No allowed origins: the app's own origin may always frame it."""
    site = Site.objects.filter(name=DEMO_SITE_NAME).order_by("pk").first()
    if site is None:
        site = Site.objects.create(
            name=DEMO_SITE_NAME, greeting="Hi! Questions about sizes, stock or delivery? Ask me."
        )
    return site


def _price_text(product: Product) -> str:
    prices = product.price_range
    if prices is None:
        return ""
    low, high = prices
    return _money(low) if low == high else f"{_money(low)} – {_money(high)}"


def _money(amount: Decimal) -> str:
    return f"{amount:.2f} {settings.SHOP_CURRENCY}"


def _image_url(product: Product) -> str | None:
    # Only images this app serves: the page's CSP allows no other image origin.
    for image in product.images.all():
        if image.image and settings.SERVE_MEDIA:
            return str(image.image.url)
    return None


def _store_context(request: HttpRequest) -> dict[str, Any]:
    site = demo_site()
    return {
        "site_key": site.public_key,
        "loader_url": request.build_absolute_uri(static("supportbot/widget.js")),
        "store_name": settings.SHOP_NAME,
        "currency": settings.SHOP_CURRENCY,
    }


@require_safe
def demo_store(request: HttpRequest) -> HttpResponse:
    products = Product.objects.filter(status=Product.Status.ACTIVE).prefetch_related("variants", "images")[:60]
    items = [
        {"handle": p.handle, "title": p.title, "vendor": p.vendor, "price": _price_text(p), "image": _image_url(p)}
        for p in products
    ]
    return render(request, "demo/store.html", {**_store_context(request), "products": items})


@require_safe
def demo_product(request: HttpRequest, handle: str) -> HttpResponse:
    product = get_object_or_404(
        Product.objects.prefetch_related("variants", "images"), handle=handle, status=Product.Status.ACTIVE
    )
    variants = [
        {
            "label": " / ".join(variant.option_values) or variant.sku,
            "sku": variant.sku,
            "price": _money(variant.price),
            "compare_at_price": _money(variant.compare_at_price)
            if variant.on_sale and variant.compare_at_price
            else "",
            "stock": max(variant.inventory_quantity, 0),
        }
        for variant in product.variants.all()
    ]
    context = {
        **_store_context(request),
        "product": {
            "handle": product.handle,
            "title": product.title,
            "vendor": product.vendor,
            "description": product.description_text,
            "price": _price_text(product),
            "image": _image_url(product),
            "options": product.option_names,
        },
        "variants": variants,
    }
    return render(request, "demo/product.html", context)
