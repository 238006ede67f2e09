"""The chat's own tool for the model: `request_human`, for a shopper who asks in words for a
person. It does what the "Talk to a person" button does."""

from __future__ import annotations

import contextvars
from typing import Any

from chat.handoff import handoff_request
from chat.llm.tools import Tool, ToolRegistry

# Set by the running turn (each turn runs in a context of its own, see chat/turns.py), so a tool
# knows which conversation it acts for without trusting the model to say.
turn_conversation: contextvars.ContextVar[str] = contextvars.ContextVar("turn_conversation")


async def _request_human(arguments: dict[str, Any]) -> dict[str, Any]:
    conversation_id = turn_conversation.get(None)
    if conversation_id is None:
        return {"error": "no conversation"}
    result = await handoff_request(conversation_id=conversation_id)
    return {
        "status": result["status"],
        "staff_online": result["staff_online"],
        # The shopper already sees this notice; the model should not promise more than it says.
        "shopper_was_told": result["notice"]
        or "The shopper is already waiting for, or talking to, a person from the shop's team.",
    }


def chat_tools_register(registry: ToolRegistry) -> None:
    registry.register(
        Tool(
            name="request_human",
            description=(
                "Hand the conversation to a person from the shop's team. Use it when the shopper asks to "
                "talk to a human, or needs something you cannot do (refund decisions, complaints, order "
                "changes). The shopper is told what to expect; do not promise more than the result says."
            ),
            parameters={
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why, in a few words (for the staff)"}},
                "additionalProperties": False,
            },
            handler=_request_human,
        )
    )
