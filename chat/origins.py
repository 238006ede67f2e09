"""Which pages may open the shopper's websocket.

The app's own pages (ALLOWED_HOSTS, or CHAT_ALLOWED_ORIGINS when set) always may: the widget's
iframe is one of them. A socket that names a site (`/ws/chat/?site=KEY`) may also come from that
site's allowed origins. Anything else is refused at the handshake (HTTP 403), before a consumer
exists. An unknown or disabled key passes here and gets its clear refusal from the consumer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator, WebsocketDenier
from django.conf import settings

from chat.sites import origin_allowed, site_config, site_get_by_key


def site_key_from_scope(scope: dict[str, Any]) -> str:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("site") or [""]
    return str(values[0])[:64]


def _origin_header(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"origin":
            return str(value.decode("latin-1"))
    return ""


class ChatOriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application
        if settings.CHAT_ALLOWED_ORIGINS:
            self.own: OriginValidator = OriginValidator(application, settings.CHAT_ALLOWED_ORIGINS)
        else:
            self.own = AllowedHostsOriginValidator(application)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.application(scope, receive, send)
        origin = _origin_header(scope)
        parsed = urlparse(origin.lower()) if origin else None
        if self.own.valid_origin(parsed):
            return await self.application(scope, receive, send)
        # Only the shopper's socket: the staff socket is for the app's own pages alone.
        key = site_key_from_scope(scope) if scope.get("path") == "/ws/chat/" else ""
        if key and origin:
            site = await database_sync_to_async(site_get_by_key)(key)
            if site is None or origin_allowed(site_config(site), origin):
                return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
