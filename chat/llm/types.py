"""What the streaming client yields and takes: small immutable values, no wire format."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
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
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    raw: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str


StreamEvent = TextDelta | RefusalDelta | ReasoningDelta | Usage | Finish


@dataclass(frozen=True)
class ChatRequest:
    """One call to the model: OpenAI-style messages plus the catalog facts behind them."""

    messages: list[dict[str, Any]]
    user_text: str = ""
    products: Sequence[Product] = ()


class ChatClient(Protocol):
    @property
    def model(self) -> str: ...

    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Stream the reply. Raises UpstreamUnavailable before the first event, UpstreamStreamError after."""
        ...
