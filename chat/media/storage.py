"""Where attachment files live: the "attachments" entry of STORAGES (local files under
ATTACHMENTS_ROOT, or an S3-compatible bucket). Names are built from ids, never from what the
shopper called the file."""

from __future__ import annotations

from django.core.files.storage import Storage, storages


def attachments_storage() -> Storage:
    return storages["attachments"]


def attachment_path(*, conversation_id: str, attachment_id: str, variant: str, extension: str) -> str:
    return f"{conversation_id}/{attachment_id}/{variant}.{extension}"
