"""ASGI entry point: HTTP through Django, websockets through Channels (origin-checked, with the
Django session and user)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these load models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402

# Sessions bind shoppers to their conversations; auth lets staff into the live page.
websocket_app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
if settings.CHAT_ALLOWED_ORIGINS:
    websocket_app = OriginValidator(websocket_app, settings.CHAT_ALLOWED_ORIGINS)
else:
    websocket_app = AllowedHostsOriginValidator(websocket_app)

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})
