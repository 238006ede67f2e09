"""What the streaming client yields and takes: small immutable values, no wire format."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from catalog.models import Product


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning text some gateways stream; kept for staff, never shown to shoppers."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one reply. `cached_tokens` is part of `prompt_tokens` and
    `reasoning_tokens` part of `completion_tokens`, as OpenAI reports them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False  # counted with tiktoken because the endpoint sent no usage

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "estimated": self.estimated,
        }

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.estimated or other.estimated,
        )


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as the model wrote it


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """The model asks for these tools to be run (finish_reason "tool_calls")."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool that ran, for the record staff see; its `content` went back to the model."""

    call: ToolCall
    content: str
    error: bool
    ms: int


@dataclass(frozen=True, slots=True)
class ModelSelected:
    """Which endpoint and model are answering (after retries and failover)."""

    endpoint: str
    model: str


StreamEvent = TextDelta | RefusalDelta | ReasoningDelta | Usage | Finish | ToolCalls | ToolResult | ModelSelected


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the shopper should know while waiting: "queued" (with a place in line) or
    "retrying". Never details."""

    code: str
    message: str
    position: int | None = None


Notify = Callable[[Notice], Awaitable[None]]


@dataclass(frozen=True)
class ChatRequest:
    """One call to the model: OpenAI-style messages plus the catalog facts behind them."""

    messages: list[dict[str, Any]]
    user_text: str = ""
    products: Sequence[Product] = ()
    model: str = ""  # empty: the configured default
    tools: Sequence[dict[str, Any]] | None = None  # function specs; None: the registered tools
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    cache_key: str = ""  # prompt_cache_key, where the endpoint accepts one


async def notify_nobody(notice: Notice) -> None:
    return None


class ChatClient(Protocol):
    @property
    def model(self) -> str: ...

    def stream(self, request: ChatRequest, *, notify: Notify = notify_nobody) -> AsyncGenerator[StreamEvent, None]:
        """Stream the reply. Raises UpstreamUnavailable before the first event, UpstreamStreamError after."""
        ...
