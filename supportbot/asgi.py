"""ASGI entry point: HTTP through Django, websockets through Channels (origin-checked; sessions
and users as each route needs them, chat/routing.py)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportbot.settings")
# What django.core.asgi.get_asgi_application() does, with HTTP requests on a few long-lived
# threads instead of one new thread (and database connection) each (supportbot/http.py).
django.setup(set_prefix=False)

# Imported after Django is set up: these load models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from chat.origins import ChatOriginValidator  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from supportbot.http import http_application  # noqa: E402
from supportbot.runtime import gc_tune  # noqa: E402

django_asgi_app = http_application(settings.HTTP_THREADS)

# Sessions bind shoppers of the app's own page to their conversations (the widget uses a token
# instead); staff sockets get Django's session and user: chat/routing.py. Origins: chat/origins.py.
websocket_app = ChatOriginValidator(URLRouter(websocket_urlpatterns))

application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_app})

# Everything the server needs is loaded now (the URL patterns too, which Django would load on the
# first request): collect and freeze it, and tune the collector (supportbot/runtime.py).
get_resolver().url_patterns  # noqa: B018
gc_tune(settings.GC_THRESHOLDS)
