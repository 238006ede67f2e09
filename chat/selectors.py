"""Reads of conversations and messages. Synchronous: call them via database_sync_to_async."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from chat.media.selectors import attachment_serialize
from chat.models import Conversation, Feedback, Message, Site
from chat.ownership import owner_hash
from chat.states import display_name
from supportbot.rows import models_from_sql

# A reconnecting client gets this many recent messages; older ones stay in the database.
SNAPSHOT_MESSAGES = 200


def conversation_get_for_owner(
    *, conversation_id: uuid.UUID | str, owner_token: str, site_id: int | None = None
) -> Conversation | None:
    """The conversation if this owner holds it on this site (None: the app's own page)."""
    return Conversation.objects.filter(
        _on_site(site_id), pk=conversation_id, owner_hash=owner_hash(owner_token)
    ).first()


def _on_site(site_id: int | None) -> Q:
    return Q(site_id=site_id) if site_id is not None else Q(site__isnull=True)


# A chat that just ended still opens on reload for this long, so the shopper can rate it.
RATE_AFTER_CLOSE = timedelta(minutes=30)


def conversation_latest_for_owner(*, owner_token: str, site_id: int | None = None) -> Conversation | None:
    """The conversation a page of this session opens: the latest open one, or one that ended
    moments ago and is not rated yet."""
    just_ended = Q(
        status=Conversation.Status.CLOSED, rating__isnull=True, closed_at__gte=timezone.now() - RATE_AFTER_CLOSE
    )
    owned = Conversation.objects.filter(_on_site(site_id), owner_hash=owner_hash(owner_token))
    latest = owned.order_by("-created_at").first()
    if latest is None:
        return None
    if latest.status != Conversation.Status.CLOSED:
        return latest
    return Conversation.objects.filter(pk=latest.pk).filter(just_ended).first()


def conversation_last_seq(*, conversation_id: uuid.UUID | str) -> int:
    return Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation_id)


_TURN_STATE_SQL = (
    "SELECT c.status, c.last_seq, EXISTS (SELECT 1 FROM chat_message AS m"
    " WHERE m.conversation_id = c.id AND m.client_msg_id = %s) FROM chat_conversation AS c WHERE c.id = %s"
)


def conversation_turn_state(*, conversation_id: uuid.UUID | str, client_msg_id: uuid.UUID) -> tuple[str, int, bool]:
    """For a turn about to start (chat/turns.py), in one query: the conversation's status, the
    last seq it stored, and whether a message with this client_msg_id is stored already.

    Written as SQL: it runs first on every message, and the ORM spent 0.5 ms of CPU compiling
    it against 0.07 ms to run it (docs/benchmarks.md). Raises Conversation.DoesNotExist."""
    conversation_pk = Conversation._meta.pk
    assert conversation_pk is not None
    params = [
        Message._meta.get_field("client_msg_id").get_db_prep_value(client_msg_id, connection),
        conversation_pk.get_db_prep_value(conversation_id, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_TURN_STATE_SQL, params)
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"no conversation {conversation_id}")
    status, last_seq, resent = row
    return str(status), int(last_seq), bool(resent)


# The fields history messages are read with: model_message (chat/compaction.py), chat/context.py
# (the request) and the summaries' transcript use no others. One left out would cost a query per
# message when read (tests/chat/test_turn_queries.py counts a plain turn's, however long its
# history).
HISTORY_FIELDS = ("id", "conversation_id", "seq", "kind", "role", "author", "author_name", "text", "parts")


# The latest summary (part 0), then the chat messages after what it covers (part 1). A failed reply
# has no text and is left out; a voice note alone has none either, but counts. The columns are
# HISTORY_FIELDS and covers_through_seq.
_HISTORY_SQL = (
    "WITH s AS (SELECT m.id, m.conversation_id, m.seq, m.kind, m.role, m.author, m.author_name, m.text, m.parts,"
    " m.covers_through_seq FROM chat_message AS m"
    " WHERE m.conversation_id = %s AND m.kind = %s AND m.covers_through_seq IS NOT NULL"
    " ORDER BY m.covers_through_seq DESC LIMIT 1)"
    " SELECT s.*, 0 AS has_attachments, 0 AS part FROM s"
    " UNION ALL"
    " SELECT m.id, m.conversation_id, m.seq, m.kind, m.role, m.author, m.author_name, m.text, m.parts,"
    " m.covers_through_seq,"
    " CASE WHEN EXISTS (SELECT 1 FROM chat_attachment AS a WHERE a.message_id = m.id) THEN 1 ELSE 0 END, 1"
    " FROM chat_message AS m WHERE m.conversation_id = %s AND m.kind = %s AND m.role <> %s"
    " AND m.seq > COALESCE((SELECT covers_through_seq FROM s), 0)"
    " AND (m.text <> '' OR EXISTS (SELECT 1 FROM chat_attachment AS a WHERE a.message_id = m.id))"
    " ORDER BY part, seq"
)


