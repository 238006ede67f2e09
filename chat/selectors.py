"""Reads of conversations and messages. Synchronous: call them via database_sync_to_async."""

from __future__ import annotations

import uuid
from typing import Any

from chat.media.selectors import attachment_serialize
from chat.models import Conversation, Message
from chat.services import owner_hash

# A reconnecting client gets this many recent messages; older ones stay in the database.
SNAPSHOT_MESSAGES = 200


def conversation_get_for_owner(*, conversation_id: uuid.UUID | str, owner_token: str) -> Conversation | None:
    return Conversation.objects.filter(pk=conversation_id, owner_hash=owner_hash(owner_token)).first()


def conversation_latest_for_owner(*, owner_token: str) -> Conversation | None:
    return (
        Conversation.objects.filter(owner_hash=owner_hash(owner_token))
        .exclude(status=Conversation.Status.CLOSED)
        .order_by("-created_at")
        .first()
    )


def conversation_last_seq(*, conversation_id: uuid.UUID | str) -> int:
    return Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation_id)


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
    }


def conversation_snapshot(*, conversation_id: uuid.UUID | str) -> dict[str, Any]:
    """The `conversation` frame: recent messages and the seq they reflect, read consistently."""
    conversation = Conversation.objects.get(pk=conversation_id)
    # Only what `last_seq` already covers: a message stored after we read it reaches the client
    # through the journal replay instead, so nothing shows twice or goes missing.
    messages = list(
        Message.objects.filter(conversation_id=conversation_id, kind=Message.Kind.CHAT, seq__lte=conversation.last_seq)
        .prefetch_related("attachments")
        .order_by("-seq")[:SNAPSHOT_MESSAGES]
    )
    messages.reverse()
    return {
        "type": "conversation",
        "id": str(conversation.id),
        "seq": conversation.last_seq,
        "messages": [message_serialize(m) for m in messages],
    }


def message_get_by_client_id(*, conversation_id: uuid.UUID | str, client_msg_id: uuid.UUID) -> Message | None:
    return Message.objects.filter(conversation_id=conversation_id, client_msg_id=client_msg_id).first()
