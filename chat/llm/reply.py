"""A reply that may use tools: stream, run the tools the model asks for, send their results
back, and stream again — up to a cap on rounds, after which the model must answer in words."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any

from chat.llm.tools import ToolRegistry, tool_calls_run
from chat.llm.types import (
    ChatClient,
    ChatRequest,
    Finish,
    Notify,
    StreamEvent,
    TextDelta,
    ToolCalls,
    notify_nobody,
)


class ToolUsingResponder:
    def __init__(self, *, client: ChatClient, tools: ToolRegistry, max_rounds: int, tool_timeout: float) -> None:
        self._client = client
        self._tools = tools
        self._max_rounds = max_rounds
        self._tool_timeout = tool_timeout

    @property
    def model(self) -> str:
        return self._client.model

    async def stream(
        self, request: ChatRequest, *, notify: Notify = notify_nobody
    ) -> AsyncGenerator[StreamEvent, None]:
        specs = self._tools.specs() if request.tools is None else list(request.tools)
        messages = list(request.messages)
        for round_number in range(self._max_rounds + 1):
            last_round = round_number == self._max_rounds
            round_request = replace(
                request,
                messages=messages,
                tools=specs,
                # Past the cap the model still sees the tools (earlier messages refer to them)
                # but may not call them: it has to answer.
                tool_choice="none" if (last_round and specs) else request.tool_choice,
            )
            text: list[str] = []
            calls: ToolCalls | None = None
            async for event in self._client.stream(round_request, notify=notify):
                if isinstance(event, ToolCalls):
                    calls = event
                    continue
                if isinstance(event, Finish) and calls is not None:
                    continue  # not the end of the reply: the tools run next
                if isinstance(event, TextDelta):
                    text.append(event.text)
                yield event
            if calls is None or last_round:
                return
            results = await tool_calls_run(calls.calls, tools=self._tools, default_timeout=self._tool_timeout)
            for result in results:
                yield result
            messages = [*messages, _assistant_turn(text, calls), *(_tool_turn(r.call.id, r.content) for r in results)]


def _assistant_turn(text: list[str], calls: ToolCalls) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "".join(text) or None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments or "{}"}}
            for call in calls.calls
        ],
    }


def _tool_turn(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}
