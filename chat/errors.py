"""The one hierarchy of domain errors.

Each error carries a stable `code` (part of the public protocol, see docs/protocol.md) and a
`message` written for the shopper. The consumer turns any ChatError into an `error` frame in
one place; nothing else formats errors for the client.

Messages stay lazy until they are read: an error is often raised where no language is active (a
media worker thread) and shown where the conversation's language is, so `message` is translated
when it is read, not when the error is made.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils import formats
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise, StrPromise


def lazy_text(render: Callable[[], str]) -> StrPromise:
    """Text that `render()` builds each time it is read, in the language active then."""
    return lazy(render, str)()  # type: ignore[return-value]  # lazy() returns a proxy of str


def lazy_number(value: float, decimal_pos: int | None = None) -> StrPromise:
    """`value` written as the language active when it is read writes numbers (1.5, 1,5), with
    `decimal_pos` decimals; without, as few as it needs (like "%g": 40, 16.7, 0.001)."""
    # Rounded here: number_format cuts extra decimals off.
    number = Decimal(f"{value:g}") if decimal_pos is None else round(value, decimal_pos)
    return lazy_text(lambda: formats.number_format(number, decimal_pos))


def lazy_format(message: str, /, **values: object) -> StrPromise:
    """`message` translated and filled in with `values` (%(name)s) when it is read. Mark the
    message with gettext_noop so makemessages finds it; values may be lazy too."""
    return lazy_text(lambda: gettext(message) % values)


class ChatError(Exception):
    code = "internal_error"
    default_message: StrOrPromise = _("Something went wrong on our side. Your message is safe; please try again.")

    def __init__(self, message: StrOrPromise | None = None, *, detail: str = "", **extra: Any) -> None:
        self._message = message or self.default_message
        # `detail` is for logs and staff (e.g. the upstream status); it never reaches the shopper.
        self.detail = detail
        self.extra = extra
        super().__init__(detail or self._message)

    @property
    def message(self) -> str:
        """The words for the shopper, in the language active now."""
        return str(self._message)

    def as_frame(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message, **self.extra}


class InvalidJSON(ChatError):
    code = "invalid_json"
    default_message = _("That message could not be read: it must be a JSON object.")


class InvalidFrame(ChatError):
    code = "invalid_frame"
    default_message = _("That message is missing a field or has a field of the wrong kind.")


class UnknownType(ChatError):
    code = "unknown_type"
    default_message = _("That kind of message is not supported.")


class MessageEmpty(ChatError):
    code = "message_empty"
    default_message = _("Please type a message before sending.")


class MessageTooLong(ChatError):
    code = "message_too_long"


class FrameTooLarge(ChatError):
    code = "frame_too_large"


class RateLimited(ChatError):
    code = "rate_limited"


class ReplyInProgress(ChatError):
    code = "reply_in_progress"
    default_message = _("Please wait for the current reply to finish, or press Stop, before sending another message.")


class ConversationNotFound(ChatError):
    code = "not_found"
    default_message = _("That conversation is not available in this browser.")


class UpstreamUnavailable(ChatError):
    """The model could not be reached or refused the request before replying."""

    code = "upstream_unavailable"
    default_message = _(
        "The assistant can't be reached right now. Your message is saved; please try again in a moment."
    )


class UpstreamStreamError(ChatError):
    """The model failed part-way through a reply."""

    code = "upstream_error"
    default_message = _(
        "The reply was cut off by a problem with the assistant. What arrived is kept; please ask again."
    )


class MediaRefused(ChatError):
    """An upload we will not keep: wrong type, damaged, too big or too long. `status` is the
    HTTP status the upload endpoint answers with; `code` says which rule it broke."""

    code = "media_refused"
    default_message = _(
        "That file could not be used. Please send a photo (JPEG, PNG, WebP, GIF, HEIC) or a voice note."
    )

    def __init__(
        self, message: StrOrPromise | None = None, *, code: str = "", status: int = 400, detail: str = ""
    ) -> None:
        super().__init__(message, detail=detail)
        if code:
            self.code = code
        self.status = status


class TooManyAttachments(ChatError):
    code = "too_many_attachments"


class AttachmentNotFound(ChatError):
    code = "attachment_not_found"
    default_message = _("A photo or voice note in that message could not be found. Please attach it again.")


class CsrfFailed(ChatError):
    code = "csrf_failed"
    default_message = _("Your session has expired or this page is out of date. Reload the page and try again.")


class ConversationClosed(ChatError):
    code = "conversation_closed"
    default_message = _("This chat has ended. Start a new chat to ask something else.")


class NotClosed(ChatError):
    code = "not_closed"
    default_message = _("You can rate the chat once it has ended.")


class InvalidFeedback(ChatError):
    code = "invalid_feedback"
    default_message = _("Feedback can only be given on the assistant's replies in this chat.")


class OwnedByOther(ChatError):
    code = "owned_by_other"


class NotOwner(ChatError):
    code = "not_owner"
    default_message = "Take over this conversation first."  # staff only


class NoConversation(ChatError):
    code = "no_conversation"
    default_message = "Open a conversation first."  # staff only


class ReplyInterrupted(ChatError):
    """The process streaming a reply stopped (crashed, killed) before storing it."""

    code = "reply_interrupted"
    default_message = _("The reply was interrupted by a problem on our side. What arrived is kept; please ask again.")


class TooManyConnections(ChatError):
    code = "too_many_connections"
    default_message = _(
        "Too many chat windows are open from your network right now. Close a few, then reload this page."
    )
