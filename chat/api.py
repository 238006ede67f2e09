"""The HTTP side of the chat: uploading photos and voice notes, and fetching them back.

Same binding as the websocket: a conversation belongs to the browser session that started it
(chat/ownership.py); staff may read every attachment. CSRF is checked the Django way (the chat
page sets the csrftoken cookie; the page sends it back in X-CSRFToken). Errors are JSON
`{"error": {"code", "message"}}` with words for the shopper; translated here, in one place.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, cast

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import translation
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from chat import metrics, selectors
from chat.errors import ChatError, CsrfFailed, MediaRefused
from chat.media.selectors import (
    attachment_get,
    attachment_serialize,
    attachment_signature_valid,
    attachments_pending_count,
)
from chat.media.services import attachment_unsent_delete
from chat.media.sniff import media_sniff
from chat.media.storage import attachments_storage
from chat.media.upload import attachment_upload
from chat.media.workers import media_run, media_run_db
from chat.models import Attachment, Conversation, Site
from chat.ownership import OWNER_SESSION_KEY, owner_token_from_bearer
from chat.ratelimit import rate_limit_hit
from chat.sites import FeatureDisabled, SiteConfig, origin_allowed, origin_normalise, site_config, site_get_by_key

logger = logging.getLogger(__name__)

# Uploads waiting to be sent with a message, per conversation: a page cannot pile up files.
MAX_PENDING = 20
# Room for the multipart envelope around the file.
MULTIPART_OVERHEAD = 64 * 1024
NOT_FOUND = gettext_lazy("That conversation is not available in this browser. Reload the page and try again.")


def error_response(error: ChatError, status: int, headers: dict[str, str] | None = None) -> JsonResponse:
    body = {"error": {"code": error.code, "message": error.message}}
    return JsonResponse(body, status=status, headers=headers)


def _bearer(request: HttpRequest) -> str | None:
    return owner_token_from_bearer(request.headers.get("Authorization", ""))


async def _request_site(request: HttpRequest) -> Site | None:
    """The widget's site (X-Supportbot-Site), when it is known and switched on."""
    site: Site | None = await database_sync_to_async(site_get_by_key)(request.headers.get("X-Supportbot-Site", ""))
    return site if site is not None and site.enabled else None


async def _owned_conversation(request: HttpRequest, conversation_id: uuid.UUID) -> Conversation | None:
    """The conversation, if the caller holds it: the widget by its token (Authorization: Bearer,
    with its site), the app's own page by its session."""
    token = _bearer(request)
    site_id: int | None = None
    if token is not None:
        site = await _request_site(request)
        if site is None or not _origin_ok(request, site):
            return None
        site_id = site.pk
    else:
        session_token = await request.session.aget(OWNER_SESSION_KEY)
        if not isinstance(session_token, str):
            return None
        token = session_token
    conversation: Conversation | None = await database_sync_to_async(selectors.conversation_get_for_owner)(
        conversation_id=conversation_id, owner_token=token, site_id=site_id
    )
    return conversation


def _origin_ok(request: HttpRequest, site: Site) -> bool:
    """A browser names the page that sent the request: it must be the app's own (the widget's
    iframe) or one of the site's allowed origins. Non-browser clients send no Origin."""
    origin = request.headers.get("Origin")
    if not origin:
        return True
    own = origin_normalise(f"{request.scheme}://{request.get_host()}")
    return origin_normalise(origin) == own or origin_allowed(site_config(site), origin)


def csrf_unless_bearer(view: Callable[..., Awaitable[HttpResponse]]) -> Any:
    """Django's CSRF check for the app's own page (cookies ride along, so a forged form could
    use them); skipped for the widget's Bearer requests, which carry no ambient credentials."""

    @wraps(view)
    async def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _bearer(request) is None:
            refused = _csrf.process_view(request, cast(Any, view), args, kwargs)
            if refused is not None:
                return refused
        return await view(request, *args, **kwargs)

    return csrf_exempt(checked)


_csrf = CsrfViewMiddleware(lambda request: HttpResponse())


