"""Fitting content parts to an endpoint's capabilities (what failover relies on)."""

from __future__ import annotations

from typing import Any

from chat.llm.content import content_for_endpoint
from chat.llm.endpoints import Capabilities

IMAGE: dict[str, Any] = {
    "type": "image_url",
    "image_url": {"url": "data:image/jpeg;base64,AAAA", "detail": "high"},
    "_fallback": "[a photo]",
}
AUDIO: dict[str, Any] = {
    "type": "input_audio",
    "input_audio": {"data": "AAAA", "format": "mp3"},
    "_fallback": '"blue shirt"',
}
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You help."},
    {"role": "user", "content": [{"type": "text", "text": "Is this in stock?"}, IMAGE, AUDIO]},
]


def test_a_model_that_sees_and_hears_gets_every_part_without_the_fallback_key():
    fitted = content_for_endpoint(MESSAGES, Capabilities(vision=True, audio=True))
    parts = fitted[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "input_audio"]
    assert all("_fallback" not in p for p in parts)
    assert fitted[0] == MESSAGES[0]
    assert "_fallback" in MESSAGES[1]["content"][1], "the request itself is not changed"


def test_a_text_only_model_gets_one_string_with_the_fallback_texts():
    fitted = content_for_endpoint(MESSAGES, Capabilities(vision=False, audio=False))
    assert fitted[1]["content"] == 'Is this in stock?\n[a photo]\n"blue shirt"'


def test_a_vision_model_that_does_not_hear_keeps_the_image_and_reads_the_transcript():
    parts = content_for_endpoint(MESSAGES, Capabilities(vision=True, audio=False))[1]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text"]
    assert parts[2]["text"] == '"blue shirt"'
