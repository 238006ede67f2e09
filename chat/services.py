"""Writes to conversations and messages. Synchronous: call them via database_sync_to_async.

Each service is one transaction, so a message and the conversation's sequence mark are stored
together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from chat import selectors
from chat.errors import AttachmentNotFound
from chat.media.parts import attachment_refs
from chat.models import Attachment, Conversation, Message
from chat.ownership import owner_hash, owner_token_ephemeral, owner_token_from_session


def conversation_create(*, owner_token: str, site_id: int | None = None, language: str = "") -> Conversation:
    return Conversation.objects.create(owner_hash=owner_hash(owner_token), site_id=site_id, language=language)


def conversation_open(*, owner_token: str, site_id: int | None = None, language: str = "") -> Conversation:
    """The conversation a socket of this owner opens: the latest (see
    selectors.conversation_latest_for_owner), else a new one. One call, so a socket's connect
    costs one trip to the database thread, not two."""
    return selectors.conversation_latest_for_owner(owner_token=owner_token, site_id=site_id) or conversation_create(
        owner_token=owner_token, site_id=site_id, language=language
    )


def conversation_open_for_socket(
    *, token: str | None, session_key: str | None, site_id: int | None = None, language: str = ""
) -> tuple[str, Conversation]:
    """A shopper socket's owner token and the conversation it opens, in one call: the widget's
    `token`, else the one in the chat page's session, else a new one that lasts as long as the
    socket. The session is read here rather than by channels' session and auth middleware, which
    cost a socket two more trips to a database thread (docs/benchmarks.md, seventh round)."""
    owner = token or owner_token_from_session(session_key) or owner_token_ephemeral()
    return owner, conversation_open(owner_token=owner, site_id=site_id, language=language)


def conversation_identify(*, conversation_id: uuid.UUID | str, user_id: str, email: str, name: str) -> None:
    """Store who the shop says the shopper is (already verified by the caller)."""
    Conversation.objects.filter(pk=conversation_id).update(
        shopper_id=user_id, shopper_email=email, shopper_name=name, updated_at=timezone.now()
    )


_ADVANCE_SQL = (
    "UPDATE chat_conversation SET last_seq = CASE WHEN last_seq > %s THEN last_seq ELSE %s END,"
    " last_message_at = %s, updated_at = %s{usage} WHERE id = %s"
)
_USAGE_SQL = ", prompt_tokens = prompt_tokens + %s, completion_tokens = completion_tokens + %s, cost = cost + %s"


def conversation_advance(
    *, conversation_id: uuid.UUID | str, seq: int, usage: tuple[int, int, Decimal] | None = None
) -> None:
    """Record `seq` as stored (the mark only moves up), and add a reply's `usage` — prompt tokens,
    completion tokens, cost — to the conversation's totals, in the same UPDATE.

    Written as SQL: every turn runs it twice, and the ORM spent 0.7 to 1.0 ms of CPU on the UPDATE
    against 0.15 ms for this (docs/benchmarks.md)."""
    fields = Conversation._meta
    now = fields.get_field("updated_at").get_db_prep_value(timezone.now(), connection)
    params: list[Any] = [seq, seq, now, now]
    if usage is not None:
        prompt, completion, cost = usage
        params += [prompt, completion, fields.get_field("cost").get_db_prep_value(cost, connection)]
    params.append(fields.get_field("id").get_db_prep_value(conversation_id, connection))
    with connection.cursor() as cursor:
        cursor.execute(_ADVANCE_SQL.format(usage=_USAGE_SQL if usage is not None else ""), params)


@transaction.atomic
def message_create_from_shopper(
    *,
    conversation_id: uuid.UUID | str,
    seq: int,
    text: str,
    client_msg_id: uuid.UUID,
    context: dict[str, Any] | None = None,
    attachment_ids: Sequence[uuid.UUID] = (),
) -> Message:
    """Store the shopper's message with its sequence number and claim its attachments.

    Raises IntegrityError if this client_msg_id is already stored (the caller re-acks instead),
    AttachmentNotFound if an attachment is not this conversation's or already sent; either way
    nothing is stored.
    """
    attachments = _attachments_claim(conversation_id=conversation_id, attachment_ids=attachment_ids)
    message = Message.objects.create(
        conversation_id=conversation_id,
        seq=seq,
        role=Message.Role.USER,
        author=Message.Author.SHOPPER,
        text=text,
        parts=([{"type": "text", "text": text}] if text else []) + attachment_refs(attachments),
        client_msg_id=client_msg_id,
        grounding={"context": context} if context else {},
    )
    if attachments:
        Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(message=message)
    conversation_advance(conversation_id=conversation_id, seq=seq)
    return message


def _attachments_claim(*, conversation_id: uuid.UUID | str, attachment_ids: Sequence[uuid.UUID]) -> list[Attachment]:
    if not attachment_ids:
        return []
    # Locked, so two messages racing for one upload cannot both take it.
    found = Attachment.objects.select_for_update().filter(
        conversation_id=conversation_id, pk__in=list(attachment_ids), message__isnull=True
    )
    by_id = {a.pk: a for a in found}
    if len(by_id) != len(set(attachment_ids)):
        raise AttachmentNotFound()
    return [by_id[pk] for pk in attachment_ids]


@transaction.atomic
def reply_store(
    *,
    conversation_id: uuid.UUID | str,
    message_id: uuid.UUID,
    seq: int,
    end_seq: int,
    reply_to_id: uuid.UUID | None,
    text: str,
    status: str,
    model: str,
    usage: dict[str, Any],
    error_code: str = "",
    error_detail: str = "",
    first_token_ms: int | None = None,
    duration_ms: int | None = None,
    grounding: dict[str, Any] | None = None,
    cost: Decimal | None = None,
) -> Message:
    """Store a finished bot reply in one write.

    `seq` is the reply's place in the conversation (its reply.start); `end_seq` is the seq of the
    reply.end that announces it, recorded as the conversation's last stored event.
    """
    message = Message.objects.create(
        id=message_id,
        conversation_id=conversation_id,
        seq=seq,
        role=Message.Role.ASSISTANT,
        author=Message.Author.BOT,
        text=text,
        status=status,
        reply_to_id=reply_to_id,
        model=model,
        usage=usage,
        error_code=error_code,
        error_detail=error_detail[:2000],
        first_token_ms=first_token_ms,
        duration_ms=duration_ms,
        grounding=grounding or {},
        cost=cost,
    )
    conversation_advance(
        conversation_id=conversation_id,
        seq=end_seq,
        usage=(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), cost or Decimal(0)),
    )
    return message


def summary_store(*, conversation_id: uuid.UUID | str, text: str, covers_through_seq: int, model: str) -> Message:
    """Store a summary of the conversation up to `covers_through_seq` (not an event: no seq)."""
    return Message.objects.create(
        conversation_id=conversation_id,
        kind=Message.Kind.SUMMARY,
        seq=None,
        covers_through_seq=covers_through_seq,
        role=Message.Role.SYSTEM,
        author=Message.Author.SYSTEM,
        text=text,
        model=model,
    )
