"""A consumer's messages, from its socket and its channel, to its handlers: channels'
`await_many_dispatch` without a task and an `asyncio.wait` per message.

channels makes a new task for every message a consumer receives and waits for its sources with
`asyncio.wait`: a message reaches its handler two passes of the event loop after its receive
had it (the task's end calls the wait back in one, which wakes the consumer in the next). A
streaming reply is a message on every socket of its conversation per frame, and under load a
pass of the loop is long: at 500 streaming chats the token delay's p50 / p99 went from 209 / 541
to 129 / 327 ms with this loop, for the same CPU (docs/benchmarks.md, eleventh round). Here each
source has one task for the consumer's life that receives a message and dispatches it itself; a
lock keeps one handler running at a time, as channels does.

The same guarantees as channels': one message handled at a time, in the order each source gives
them; a source is asked for its next message only once its last one was handled (a slow handler
holds messages back in the channel layer, where its capacity applies, not in this process); a
handler's exception (StopConsumer included) ends the consumer with it, after the other source's
task is cancelled; cancelling the consumer cancels both, mid-handler if one runs. The handlers
share one copy of the consumer's context, as they shared its task's before.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Receive = Callable[[], Awaitable[Any]]
Dispatch = Callable[[Any], Awaitable[None]]


async def dispatch_many(sources: Sequence[Receive], dispatch: Dispatch) -> None:
    """Hand every message of `sources` to `dispatch`, one at a time, until a source or `dispatch`
    raises; re-raises that exception."""
    lock = asyncio.Lock()

    async def pump(receive: Receive) -> None:
        while True:
            message = await receive()
            async with lock:
                await dispatch(message)

    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    # One context for both: a step of one task never runs inside a step of the other.
    pumps = [loop.create_task(pump(receive), context=context) for receive in sources]
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # raises: a pump ends only by an exception
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
