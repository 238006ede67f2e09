"""chat/dispatch.py's loop on its own: the guarantees channels' `await_many_dispatch` gives, which
the consumers rely on. The consumers' tests (test_consumer_*.py) run it behind a real socket."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from channels.exceptions import StopConsumer

from chat.dispatch import dispatch_many

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="")


class Source:
    """A receive callable over a queue that counts how often it was asked."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.asked = 0
        self.cancelled = False

    async def __call__(self) -> object:
        self.asked += 1
        try:
            return await self.queue.get()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_message_at_a_time_each_source_in_order():
    socket, channel = Source(), Source()
    handled: list[tuple[str, int]] = []
    running = 0
    overlapped = False

    async def dispatch(message: Any) -> None:
        nonlocal running, overlapped
        running += 1
        overlapped = overlapped or running > 1
        await asyncio.sleep(0.001)
        handled.append(message)
        running -= 1
        if len(handled) == 40:
            raise StopConsumer

    for i in range(20):
        socket.queue.put_nowait(("socket", i))
        channel.queue.put_nowait(("channel", i))
    with pytest.raises(StopConsumer):
        await dispatch_many([socket, channel], dispatch)
    assert not overlapped
    assert [m for m in handled if m[0] == "socket"] == [("socket", i) for i in range(20)]
    assert [m for m in handled if m[0] == "channel"] == [("channel", i) for i in range(20)]
    assert channel.cancelled or socket.cancelled  # the other source's wait was cancelled


async def test_a_source_is_asked_again_only_after_its_message_was_handled():
    socket, channel = Source(), Source()
    release = asyncio.Event()

    async def dispatch(message: object) -> None:
        await release.wait()

    loop_task = asyncio.create_task(dispatch_many([socket, channel], dispatch))
    for i in range(5):
        channel.queue.put_nowait(i)
    await settle()
    # One message taken and in its handler; the other four wait in the channel, not here.
    assert (channel.asked, channel.queue.qsize()) == (1, 4)
    release.set()
    await settle()
    assert channel.queue.qsize() == 0
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop_task


async def test_a_handlers_error_ends_the_loop_with_it_and_cancels_the_other_source():
    socket, channel = Source(), Source()

    async def dispatch(message: object) -> None:
        raise ValueError(f"bad {message}")

    socket.queue.put_nowait("frame")
    with pytest.raises(ValueError, match="bad frame"):
        await dispatch_many([socket, channel], dispatch)
    assert channel.cancelled


async def test_cancelling_the_loop_cancels_a_running_handler():
    socket, channel = Source(), Source()
    started, stopped = asyncio.Event(), asyncio.Event()

    async def dispatch(message: object) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            stopped.set()
            raise

    loop_task = asyncio.create_task(dispatch_many([socket, channel], dispatch))
    socket.queue.put_nowait("frame")
    await started.wait()
    loop_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop_task
    assert stopped.is_set() and channel.cancelled


async def test_handlers_share_the_consumers_context():
    """What one handler sets in a context variable the next sees, whichever source its message
    came from (as when channels ran every handler in the consumer's own task)."""
    socket, channel = Source(), Source()
    reads: list[str] = []

    async def dispatch(message: object) -> None:
        if message == "set":
            seen.set("from the socket")
        else:
            reads.append(seen.get())
            raise StopConsumer

    socket.queue.put_nowait("set")
    await settle()
    with pytest.raises(StopConsumer):
        task = asyncio.create_task(dispatch_many([socket, channel], dispatch))
        await settle()
        channel.queue.put_nowait("read")
        await task
    assert reads == ["from the socket"]
    assert seen.get() == ""  # the caller's own context is left as it was
