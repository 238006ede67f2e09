"""The whole conversation as staff read it on the admin page: every message in order, with its
files, the shopper's feedback and, for bot replies, what grounded them and what they cost.

Values stay raw here: the template escapes them (message text, tool results and file names
come from shoppers and models)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from catalog.models import Product
from chat.media.selectors import attachment_url
from chat.models import Attachment, Feedback, Message


@dataclass(frozen=True)
class ShownAttachment:
    attachment: Attachment
    url: str
    thumb_url: str  # the full file when there is no thumbnail
    match: str = ""  # the closest catalog product to a photo, as JSON

    @property
    def is_image(self) -> bool:
        return self.attachment.kind == Attachment.Kind.IMAGE

    @property
    def seconds(self) -> str:
        """A voice note's length, e.g. "4.7"; blank when unknown."""
        duration = self.attachment.duration_ms
        return f"{duration / 1000:.1f}" if duration else ""


@dataclass(frozen=True)
class ShownProduct:
    handle: str
    title: str  # blank when the product is no longer in the catalog
    admin_url: str


@dataclass(frozen=True)
class ShownTool:
    name: str
    arguments: str
    result: str
    error: bool
    ms: Any


@dataclass
class TranscriptEntry:
    message: Message
    side: str  # shopper | bot | staff | notice | memory: what the page styles
    speaker: str
    attachments: list[ShownAttachment] = field(default_factory=list)
    feedback: Feedback | None = None
    feedback_reasons: list[str] = field(default_factory=list)
    products: list[ShownProduct] = field(default_factory=list)
    cards: list[ShownProduct] = field(default_factory=list)
    tools: list[ShownTool] = field(default_factory=list)
    reasoning: str = ""
    context: str = ""  # the page the shopper was on, as JSON


@dataclass
class Transcript:
    entries: list[TranscriptEntry]
    unsent: list[ShownAttachment]  # uploaded, never sent with a message


def message_order(messages: Iterable[Message]) -> list[Message]:
    """Messages in conversation order; a summary (no seq) right after the last message it covers."""

    def key(message: Message) -> tuple[float, str]:
        if message.seq is not None:
            return (float(message.seq), "")
        return ((message.covers_through_seq or 0) + 0.5, message.created_at.isoformat())

    return sorted(messages, key=key)


def conversation_transcript(*, conversation_id: uuid.UUID | str) -> Transcript:
    """Everything the conversation page shows below the form, in four queries."""
    messages = message_order(Message.objects.filter(conversation_id=conversation_id))
    feedback = {f.message_id: f for f in Feedback.objects.filter(conversation_id=conversation_id)}
    files: dict[uuid.UUID | None, list[ShownAttachment]] = {}
    for attachment in Attachment.objects.filter(conversation_id=conversation_id).order_by("created_at"):
        files.setdefault(attachment.message_id, []).append(_shown_attachment(attachment))
    products = _products(messages)
    entries = []
    for message in messages:
        entry = TranscriptEntry(message=message, side=_side(message), speaker=_speaker(message))
        entry.attachments = files.get(message.id, [])
        entry.feedback = feedback.get(message.id)
        if entry.feedback is not None:
            entry.feedback_reasons = [Feedback.REASONS.get(r, str(r)) for r in entry.feedback.reasons]
        grounding = message.grounding if isinstance(message.grounding, dict) else {}
        if entry.side == "bot":
            entry.products = [products.get(h) or _unknown(h) for h in _strings(grounding.get("products"))]
            cards = [c.get("handle") for c in grounding.get("cards") or [] if isinstance(c, dict)]
            entry.cards = [products.get(h) or _unknown(h) for h in _strings(cards)]
            entry.tools = [_shown_tool(t) for t in grounding.get("tools") or [] if isinstance(t, dict)]
            entry.reasoning = str(grounding.get("reasoning") or "")
        if grounding.get("context"):
            entry.context = _pretty(grounding["context"])
        entries.append(entry)
    return Transcript(entries=entries, unsent=files.get(None, []))


def _side(message: Message) -> str:
    if message.kind == Message.Kind.SUMMARY:
        return "memory"
    if message.kind == Message.Kind.NOTICE or message.author == Message.Author.SYSTEM:
        return "notice"
    return str(message.author)


def _speaker(message: Message) -> str:
    if message.author == Message.Author.STAFF:
        return f"{message.author_name or 'Staff'} (staff)"
    return str(message.get_author_display())


def _shown_attachment(attachment: Attachment) -> ShownAttachment:
    url = attachment_url(attachment)
    thumb_url = attachment_url(attachment, "thumb") if attachment.thumb else url
    match = attachment.analysis.get("match") if isinstance(attachment.analysis, dict) else None
    return ShownAttachment(attachment, url, thumb_url, _pretty(match) if match else "")


def _shown_tool(call: dict[str, Any]) -> ShownTool:
    return ShownTool(
        name=str(call.get("name") or "?"),
        arguments=_pretty_json_text(call.get("arguments")),
        result=_pretty_json_text(call.get("result")),
        error=bool(call.get("error")),
        ms=call.get("ms"),
    )


def _products(messages: list[Message]) -> dict[str, ShownProduct]:
    """The catalog products the replies name, with a link to each one's admin page."""
    handles: set[str] = set()
    for message in messages:
        grounding = message.grounding if isinstance(message.grounding, dict) else {}
        handles.update(_strings(grounding.get("products")))
        handles.update(_strings([c.get("handle") for c in grounding.get("cards") or [] if isinstance(c, dict)]))
    found = Product.objects.filter(handle__in=handles).only("pk", "handle", "title")
    return {
        p.handle: ShownProduct(p.handle, p.title, reverse("admin:catalog_product_change", args=[p.pk])) for p in found
    }


def _unknown(handle: str) -> ShownProduct:
    return ShownProduct(handle, "", "")


def _strings(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def _pretty_json_text(value: Any) -> str:
    """Tool arguments and results are JSON text as the model or tool wrote it: indented when it
    parses, as it was when it does not (a truncated result, say)."""
    if not isinstance(value, str):
        return "" if value is None else _pretty(value)
    try:
        return _pretty(json.loads(value))
    except ValueError:
        return value
