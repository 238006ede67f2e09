"""Reads of attachments. Synchronous: call them via database_sync_to_async."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core import signing
from django.db.models import prefetch_related_objects
from django.urls import reverse

from chat.models import Attachment, Message

# Attachment links carry a signature: the widget's iframe gets no cookies (third-party), so an
# <img src> there could not prove ownership otherwise. A link works for this long; snapshots and
# acks hand out fresh ones.
SIGNATURE_MAX_AGE = 7 * 24 * 3600
_signer = signing.TimestampSigner(salt="chat.attachment")


def attachment_signature(attachment_id: uuid.UUID | str) -> str:
    return _signer.sign(str(attachment_id)).split(":", 1)[1]


def attachment_signature_valid(attachment_id: uuid.UUID | str, signature: str) -> bool:
    if not signature or len(signature) > 100:
        return False
    try:
        _signer.unsign(f"{attachment_id}:{signature}", max_age=SIGNATURE_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included
        return False
    return True


def attachment_url(attachment: Attachment, variant: str = "") -> str:
    kwargs = {"conversation_id": attachment.conversation_id, "attachment_id": attachment.id}
    if variant:
        path = reverse("attachment-variant", kwargs={**kwargs, "variant": variant})
    else:
        path = reverse("attachment", kwargs=kwargs)
    return f"{path}?s={attachment_signature(attachment.id)}"


def attachment_serialize(attachment: Attachment) -> dict[str, Any]:
    """ATTACHMENT in docs/protocol.md: what a shopper's page (and staff) may know of a file."""
    return {
        "id": str(attachment.id),
        "kind": attachment.kind,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size_bytes,
        "url": attachment_url(attachment),
        "thumb_url": attachment_url(attachment, "thumb") if attachment.thumb else None,
        "width": attachment.width,
        "height": attachment.height,
        "duration_ms": attachment.duration_ms,
        "transcript": attachment.transcript,
    }


def attachments_for_messages(*, message_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Attachment]]:
    found: dict[uuid.UUID, list[Attachment]] = {}
    for attachment in Attachment.objects.filter(message_id__in=list(message_ids)).order_by("created_at"):
        assert attachment.message_id is not None
        found.setdefault(attachment.message_id, []).append(attachment)
    return found


def attachments_prefetch(messages: Sequence[Message], *, empty: Callable[[Message], bool]) -> None:
    """Prefetch `message.attachments` for many messages, like prefetch_related, without the cost
    for those known to have none (`empty`, e.g. from an `Exists` annotation) — most of them.

    Django's prefetch runs a query and builds a related queryset per message: every turn paid
    that for its whole history (0.5 ms for 100 messages, bench/chat_load.py's database), though
    messages seldom carry photos or voice notes. The messages without
    attachments share one empty, already evaluated queryset in Django's prefetch cache, which
    `message.attachments.all()` returns as is.
    """
    with_files = [message for message in messages if not empty(message)]
    if with_files:
        prefetch_related_objects(with_files, "attachments")
    if len(with_files) == len(messages):
        return
    none = Attachment.objects.none()
    none._result_cache = []  # evaluated: iterating it runs nothing
    for message in messages:
        if empty(message):
            cache = message.__dict__.setdefault("_prefetched_objects_cache", {})
            cache[Message.attachments.rel.cache_name] = none


def attachment_get(*, conversation_id: uuid.UUID | str, attachment_id: uuid.UUID | str) -> Attachment | None:
    return Attachment.objects.filter(conversation_id=conversation_id, pk=attachment_id).first()


def attachments_pending_count(*, conversation_id: uuid.UUID | str) -> int:
    """Uploads not yet sent with a message."""
    return Attachment.objects.filter(conversation_id=conversation_id, message__isnull=True).count()


def attachments_available(*, conversation_id: uuid.UUID | str, attachment_ids: Iterable[uuid.UUID]) -> bool:
    """Are these uploads all this conversation's and not yet sent with a message?"""
    wanted = set(attachment_ids)
    found = Attachment.objects.filter(conversation_id=conversation_id, pk__in=wanted, message__isnull=True)
    return found.count() == len(wanted)
