"""Where attachment files live, and the cleanup of uploads that were never sent."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from chat.media.services import AttachmentDraft, FileVariant, attachment_store
from chat.models import Attachment, Conversation, Message

ROOT = Path(__file__).resolve().parents[3]


def test_s3_compatible_storage_is_chosen_by_setting_and_stays_private():
    env = {
        **os.environ,
        "SUPPORTBOT_ENV_FILE": "/dev/null",
        "ATTACHMENTS_STORAGE": "s3",
        "S3_BUCKET": "shop-uploads",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "S3_ACCESS_KEY_ID": "minio",
        "S3_SECRET_ACCESS_KEY": "minio-secret",
    }
    code = (
        "import django; django.setup();"
        "from django.core.files.storage import storages; s = storages['attachments'];"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.location, s.default_acl, s.querystring_auth)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "supportbot.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["S3Storage", "shop-uploads", "http://127.0.0.1:9000", "attachments", "private", "True"]


def _draft(**fields: object) -> AttachmentDraft:
    return AttachmentDraft(
        kind=Attachment.Kind.IMAGE,
        name="p.jpg",
        source_format="JPEG",
        size_bytes=3,
        sha256="0" * 64,
        file=FileVariant(b"abc", "image/jpeg"),
        thumb=FileVariant(b"ab", "image/jpeg"),
        fields=dict(fields),
    )


@pytest.mark.django_db
def test_media_cleanup_deletes_old_unsent_uploads_with_their_files(attachments_dir):
    conversation = Conversation.objects.create(owner_hash="x" * 64)
    old_unsent = attachment_store(conversation_id=conversation.pk, draft=_draft())
    new_unsent = attachment_store(conversation_id=conversation.pk, draft=_draft())
    old_sent = attachment_store(conversation_id=conversation.pk, draft=_draft())
    message = Message.objects.create(conversation=conversation, seq=1, role="user", author="shopper", text="hi")
    Attachment.objects.filter(pk=old_sent.pk).update(message=message)
    Attachment.objects.filter(pk__in=[old_unsent.pk, old_sent.pk]).update(
        created_at=timezone.now() - timedelta(hours=30)
    )
    out = StringIO()
    call_command("media_cleanup", stdout=out)
    assert "Deleted 1 unsent upload" in out.getvalue()
    assert set(Attachment.objects.values_list("pk", flat=True)) == {new_unsent.pk, old_sent.pk}
    assert not (attachments_dir / old_unsent.file.name).exists()
    assert not (attachments_dir / old_unsent.thumb.name).exists()
    assert (attachments_dir / new_unsent.file.name).exists() and (attachments_dir / old_sent.file.name).exists()


@pytest.mark.django_db
def test_a_row_that_cannot_be_written_leaves_no_files(attachments_dir):
    conversation = Conversation.objects.create(owner_hash="x" * 64)
    with pytest.raises(ValueError):  # the row is refused after the files were written
        attachment_store(conversation_id=conversation.pk, draft=_draft(width="very wide"))
    assert not Attachment.objects.exists()
    assert [p for p in attachments_dir.rglob("*") if p.is_file()] == []
