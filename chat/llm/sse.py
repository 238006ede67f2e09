"""Server-sent events, as the model's streams send them: bytes in, events out.

The event-stream format of the HTML standard
(https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream):
UTF-8, a byte-order mark at the start ignored, lines ended by CRLF, LF or CR (and nothing else:
a U+2028 inside JSON is no line end), `:` comments, `field: value` with one space after the
colon dropped, `data` lines joined by LF, an event dispatched by an empty line when it has data,
and an event the stream ends inside of dropped.

Why not httpx-sse, which the client used until the eleventh round (docs/benchmarks.md): under
load a network read brings one chunk of a reply or a few, and httpx-sse takes each through three
async generators of its own over httpx's text and line decoders, then parses each line in a call
of its own. Here a read is one call on its bytes that returns its events: ~4 µs less CPU per
chunk at 200 streams (bench/stream_client.py --streams 200 --rate 50 --tokens 200: the client
26 → 22 µs a chunk, a bare read 13 to 14). tests/chat/llm/test_sse.py checks it against
httpx-sse on the same streams cut anywhere between reads.

`id` and `retry` are ignored: the client never reconnects to a stream it lost (a reply
that broke is retried as a new request, chat/llm/router.py), so it has no use for either.
"""

from __future__ import annotations

from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"


class Event(NamedTuple):
    data: bytes  # the data lines joined by LF, as sent (UTF-8): JSON decoders take bytes
    event: bytes = b"message"  # the `event` field; "message" when the stream gave none


class SSEDecoder:
    """Feed it the body's bytes as they come; each call returns the events they completed.

    Works on the bytes: CR and LF never occur inside a multi-byte UTF-8 sequence, so lines split
    the same before decoding as after, and the data goes to the JSON decoder without a copy as
    text. Bytes that are not UTF-8 stay as they are (the JSON decoder rejects them)."""

    def __init__(self) -> None:
        self._head = b""  # the stream's first bytes, while too few to tell a byte-order mark
        # A line not ended yet, in pieces: a long line over many reads is joined once, not copied
        # again with every read.
        self._tail: list[bytes] = []
        self._after_cr = False  # the last read ended with CR: an LF first in the next is its pair
        self._started = False  # the byte-order mark is looked for only at the start
        self._data: list[bytes] = []
        self._event = b""

    def feed(self, chunk: bytes) -> list[Event]:
        if not self._started:
            # The mark may come split over reads: wait until there are enough bytes to tell.
            head = self._head + chunk
            if len(head) < len(_BOM) and _BOM.startswith(head):
                self._head = head
                return []
            self._started, self._head = True, b""
            chunk = head[len(_BOM) :] if head.startswith(_BOM) else head
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[0] == 0x0A:
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._after_cr = chunk[-1] == 0x0D
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            if chunk:
                self._tail.append(chunk)
            return []
        lines = chunk.split(b"\n")
        if self._tail:
            self._tail.append(lines[0])
            lines[0] = b"".join(self._tail)
            self._tail = []
        if last := lines.pop():  # b"" when the read ended with a line
            self._tail.append(last)
        events: list[Event] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(Event(b"\n".join(self._data), self._event or b"message"))
                    self._data = []
                self._event = b""
            elif line.startswith(b"data:"):
                # The common line, first: a model's stream is little else.
                self._data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[0] != 0x3A:  # not a ":" comment
                name, _, value = line.partition(b":")
                if name == b"data":  # a line with no colon: the field's name and an empty value
                    self._data.append(b"")
                elif name == b"event":
                    self._event = value[1:] if value[:1] == b" " else value
        return events
