"""Sites: the storefronts that embed the widget (chat/models.py Site).

Everything downstream reads a SiteConfig: a site's own settings where it has them, the
deployment's environment settings where it does not, and for the app's own chat page (no site)
the environment alone. Reads are synchronous (call via database_sync_to_async).
"""

from __future__ import annotations

import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from chat.errors import ChatError
from chat.models import Site

# A site's settings are read on every connect and turn; staff edits show within this long.
CACHE_SECONDS = 10


@dataclass(frozen=True)
class SiteConfig:
    site_id: int | None = None
    public_key: str = ""
    name: str = ""
    enabled: bool = True
    origins: tuple[str, ...] = ()
    brand_color: str = "#1f6feb"
    position: str = "right"
    language: str = ""
    greeting: str = ""
    system_prompt: str = ""
    contact: str = ""
    product_url: str = ""
    model: str = ""
    model_quick: str = ""
    model_premium: str = ""
    photos: bool = True
    voice: bool = True
    handoff: bool = True
    quick_tier: bool = True
    premium_tier: bool = True
    messages_per_minute: int = 0
    connections_max: int = 0
    uploads_per_hour: int = 0
    tiers: frozenset[str] = field(default_factory=lambda: frozenset({"quick", "default", "premium"}))


def site_config(site: Site | None) -> SiteConfig:
    """The effective settings of `site` (None: the app's own page, environment settings only)."""
    if site is None:
        return SiteConfig(
            name=settings.SHOP_NAME,
            system_prompt=settings.SHOP_SYSTEM_PROMPT,
            contact=settings.SHOP_CONTACT,
            product_url=settings.SHOP_PRODUCT_URL,
            model=settings.LLM_MODEL,
            model_quick=settings.LLM_MODEL_QUICK,
            model_premium=settings.LLM_MODEL_PREMIUM,
        )
    tiers = {"default"}
    if site.quick_tier_enabled:
        tiers.add("quick")
    if site.premium_tier_enabled:
        tiers.add("premium")
    return SiteConfig(
        site_id=site.pk,
        public_key=site.public_key,
        name=site.name,
        enabled=site.enabled,
        origins=tuple(site.origins),
        brand_color=site.brand_color,
        position=site.position,
        language=site.language,
        greeting=site.greeting,
        system_prompt=site.system_prompt or settings.SHOP_SYSTEM_PROMPT,
        contact=site.contact or settings.SHOP_CONTACT,
        product_url=site.product_url or settings.SHOP_PRODUCT_URL,
        model=site.model or settings.LLM_MODEL,
        model_quick=(site.model_quick or settings.LLM_MODEL_QUICK) if site.quick_tier_enabled else "",
        model_premium=(site.model_premium or settings.LLM_MODEL_PREMIUM) if site.premium_tier_enabled else "",
        photos=site.photos_enabled,
        voice=site.voice_enabled,
        handoff=site.handoff_enabled,
        quick_tier=site.quick_tier_enabled,
        premium_tier=site.premium_tier_enabled,
        messages_per_minute=site.messages_per_minute,
        connections_max=site.connections_max,
        uploads_per_hour=site.uploads_per_hour,
        tiers=frozenset(tiers),
    )


# The site of the turn running in this context (set by chat/replies.py): the offline assistant
# and hand-off notices read their contact details from it.
turn_site: ContextVar[SiteConfig | None] = ContextVar("turn_site", default=None)


def site_current() -> SiteConfig:
    return turn_site.get() or site_config(None)


def _cache_key(public_key: str) -> str:
    return f"site:{public_key}"


def site_get_by_key(public_key: str) -> Site | None:
    """The site with this public key, enabled or not (callers say which refusal applies)."""
    if not public_key or len(public_key) > 40:
        return None
    key = _cache_key(public_key)
    site = cache.get(key)
    if site is None:
        site = Site.objects.filter(public_key=public_key).first()
        # A miss is cached too (as False), so a flood of bad keys stays off the database.
        cache.set(key, site or False, CACHE_SECONDS)
    return site or None


def site_cache_clear(site: Site) -> None:
    cache.delete(_cache_key(site.public_key))


def origin_normalise(origin: str) -> str:
    """scheme://host[:port] in lower case, default ports dropped; '' for anything else."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return ""
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(config: SiteConfig, origin: str) -> bool:
    wanted = origin_normalise(origin)
    return bool(wanted) and any(origin_normalise(allowed) == wanted for allowed in config.origins)


def identify_secret(site: Site, key: str | None = None) -> str:
    """The secret a shop's server signs identify() calls with. Derived from SECRET_KEY, the
    site's key and its secret version, so it is never stored; rotating bumps the version."""
    message = f"supportbot.identify:{site.public_key}:{site.secret_version}".encode()
    return hmac.new((key or settings.SECRET_KEY).encode(), message, hashlib.sha256).hexdigest()


def identify_payload(*, user_id: str, email: str) -> bytes:
    """What the shop's server signs: the user id, a newline, the email (empty when none)."""
    return f"{user_id}\n{email}".encode()


def identify_verify(site: Site, *, user_id: str, email: str, signature: str) -> bool:
    """True when `signature` was made with the site's secret under SECRET_KEY or one of
    SECRET_KEY_FALLBACKS (shops keep working while the deployment rotates its key)."""
    payload = identify_payload(user_id=user_id, email=email)
    sent = signature.strip().lower()
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return any(
        hmac.compare_digest(hmac.new(identify_secret(site, key).encode(), payload, hashlib.sha256).hexdigest(), sent)
        for key in keys
    )


# --- Refusals (error frames; codes are part of docs/protocol.md) ----------------------------


class SiteUnknown(ChatError):
    code = "site_unknown"
    default_message = _("This chat is not set up for this website (unknown site key).")


class SiteDisabled(ChatError):
    code = "site_disabled"
    default_message = _("This chat is switched off for this website at the moment.")


class IdentifyInvalid(ChatError):
    code = "identify_invalid"
    default_message = _("The sign-in details from this website could not be verified.")


class FeatureDisabled(ChatError):
    code = "feature_disabled"
    default_message = _("This chat does not offer that on this website.")
