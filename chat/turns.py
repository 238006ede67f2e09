"""A turn, top to bottom: store the shopper's message → announce it → start the reply
(chat/replies.py: build the request with history and catalog facts → stream the model's reply to
every client → store it once → announce its end).

The consumer hands frames here and holds no logic of its own. A reply runs as its own task, so
it outlives the socket that started it: a shopper who drops off mid-reply can resume and get the
rest. A lease in the journal makes sure one conversation has one turn at a time, across
processes. Before the model is called a turn makes two database calls (check; store and read the
history) on chat/db.py's threads, while a third looks up the catalog products.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import msgspec
from django.conf import settings
from django.db import IntegrityError
from django.utils.translation import ngettext

from catalog.models import Product
from chat import context, selectors, services
from chat.compaction import HistoryPlan, history_plan
from chat.db import db_call
from chat.errors import AttachmentNotFound, ConversationClosed, RateLimited, ReplyInProgress
from chat.events import event_publish, seq_next
from chat.handoff import lobby_notify
from chat.journal import Event, get_journal
from chat.media.selectors import attachments_available, attachments_prefetch
from chat.models import Conversation, Message
from chat.protocol import MessageFrame
from chat.ratelimit import rate_limit_hit
from chat.recovery import replies_orphaned_finish, unfinished_replies
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


@dataclass
class _Opening:
    """What a turn needs to know before it may start (one database call, chat/db.py)."""

    resent: Event | None  # the ack again, when this client_msg_id is already stored
    attachments_ok: bool
    status: str
    last_seq: int


@dataclass
class _Stored:
    message: Message
    ack: Event
    status: str  # read after the turn started listening for Stop (see below)
    resent: bool  # the same message raced in from another socket: ack only, no turn
    plan: HistoryPlan | None = None


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


def _turn_open(*, conversation_id: str, client_msg_id: uuid.UUID, attachment_ids: list[uuid.UUID]) -> _Opening:
    """Synchronous: a resend's ack, or whether the uploads are there, the conversation's status and
    the last seq it stored."""
    status, last_seq, resent = selectors.conversation_turn_state(
        conversation_id=conversation_id, client_msg_id=client_msg_id
    )
    if resent:
        existing = selectors.message_get_by_client_id(conversation_id=conversation_id, client_msg_id=client_msg_id)
        if existing is not None:
            return _Opening(resent=_ack_frame(existing, seq=None), attachments_ok=True, status="", last_seq=0)
    ok = not attachment_ids or attachments_available(conversation_id=conversation_id, attachment_ids=attachment_ids)
    return _Opening(resent=None, attachments_ok=ok, status=status, last_seq=last_seq)


def _message_store(*, conversation_id: str, seq: int, frame: MessageFrame) -> _Stored:
    """Synchronous: store the shopper's message, serialise its ack, read the conversation's status
    (after the turn listens for Stop: a takeover committed later reaches it as a Stop) and the
    history the reply will be sent with.

    Safe to repeat (chat/db.py retries it on a dropped connection): a message already stored
    with this client_msg_id and this seq was stored by a first try whose answer was lost.
    """
    try:
        message = services.message_create_from_shopper(
            conversation_id=conversation_id,
            seq=seq,
            text=frame.text,
            client_msg_id=frame.client_msg_id,
            context=msgspec.structs.asdict(frame.context) if frame.context and frame.context.product else None,
            attachment_ids=frame.attachments,
        )
        resent = False
    except IntegrityError:
        existing = selectors.message_get_by_client_id(
            conversation_id=conversation_id, client_msg_id=frame.client_msg_id
        )
        if existing is None:
            raise
        message, resent = existing, existing.seq != seq
    if resent:
        return _Stored(message=message, ack=_ack_frame(message, seq=None), status="", resent=True)
    # The conversation (and its site) and the attachments, read once here, serve the ack, the
    # status and the request the turn builds next (chat/context.py).
    message.conversation = selectors.conversation_for_turn(conversation_id=conversation_id)
    attachments_prefetch([message], empty=lambda _message: not frame.attachments)
    ack = _ack_frame(message, seq=seq)
    status = message.conversation.status
    if status == Conversation.Status.STAFF:
        return _Stored(message=message, ack=ack, status=status, resent=False)
    if seq == 1:  # the conversation's first event: no history to read
        plan = HistoryPlan(summary=None, messages=[message], overflow=[])
    else:
        plan = history_plan(conversation_id=conversation_id, budget=settings.LLM_HISTORY_TOKENS)
    return _Stored(message=message, ack=ack, status=status, resent=False, plan=plan)


def _grounding_start(frame: MessageFrame) -> asyncio.Task[list[Product]] | None:
    """Look up the turn's catalog products while the message is stored: they depend on its words
    and page only. Not for messages with photos or voice notes (their matches and transcripts are
    read with the message)."""
    words = frame.text.strip()
    if frame.attachments or not words:
        return None
    handles = [frame.context.product if frame.context else None]
    task = asyncio.ensure_future(db_call(context.grounding_find, handles=handles, words=words, retry=True))
    # A turn that stops before it reads the result must not leave an unretrieved error behind.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


# A turn publishes reply.end before it lets go of its lease, so a message sent the moment the
# reply ends can find the lease still held for a few milliseconds: then wait that long.
LEASE_WAIT_SECONDS = 1.0


async def _lease_wait(journal: Any, conversation_id: str, turn_id: str, *, last_stored: int) -> bool:
    """Take the conversation's lease. Held by a reply still streaming: False at once. Held by a
    turn whose reply has ended (nothing unfinished after what is stored): wait for it briefly."""
    ttl = settings.CHAT_TURN_LEASE_SECONDS
    if await journal.lease_acquire(conversation_id, turn_id, ttl):
        return True
    events = await journal.since(conversation_id, last_stored)
    if events is None or unfinished_replies(events):
        return False
    deadline = asyncio.get_running_loop().time() + LEASE_WAIT_SECONDS
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
        if await journal.lease_acquire(conversation_id, turn_id, ttl):
            return True
    return False


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

    Two database calls (chat/db.py): one to check, one to store (and read the history), while a
    third finds the catalog products; everything between is in memory or the cache (rate limits)
    and the journal (lease, seq).
    """
    opening = await db_call(
        _turn_open,
        conversation_id=conversation_id,
        client_msg_id=frame.client_msg_id,
        attachment_ids=list(frame.attachments),
        retry=True,
    )
    if opening.resent is not None:
        return opening.resent
    if not opening.attachments_ok:
        raise AttachmentNotFound()
    retry_after = await rate_limit_hit(key=f"msg:{rate_key}", limit=settings.CHAT_MESSAGES_PER_MINUTE)
    if retry_after is None and client_ip:
        retry_after = await rate_limit_hit(key=f"msg-ip:{client_ip}", limit=settings.CHAT_MESSAGES_PER_MINUTE_PER_IP)
    if retry_after is None and site is not None and site.messages_per_minute:
        # All of a site's shoppers together: a shop's own cap on what its chat may cost.
        retry_after = await rate_limit_hit(key=f"msg-site:{site.site_id}", limit=site.messages_per_minute)
    if retry_after is not None:
        raise RateLimited(
            ngettext(
                "You're sending messages too quickly. Please wait %(seconds)s second and try again.",
                "You're sending messages too quickly. Please wait %(seconds)s seconds and try again.",
                retry_after,
            )
            % {"seconds": retry_after},
            retry_after=retry_after,
        )
    if opening.status == Conversation.Status.CLOSED:
        raise ConversationClosed()
    journal = get_journal()
    turn_id = uuid.uuid4().hex
    if not await _lease_wait(journal, conversation_id, turn_id, last_stored=opening.last_seq):
        raise ReplyInProgress()
    turn = Turn(conversation_id=conversation_id, lease_owner=turn_id, site=site, language=language)
    grounding = _grounding_start(frame)
    try:
        # Holding the lease, no reply of this conversation is streaming: one that started and
        # never ended belonged to a process that died. Store what it streamed first. (The floor
        # was read just before the lease; the journal's own counter only moves up, and the
        # database refuses a seq twice.)
        floor = opening.last_seq
        if await replies_orphaned_finish(conversation_id=conversation_id, last_stored=floor):
            # Finishing them stored events: the next seq starts above them.
            floor = await db_call(selectors.conversation_last_seq, conversation_id=conversation_id, retry=True)
        # Listen before announcing the message, so a Stop sent right after the ack is heard.
        await turn.listen()
        seq = await seq_next(conversation_id=conversation_id, floor=floor)
        stored = await db_call(_message_store, conversation_id=conversation_id, seq=seq, frame=frame, retry=True)
        if stored.resent:
            # The same message raced in from another socket: it is stored once, ack it again.
            await _turn_abandon(turn, grounding)
            return stored.ack
        turn.begin(user_message=stored.message, seq=seq, plan=stored.plan, grounding=grounding)
        await event_publish(conversation_id=conversation_id, event=stored.ack)
    except BaseException:
        await _turn_abandon(turn, grounding)
        raise
    if stored.status == Conversation.Status.STAFF:
        # A person has the conversation: the message is theirs to answer, never the bot's.
        await _turn_abandon(turn, grounding)
    else:
        supervisor.spawn(turn.run(), name=f"turn-{conversation_id}")
    # The staff live pages hear of it after the reply has started: off the turn's path.
    supervisor.spawn(lobby_notify(conversation_id=conversation_id), name=f"lobby-{conversation_id}")
    return None


async def _turn_abandon(turn: Turn, grounding: asyncio.Task[list[Product]] | None) -> None:
    """A turn that will not run: stop listening and let go of the conversation."""
    if grounding is not None:
        grounding.cancel()
    await turn.unlisten()
    await get_journal().lease_release(turn.conversation_id, turn.lease_owner)
