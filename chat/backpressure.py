"""Flow control on a websocket: how far a client may fall behind before the server stops sending.

Daphne (Twisted) keeps every frame a client has not read in the server's memory, and the ASGI
app cannot see that buffer. So clients acknowledge what they have processed —
`{"type": "ack", "frames": N}`, N counting every frame received on this socket (docs/protocol.md)
— and the server closes a socket once more than CHAT_UNACKED_BYTES it sent are unacknowledged
(close code TOO_SLOW). Nothing is lost: replies run on and are stored, and the client reconnects
and resumes as after any drop.

Counting frames rather than `seq` gives an exact point in what this socket was sent: frames
without a seq (pings, typing, staff lobby updates) count too, and a conversation switch (`open`,
`restart`) restarts `seq` but not the count. To turn a count back into bytes without a record per
frame, the window notes (frames, bytes) once every `limit // 8` bytes; an ack is credited up to
the last note it covers — or exactly, when it covers every frame sent.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from chat.errors import ChatError, lazy_format

TOO_SLOW = 4008  # close code: too much sent and not acknowledged; reconnect and resume
MARKS = 8  # notes per window: an ack is credited to within limit / MARKS bytes


class InvalidAck(ChatError):
    code = "invalid_ack"
    default_message = _("That ack could not be used.")


class SendWindow:
    """What one socket was sent and what its client acknowledged. Sync and per socket: the
    consumer calls `sending()` for every frame, `acked()` for every ack."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames = 0  # frames sent on this socket
        self.acked_frames = 0  # the count in the last ack
        self.sent = 0  # bytes sent on this socket (UTF-8 text of the frames)
        self.credited = 0  # of `sent`, what the client has acknowledged
        self.grace = 0  # a catch-up bigger than the limit may be in flight on top of it
        self.grace_until = 0  # …until `credited` reaches here
        self.marks: deque[tuple[int, int]] = deque()  # (frames, sent) every `step` bytes
        self.step = max(1, limit // MARKS)
        self.next_mark = self.step
        self.closed = False  # over the limit: nothing more is sent on this socket

    def sending(self, size: int) -> bool:
        """Count a frame of `size` bytes about to be sent. False (for good) once the bytes
        already unacknowledged are over the limit: then close the socket instead."""
        if self.closed or self.sent - self.credited > self.limit + self.grace:
            self.closed = True
            return False
        self.frames += 1
        self.sent += size
        if self.sent >= self.next_mark:
            self.marks.append((self.frames, self.sent))
            self.next_mark = self.sent + self.step
        return True

    def acked(self, frames: int) -> None:
        """The client has processed the first `frames` frames of this socket.

        Raises InvalidAck when it counts more frames than were sent, or fewer than an earlier ack.
        """
        if frames > self.frames:
            raise InvalidAck(
                lazy_format(
                    gettext_noop("An ack cannot count more frames (%(acked)s) than this socket was sent (%(sent)s)."),
                    acked=frames,
                    sent=self.frames,
                )
            )
        if frames < self.acked_frames:
            raise InvalidAck(
                lazy_format(
                    gettext_noop(
                        "Acks count every frame received on this socket: they never go down (%(acked)s, then %(last)s)."
                    ),
                    acked=self.acked_frames,
                    last=frames,
                )
            )
        self.acked_frames = frames
        if frames == self.frames:
            self.credited = self.sent
            self.marks.clear()
        while self.marks and self.marks[0][0] <= frames:
            self.credited = self.marks.popleft()[1]
        if self.credited >= self.grace_until:
            self.grace = 0

    @contextmanager
    def catching_up(self) -> Iterator[None]:
        """Around a snapshot and the replay after it (connect, resume, restart, staff `open`):
        sent whole whatever its size — cut short, the client would reconnect and get it again —
        and the limit then stretches by its size until the client acknowledges it."""
        start = self.sent
        self.grace = self.grace_until = sys.maxsize
        try:
            yield
        finally:
            self.grace = self.sent - start
            self.grace_until = self.sent
