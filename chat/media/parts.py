"""How a shopper's photos and voice notes reach the model.

A stored user message keeps references, not bytes: `{"type": "image"|"audio", "attachment": id}`
next to its text part. For a turn they become OpenAI content parts:

- a photo: an `image_url` part with a data URL, for a model that sees images; the latest
  message's photos at CHAT_IMAGE_DETAIL, the CHAT_IMAGE_HISTORY most recent earlier ones at low
  detail, the rest (and every photo for a text-only model) a line of text naming the catalog
  product the photo matched, if any;
- a voice note: an `input_audio` part for an audio model (latest message only), otherwise its
  transcript as text.

Each rich part carries `_fallback`, the text to use instead on an endpoint that cannot take it
(failover may land on another model); the model client removes it before sending
(chat/llm/client.py, `content_for_endpoint`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from chat.llm.content import FALLBACK_KEY
from chat.llm.endpoints import Capabilities
from chat.media.storage import attachments_storage
from chat.models import Attachment, Message


def attachment_refs(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """The parts a stored message keeps for its attachments."""
    return [{"type": a.kind, "attachment": str(a.id)} for a in attachments]


def _attachments_of(message: Message) -> dict[str, Attachment]:
    # Callers prefetch `attachments`; .all() then reads the cache instead of the database.
    return {str(a.id): a for a in message.attachments.all()}


def image_text(attachment: Attachment) -> str:
    match = (attachment.analysis or {}).get("match")
    if match:
        return (
            f'[The shopper sent a photo. It looks like the catalog product "{match["title"]}" '
            f"(handle {match['handle']}, photo-match score {match['score']:.2f}).]"
        )
    return "[The shopper sent a photo; it does not clearly match a catalog product.]"


def audio_text(attachment: Attachment) -> str:
    if attachment.transcript:
        return f'[Voice note from the shopper, transcribed automatically:] "{attachment.transcript}"'
    return "[The shopper sent a voice note that could not be transcribed. Ask them to type their question.]"


def _text_parts(message: Message) -> list[dict[str, Any]]:
    return [part for part in message.parts if part.get("type") == "text" and part.get("text")]


def text_content(message: Message) -> list[dict[str, Any]]:
    """The message as text only: what history and text-only models see of it."""
    attachments = _attachments_of(message)
    parts = _text_parts(message) or ([{"type": "text", "text": message.text}] if message.text else [])
    for ref in message.parts:
        attachment = attachments.get(str(ref.get("attachment")))
        if attachment is None:
            continue
        text = image_text(attachment) if attachment.kind == Attachment.Kind.IMAGE else audio_text(attachment)
        parts.append({"type": "text", "text": text})
    return parts


def has_media(message: Message) -> bool:
    return any(part.get("attachment") for part in message.parts)


def _base64(name: str) -> str:
    with attachments_storage().open(name, "rb") as file:
        return base64.b64encode(file.read()).decode()


def _data_url(attachment: Attachment) -> str:
    data = _base64((attachment.model_file or attachment.file).name)
    content_type = attachment.model_content_type or attachment.content_type
    return f"data:{content_type};base64,{data}"


def _audio_part(attachment: Attachment) -> dict[str, Any]:
    data = _base64(attachment.file.name)
    audio_format = "wav" if attachment.content_type == "audio/wav" else "mp3"
    return {
        "type": "input_audio",
        "input_audio": {"data": data, "format": audio_format},
        FALLBACK_KEY: audio_text(attachment),
    }


def rich_content(
    message: Message, *, capabilities: Capabilities, image_detail: str | None, audio: bool
) -> list[dict[str, Any]]:
    """The message with its media as parts the model can take.

    Args:
        image_detail: the `detail` for photos, or None to send them as text.
        audio: send voice notes as audio (when the model hears audio) rather than transcripts.
    """
    attachments = _attachments_of(message)
    parts = _text_parts(message)
    for ref in message.parts:
        attachment = attachments.get(str(ref.get("attachment")))
        if attachment is None:
            continue
        if attachment.kind == Attachment.Kind.IMAGE:
            text = image_text(attachment)
            if capabilities.vision and image_detail is not None:
                image = {"url": _data_url(attachment), "detail": image_detail}
                parts.append({"type": "image_url", "image_url": image, FALLBACK_KEY: text})
                if (attachment.analysis or {}).get("match"):
                    parts.append({"type": "text", "text": text})  # the catalog's reading of it helps too
            else:
                parts.append({"type": "text", "text": text})
        elif capabilities.audio and audio:
            parts.append(_audio_part(attachment))
        else:
            parts.append({"type": "text", "text": audio_text(attachment)})
    return parts


def content_value(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Plain text as one string (the widest support across OpenAI-compatible servers)."""
    if all(part.get("type") == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts
