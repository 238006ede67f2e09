"""Fitting message content to what one endpoint's model can take.

A request is built for the model its tier names, but failover may send it to another. Parts
the endpoint cannot take (an image for a text-only model, audio for one that does not hear)
are replaced by the text they carry under `_fallback`; that key never goes on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chat.llm.endpoints import Capabilities

FALLBACK_KEY = "_fallback"
_NEEDS = {"image_url": "vision", "input_audio": "audio"}


def _part_for(part: Mapping[str, Any], capabilities: Capabilities) -> dict[str, Any]:
    needs = _NEEDS.get(str(part.get("type")))
    if needs is not None and not getattr(capabilities, needs):
        return {"type": "text", "text": str(part.get(FALLBACK_KEY) or "[an attachment this assistant cannot open]")}
    return {key: value for key, value in part.items() if key != FALLBACK_KEY}


def content_for_endpoint(messages: Sequence[Mapping[str, Any]], capabilities: Capabilities) -> list[dict[str, Any]]:
    """The messages with every content part supported by a model with `capabilities`."""
    fitted: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            fitted.append(dict(message))
            continue
        parts = [_part_for(part, capabilities) for part in content if isinstance(part, Mapping)]
        if parts and all(part.get("type") == "text" for part in parts) and message.get("role") != "tool":
            # All text after all: one string, which every OpenAI-compatible server accepts.
            fitted.append({**message, "content": "\n".join(part["text"] for part in parts)})
        else:
            fitted.append({**message, "content": parts})
    return fitted
