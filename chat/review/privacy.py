"""Deleting what shoppers left with us: one conversation for a privacy request, or every
conversation past the retention period. Rows and files both go; no file may outlive its row,
because nothing could find it again. Synchronous (database and storage calls)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from chat.media.services import attachment_files, attachments_delete, files_delete
from chat.media.storage import attachments_storage
from chat.models import Attachment, Conversation, Feedback, Message

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeletionCounts:
    conversations: int = 0
    messages: int = 0
    attachments: int = 0
    files: int = 0
    feedback: int = 0

    def __add__(self, other: DeletionCounts) -> DeletionCounts:
        return DeletionCounts(
            self.conversations + other.conversations,
            self.messages + other.messages,
            self.attachments + other.attachments,
            self.files + other.files,
            self.feedback + other.feedback,
        )

    def __str__(self) -> str:
        return (
            f"{self.conversations} conversation(s), {self.messages} message(s), "
            f"{self.attachments} photo(s)/voice note(s) ({self.files} file(s)), {self.feedback} feedback"
        )


def conversations_delete(*, conversation_ids: Iterable[uuid.UUID | str]) -> DeletionCounts:
    """Delete conversations with their messages, summaries, notices, feedback, attachments and
    the attachments' files.

    Per conversation: files first (through chat.media.services), then anything else still in
    the conversation's storage folder, then the rows in one transaction. A file that cannot be
    removed raises before the rows go, so the conversation stays findable and the request can be
    retried. Returns what was deleted.
    """
    total = DeletionCounts()
    for conversation_id in conversation_ids:
        total += _conversation_delete(conversation_id)
    return total


def conversations_purge(*, older_than_days: int, now: datetime | None = None) -> DeletionCounts:
    """Delete (as conversations_delete) every conversation with no activity — no message, or
    only a start — for more than `older_than_days` days. Staff edits do not count as activity.

    Raises ValueError for fewer than one day: "purge everything" is never what was meant.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    stale = (
        Conversation.objects.annotate(last_activity=Coalesce("last_message_at", "created_at"))
        .filter(last_activity__lt=cutoff)
        .order_by("last_activity")
        .values_list("pk", flat=True)
    )
    return conversations_delete(conversation_ids=list(stale))


def _conversation_delete(conversation_id: uuid.UUID | str) -> DeletionCounts:
    attachments = list(Attachment.objects.filter(conversation_id=conversation_id))
    files = sum(len(attachment_files(a)) for a in attachments)
    attachments_delete(attachments=attachments)
    strays = _folder_empty(str(conversation_id))
    if strays:
        logger.warning("deleted %d attachment file(s) without a row of conversation %s", strays, conversation_id)
    with transaction.atomic():
        # An upload that landed after the files were removed: its row goes with the cascade,
        # so take its file names first.
        late = list(Attachment.objects.filter(conversation_id=conversation_id))
        messages = Message.objects.filter(conversation_id=conversation_id).count()
        feedback = Feedback.objects.filter(conversation_id=conversation_id).count()
        deleted, _ = Conversation.objects.filter(pk=conversation_id).delete()
    if late:
        late_files = [name for a in late for name in attachment_files(a)]
        files_delete(names=late_files)
        files += len(late_files)
    conversations = 1 if deleted else 0
    return DeletionCounts(conversations, messages, len(attachments) + len(late), files + strays, feedback)


def _folder_empty(folder: str, depth: int = 3) -> int:
    """Delete every file under `folder` in the attachments storage (uploads are stored as
    <conversation>/<attachment>/<variant>.<ext>); returns how many there were. Errors propagate."""
    storage = attachments_storage()
    try:
        directories, names = storage.listdir(folder)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        storage.delete(f"{folder}/{name}")
        removed += 1
    if depth > 1:
        for directory in directories:
            removed += _folder_empty(f"{folder}/{directory}", depth - 1)
    # A local folder is removed once empty (object stores have no folders: a no-op there).
    storage.delete(folder)
    return removed
