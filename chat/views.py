from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from chat.llm import model_configured
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


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """For load balancers: is the database reachable? Says which model mode is on, never more."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:
        database = "unavailable"
    status = 200 if database == "ok" else 503
    mode = "model" if model_configured() else "offline"
    return JsonResponse(
        {"status": "ok" if status == 200 else "degraded", "database": database, "mode": mode}, status=status
    )
