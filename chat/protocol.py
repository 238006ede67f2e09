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
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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


class HandoffFrame(msgspec.Struct, frozen=True):
    pass


class TypingFrame(msgspec.Struct, frozen=True):
    active: bool = True


FEEDBACK_REASONS = ("wrong_product", "wrong_price", "misunderstood_media", "rude", "other")


class FeedbackFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    message_id: uuid.UUID
    value: Annotated[str, msgspec.Meta(pattern="^(up|down)$")]
    reasons: Annotated[list[str], msgspec.Meta(max_length=len(FEEDBACK_REASONS))] = msgspec.field(default_factory=list)
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class EndFrame(msgspec.Struct, frozen=True):
    pass


class RatingFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    value: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class RestartFrame(msgspec.Struct, frozen=True):
    pass


class IdentifyFrame(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who the shop says the shopper is, signed by the shop's server (docs/widget.md)."""

    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    signature: Annotated[str, msgspec.Meta(max_length=128)]
    email: Annotated[str, msgspec.Meta(max_length=254)] = ""
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""


class PingFrame(msgspec.Struct, frozen=True):
    pass


class AckFrame(msgspec.Struct, frozen=True):
    """Flow control, on both sockets: the client has processed the first `frames` frames it
    received on this socket (chat/backpressure.py). Never answered."""

    frames: int


# --- Frames of the staff live page (/ws/staff/) ---------------------------------------------


class OpenFrame(msgspec.Struct, frozen=True):
    conversation: uuid.UUID


class TakeFrame(msgspec.Struct, frozen=True):
    pass


class StaffMessageFrame(msgspec.Struct, frozen=True):
    client_msg_id: uuid.UUID
    text: str


class ReleaseFrame(msgspec.Struct, frozen=True):
    pass


class CloseFrame(msgspec.Struct, frozen=True):
    pass


class ResumeFrame(msgspec.Struct, frozen=True):
    conversation: uuid.UUID
    after_seq: int = 0


ClientFrame = (
    MessageFrame
    | StopFrame
    | ResumeFrame
    | HandoffFrame
    | TypingFrame
    | FeedbackFrame
    | EndFrame
    | RatingFrame
    | RestartFrame
    | IdentifyFrame
    | PingFrame
    | AckFrame
)
StaffFrame = OpenFrame | TakeFrame | StaffMessageFrame | TypingFrame | ReleaseFrame | CloseFrame | AckFrame

_FRAME_TYPES: dict[str, type[msgspec.Struct]] = {
    "message": MessageFrame,
    "stop": StopFrame,
    "resume": ResumeFrame,
    "handoff": HandoffFrame,
    "typing": TypingFrame,
    "feedback": FeedbackFrame,
    "end": EndFrame,
    "rating": RatingFrame,
    "restart": RestartFrame,
    "identify": IdentifyFrame,
    "ping": PingFrame,
    "ack": AckFrame,
}
_STAFF_FRAME_TYPES: dict[str, type[msgspec.Struct]] = {
    "open": OpenFrame,
    "take": TakeFrame,
    "message": StaffMessageFrame,
    "typing": TypingFrame,
    "release": ReleaseFrame,
    "close": CloseFrame,
    "ack": AckFrame,
}
# C0 controls other than tab/newline/carriage return: PostgreSQL refuses NUL in text, and the
# rest are never meant by a person typing.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Lazily translated strings (gettext_lazy) are rendered in the language active when sent.
_encoder = msgspec.json.Encoder(enc_hook=lambda value: str(value) if isinstance(value, Promise) else _unknown(value))


def _unknown(value: object) -> object:
    raise TypeError(f"cannot encode {type(value).__name__} in a frame")


def frame_decode(data: str | bytes | None) -> ClientFrame:
    """Parse one client frame.

    Raises a ChatError subclass with a message for the person who sent it when the frame is not
    a JSON object, has an unknown `type`, misses a field, or breaks a size limit.
    """
    frame = _decode(data, _FRAME_TYPES)
    if isinstance(frame, MessageFrame):
        return _message_check(frame)
    if isinstance(frame, ResumeFrame) and frame.after_seq < 0:
        raise InvalidFrame("`after_seq` must be zero or more.")
    if isinstance(frame, IdentifyFrame):
        return IdentifyFrame(
            user_id=_CONTROL_CHARS.sub("", frame.user_id).strip(),
            signature=frame.signature,
            email=frame.email.strip(),
            name=_CONTROL_CHARS.sub("", frame.name).strip(),
        )
    if isinstance(frame, FeedbackFrame) and not set(frame.reasons) <= set(FEEDBACK_REASONS):
        raise InvalidFrame(_("Feedback reasons must be among: %(reasons)s.") % {"reasons": ", ".join(FEEDBACK_REASONS)})
    return frame  # type: ignore[return-value]


def staff_frame_decode(data: str | bytes | None) -> StaffFrame:
    """Parse one frame from the staff live page (same errors as frame_decode)."""
    frame = _decode(data, _STAFF_FRAME_TYPES)
    if isinstance(frame, StaffMessageFrame):
        text = _CONTROL_CHARS.sub("", frame.text).strip()
        if not text:
            raise MessageEmpty()
        if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise MessageTooLong(
                _("That message is longer than %(limit)s characters.") % {"limit": settings.CHAT_MAX_MESSAGE_CHARS}
            )
        return StaffMessageFrame(client_msg_id=frame.client_msg_id, text=text)
    return frame  # type: ignore[return-value]


def _decode(data: str | bytes | None, types: dict[str, type[msgspec.Struct]]) -> msgspec.Struct:
    if data is None:
        raise InvalidJSON(_("Binary frames are not supported: send JSON text."))
    size = len(data.encode() if isinstance(data, str) else data)
    if size > settings.CHAT_MAX_FRAME_BYTES:
        raise FrameTooLarge(
            _("That message is too large (%(size)s bytes; the limit is %(limit)s).")
            % {"size": size, "limit": settings.CHAT_MAX_FRAME_BYTES}
        )
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise InvalidJSON() from None
    if not isinstance(raw, dict):
        raise InvalidJSON()
    kind = raw.pop("type", None)
    if not isinstance(kind, str):
        raise InvalidFrame(_("Every message needs a `type` field."))
    frame_type = types.get(kind)
    if frame_type is None:
        raise UnknownType(_("Unknown message type %(type)s.") % {"type": repr(kind[:40])})
    try:
        return msgspec.convert(raw, frame_type)
    except msgspec.ValidationError as exc:
        raise InvalidFrame(_("That %(type)s could not be used: %(reason)s.") % {"type": kind, "reason": exc}) from None


def _message_check(frame: MessageFrame) -> MessageFrame:
    text = _CONTROL_CHARS.sub("", frame.text).strip()
    if not text and not frame.attachments:
        raise MessageEmpty()
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise MessageTooLong(
            _("Your message is %(length)s characters long; the limit is %(limit)s. Please shorten it.")
            % {"length": len(text), "limit": limit}
        )
    attachments = list(dict.fromkeys(frame.attachments))
    if len(attachments) > settings.CHAT_MAX_ATTACHMENTS:
        raise TooManyAttachments(
            ngettext(
                "A message can carry at most %(limit)s photo or voice note; this one has %(count)s. "
                "Please send the rest in another message.",
                "A message can carry at most %(limit)s photos or voice notes; this one has %(count)s. "
                "Please send the rest in another message.",
                settings.CHAT_MAX_ATTACHMENTS,
            )
            % {"limit": settings.CHAT_MAX_ATTACHMENTS, "count": len(attachments)}
        )
    return MessageFrame(client_msg_id=frame.client_msg_id, text=text, attachments=attachments, context=frame.context)


class _LazyText(Exception):
    pass


def _lazy_refused(value: object) -> object:
    if isinstance(value, Promise):
        raise _LazyText
    return _unknown(value)


# Events and most frames hold plain strings only: encoding them needs no translation active.
_plain_encoder = msgspec.json.Encoder(enc_hook=_lazy_refused)


def frame_encode(frame: dict[str, Any], *, language: str | None = None) -> str:
    """JSON text of a frame. Lazy translations in it (error messages) are rendered in `language`
    (default: the active one); switching languages costs ~7 µs, so only frames holding one pay
    for it, not every reply delta to every socket."""
    if language is None:
        return _encoder.encode(frame).decode()
    try:
        return _plain_encoder.encode(frame).decode()
    except _LazyText:
        with translation.override(language):
            return _encoder.encode(frame).decode()
