"""Which endpoints and models a turn may use: the failover chain, model tiers, capabilities,
and per-endpoint request parameters. All read from settings at call time."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TIERS = ("quick", "default", "premium")
# Model families known to see images and call tools. Anything else (a local model, say) is
# assumed to call tools but not to see images, unless LLM_MODEL_CAPABILITIES says otherwise.
_VISION_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-5", "o3", "o4", "chatgpt-4o")


@dataclass(frozen=True)
class Capabilities:
    vision: bool = False
    audio: bool = False
    tools: bool = True


@dataclass(frozen=True)
class Endpoint:
    """One place to send a request: base URL, key, model and how that server wants its params."""

    name: str
    base_url: str
    api_key: str = field(repr=False)  # the key must never end up in a log line
    model: str
    max_tokens_param: str = "max_completion_tokens"
    concurrency: int | None = None
    requests_per_minute: int | None = None
    send_prompt_cache_key: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity for health and pool bookkeeping (never includes the key)."""
        return f"{self.base_url}#{self.model}"

    @property
    def capabilities(self) -> Capabilities:
        return capabilities_for(self.model)


def capabilities_for(model: str) -> Capabilities:
    configured = settings.LLM_MODEL_CAPABILITIES.get(model)
    if isinstance(configured, dict):
        return Capabilities(
            vision=bool(configured.get("vision", False)),
            audio=bool(configured.get("audio", False)),
            tools=bool(configured.get("tools", True)),
        )
    name = model.lower()
    return Capabilities(vision=name.startswith(_VISION_PREFIXES), audio="audio" in name, tools=True)


def _positive_or_none(value: int) -> int | None:
    return value if value > 0 else None


def _primary() -> Endpoint:
    base_url = settings.LLM_BASE_URL
    cache_key = settings.LLM_PROMPT_CACHE_KEY
    return Endpoint(
        name="primary",
        base_url=base_url,
        api_key=settings.LLM_API_KEY,
        model=settings.LLM_MODEL,
        max_tokens_param=settings.LLM_MAX_TOKENS_PARAM,
        concurrency=_positive_or_none(settings.LLM_ENDPOINT_CONCURRENCY),
        requests_per_minute=_positive_or_none(settings.LLM_REQUESTS_PER_MINUTE),
        # Only OpenAI itself is known to accept prompt_cache_key; strict servers refuse unknown fields.
        send_prompt_cache_key=cache_key == "on" or (cache_key == "auto" and "api.openai.com" in base_url),
    )


_FALLBACK_FIELDS = {"name", "base_url", "api_key", "model", "max_tokens_param", "concurrency", "requests_per_minute"}


def _fallback(primary: Endpoint, raw: Any, index: int) -> Endpoint:
    where = f"LLM_FALLBACKS[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("model", primary.model), str):
        raise ImproperlyConfigured(f"{where} must be an object like {{'base_url': …, 'model': …}}")
    unknown = set(raw) - _FALLBACK_FIELDS - {"params"}
    if unknown:
        raise ImproperlyConfigured(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    if raw.get("max_tokens_param", "max_completion_tokens") not in {"max_completion_tokens", "max_tokens"}:
        raise ImproperlyConfigured(f"{where}.max_tokens_param must be max_completion_tokens or max_tokens")
    base_url = str(raw.get("base_url") or primary.base_url).rstrip("/")
    same_server = base_url == primary.base_url
    return Endpoint(
        name=str(raw.get("name") or f"fallback-{index + 1}"),
        base_url=base_url,
        # Another server never gets the primary's key unless the configuration says so.
        api_key=str(raw.get("api_key") or (primary.api_key if same_server else "")),
        model=str(raw.get("model") or primary.model),
        max_tokens_param=str(raw.get("max_tokens_param") or primary.max_tokens_param),
        concurrency=raw.get("concurrency") or None,
        requests_per_minute=raw.get("requests_per_minute") or None,
        send_prompt_cache_key=primary.send_prompt_cache_key and same_server,
        extra=dict(raw.get("params") or {}),
    )


def endpoint_chain(*, model: str | None = None) -> list[Endpoint]:
    """The primary endpoint (with `model` if given) followed by the configured fallbacks."""
    primary = _primary()
    fallbacks = [_fallback(primary, raw, i) for i, raw in enumerate(settings.LLM_FALLBACKS)]
    if model:
        primary = replace(primary, model=model)
    return [primary, *fallbacks]


class TierModels(Protocol):
    """The models of a site (chat/sites.py SiteConfig): blank quick/premium means no such tier."""

    @property
    def model(self) -> str: ...
    @property
    def model_quick(self) -> str: ...
    @property
    def model_premium(self) -> str: ...


def _models(site: TierModels | None) -> tuple[str, str, str]:
    if site is None:
        return str(settings.LLM_MODEL), str(settings.LLM_MODEL_QUICK), str(settings.LLM_MODEL_PREMIUM)
    return site.model or str(settings.LLM_MODEL), site.model_quick, site.model_premium


def model_for_tier(tier: str, site: TierModels | None = None) -> str:
    default, quick, premium = _models(site)
    if tier == "quick" and quick:
        return quick
    if tier == "premium" and premium:
        return premium
    return default


def tier_choose(*, text: str, override: str = "", site: TierModels | None = None) -> str:
    """Staff's choice wins; sensitive messages go premium; short ones quick; the rest default.
    A tier the site switched off has no model, so it is never chosen by the rules."""
    if override in TIERS:
        return override
    _default, quick, premium = _models(site)
    lowered = text.lower()
    if premium and any(word in lowered for word in settings.LLM_PREMIUM_KEYWORDS):
        return "premium"
    if quick and len(text) <= settings.LLM_QUICK_MAX_CHARS:
        return "quick"
    return "default"


def request_params(endpoint: Endpoint) -> dict[str, Any]:
    """Sampling and limit parameters for a request to `endpoint`, in the names it accepts."""
    params: dict[str, Any] = {}
    if settings.LLM_MAX_COMPLETION_TOKENS:
        params[endpoint.max_tokens_param] = settings.LLM_MAX_COMPLETION_TOKENS
    if settings.LLM_REASONING_EFFORT:
        params["reasoning_effort"] = settings.LLM_REASONING_EFFORT
    if settings.LLM_TEMPERATURE:
        try:
            params["temperature"] = float(settings.LLM_TEMPERATURE)
        except ValueError:
            raise ImproperlyConfigured(f"LLM_TEMPERATURE must be a number, got {settings.LLM_TEMPERATURE!r}") from None
    if settings.LLM_STOP:
        params["stop"] = list(settings.LLM_STOP)
    params.update(endpoint.extra)
    return params