def history_messages(*, conversation_id: uuid.UUID | str) -> tuple[Message | None, list[Message]]:
    """What a reply is sent with, in one query: the conversation's latest summary, if any, and its
    chat messages after what the summary covers, oldest first — with only HISTORY_FIELDS, and
    `has_attachments` set on each.

    Written as SQL: it runs for every turn but a conversation's first, and the ORM's two querysets
    spent 2.9 to 4.5 ms of CPU on a 20-message history, this 0.8 ms (docs/benchmarks.md)."""
    conversation = Message._meta.get_field("conversation").get_db_prep_value(conversation_id, connection)
    params = [conversation, Message.Kind.SUMMARY, conversation, Message.Kind.CHAT, Message.Role.SYSTEM]
    rows = models_from_sql(Message, _HISTORY_SQL, params)
    if rows and rows[0].kind == Message.Kind.SUMMARY:
        return rows[0], rows[1:]
    return None, rows


def conversation_for_turn(*, conversation_id: uuid.UUID | str) -> Conversation:
    """The conversation with its site, as building a turn's request reads them (chat/context.py).
    Raises Conversation.DoesNotExist.

    Written as SQL (the site's row is a second statement, for conversations on a shop's site): the
    ORM's `select_related(...).get()` spent 0.9 to 1.4 ms of CPU, this 0.45 to 0.65 ms without a
    site (docs/benchmarks.md)."""
    pk = Conversation._meta.get_field("id").get_db_prep_value(conversation_id, connection)
    found = models_from_sql(Conversation, "SELECT * FROM chat_conversation WHERE id = %s", [pk])
    if not found:
        raise Conversation.DoesNotExist(f"no conversation {conversation_id}")
    conversation = found[0]
    if conversation.site_id is not None:  # (none: reading `site` runs nothing)
        (conversation.site,) = models_from_sql(Site, "SELECT * FROM chat_site WHERE id = %s", [conversation.site_id])
    return conversation


def message_serialize(message: Message) -> dict[str, Any]:
    """MESSAGE in docs/protocol.md. Reads the message's attachments: prefetch them for many."""
    return {
        "id": str(message.id),
        "seq": message.seq,
        "role": message.role,
        "author": message.author,
        "text": message.text,
        "status": message.status,
        "created_at": message.created_at.isoformat(),
        # Lets the sending client match a stored message to one it is still waiting for.
        "client_msg_id": str(message.client_msg_id) if message.client_msg_id else None,
        # Product cards the reply showed, as they were then (price and stock may change later).
        "products": message.grounding.get("cards", []) if message.role == Message.Role.ASSISTANT else [],
        "attachments": [attachment_serialize(a) for a in message.attachments.all()],
        "kind": message.kind,
        "author_name": message.author_name,
        "notice_code": message.notice_code,
        "feedback": _feedback(message),
    }


def _feedback(message: Message) -> dict[str, Any] | None:
    if message.author != Message.Author.BOT:
        return None
    try:
        feedback: Feedback = message.feedback
    except Feedback.DoesNotExist:
        return None
    return {"value": feedback.value, "reasons": feedback.reasons, "comment": feedback.comment}


def conversation_state(*, conversation_id: uuid.UUID | str) -> dict[str, Any]:
    """Who answers the conversation now: its status and the staff member who has it."""
    conversation = Conversation.objects.select_related("assigned_to").get(pk=conversation_id)
    return _state(conversation)


def _state(conversation: Conversation) -> dict[str, Any]:
    staff = conversation.assigned_to if conversation.status == Conversation.Status.STAFF else None
    return {"status": conversation.status, "staff_name": display_name(staff) or None}


