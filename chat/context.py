"""Building what the model sees for a turn: instructions, history and catalog facts.

Synchronous (database reads): call via database_sync_to_async.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from catalog.selectors import product_facts, product_search
from chat.llm.types import ChatRequest
from chat.models import Message
from chat.selectors import history_for_model

DEFAULT_SYSTEM_PROMPT = """\
You are the customer-support assistant of {shop}, chatting with a shopper on the shop's website.
- Answer from the catalog facts you are given and from the conversation. Never invent products,
  prices, stock levels, delivery times or policies; if you do not know, say so and suggest
  contacting the shop's staff.
- Be brief and friendly. Use short paragraphs or bullet lists; markdown is rendered.
- Prices are in {currency}."""


def system_prompt() -> str:
    return settings.SHOP_SYSTEM_PROMPT or DEFAULT_SYSTEM_PROMPT.format(
        shop=settings.SHOP_NAME, currency=settings.SHOP_CURRENCY
    )


def _model_message(message: Message) -> dict[str, Any]:
    if message.role == Message.Role.USER:
        parts = message.parts or [{"type": "text", "text": message.text}]
        # Plain text as a string: the widest support across OpenAI-compatible servers.
        if len(parts) == 1 and parts[0].get("type") == "text":
            return {"role": "user", "content": parts[0]["text"]}
        return {"role": "user", "content": parts}
    return {"role": "assistant", "content": message.text}


def turn_request_build(*, user_message: Message) -> tuple[ChatRequest, dict[str, Any]]:
    """The model request for a reply to `user_message`, and a record of what grounded it."""
    history = history_for_model(
        conversation_id=user_message.conversation_id,
        limit=settings.CHAT_HISTORY_MESSAGES,
        max_chars=settings.CHAT_HISTORY_CHARS,
    )
    products = product_search(query=user_message.text, limit=5)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    messages += [_model_message(m) for m in history if m.pk != user_message.pk]
    if products:
        # Facts go last, next to the question: the stable prefix above stays cacheable upstream.
        facts = product_facts(products=products)
        messages.append({"role": "system", "content": f"Catalog facts for the shopper's latest message:\n\n{facts}"})
    messages.append(_model_message(user_message))
    grounding = {"products": [p.handle for p in products]}
    return ChatRequest(messages=messages, user_text=user_message.text, products=products), grounding
