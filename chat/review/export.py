"""Conversations as files for staff: JSON (each conversation with its messages, attachments'
metadata and transcripts, and feedback) and CSV (one row per message).

The model's reasoning text stays out: staff read it on the conversation page only."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch

from chat.media.selectors import attachment_url
from chat.models import Attachment, Conversation, Feedback, Message
from chat.review.transcript import message_order

PRIVATE_GROUNDING_KEYS = {"reasoning"}

CSV_COLUMNS = [
    "conversation_id",
    "conversation_status",
    "conversation_rating",
    "message_id",
    "seq",
    "created_at",
    "kind",
    "author",
    "author_name",
    "notice_code",
    "status",
    "text",
    "attachments",
    "transcripts",
    "model",
    "tier",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "first_token_ms",
    "duration_ms",
    "error_code",
    "error_detail",
    "products",
    "tools",
    "feedback",
    "feedback_reasons",
    "feedback_comment",
]
# A spreadsheet runs a cell starting with one of these as a formula; message text is the
# shopper's or the model's, so such cells get a leading apostrophe (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def conversations_export_json(*, conversation_ids: Iterable[uuid.UUID | str]) -> str:
    """`{"conversations": [CONVERSATION, …]}` as indented JSON, newest conversation first."""
    data = {"conversations": list(_conversation_data(c) for c in _conversations(conversation_ids))}
    return json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)


def conversations_export_csv(*, conversation_ids: Iterable[uuid.UUID | str]) -> str:
    """One row per message (CSV_COLUMNS), conversations newest first, messages in order."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for conversation in _conversations(conversation_ids):
        for row in _csv_rows(conversation):
            writer.writerow({key: _cell(value) for key, value in row.items()})
    return out.getvalue()


def _conversations(conversation_ids: Iterable[uuid.UUID | str]) -> Iterator[Conversation]:
    queryset = (
        Conversation.objects.filter(pk__in=list(conversation_ids))
        .select_related("assigned_to", "reviewed_by")
        .prefetch_related(
            "tags",
            Prefetch("messages", queryset=Message.objects.prefetch_related("attachments")),
            Prefetch("feedback", queryset=Feedback.objects.all()),
            Prefetch("attachments", queryset=Attachment.objects.filter(message__isnull=True).order_by("created_at")),
        )
        .order_by("-created_at")
    )
    yield from queryset


def _conversation_data(conversation: Conversation) -> dict[str, Any]:
    feedback = {f.message_id: f for f in conversation.feedback.all()}
    return {
        "id": conversation.id,
        "status": conversation.status,
        "created_at": conversation.created_at,
        "last_message_at": conversation.last_message_at,
        "handoff_requested_at": conversation.handoff_requested_at,
        "assigned_to": conversation.assigned_to.get_username() if conversation.assigned_to else None,
        "closed_at": conversation.closed_at,
        "rating": conversation.rating,
        "rating_comment": conversation.rating_comment,
        "model_tier": conversation.model_tier,
        "prompt_tokens": conversation.prompt_tokens,
        "completion_tokens": conversation.completion_tokens,
        "cost": conversation.cost,
        "reviewed_at": conversation.reviewed_at,
        "reviewed_by": conversation.reviewed_by.get_username() if conversation.reviewed_by else None,
        "flagged": conversation.flagged,
        "tags": [tag.name for tag in conversation.tags.all()],
        "staff_note": conversation.staff_note,
        "messages": [_message_data(m, feedback.get(m.id)) for m in message_order(conversation.messages.all())],
        # Uploaded but never sent with a message.
        "unsent_attachments": [_attachment_data(a) for a in conversation.attachments.all()],
    }


def _message_data(message: Message, feedback: Feedback | None) -> dict[str, Any]:
    grounding = message.grounding if isinstance(message.grounding, dict) else {}
    return {
        "id": message.id,
        "seq": message.seq,
        "created_at": message.created_at,
        "kind": message.kind,
        "role": message.role,
        "author": message.author,
        "author_name": message.author_name,
        "notice_code": message.notice_code,
        "covers_through_seq": message.covers_through_seq,
        "text": message.text,
        "status": message.status,
        "model": message.model,
        "usage": message.usage,
        "cost": message.cost,
        "first_token_ms": message.first_token_ms,
        "duration_ms": message.duration_ms,
        "error_code": message.error_code,
        "error_detail": message.error_detail,
        "grounding": {k: v for k, v in grounding.items() if k not in PRIVATE_GROUNDING_KEYS},
        "attachments": [_attachment_data(a) for a in _in_order(message.attachments.all())],
        "feedback": _feedback_data(feedback),
    }


def _attachment_data(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "kind": attachment.kind,
        "name": attachment.name,
        "created_at": attachment.created_at,
        "source_format": attachment.source_format,
        "content_type": attachment.content_type,
        "size_bytes": attachment.size_bytes,
        "width": attachment.width,
        "height": attachment.height,
        "duration_ms": attachment.duration_ms,
        "transcript": attachment.transcript,
        "transcript_source": attachment.transcript_source,
        "analysis": attachment.analysis,
        "url": attachment_url(attachment),
    }


def _feedback_data(feedback: Feedback | None) -> dict[str, Any] | None:
    if feedback is None:
        return None
    return {
        "value": feedback.value,
        "reasons": feedback.reasons,
        "comment": feedback.comment,
        "created_at": feedback.created_at,
    }


def _csv_rows(conversation: Conversation) -> Iterator[dict[str, Any]]:
    feedback = {f.message_id: f for f in conversation.feedback.all()}
    for message in message_order(conversation.messages.all()):
        grounding = message.grounding if isinstance(message.grounding, dict) else {}
        attachments = _in_order(message.attachments.all())
        given = feedback.get(message.id)
        usage = message.usage if isinstance(message.usage, dict) else {}
        tools = [t for t in grounding.get("tools") or [] if isinstance(t, dict)]
        yield {
            "conversation_id": conversation.id,
            "conversation_status": conversation.status,
            "conversation_rating": conversation.rating,
            "message_id": message.id,
            "seq": message.seq,
            "created_at": message.created_at.isoformat(),
            "kind": message.kind,
            "author": message.author,
            "author_name": message.author_name,
            "notice_code": message.notice_code,
            "status": message.status,
            "text": message.text,
            "attachments": "; ".join(f"{a.kind}:{a.name or a.id}" for a in attachments),
            "transcripts": "\n".join(a.transcript for a in attachments if a.transcript),
            "model": message.model,
            "tier": grounding.get("tier", ""),
            "prompt_tokens": usage.get("prompt_tokens", ""),
            "completion_tokens": usage.get("completion_tokens", ""),
            "cost": message.cost,
            "first_token_ms": message.first_token_ms,
            "duration_ms": message.duration_ms,
            "error_code": message.error_code,
            "error_detail": message.error_detail,
            "products": "; ".join(p for p in grounding.get("products") or [] if isinstance(p, str)),
            "tools": "; ".join(str(t.get("name")) for t in tools),
            "feedback": given.value if given else "",
            "feedback_reasons": "; ".join(str(r) for r in given.reasons) if given else "",
            "feedback_comment": given.comment if given else "",
        }


def _in_order(attachments: Iterable[Attachment]) -> list[Attachment]:
    return sorted(attachments, key=lambda a: a.created_at)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
