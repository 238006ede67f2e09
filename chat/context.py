"""Building what the model sees for a turn: instructions, history (within its token budget, see
chat/compaction.py) and catalog facts. Synchronous (database reads): call via
database_sync_to_async."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from catalog.selectors import product_facts, product_search
from chat.compaction import HistoryPlan, model_message
from chat.llm.endpoints import model_for_tier, tier_choose
from chat.llm.types import ChatRequest
from chat.models import Message

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


def turn_request_build(*, user_message: Message, plan: HistoryPlan) -> tuple[ChatRequest, dict[str, Any]]:
    """The model request for a reply to `user_message`, and a record of what grounded it."""
    tier = tier_choose(text=user_message.text, override=user_message.conversation.model_tier)
    products = product_search(query=user_message.text, limit=5)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt()}]
    if plan.summary is not None:
        messages.append(model_message(plan.summary))
    messages += [model_message(m) for m in plan.messages if m.pk != user_message.pk]
    if products:
        # Facts go last, next to the question: the stable prefix above stays cacheable upstream.
        facts = product_facts(products=products)
        messages.append({"role": "system", "content": f"Catalog facts for the shopper's latest message:\n\n{facts}"})
    messages.append(model_message(user_message))
    request = ChatRequest(
        messages=messages,
        user_text=user_message.text,
        products=products,
        model=model_for_tier(tier),
        cache_key=f"supportbot-{user_message.conversation_id}",
    )
    grounding: dict[str, Any] = {"products": [p.handle for p in products], "tier": tier}
    if plan.summary is not None:
        grounding["summary_id"] = str(plan.summary.pk)
    return request, grounding
