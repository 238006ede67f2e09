"""Tools the model may call: the registry apps add to, the assembly of streamed tool-call
fragments, and running the calls (each with a timeout; a failure becomes the tool's result, so
the model can explain it rather than the turn breaking)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.llm.types import ToolCall, ToolResult

logger = logging.getLogger(__name__)

ToolHandler = Callable[[dict[str, Any]], Awaitable[Any]]
RESULT_LIMIT = 8000  # characters of a tool result sent back to the model


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    handler: ToolHandler
    timeout: float | None = None  # None: LLM_TOOL_TIMEOUT

    def spec(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass
class ToolRegistry:
    tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, tool: Tool) -> Tool:
        self.tools[tool.name] = tool
        return tool

    def unregister(self, name: str) -> None:
        self.tools.pop(name, None)

    def specs(self) -> list[dict[str, Any]]:
        return [tool.spec() for tool in self.tools.values()]


# Apps register their tools here from AppConfig.ready().
registry = ToolRegistry()


class ToolCallAssembler:
    """Joins `delta.tool_calls` fragments by index: id, type and name come on a call's first
    fragment, `arguments` in pieces; parallel calls may interleave."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, fragments: Iterable[Mapping[str, Any]]) -> None:
        for fragment in fragments:
            index = int(fragment.get("index", 0))
            call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": []})
            if fragment.get("id"):
                call["id"] = fragment["id"]
            function = fragment.get("function") or {}
            if function.get("name"):
                call["name"] += function["name"]
            if function.get("arguments"):
                call["arguments"].append(function["arguments"])

    def __bool__(self) -> bool:
        return bool(self._calls)

    def take(self) -> tuple[ToolCall, ...]:
        """The assembled calls, in index order; the assembler starts empty again."""
        calls = tuple(
            ToolCall(id=call["id"] or f"call_{index}", name=call["name"], arguments="".join(call["arguments"]))
            for index, call in sorted(self._calls.items())
        )
        self._calls = {}
        return calls


async def tool_calls_run(calls: Iterable[ToolCall], *, tools: ToolRegistry, default_timeout: float) -> list[ToolResult]:
    """Run the calls concurrently; every call gets a result, in the order asked."""
    return list(await asyncio.gather(*(_run(call, tools, default_timeout) for call in calls)))


async def _run(call: ToolCall, tools: ToolRegistry, default_timeout: float) -> ToolResult:
    started = time.monotonic()
    tool = tools.tools.get(call.name)
    error = True
    if tool is None:
        content = _error(f"There is no tool named {call.name!r}.")
    else:
        try:
            arguments = json.loads(call.arguments or "{}")
            if not isinstance(arguments, dict):
                raise ValueError("arguments must be a JSON object")
            async with asyncio.timeout(tool.timeout or default_timeout):
                result = await tool.handler(arguments)
            content, error = (result if isinstance(result, str) else json.dumps(result, default=str)), False
        except TimeoutError:
            content = _error(f"The tool {call.name} took too long and was stopped.")
        except (ValueError, TypeError) as exc:
            content = _error(f"The arguments could not be used: {exc}")
        except Exception as exc:
            logger.exception("tool %s failed", call.name)
            content = _error(f"The tool {call.name} failed: {type(exc).__name__}")
    return ToolResult(
        call=call, content=content[:RESULT_LIMIT], error=error, ms=int((time.monotonic() - started) * 1000)
    )


def _error(message: str) -> str:
    return json.dumps({"error": message})