def message_before(*, conversation_id: uuid.UUID | str, seq: int) -> uuid.UUID | None:
    """The shopper's message a reply starting at `seq` answers (the last one before it)."""
    pk: uuid.UUID | None = (
        Message.objects.filter(conversation_id=conversation_id, author=Message.Author.SHOPPER, seq__lt=seq)
        .order_by("-seq")
        .values_list("pk", flat=True)
        .first()
    )
    return pk


def conversation_exists(*, conversation_id: uuid.UUID | str) -> bool:
    return Conversation.objects.filter(pk=conversation_id).exists()


def conversation_status(*, conversation_id: uuid.UUID | str) -> str:
    return str(Conversation.objects.values_list("status", flat=True).get(pk=conversation_id))


def conversation_snapshot(
    *, conversation_id: uuid.UUID | str, conversation: Conversation | None = None
) -> dict[str, Any]:
    """The `conversation` frame: recent messages and the seq they reflect, read consistently.
    `conversation`: its row, if the caller has just read it (it is not read again)."""
    if conversation is None:
        conversation = Conversation.objects.select_related("assigned_to").get(pk=conversation_id)
    # Only what `last_seq` already covers: a message stored after we read it reaches the client
    # through the journal replay instead, so nothing shows twice or goes missing.
    messages = list(
        Message.objects.filter(
            conversation_id=conversation_id,
            kind__in=[Message.Kind.CHAT, Message.Kind.NOTICE],
            seq__lte=conversation.last_seq,
        )
        .select_related("feedback")
        .prefetch_related("attachments")
        .order_by("-seq")[:SNAPSHOT_MESSAGES]
    )
    messages.reverse()
    return _snapshot(conversation, messages)


def conversation_snapshot_unstored(conversation: Conversation) -> dict[str, Any] | None:
    """The `conversation` frame of a conversation with nothing stored in it yet (`last_seq` 0: a
    new one), built from the row at hand without the database — so it may run on the event loop.
    None when the database is needed after all (something stored, or a staff member's name to
    read): use conversation_snapshot then.

    Every new visitor's socket opens a conversation just created (and the widget connects on a
    shop's every page): its snapshot was two reads, the row again and no messages."""
    if conversation.last_seq != 0 or conversation.status == Conversation.Status.STAFF:
        return None
    return _snapshot(conversation, [])


def _snapshot(conversation: Conversation, messages: list[Message]) -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": str(conversation.id),
        "seq": conversation.last_seq,
        **_state(conversation),
        "rating": conversation.rating,
        "messages": [message_serialize(m) for m in messages],
    }


def message_get_by_client_id(*, conversation_id: uuid.UUID | str, client_msg_id: uuid.UUID) -> Message | None:
    return Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()


# The live page lists conversations active this recently (and every waiting or staffed one).
LOBBY_WINDOW = timedelta(hours=24)
LOBBY_SIZE = 200


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    """SUMMARY in docs/protocol.md (the staff live page's list entry)."""
    last = (
        Message.objects.filter(conversation_id=conversation.pk, kind__in=[Message.Kind.CHAT, Message.Kind.NOTICE])
        .exclude(text="")
        .order_by("-seq")
        .values_list("text", flat=True)
        .first()
    )
    count = getattr(conversation, "message_count", None)
    if count is None:
        count = conversation.messages.filter(kind=Message.Kind.CHAT).count()
    return {
        "id": str(conversation.pk),
        **_state(conversation),
        "created_at": conversation.created_at.isoformat(),
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "handoff_requested_at": (
            conversation.handoff_requested_at.isoformat() if conversation.handoff_requested_at else None
        ),
        "preview": (last or "")[:120],
        "messages": count,
    }


def conversation_summary_get(*, conversation_id: uuid.UUID | str) -> dict[str, Any]:
    return conversation_summary(Conversation.objects.select_related("assigned_to").get(pk=conversation_id))


def lobby_conversations() -> list[dict[str, Any]]:
    """What the staff live page lists on connect: waiting and staffed conversations, and every
    one active in the last day, newest activity first."""
    recent = timezone.now() - LOBBY_WINDOW
    active = Q(status__in=[Conversation.Status.WAITING, Conversation.Status.STAFF]) | Q(last_message_at__gte=recent)
    conversations = (
        Conversation.objects.filter(active)
        .select_related("assigned_to")
        .annotate(message_count=Count("messages", filter=Q(messages__kind=Message.Kind.CHAT)))
        .order_by(F("last_message_at").desc(nulls_last=True))[:LOBBY_SIZE]
    )
    return [conversation_summary(c) for c in conversations]
