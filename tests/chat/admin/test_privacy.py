"""Deleting a shopper's data (admin) and the retention purge (command) leave nothing behind:
no rows and no files."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from chat.media.storage import attachments_storage
from chat.models import Attachment, Conversation, Feedback, Message
from tests.chat.admin.builders import add_feedback, add_message, add_photo, add_reply, add_voice_note, make_conversation

pytestmark = pytest.mark.django_db

LIST = reverse("admin:chat_conversation_changelist")


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def rows_of(conversation: Conversation) -> dict[str, int]:
    return {
        "conversations": Conversation.objects.filter(pk=conversation.pk).count(),
        "messages": Message.objects.filter(conversation_id=conversation.pk).count(),
        "attachments": Attachment.objects.filter(conversation_id=conversation.pk).count(),
        "feedback": Feedback.objects.filter(conversation_id=conversation.pk).count(),
    }


NOTHING = {"conversations": 0, "messages": 0, "attachments": 0, "feedback": 0}


def busy_conversation(**fields) -> Conversation:
    conversation = make_conversation(**fields)
    question = add_message(conversation, text="this photo")
    add_photo(conversation, question)
    add_voice_note(conversation, add_message(conversation), transcript="my address is 1 Secret Lane")
    add_feedback(add_reply(conversation))
    add_photo(conversation, None)  # uploaded, never sent
    return conversation  # 3 messages, 3 attachments (7 files), 1 feedback


def test_privacy_delete_asks_first_then_removes_rows_and_files(admin_client, rich, attachments_dir):
    keep = busy_conversation()
    kept_files = files_under(attachments_dir / str(keep.pk))
    doomed = {"action": "delete_shopper_data", "_selected_action": [str(rich.conversation.pk)]}

    confirm = admin_client.post(LIST, doomed)

    assert confirm.status_code == 200
    assert "Yes, delete this shopper data" in confirm.content.decode()
    assert rows_of(rich.conversation)["messages"] == 6  # nothing deleted yet

    done = admin_client.post(LIST, {**doomed, "post": "yes"})

    assert done.status_code == 302
    assert rows_of(rich.conversation) == NOTHING
    assert not (attachments_dir / str(rich.conversation.pk)).exists()
    assert sorted(files_under(attachments_dir)) == sorted(kept_files) and len(kept_files) == 7
    assert rows_of(keep) == {"conversations": 1, "messages": 3, "attachments": 3, "feedback": 1}


def test_privacy_delete_from_the_conversation_page(admin_client, attachments_dir):
    conversation = busy_conversation()
    url = reverse("admin:chat_conversation_delete", args=[conversation.pk])
    page = admin_client.get(reverse("admin:chat_conversation_change", args=[conversation.pk])).content.decode()

    confirm = admin_client.get(url)
    done = admin_client.post(url, {"post": "yes"})

    assert f'href="{url}"' in page and "Delete shopper data" in page
    assert confirm.status_code == 200 and "photos and voice notes" in confirm.content.decode()
    assert done.status_code == 302 and done["Location"] == LIST
    assert rows_of(conversation) == NOTHING
    assert files_under(attachments_dir) == []


def test_privacy_delete_also_removes_files_that_lost_their_row(admin_client, attachments_dir):
    conversation = busy_conversation()
    attachments_storage().save(f"{conversation.pk}/stray/file.jpg", io.BytesIO(b"left by a crash"))

    admin_client.post(
        LIST, {"action": "delete_shopper_data", "_selected_action": [str(conversation.pk)], "post": "yes"}
    )

    assert files_under(attachments_dir) == []


def test_purge_deletes_conversations_idle_past_the_retention(attachments_dir):
    now = timezone.now()
    stale = busy_conversation(created_at=now - timedelta(days=100))
    Conversation.objects.filter(pk=stale.pk).update(last_message_at=now - timedelta(days=40))
    never_spoke = make_conversation(created_at=now - timedelta(days=31))
    recent = busy_conversation(created_at=now - timedelta(days=100))
    Conversation.objects.filter(pk=recent.pk).update(last_message_at=now - timedelta(days=2))
    out = io.StringIO()

    call_command("purge_conversations", "--days", "30", stdout=out)

    assert rows_of(stale) == NOTHING and rows_of(never_spoke) == NOTHING
    assert rows_of(recent)["messages"] == 3
    assert files_under(attachments_dir) == files_under(attachments_dir / str(recent.pk)) != []
    assert "Deleted 2 conversation(s), 3 message(s), 3 photo(s)/voice note(s) (7 file(s)), 1 feedback" in out.getvalue()


def test_purge_uses_the_retention_setting(settings, attachments_dir):
    settings.CHAT_RETENTION_DAYS = 7
    old = busy_conversation(created_at=timezone.now() - timedelta(days=8))

    call_command("purge_conversations", stdout=io.StringIO())

    assert rows_of(old) == NOTHING and files_under(attachments_dir) == []


@pytest.mark.parametrize("args", [[], ["--days", "0"]])
def test_purge_with_retention_off_deletes_nothing_and_says_so(settings, args):
    settings.CHAT_RETENTION_DAYS = 0
    old = busy_conversation(created_at=timezone.now() - timedelta(days=3650))
    out = io.StringIO()

    call_command("purge_conversations", *args, stdout=out)

    assert "nothing deleted" in out.getvalue()
    assert rows_of(old)["conversations"] == 1
