from django.urls import path

from chat.consumers import ChatConsumer
from chat.staff_consumer import StaffConsumer

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    path("ws/staff/", StaffConsumer.as_asgi()),
]
