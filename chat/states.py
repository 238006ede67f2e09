"""Writes that change who answers a conversation (bot, waiting for staff, staff, closed), staff
messages, and the shopper's feedback and rating. Synchronous: call via database_sync_to_async.

Every state change stores a notice message (with its seq) in the same transaction, so the
transcript always shows it. Each change locks the conversation row first (on SQLite the
IMMEDIATE transaction does), so two staff members can never both own one conversation. A notice
is written once, in the conversation's language, whoever acts: the stored text is what the
shopper, staff and any replay read later.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from chat.errors import ConversationClosed, InvalidFeedback, NotClosed, NotOwner, OwnedByOther
from chat.models import Conversation, Feedback, Message
from chat.services import conversation_advance
from chat.sites import site_config

Status = Conversation.Status


def display_name(user: Any) -> str:
    """What shoppers see of a staff member: their first name, else their username."""
    if user is None:
        return ""
    return str(getattr(user, "first_name", "") or user.get_username())


def _locked(conversation_id: uuid.UUID | str) -> Conversation:
    # of=self: the staff member is read along, but only the conversation row is locked (PostgreSQL
    # cannot lock the nullable side of the join).
    return Conversation.objects.select_for_update(of=("self",)).select_related("assigned_to").get(pk=conversation_id)


@contextmanager
def _in_language(conversation: Conversation) -> Iterator[None]:
    """Words stored for the shopper are written in the conversation's language, whoever acts."""
    with translation.override(conversation.language or settings.LANGUAGE_CODE):
        yield


def _notice(*, conversation_id: uuid.UUID | str, seq: int, end_seq: int, code: str, text: str) -> Message:
    notice = Message.objects.create(
        conversation_id=conversation_id,
        seq=seq,
        kind=Message.Kind.NOTICE,
        role=Message.Role.SYSTEM,
        author=Message.Author.SYSTEM,
        notice_code=code,
        text=text,
    )
    conversation_advance(conversation_id=conversation_id, seq=end_seq)
    return notice


def handoff_text(*, staff_online: bool, contact: str = "") -> str:
    """The hand-off notice, in the active language. `contact`: how to reach the shop's staff
    (the site's, else SHOP_CONTACT)."""
    contact = contact or settings.SHOP_CONTACT
    if staff_online:
        return gettext(
            "You asked to talk to a person. Someone from our team is online and will join this chat "
            "shortly. Until then the assistant keeps helping."
        )
    if contact:
        return gettext(
            "You asked to talk to a person. Our team isn't online right now: they will see this chat and "
            "answer here when they are back. You can also reach them at %(contact)s. Until then the "
            "assistant keeps helping."
        ) % {"contact": contact}
    return gettext(
        "You asked to talk to a person. Our team isn't online right now: they will see this chat and "
        "answer here when they are back. Until then the assistant keeps helping."
    )


@transaction.atomic
def conversation_handoff_request(
    *, conversation_id: uuid.UUID | str, seq: int, end_seq: int, staff_online: bool
) -> Message | None:
    """bot → waiting, with a notice. None if it is already waiting or with staff.

    Raises ConversationClosed for a closed conversation.
    """
    conversation = _locked(conversation_id)
    if conversation.status == Status.CLOSED:
        raise ConversationClosed()
    if conversation.status != Status.BOT:
        return None
    now = timezone.now()
    Conversation.objects.filter(pk=conversation_id).update(
        status=Status.WAITING, handoff_requested_at=now, updated_at=now
    )
    with _in_language(conversation):
        text = handoff_text(staff_online=staff_online, contact=site_config(conversation.site).contact)
    return _notice(conversation_id=conversation_id, seq=seq, end_seq=end_seq, code="handoff_requested", text=text)


@transaction.atomic
def conversation_take(*, conversation_id: uuid.UUID | str, user: Any, seq: int, end_seq: int) -> Message | None:
    """Give the conversation to `user` (→ staff). None if they have it already.

    Raises OwnedByOther when another staff member has it, ConversationClosed when it ended.
    """
    conversation = _locked(conversation_id)
    if conversation.status == Status.CLOSED:
        raise ConversationClosed("This conversation has ended.")
    owner = conversation.assigned_to
    if conversation.status == Status.STAFF and owner is not None:
        if owner.pk == user.pk:
            return None
        raise OwnedByOther(f"{display_name(owner)} is handling this conversation.")
    Conversation.objects.filter(pk=conversation_id).update(
        status=Status.STAFF, assigned_to=user, updated_at=timezone.now()
    )
    with _in_language(conversation):
        text = gettext("%(name)s from our team joined the chat.") % {"name": display_name(user)}
    return _notice(conversation_id=conversation_id, seq=seq, end_seq=end_seq, code="staff_joined", text=text)


