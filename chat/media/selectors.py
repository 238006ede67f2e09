"""Reads of attachments. Synchronous: call them via database_sync_to_async."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.urls import reverse

from chat.models import Attachment


def attachment_url(attachment: Attachment, variant: str = "") -> str:
    kwargs = {"conversation_id": attachment.conversation_id, "attachment_id": attachment.id}
    if variant:
        return reverse("attachment-variant", kwargs={**kwargs, "variant": variant})
    return reverse("attachment", kwargs=kwargs)


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