@csrf_unless_bearer
@require_POST
async def attachment_create(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    """POST /api/conversations/<id>/attachments, multipart field `file` → 201 ATTACHMENT."""
    conversation = await _owned_conversation(request, conversation_id)
    if conversation is None:
        return error_response(ChatError(NOT_FOUND), 404)
    if conversation.language:
        # Refusals in the chat's language, which the widget's site may fix whatever the browser says.
        translation.activate(conversation.language)
    site = await database_sync_to_async(lambda: conversation.site)()
    config = site_config(site) if site is not None else None
    if config is not None and not (config.photos or config.voice):
        return error_response(FeatureDisabled(_("This chat does not take photos or voice notes.")), 403)
    owner = conversation.owner_hash
    ip = request.META.get("REMOTE_ADDR") or ""
    retry_after = await rate_limit_hit(key=f"upload:{owner}", limit=settings.CHAT_UPLOADS_PER_MINUTE)
    limits = [
        (f"upload-h:{owner}", settings.CHAT_UPLOADS_PER_HOUR, 3600),
        (f"upload-ip:{ip}", settings.CHAT_UPLOADS_PER_HOUR_PER_IP, 3600),
    ]
    if config is not None and config.uploads_per_hour:
        limits.append((f"upload-site:{config.site_id}", config.uploads_per_hour, 3600))
    for key, limit, window in limits:
        retry_after = retry_after or await rate_limit_hit(key=key, limit=limit, window=window)
    if retry_after is not None:
        message = ngettext(
            "You're sending files too quickly. Please wait %(seconds)s second and try again.",
            "You're sending files too quickly. Please wait %(seconds)s seconds and try again.",
            retry_after,
        ) % {"seconds": retry_after}
        return error_response(MediaRefused(message, code="rate_limited"), 429, {"Retry-After": str(retry_after)})
    limit = max(settings.CHAT_IMAGE_MAX_BYTES, settings.CHAT_AUDIO_MAX_BYTES)
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = 0
    if length > limit + MULTIPART_OVERHEAD:
        # Refused before parsing: the size alone says no.
        megabytes = limit // (1024 * 1024)
        return error_response(MediaRefused(_too_large(megabytes), code="too_large"), 413)
    # Parsing the multipart body is blocking file work: off the event loop.
    files = await media_run(lambda: request.FILES)
    upload = files.get("file")
    if upload is None:
        message = _("No file arrived. Choose a photo or record a voice note, then try again.")
        return error_response(MediaRefused(message, code="no_file"), 400)
    if await database_sync_to_async(attachments_pending_count)(conversation_id=conversation.pk) >= MAX_PENDING:
        message = _("You have many files waiting to be sent. Send or remove some before adding more.")
        return error_response(MediaRefused(message, code="too_many_pending"), 429)
    if upload.size is not None and upload.size > limit:
        megabytes = limit // (1024 * 1024)
        return error_response(MediaRefused(_too_large(megabytes), code="too_large"), 413)
    data = await media_run(upload.read)
    waited = await rate_limit_hit(
        key=f"upload-bytes:{owner}", limit=settings.CHAT_UPLOAD_BYTES_PER_HOUR, window=3600, cost=len(data)
    )
    if waited is not None:
        minutes = max(1, waited // 60)
        message = ngettext(
            "You've sent a lot of files in the last hour. Please wait about %(minutes)s minute before sending more.",
            "You've sent a lot of files in the last hour. Please wait about %(minutes)s minutes before sending more.",
            minutes,
        ) % {"minutes": minutes}
        return error_response(MediaRefused(message, code="rate_limited"), 429, {"Retry-After": str(waited)})
    try:
        if config is not None:
            _feature_check(config, media_sniff(data).kind)
        attachment = await attachment_upload(conversation_id=conversation.pk, data=data, filename=upload.name or "")
    except MediaRefused as refused:
        metrics.UPLOADS.labels(result=refused.code).inc()
        logger.info("upload refused for %s: %s (%s)", conversation.pk, refused.code, refused.detail or refused.message)
        return error_response(refused, refused.status)
    except Exception:
        logger.exception("upload failed for %s", conversation.pk)
        message = _("That file could not be saved because of a problem on our side. Please try again.")
        return error_response(ChatError(message), 500)
    metrics.UPLOADS.labels(result=f"stored_{attachment.kind}").inc()
    body = await database_sync_to_async(attachment_serialize)(attachment)
    return JsonResponse(body, status=201)


def _feature_check(config: SiteConfig, kind: str) -> None:
    if kind == "image" and not config.photos:
        raise MediaRefused(_("This chat does not take photos."), code="feature_disabled", status=403)
    if kind == "audio" and not config.voice:
        raise MediaRefused(_("This chat does not take voice notes."), code="feature_disabled", status=403)


def _too_large(megabytes: int) -> str:
    return _("Files can be at most %(megabytes)s MB.") % {"megabytes": megabytes}


async def _may_read(request: HttpRequest, conversation_id: uuid.UUID, attachment_id: uuid.UUID) -> bool:
    if attachment_signature_valid(attachment_id, request.GET.get("s", "")):
        return True
    user = await request.auser()
    if user.is_active and user.is_staff:
        return True
    return await _owned_conversation(request, conversation_id) is not None


@csrf_unless_bearer
async def attachment_detail(request: HttpRequest, conversation_id: uuid.UUID, attachment_id: uuid.UUID) -> HttpResponse:
    """GET the file; DELETE an upload the shopper removed before sending it."""
    if request.method == "DELETE":
        return await attachment_delete(request, conversation_id, attachment_id)
    return await attachment_file(request, conversation_id, attachment_id)


async def attachment_delete(request: HttpRequest, conversation_id: uuid.UUID, attachment_id: uuid.UUID) -> HttpResponse:
    """DELETE …/attachments/<id>: only the owning session, only while unsent (a sent photo is
    part of the conversation's record). 204, or 404 when there is nothing this session may delete."""
    if await _owned_conversation(request, conversation_id) is None:
        return error_response(ChatError(NOT_FOUND), 404)
    deleted = await media_run_db(attachment_unsent_delete, conversation_id=conversation_id, attachment_id=attachment_id)
    if not deleted:
        return error_response(ChatError(_("That file was already sent or removed."), detail="not deletable"), 404)
    return HttpResponse(status=204)


@require_http_methods(["GET", "HEAD"])
async def attachment_file(
    request: HttpRequest, conversation_id: uuid.UUID, attachment_id: uuid.UUID, variant: str = "file"
) -> HttpResponse:
    """GET …/attachments/<id> (the photo or voice note) and …/attachments/<id>/thumb."""
    if variant not in {"file", "thumb"} or not await _may_read(request, conversation_id, attachment_id):
        return error_response(ChatError(NOT_FOUND), 404)
    attachment: Attachment | None = await database_sync_to_async(attachment_get)(
        conversation_id=conversation_id, attachment_id=attachment_id
    )
    field = None
    if attachment is not None:
        field = attachment.thumb if variant == "thumb" else attachment.file
    if attachment is None or not field:
        return error_response(ChatError(_("That file is not available."), detail="no such attachment"), 404)
    name = field.name

    def read() -> bytes:
        with attachments_storage().open(name, "rb") as file:
            return bytes(file.read())

    data = await media_run(read)
    content_type = "image/jpeg" if variant == "thumb" else attachment.content_type
    response = HttpResponse(data, content_type=content_type)
    # A file never changes once stored (its name has the attachment id), so browsers may keep it;
    # private: shared caches must not.
    response["Cache-Control"] = "private, max-age=86400, immutable"
    response["Content-Disposition"] = content_disposition_header(as_attachment=False, filename=attachment.name) or ""
    return response


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: API callers get the JSON error shape; pages keep Django's own."""
    if request.path.startswith("/api/"):
        return error_response(CsrfFailed(detail=reason), 403)
    return django_csrf_failure(request, reason)