@transaction.atomic
def conversation_release(*, conversation_id: uuid.UUID | str, user: Any, seq: int, end_seq: int) -> Message:
    """staff → bot: only the staff member who has the conversation may hand it back."""
    conversation = _locked(conversation_id)
    if conversation.status != Status.STAFF or conversation.assigned_to_id != user.pk:
        raise NotOwner("Only the person handling this conversation can return it to the assistant.")
    Conversation.objects.filter(pk=conversation_id).update(
        status=Status.BOT, assigned_to=None, updated_at=timezone.now()
    )
    with _in_language(conversation):
        text = gettext("%(name)s handed the chat back to the assistant.") % {"name": display_name(user)}
    return _notice(conversation_id=conversation_id, seq=seq, end_seq=end_seq, code="returned_to_bot", text=text)


@transaction.atomic
def conversation_close(*, conversation_id: uuid.UUID | str, seq: int, end_seq: int, user: Any = None) -> Message | None:
    """End the conversation (the shopper when `user` is None, else staff). None if it had ended.

    Staff may close a conversation that is not with another staff member.
    """
    conversation = _locked(conversation_id)
    if conversation.status == Status.CLOSED:
        return None
    owner = conversation.assigned_to
    if user is not None and conversation.status == Status.STAFF and owner is not None and owner.pk != user.pk:
        raise OwnedByOther(f"{display_name(owner)} is handling this conversation.")
    now = timezone.now()
    Conversation.objects.filter(pk=conversation_id).update(status=Status.CLOSED, closed_at=now, updated_at=now)
    # Read by the shopper and by staff alike, so it names nobody's "you".
    with _in_language(conversation):
        if user is None:
            text = gettext("The chat was ended.")
        else:
            text = gettext("%(name)s closed the chat.") % {"name": display_name(user)}
    return _notice(conversation_id=conversation_id, seq=seq, end_seq=end_seq, code="closed", text=text)


@transaction.atomic
def staff_message_create(
    *, conversation_id: uuid.UUID | str, user: Any, seq: int, text: str, client_msg_id: uuid.UUID
) -> tuple[Message, bool]:
    """Store a staff member's message to the shopper; (message, created). A resend with the same
    client_msg_id returns the stored one. Raises NotOwner unless `user` has the conversation."""
    conversation = _locked(conversation_id)
    if conversation.status != Status.STAFF or conversation.assigned_to_id != user.pk:
        raise NotOwner()
    existing = Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation_id=conversation_id,
                seq=seq,
                role=Message.Role.ASSISTANT,
                author=Message.Author.STAFF,
                author_name=display_name(user),
                text=text,
                parts=[{"type": "text", "text": text}],
                client_msg_id=client_msg_id,
            )
    except IntegrityError:
        return Message.objects.get(conversation_id=conversation_id, client_msg_id=client_msg_id), False
    conversation_advance(conversation_id=conversation_id, seq=seq)
    return message, True


def feedback_save(
    *, conversation_id: uuid.UUID | str, message_id: uuid.UUID, value: str, reasons: list[str], comment: str
) -> Feedback:
    """The shopper's thumbs on a bot reply of this conversation; replaces earlier feedback on it."""
    message = Message.objects.filter(
        pk=message_id, conversation_id=conversation_id, author=Message.Author.BOT, kind=Message.Kind.CHAT
    ).first()
    if message is None:
        raise InvalidFeedback()
    feedback, _ = Feedback.objects.update_or_create(
        message=message,
        defaults={
            "conversation_id": conversation_id,
            "value": value,
            "reasons": list(dict.fromkeys(reasons)) if value == Feedback.Value.DOWN else [],
            "comment": comment.strip(),
        },
    )
    return feedback


def rating_save(*, conversation_id: uuid.UUID | str, value: int, comment: str) -> None:
    """The shopper's 1-5 rating of a conversation that has ended (again: replaces it)."""
    updated = Conversation.objects.filter(pk=conversation_id, status=Status.CLOSED).update(
        rating=value, rating_comment=comment.strip(), updated_at=timezone.now()
    )
    if not updated:
        raise NotClosed()
