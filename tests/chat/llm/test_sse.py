"""The SSE decoder (chat/llm/sse.py) on its own: the HTML standard's examples, every line ending,
reads cut anywhere, and the same events as httpx-sse (the library the client used before) on the
same streams. tests/chat/llm/test_wire_format.py reads the same framings through the client."""

from __future__ import annotations

import random

import httpx
import pytest
from httpx_sse import EventSource

from chat.llm.sse import Event, SSEDecoder


def decoded(*reads: bytes) -> list[Event]:
    sse = SSEDecoder()
    return [event for read in reads for event in sse.feed(read)]


def every_cut(body: bytes) -> list[list[bytes]]:
    """The body as one read, cut once at every byte, and in one-byte reads."""
    return [[body], *([body[:i], body[i:]] for i in range(1, len(body))), [body[i : i + 1] for i in range(len(body))]]


def test_the_standards_examples():
    # https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    assert decoded(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [Event(b"YHOO\n+2\n10")]
    # A comment, then an event with an id (ignored), then one with data from two lines.
    body = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"
    assert decoded(body) == [Event(b"first event"), Event(b"second event"), Event(b" third event")]
    # A line of its name alone is an empty value; the stream ending inside an event drops it.
    assert decoded(b"data\n\ndata\ndata\n\ndata:") == [Event(b""), Event(b"\n")]
    # One space after the colon is dropped, and only one.
    assert decoded(b"data:test\n\ndata: test\n\n") == [Event(b"test"), Event(b"test")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_every_line_ending_cut_anywhere(eol):
    body = eol.join([b": ping", b"", b"event: error", b'data: {"a":', b"data: 1}", b"", b"data: [DONE]", b"", b""])
    expected = [Event(b'{"a":\n1}', b"error"), Event(b"[DONE]")]
    for reads in every_cut(body):
        assert decoded(*reads) == expected, reads


def test_only_cr_lf_and_crlf_end_a_line():
    """U+2028 and U+2029 are allowed raw inside a JSON string; a line splitter that follows
    str.splitlines() (or a vertical tab, a form feed, U+0085) would cut the data there."""
    data = '{"content": "a\u2028b\u2029c\x0bd\x0ce\x1cf\x85g"}'.encode()
    for reads in every_cut(b"data: " + data + b"\n\n"):
        assert decoded(*reads) == [Event(data)]


def test_a_byte_order_mark_first_is_dropped_once_even_cut():
    body = b"\xef\xbb\xbfdata: a\n\n\xef\xbb\xbfdata: b\n\n"
    for reads in every_cut(body):
        # The second mark is no mark: it is part of a field's name, which is then unknown.
        assert decoded(*reads) == [Event(b"a")], reads
    assert decoded(b"\xef\xbb") == []  # too short to tell, and nothing lost waiting
    assert decoded(b"\xef\xbb", b"data: x\n\n") == []  # not a mark: a field named b"\xef\xbbdata"


def test_a_character_cut_between_reads_comes_out_whole():
    data = "Grüße 👟".encode()
    for reads in every_cut(b"data: " + data + b"\r\n\r\n"):
        assert decoded(*reads) == [Event(data)]


def test_unknown_fields_and_comments_are_ignored_and_event_resets_after_each_event():
    body = b"retry: 10\nfoo: bar\n:comment\nevent: tick\n\ndata: a\n\nevent: x\ndata: b\n\ndata: c\n\n"
    # "tick" had no data: no event, and its name does not carry over.
    assert decoded(body) == [Event(b"a"), Event(b"b", b"x"), Event(b"c")]


STREAMS = [
    b"data: one\n\ndata: two\n\n",
    b': keep-alive\r\n\r\ndata: {"x": 1}\r\n\r\ndata: [DONE]\r\n\r\n',
    b'event: error\rdata: {"error": {"message": "boom"}}\r\r',
    b"id: 7\nretry: 3000\nevent: message\ndata: a\ndata: b\n\ndata:c\n\ndata:  d\n\n",
    'data: {"content": "Grüße 👟 \u2028 end"}\n\ndata: tail without end'.encode(),
    b"data\n\ndata:\n\n\n\n\ndata: after blanks\n\n",
]


@pytest.mark.parametrize("body", STREAMS)
def test_the_same_events_as_httpx_sse(body):
    """Every event that carries data, as httpx-sse reads it, for the stream in one read and cut
    into random reads. (httpx-sse also yields events with no data line when an `event`, `id` or
    `retry` field came; the standard dispatches none, and the client skipped them.)"""
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    reference = [(e.data, e.event) for e in EventSource(response).iter_sse() if e.data]
    rng = random.Random(body)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(body)), k=min(len(body) - 1, rng.randint(1, 8))))
        reads = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        ours = [(e.data.decode(), e.event.decode()) for e in decoded(*reads) if e.data]
        assert ours == reference, reads


def test_a_long_line_over_many_reads_is_one_line():
    data = b'{"content": "' + b"x" * 300_000 + b'"}'
    body = b"data: " + data + b"\n\n"
    reads = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    assert decoded(*reads) == [Event(data)]
