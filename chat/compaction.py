"""Keeping the history sent to the model within a token budget.

When the recent messages no longer fit, the oldest of them are compacted into a summary message
(stored, visible to staff, never shown to the shopper) instead of being dropped silently. Later
turns send the latest summary plus the messages after it. The summary is written by the model;
if the model cannot be reached, by a plain extractive fallback, so compaction never blocks a turn.
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from chat.errors import UpstreamStreamError, UpstreamUnavailable
from chat.llm import chat_client_get, model_configured
from chat.llm.endpoints import model_for_tier
from chat.llm.tokens import message_tokens
from chat.llm.types import ChatRequest, TextDelta
from chat.media.parts import content_value, has_media, text_content
from chat.media.selectors import attachments_prefetch
from chat.models import Message
from chat.selectors import history_messages

logger = logging.getLogger(__name__)

# After compacting, the kept history fills at most this share of the budget, so the next few
# turns fit without compacting again.
KEEP_SHARE = 0.5
SUMMARY_PROMPT = """\
You keep the memory of a customer-support chat for {shop}. Summarise the conversation below for
the assistant that continues it: what the shopper wants, products, sizes, colours and order
numbers mentioned, and what the assistant answered or promised. At most 120 words, plain text."""


@dataclass
class HistoryPlan:
    summary: Message | None
    messages: list[Message]  # oldest first; the last is the shopper's new message
    overflow: list[Message]  # to be folded into a new summary, oldest first


def model_message(message: Message) -> dict[str, Any]:
    if message.kind == Message.Kind.SUMMARY:
        return {"role": "system", "content": f"Summary of the earlier conversation:\n{message.text}"}
    if message.role == Message.Role.USER:
        if has_media(message):
            # History carries photos and voice notes as text; context.py re-attaches the recent ones.
            return {"role": "user", "content": content_value(text_content(message))}
        parts = message.parts or [{"type": "text", "text": message.text}]
        # Plain text as a string: the widest support across OpenAI-compatible servers.
        if len(parts) == 1 and parts[0].get("type") == "text":
            return {"role": "user", "content": parts[0]["text"]}
        return {"role": "user", "content": parts}
    if message.author == Message.Author.STAFF:
        # The model continues after a person answered: it should know who said what.
        return {"role": "assistant", "content": f"[{message.author_name} from the shop's team]: {message.text}"}
    return {"role": "assistant", "content": message.text}


def history_plan(*, conversation_id: str, budget: int) -> HistoryPlan:
    """What history fits in `budget` tokens. Synchronous (one database read, and the attachments'
    when some messages have any)."""
    summary, messages = history_messages(conversation_id=conversation_id)
    attachments_prefetch(messages, empty=lambda message: not message.has_attachments)  # type: ignore[attr-defined]
    base = [model_message(summary)] if summary else []
    if message_tokens(base + [model_message(m) for m in messages]) <= budget:
        return HistoryPlan(summary=summary, messages=messages, overflow=[])
    overflow: list[Message] = []
    keep_budget = int(budget * KEEP_SHARE)
    # Keep at least the new message; fold older ones until the rest fits comfortably.
    while len(messages) > 1 and message_tokens([model_message(m) for m in messages]) > keep_budget:
        overflow.append(messages.pop(0))
    return HistoryPlan(summary=summary, messages=messages, overflow=overflow)


def _transcript(summary: Message | None, overflow: list[Message]) -> str:
    lines = [f"Earlier summary: {summary.text}"] if summary else []
    names = {str(Message.Author.SHOPPER): "Shopper", str(Message.Author.STAFF): "Staff"}
    lines += [f"{names.get(m.author, 'Assistant')}: {_plain(m)}" for m in overflow]
    return "\n".join(lines)


def _plain(message: Message) -> str:
    if has_media(message):
        return " ".join(part["text"] for part in text_content(message))
    return message.text


def summary_fallback(summary: Message | None, overflow: list[Message]) -> str:
    """Without a model: the shopper's own words, shortened — crude, but nothing is lost silently."""
    asked = [_plain(m)[:160] for m in overflow if m.author == Message.Author.SHOPPER]
    earlier = f"{summary.text} " if summary else ""
    return (earlier + "Earlier the shopper wrote: " + " | ".join(asked))[:2000]


async def summary_write(*, summary: Message | None, overflow: list[Message]) -> tuple[str, str]:
    """The text of a new summary covering `summary` and `overflow`, and the model that wrote it."""
    if model_configured():
        request = ChatRequest(
            messages=[
                {"role": "system", "content": SUMMARY_PROMPT.format(shop=settings.SHOP_NAME)},
                {"role": "user", "content": _transcript(summary, overflow)},
            ],
            model=model_for_tier("quick"),
            tools=(),
        )
        client = chat_client_get(model=request.model)
        try:
            async with aclosing(client.stream(request)) as events:
                text = "".join([event.text async for event in events if isinstance(event, TextDelta)])
            if text.strip():
                return text.strip(), client.model
        except (UpstreamUnavailable, UpstreamStreamError) as exc:
            logger.warning("could not summarise with the model (%s); using the plain summary", exc.detail)
    return summary_fallback(summary, overflow), "extractive"
