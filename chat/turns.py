"""A turn, top to bottom: store the shopper's message → build the request (history + catalog
facts) → stream the model's reply to every client → store the reply once → announce its end.

The consumer hands frames here and holds no logic of its own. A turn runs as its own task, so
it outlives the socket that started it: a shopper who drops off mid-reply can resume and get the
rest. A lease in the journal makes sure one conversation has one turn at a time, across
processes; a stop request reaches the turn through the channel layer, wherever it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import IntegrityError

from chat import context, selectors, services
from chat.coalesce import DeltaCoalescer
from chat.errors import ChatError, RateLimited, ReplyInProgress, UpstreamStreamError, UpstreamUnavailable
from chat.events import (
    STOP_MESSAGE_TYPE,
    channel_layer,
    control_group,
    event_emit,
    event_publish,
    seq_next,
)
from chat.journal import Event, get_journal
from chat.llm import chat_client_get
from chat.llm.types import ChatClient, ChatRequest, Finish, ReasoningDelta, RefusalDelta, TextDelta, Usage
from chat.models import Message
from chat.protocol import MessageFrame
from chat.ratelimit import rate_limit_hit

logger = logging.getLogger(__name__)

DONE_MESSAGE_TYPE = "turn.done"

# What the shopper is told when a reply does not end normally (the reply keeps its text).
FINISH_NOTICES = {
    "length": "The reply was cut short because it got too long. Ask me to continue if you need more.",
    "content_filter": "The reply was cut short by the assistant's content filter.",
}


class TurnSupervisor:
    """Keeps running turns referenced (asyncio holds tasks only weakly) and lets tests and
    shutdown wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        # A fresh context: the turn must not inherit the socket's per-connection state.
        task = asyncio.create_task(coro, name=name, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_idle(self) -> None:
        """Wait until no turn is running (bound it with asyncio.timeout)."""
        while current := {task for task in self._tasks if not task.done()}:
            await asyncio.wait(current)


supervisor = TurnSupervisor()


def _ack_frame(message: Message, *, seq: int | None) -> Event:
    frame: Event = {
        "type": "message.ack",
        "client_msg_id": str(message.client_msg_id),
        "message_id": str(message.id),
        "message": selectors.message_serialize(message),
    }
    if seq is not None:
        frame["seq"] = seq
    return frame


async def shopper_message_receive(*, conversation_id: str, rate_key: str, frame: MessageFrame) -> Event | None:
    """Store the shopper's message, announce it, and start the reply.

    Returns a frame for the sending socket only when the message was already stored (a resend
    with the same client_msg_id: acked again, nothing new stored, no new reply). Raises
    RateLimited or ReplyInProgress without storing anything.
    """
    existing = await database_sync_to_async(selectors.message_get_by_client_id)(
        conversation_id=conversation_id, client_msg_id=frame.client_msg_id
    )
    if existing is not None:
        return _ack_frame(existing, seq=None)
    retry_after = await rate_limit_hit(key=f"msg:{rate_key}", limit=settings.CHAT_MESSAGES_PER_MINUTE)
    if retry_after is not None:
        raise RateLimited(
            f"You're sending messages too quickly. Please wait {retry_after} seconds and try again.",
            retry_after=retry_after,
        )
    journal = get_journal()
    turn_id = uuid.uuid4().hex
    if not await journal.lease_acquire(conversation_id, turn_id, settings.CHAT_TURN_LEASE_SECONDS):
        raise ReplyInProgress()
    turn: Turn | None = None
    try:
        floor = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
        seq = await seq_next(conversation_id=conversation_id, floor=floor)
        try:
            message = await database_sync_to_async(services.message_create_from_shopper)(
                conversation_id=conversation_id, seq=seq, text=frame.text, client_msg_id=frame.client_msg_id
            )
        except IntegrityError:
            # The same message raced in from another socket: it is stored once, ack it again.
            existing = await database_sync_to_async(selectors.message_get_by_client_id)(
                conversation_id=conversation_id, client_msg_id=frame.client_msg_id
            )
            if existing is None:
                raise
            await journal.lease_release(conversation_id, turn_id)
            return _ack_frame(existing, seq=None)
        turn = Turn(conversation_id=conversation_id, user_message=message, lease_owner=turn_id, seq=seq)
        # Listen before announcing the message, so a Stop sent right after the ack is heard.
        await turn.listen()
        await event_publish(conversation_id=conversation_id, event=_ack_frame(message, seq=seq))
    except BaseException:
        if turn is not None:
            await turn.unlisten()
        await journal.lease_release(conversation_id, turn_id)
        raise
    supervisor.spawn(turn.run(), name=f"turn-{conversation_id}")
    return None


class Turn:
    def __init__(self, *, conversation_id: str, user_message: Message, lease_owner: str, seq: int) -> None:
        self.conversation_id = conversation_id
        self.user_message = user_message
        self.lease_owner = lease_owner
        self.seq = seq  # the highest seq this turn knows is allocated: a floor for the next
        self.reply_id = uuid.uuid4()
        self._channel: str | None = None
        self._control_tasks: list[asyncio.Task[None]] = []
        self._stream_task: asyncio.Task[None] | None = None
        self._stop_requested = False
        # What the reply has produced so far.
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.usage: dict[str, Any] = {}
        self.finish_reason = ""
        self.first_token_ms: int | None = None
        self.grounding: dict[str, Any] = {}
        self.model = ""
        self.start_seq = 0
        self._started = 0.0
        self._coalescer: DeltaCoalescer

    # --- control: stop requests and the lease ------------------------------------------------

    async def listen(self) -> None:
        layer = channel_layer()
        self._channel = await layer.new_channel()
        await layer.group_add(control_group(self.conversation_id), self._channel)
        self._control_tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._keep_lease())]

    async def unlisten(self) -> None:
        listener, lease_keeper = self._control_tasks or (None, None)
        self._control_tasks = []
        if lease_keeper is not None:
            lease_keeper.cancel()
        if self._channel is not None:
            layer = channel_layer()
            await layer.group_discard(control_group(self.conversation_id), self._channel)
            # End the listener with a message rather than by cancelling it: a cancelled receive
            # leaves channels-redis's connection in a state later receives trip over.
            await layer.send(self._channel, {"type": DONE_MESSAGE_TYPE})
            self._channel = None
        for task in (listener, lease_keeper):
            if task is None:
                continue
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, timeout=5)

    async def _listen(self) -> None:
        assert self._channel is not None
        layer, channel = channel_layer(), self._channel
        while True:
            message = await layer.receive(channel)
            if message.get("type") == DONE_MESSAGE_TYPE:
                return
            if message.get("type") == STOP_MESSAGE_TYPE:
                self._stop_requested = True
                if self._stream_task is not None:
                    self._stream_task.cancel()

    async def _keep_lease(self) -> None:
        """Renew the lease while the turn runs; a crashed process's lease simply runs out."""
        ttl = settings.CHAT_TURN_LEASE_SECONDS
        while True:
            await asyncio.sleep(ttl / 3)
            await get_journal().lease_renew(self.conversation_id, self.lease_owner, ttl)

    # --- the reply ---------------------------------------------------------------------------

    async def _emit(self, **event: Any) -> Event:
        sent = await event_emit(conversation_id=self.conversation_id, floor=self.seq, **event)
        self.seq = sent["seq"]
        return sent

    async def run(self) -> None:
        self._started = asyncio.get_running_loop().time()
        client = chat_client_get()
        self.model = client.model
        self.start_seq = (await self._emit(type="reply.start", message_id=str(self.reply_id)))["seq"]
        self._coalescer = DeltaCoalescer(publish=self._publish_delta, interval=settings.CHAT_COALESCE_MS / 1000)
        try:
            status, error = await self._reply(client)
        except asyncio.CancelledError:
            # Not a Stop: the process is going away. Keep what was streamed.
            await self._finish(Message.Status.INCOMPLETE, None)
            raise
        await self._finish(status, error)

    async def _reply(self, client: ChatClient) -> tuple[str, ChatError | None]:
        """Stream the model's reply; return its status and the error to tell the shopper, if any."""
        try:
            request, self.grounding = await database_sync_to_async(context.turn_request_build)(
                user_message=self.user_message
            )
            if self._stop_requested:
                return Message.Status.STOPPED, None
            self._stream_task = asyncio.create_task(self._stream(client, request))
            await self._stream_task
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._stop_requested and task is not None and not task.cancelling():
                return Message.Status.STOPPED, None
            raise
        except (UpstreamUnavailable, UpstreamStreamError) as exc:
            logger.warning("turn %s: model failed: %s", self.conversation_id, exc.detail)
            return self._broken_status(), exc
        except Exception as exc:
            logger.exception("turn %s failed", self.conversation_id)
            return self._broken_status(), ChatError(detail=repr(exc))
        if self.finish_reason in FINISH_NOTICES:
            notice = FINISH_NOTICES[self.finish_reason]
            return Message.Status.INCOMPLETE, UpstreamStreamError(notice, detail=f"finish_reason={self.finish_reason}")
        if not self.text:
            return Message.Status.FAILED, UpstreamStreamError(
                "The assistant sent an empty reply. Please try asking again.", detail="empty reply"
            )
        return Message.Status.COMPLETE, None

    def _broken_status(self) -> str:
        return Message.Status.INCOMPLETE if self.text else Message.Status.FAILED

    async def _publish_delta(self, text: str) -> None:
        await self._emit(type="reply.delta", message_id=str(self.reply_id), text=text)

    async def _stream(self, client: ChatClient, request: ChatRequest) -> None:
        loop = asyncio.get_running_loop()
        async with contextlib.aclosing(client.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta | RefusalDelta):
                    if self.first_token_ms is None:
                        self.first_token_ms = int((loop.time() - self._started) * 1000)
                    self.text.append(event.text)
                    self._coalescer.add(event.text)
                elif isinstance(event, ReasoningDelta):
                    self.reasoning.append(event.text)
                elif isinstance(event, Usage):
                    self.usage = event.as_dict()
                elif isinstance(event, Finish):
                    self.finish_reason = event.reason

    async def _finish(self, status: str, error: ChatError | None) -> None:
        """Flush the last text, store the reply once, then announce its end; always lets go of
        the conversation."""
        try:
            try:
                await self._coalescer.close()
            except Exception:
                logger.exception("turn %s: could not publish the last delta", self.conversation_id)
            reply_id = str(self.reply_id)
            if error is not None:
                await self._emit(**error.as_frame(), message_id=reply_id)
            end_seq = await seq_next(conversation_id=self.conversation_id, floor=self.seq)
            self.seq = end_seq
            grounding = dict(self.grounding)
            if self.reasoning:
                grounding["reasoning"] = "".join(self.reasoning)
            await database_sync_to_async(services.reply_store)(
                conversation_id=self.conversation_id,
                message_id=self.reply_id,
                seq=self.start_seq,
                end_seq=end_seq,
                reply_to_id=self.user_message.id,
                text="".join(self.text),
                status=status,
                model=self.model,
                usage=self.usage,
                error_code=error.code if error else "",
                error_detail=error.detail if error else "",
                first_token_ms=self.first_token_ms,
                duration_ms=int((asyncio.get_running_loop().time() - self._started) * 1000),
                grounding=grounding,
            )
            end = {"type": "reply.end", "message_id": reply_id, "status": status, "usage": self.usage, "seq": end_seq}
            await event_publish(conversation_id=self.conversation_id, event=end)
        finally:
            await self.unlisten()
            await get_journal().lease_release(self.conversation_id, self.lease_owner)
