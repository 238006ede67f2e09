from channels.auth import AuthMiddlewareStack
from channels.sessions import CookieMiddleware
from django.urls import path

from chat.consumers import ChatConsumer
from chat.staff_consumer import StaffConsumer

websocket_urlpatterns = [
    # Shoppers: only the cookies are parsed here. The consumer reads the session (the chat page's
    # owner token) in the same database call that opens the conversation; channels' session and
    # auth middleware would cost each socket two more trips to a database thread for a session
    # and a user it does not use (docs/benchmarks.md, seventh round).
    path("ws/chat/", CookieMiddleware(ChatConsumer.as_asgi())),
    # Staff: Django's session and user, for the live page's permissions.
    path("ws/staff/", AuthMiddlewareStack(StaffConsumer.as_asgi())),
]
