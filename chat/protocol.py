"""Client frames of the websocket protocol (docs/protocol.md): parsing, validation, encoding.

Everything a client sends is decoded and checked here, so the consumer and the turn code only
ever see well-formed, size-checked frames.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

import msgspec
from django.conf import settings

from chat.errors import (
    FrameTooLarge,
    InvalidFrame,
    InvalidJSON,
    MessageEmpty,
    MessageTooLong,
    TooManyAttachments,
    UnknownType,
)


class MessageContext(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the shopper is: the product page they are looking at (the widget says so)."""

    product: Annotated[str, msgspec.Meta(max_length=255)] | None = None


class MessageFrame(msgspec.Struct, frozen=True):
    client_msg_id: uuid.UUID
    text: str = ""
    attachments: list[uuid.UUID] = msgspec.field(default_factory=list)  # ids from the upload endpoint
    context: MessageContext | None = None


class StopFrame(msgspec.Struct, frozen=True):
    pass


class ResumeFrame(msgspec.Struct, frozen=True):
    conversation: uuid.UUID
    after_seq: int = 0


ClientFrame = MessageFrame | StopFrame | ResumeFrame

_FRAME_TYPES: dict[str, type[MessageFrame] | type[StopFrame] | type[ResumeFrame]] = {
    "message": MessageFrame,
    "stop": StopFrame,
    "resume": ResumeFrame,
}
# C0 controls other than tab/newline/carriage return: PostgreSQL refuses NUL in text, and the
# rest are never meant by a person typing.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_encoder = msgspec.json.Encoder()


def frame_decode(data: str | bytes | None) -> ClientFrame:
    """Parse one client frame.

    Raises a ChatError subclass with a message for the person who sent it when the frame is not
    a JSON object, has an unknown `type`, misses a field, or breaks a size limit.
    """
    if data is None:
        raise InvalidJSON("Binary frames are not supported: send JSON text.")
    size = len(data.encode() if isinstance(data, str) else data)
    if size > settings.CHAT_MAX_FRAME_BYTES:
        raise FrameTooLarge(f"That message is too large ({size} bytes; the limit is {settings.CHAT_MAX_FRAME_BYTES}).")
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise InvalidJSON() from None
    if not isinstance(raw, dict):
        raise InvalidJSON()
    kind = raw.pop("type", None)
    if not isinstance(kind, str):
        raise InvalidFrame("Every message needs a `type` field.")
    frame_type = _FRAME_TYPES.get(kind)
    if frame_type is None:
        raise UnknownType(f"Unknown message type {kind[:40]!r}.")
    try:
        frame = msgspec.convert(raw, frame_type)
    except msgspec.ValidationError as exc:
        raise InvalidFrame(f"That {kind} could not be used: {exc}.") from None
    if isinstance(frame, MessageFrame):
        return _message_check(frame)
    if isinstance(frame, ResumeFrame) and frame.after_seq < 0:
        raise InvalidFrame("`after_seq` must be zero or more.")
    return frame


def _message_check(frame: MessageFrame) -> MessageFrame:
    text = _CONTROL_CHARS.sub("", frame.text).strip()
    if not text and not frame.attachments:
        raise MessageEmpty()
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise MessageTooLong(f"Your message is {len(text)} characters long; the limit is {limit}. Please shorten it.")
    attachments = list(dict.fromkeys(frame.attachments))
    if len(attachments) > settings.CHAT_MAX_ATTACHMENTS:
        raise TooManyAttachments(
            f"A message can carry at most {settings.CHAT_MAX_ATTACHMENTS} photos or voice notes; "
            f"this one has {len(attachments)}. Please send the rest in another message."
        )
    return MessageFrame(client_msg_id=frame.client_msg_id, text=text, attachments=attachments, context=frame.context)


def frame_encode(frame: dict[str, Any]) -> str:
    return _encoder.encode(frame).decode()
