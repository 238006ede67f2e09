"""Writes of attachments: files into the attachments storage, rows into the database, both or
neither. Synchronous: call them via database_sync_to_async."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from chat.media.storage import attachment_path, attachments_storage
from chat.models import Attachment

logger = logging.getLogger(__name__)

_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp", "audio/mpeg": "mp3", "audio/wav": "wav"}


@dataclass(frozen=True)
class FileVariant:
    data: bytes
    content_type: str


@dataclass
class AttachmentDraft:
    """A processed upload, ready to be stored."""

    kind: str
    name: str
    source_format: str
    size_bytes: int
    sha256: str
    file: FileVariant
    model_file: FileVariant | None = None
    thumb: FileVariant | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # width, height, duration_ms, transcript…


def attachment_store(*, conversation_id: uuid.UUID | str, draft: AttachmentDraft) -> Attachment:
    """Save the draft's files and its row. If the row cannot be written, the files are removed
    again, so a failed upload leaves nothing behind."""
    storage = attachments_storage()
    attachment = Attachment(
        id=uuid.uuid4(),
        conversation_id=conversation_id,
        kind=draft.kind,
        name=draft.name,
        source_format=draft.source_format,
        size_bytes=draft.size_bytes,
        sha256=draft.sha256,
        content_type=draft.file.content_type,
        model_content_type=draft.model_file.content_type if draft.model_file else "",
        **draft.fields,
    )
    saved: list[str] = []
    try:
        for attr, variant in (("file", draft.file), ("model_file", draft.model_file), ("thumb", draft.thumb)):
            if variant is None:
                continue
            path = attachment_path(
                conversation_id=str(conversation_id),
                attachment_id=str(attachment.id),
                variant=attr,
                extension=_EXTENSIONS.get(variant.content_type, "bin"),
            )
            name = storage.save(path, ContentFile(variant.data))
            saved.append(name)
            setattr(attachment, attr, name)
        with transaction.atomic():
            attachment.save(force_insert=True)
    except BaseException:
        files_delete(names=saved)
        raise
    return attachment


def files_delete(*, names: list[str]) -> None:
    storage = attachments_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:
            logger.exception("could not delete attachment file %s", name)


def attachment_files(attachment: Attachment) -> list[str]:
    return [f.name for f in (attachment.file, attachment.model_file, attachment.thumb) if f and f.name]


def attachments_delete(*, attachments: list[Attachment]) -> int:
    """Delete attachments, files first (a file left without a row could never be found again)."""
    for attachment in attachments:
        files_delete(names=attachment_files(attachment))
    Attachment.objects.filter(pk__in=[a.pk for a in attachments]).delete()
    return len(attachments)


def attachment_unsent_delete(*, conversation_id: uuid.UUID | str, attachment_id: uuid.UUID | str) -> bool:
    """Delete one upload not yet sent with a message; False if there is no such upload."""
    with transaction.atomic():
        found = list(
            Attachment.objects.select_for_update().filter(
                conversation_id=conversation_id, pk=attachment_id, message__isnull=True
            )
        )
        if not found:
            return False
        Attachment.objects.filter(pk=found[0].pk).delete()
    # Files after the row: a message racing for this upload can no longer claim it.
    files_delete(names=attachment_files(found[0]))
    return True


def attachments_orphans_delete(*, older_than: timedelta) -> int:
    """Uploads never sent with a message (the shopper removed them or left): deleted after a while."""
    cutoff = timezone.now() - older_than
    orphans = list(Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff))
    return attachments_delete(attachments=orphans)
