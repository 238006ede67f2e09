from __future__ import annotations

import asyncio
import hmac

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chat import metrics
from chat.events import channel_layer
from chat.llm import model_configured
from chat.llm.pool import request_pool
from chat.ownership import owner_token_ensure
from chat.states import display_name


@never_cache
@ensure_csrf_cookie
def chat_page(request: HttpRequest) -> HttpResponse:
    # Setting the owner token gives the browser a session cookie that binds its conversation.
    owner_token_ensure(request.session)
    return render(
        request,
        "chat/index.html",
        {
            "shop_name": settings.SHOP_NAME,
            "ws_path": "/ws/chat/",
            "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
            "model_configured": model_configured(),
            "max_attachments": settings.CHAT_MAX_ATTACHMENTS,
            "image_max_bytes": settings.CHAT_IMAGE_MAX_BYTES,
            "audio_max_bytes": settings.CHAT_AUDIO_MAX_BYTES,
            "audio_max_seconds": settings.CHAT_AUDIO_MAX_SECONDS,
        },
    )


@never_cache
@ensure_csrf_cookie
@staff_member_required
@permission_required("chat.handle_conversation", raise_exception=True)
def staff_live(request: HttpRequest) -> HttpResponse:
    """The live page: waiting and active conversations, take-over and reply (see /ws/staff/)."""
    return render(request, "staff/live.html", {"me_name": display_name(request.user), "ws_path": "/ws/staff/"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False
    finally:
        connection.close()


async def _channel_layer_ok() -> bool:
    """A message sent to a fresh channel comes back: the layer (Redis, when used) works."""
    try:
        layer = channel_layer()
        channel = await layer.new_channel()
        async with asyncio.timeout(2):
            await layer.send(channel, {"type": "health.ping"})
            message = await layer.receive(channel)
        return bool(message.get("type") == "health.ping")
    except Exception:
        return False


@never_cache
async def health(request: HttpRequest) -> JsonResponse:
    """For load balancers: can this process reach its database and channel layer? Says which
    model mode is on, never more."""
    database = "ok" if await sync_to_async(_database_ok, thread_sensitive=False)() else "unavailable"
    layer = "ok" if await _channel_layer_ok() else "unavailable"
    healthy = database == "ok" and layer == "ok"
    body = {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "channel_layer": layer,
        "mode": "model" if model_configured() else "offline",
    }
    return JsonResponse(body, status=200 if healthy else 503)


@never_cache
async def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus counters of this process. With METRICS_TOKEN set, a scraper sends it as a
    Bearer token; without, only loopback clients may read (keep /metrics off the public proxy)."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return HttpResponse(status=403)
    elif request.META.get("REMOTE_ADDR") not in {"127.0.0.1", "::1"}:
        return HttpResponse(status=403)
    stats = request_pool().stats()
    metrics.QUEUE.labels(state="active").set(stats["active"])
    metrics.QUEUE.labels(state="waiting").set(stats["waiting"])
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_LATEST)
