"""Small builders for conversations as the chat stores them, and staff users with given permissions."""

from __future__ import annotations

import hashlib
import io
import itertools
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Permission, User
from django.db.models import Max
from PIL import Image

from chat.media.services import AttachmentDraft, FileVariant, attachment_store
from chat.models import Attachment, Conversation, Feedback, Message

_users = itertools.count(1)


def make_conversation(*, created_at: datetime | None = None, **fields: Any) -> Conversation:
    fields.setdefault("owner_hash", hashlib.sha256(secrets.token_bytes(16)).hexdigest())
    conversation = Conversation.objects.create(**fields)
    if created_at is not None:
        # auto_now_add ignores a given value; tests that need the past set it afterwards.
        Conversation.objects.filter(pk=conversation.pk).update(created_at=created_at)
        conversation.refresh_from_db()
    return conversation


def add_message(conversation: Conversation, *, author: str = Message.Author.SHOPPER, **fields: Any) -> Message:
    """A message at the next seq (summaries get none)."""
    roles = {"shopper": "user", "bot": "assistant", "staff": "assistant", "system": "system"}
    fields.setdefault("role", roles[author])
    if fields.get("kind") != Message.Kind.SUMMARY:
        last = Message.objects.filter(conversation=conversation).aggregate(top=Max("seq"))["top"] or 0
        fields.setdefault("seq", last + 1)
    return Message.objects.create(conversation=conversation, author=author, **fields)


def add_reply(conversation: Conversation, **fields: Any) -> Message:
    """A bot reply with a model, usage and cost, as chat/replies.py stores one."""
    fields.setdefault("text", "Here is what I found.")
    fields.setdefault("model", "gpt-5.2")
    fields.setdefault("usage", {"prompt_tokens": 120, "completion_tokens": 30, "cached_tokens": 0})
    fields.setdefault("cost", Decimal("0.000630"))
    fields.setdefault("first_token_ms", 410)
    fields.setdefault("duration_ms", 1900)
    return add_message(conversation, author=Message.Author.BOT, **fields)


def add_feedback(message: Message, *, value: str = Feedback.Value.DOWN, **fields: Any) -> Feedback:
    return Feedback.objects.create(message=message, conversation_id=message.conversation_id, value=value, **fields)


def jpeg_bytes(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=80)
    return out.getvalue()


def mp3_bytes(frames: int = 8) -> bytes:
    """Silent MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz): a real, playable, tiny MP3."""
    header = bytes([0xFF, 0xFB, 0x90, 0x64])
    frame_length = 144 * 128_000 // 44_100  # 417 bytes, no padding
    return (header + bytes(frame_length - len(header))) * frames


def add_photo(conversation: Conversation, message: Message | None, *, name: str = "shoe.jpg") -> Attachment:
    """A photo stored through the real service: file, model copy and thumbnail on disk."""
    data = jpeg_bytes()
    draft = AttachmentDraft(
        kind=Attachment.Kind.IMAGE,
        name=name,
        source_format="JPEG",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        file=FileVariant(data, "image/jpeg"),
        model_file=FileVariant(data, "image/jpeg"),
        thumb=FileVariant(jpeg_bytes((32, 24)), "image/jpeg"),
        fields={"width": 64, "height": 48},
    )
    return _stored(conversation, message, draft)


def add_voice_note(conversation: Conversation, message: Message | None, *, transcript: str) -> Attachment:
    data = mp3_bytes()
    draft = AttachmentDraft(
        kind=Attachment.Kind.AUDIO,
        name="voice-note.mp3",
        source_format="MP3",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        file=FileVariant(data, "audio/mpeg"),
        fields={"duration_ms": 210, "transcript": transcript, "transcript_source": "offline:tiny.en"},
    )
    return _stored(conversation, message, draft)


def _stored(conversation: Conversation, message: Message | None, draft: AttachmentDraft) -> Attachment:
    attachment = attachment_store(conversation_id=conversation.pk, draft=draft)
    if message is not None:
        Attachment.objects.filter(pk=attachment.pk).update(message=message)
        attachment.refresh_from_db()
    return attachment


def staff_user(*permissions: str, staff: bool = True) -> User:
    """A staff member holding exactly these permissions ("chat.view_conversation", …)."""
    user = User.objects.create_user(username=f"staff{next(_users)}", is_staff=staff)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user
