"""A turn, top to bottom: store the shopper's message → announce it → start the reply
(chat/replies.py: build the request with history and catalog facts → stream the model's reply to
every client → store it once → announce its end).

The consumer hands frames here and holds no logic of its own. A reply runs as its own task, so
it outlives the socket that started it: a shopper who drops off mid-reply can resume and get the
rest. A lease in the journal makes sure one conversation has one turn at a time, across
processes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

import msgspec
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import IntegrityError
from django.utils.translation import gettext as _

from chat import selectors, services
from chat.errors import AttachmentNotFound, ConversationClosed, RateLimited, ReplyInProgress
from chat.events import event_publish, seq_next
from chat.handoff import lobby_notify
from chat.journal import Event, get_journal
from chat.media.selectors import attachments_available
from chat.models import Conversation, Message
from chat.protocol import MessageFrame
from chat.ratelimit import rate_limit_hit
from chat.recovery import replies_orphaned_finish
from chat.replies import Turn
from chat.sites import SiteConfig

logger = logging.getLogger(__name__)


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


async def _ack_frame(message: Message, *, seq: int | None) -> Event:
    frame: Event = {
        "type": "message.ack",
        "client_msg_id": str(message.client_msg_id),
        "message_id": str(message.id),
        "message": await database_sync_to_async(selectors.message_serialize)(message),
    }
    if seq is not None:
        frame["seq"] = seq
    return frame


async def shopper_message_receive(
    *,
    conversation_id: str,
    rate_key: str,
    frame: MessageFrame,
    client_ip: str | None = None,
    site: SiteConfig | None = None,
    language: str = "",
) -> Event | None:
    """Store the shopper's message, announce it, and start the reply.

    Returns a frame for the sending socket only when the message was already stored (a resend
    with the same client_msg_id: acked again, nothing new stored, no new reply). Raises
    RateLimited or ReplyInProgress without storing anything.
    """
    existing = await database_sync_to_async(selectors.message_get_by_client_id)(
        conversation_id=conversation_id, client_msg_id=frame.client_msg_id
    )
    if existing is not None:
        return await _ack_frame(existing, seq=None)
    if frame.attachments and not await database_sync_to_async(attachments_available)(
        conversation_id=conversation_id, attachment_ids=frame.attachments
    ):
        raise AttachmentNotFound()
    retry_after = await rate_limit_hit(key=f"msg:{rate_key}", limit=settings.CHAT_MESSAGES_PER_MINUTE)
    if retry_after is None and client_ip:
        retry_after = await rate_limit_hit(key=f"msg-ip:{client_ip}", limit=settings.CHAT_MESSAGES_PER_MINUTE_PER_IP)
    if retry_after is None and site is not None and site.messages_per_minute:
        # All of a site's shoppers together: a shop's own cap on what its chat may cost.
        retry_after = await rate_limit_hit(key=f"msg-site:{site.site_id}", limit=site.messages_per_minute)
    if retry_after is not None:
        raise RateLimited(
            _("You're sending messages too quickly. Please wait %(seconds)s seconds and try again.")
            % {"seconds": retry_after},
            retry_after=retry_after,
        )
    status = await database_sync_to_async(selectors.conversation_status)(conversation_id=conversation_id)
    if status == Conversation.Status.CLOSED:
        raise ConversationClosed()
    journal = get_journal()
    turn_id = uuid.uuid4().hex
    if not await journal.lease_acquire(conversation_id, turn_id, settings.CHAT_TURN_LEASE_SECONDS):
        raise ReplyInProgress()
    turn: Turn | None = None
    try:
        # Holding the lease, no reply of this conversation is streaming: one that started and
        # never ended belonged to a process that died. Store what it streamed first.
        floor = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
        if await replies_orphaned_finish(conversation_id=conversation_id, last_stored=floor):
            # Finishing them stored events: the next seq starts above them.
            floor = await database_sync_to_async(selectors.conversation_last_seq)(conversation_id=conversation_id)
        seq = await seq_next(conversation_id=conversation_id, floor=floor)
        try:
            message = await database_sync_to_async(services.message_create_from_shopper)(
                conversation_id=conversation_id,
                seq=seq,
                text=frame.text,
                client_msg_id=frame.client_msg_id,
                context=msgspec.structs.asdict(frame.context) if frame.context and frame.context.product else None,
                attachment_ids=frame.attachments,
            )
        except IntegrityError:
            # The same message raced in from another socket: it is stored once, ack it again.
            existing = await database_sync_to_async(selectors.message_get_by_client_id)(
                conversation_id=conversation_id, client_msg_id=frame.client_msg_id
            )
            if existing is None:
                raise
            await journal.lease_release(conversation_id, turn_id)
            return await _ack_frame(existing, seq=None)
        turn = Turn(
            conversation_id=conversation_id,
            user_message=message,
            lease_owner=turn_id,
            seq=seq,
            site=site,
            language=language,
        )
        # Listen before announcing the message, so a Stop sent right after the ack is heard.
        await turn.listen()
        await event_publish(conversation_id=conversation_id, event=await _ack_frame(message, seq=seq))
        # Read after listening: a takeover committed from here on reaches the turn as a Stop.
        status = await database_sync_to_async(selectors.conversation_status)(conversation_id=conversation_id)
    except BaseException:
        if turn is not None:
            await turn.unlisten()
        await journal.lease_release(conversation_id, turn_id)
        raise
    if status == Conversation.Status.STAFF:
        # A person has the conversation: the message is theirs to answer, never the bot's.
        await turn.unlisten()
        await journal.lease_release(conversation_id, turn_id)
        await lobby_notify(conversation_id=conversation_id)
        return None
    await lobby_notify(conversation_id=conversation_id)
    supervisor.spawn(turn.run(), name=f"turn-{conversation_id}")
    return None
