"""The websockets: the shopper's chat (/ws/chat/) and, in chat/staff_consumer.py, the staff live
page (/ws/staff/). They receive frames, validate them, hand them to the turn and hand-off code,
and relay conversation events in sequence order. No business logic lives here."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import translation
from django.utils.translation import get_supported_language_variant, gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation.trans_real import parse_accept_lang_header

from chat import handoff, metrics, selectors, services, states, turns
from chat.backpressure import TOO_SLOW, SendWindow
from chat.db import db_call
from chat.dispatch import dispatch_many
from chat.errors import ChatError, ConversationNotFound, NotClosed, TooManyConnections
from chat.events import conversation_group, turn_stop_request
from chat.heartbeat import heartbeats
from chat.journal import Event, get_journal
from chat.models import Conversation
from chat.origins import site_key_from_scope
from chat.ownership import owner_hash, owner_token_from_subprotocols
from chat.protocol import (
    AckFrame,
    EndFrame,
    FeedbackFrame,
    HandoffFrame,
    IdentifyFrame,
    MessageFrame,
    PingFrame,
    RatingFrame,
    RestartFrame,
    ResumeFrame,
    StopFrame,
    TypingFrame,
    frame_decode,
    frame_encode,
)
from chat.ratelimit import connection_close, connection_open
from chat.recovery import orphans_watch, unfinished_replies
from chat.sites import (
    FeatureDisabled,
    IdentifyInvalid,
    SiteConfig,
    SiteDisabled,
    SiteUnknown,
    identify_verify,
    site_config,
    site_get_by_key,
)

logger = logging.getLogger(__name__)

TOO_MANY = 4429  # close code: over CHAT_CONNECTIONS_PER_IP or the site's connections_max
SITE_UNKNOWN = 4404
SITE_DISABLED = 4403
# The subprotocol the widget asks for (with its token, see chat/ownership.py).
SUBPROTOCOL = "supportbot.v1"
# Typing indicators are relayed at most this often per socket (a client may send more).
TYPING_INTERVAL = 1.0


class ConversationStream(AsyncWebsocketConsumer):
    """Follows one conversation at a time: its snapshot, then its events, each seq once."""

    conversation_id: str | None = None
    # The highest seq sent on this socket: replayed and live events may overlap.
    last_seq = 0
    # Which side's typing this socket shows: a shopper sees staff typing, staff see the shopper's.
    typing_from = "staff"
    socket_kind = "shopper"
    counted = False  # accepted and counted in metrics.SOCKETS
    ip_counted = False  # counted against CHAT_CONNECTIONS_PER_IP
    site_counted = False  # counted against the site's connections_max
    _typing_sent = 0.0
    last_sent = 0.0  # monotonic time of the last frame sent (chat/heartbeat.py)
    language = settings.LANGUAGE_CODE
    site: SiteConfig | None = None
    window: SendWindow  # flow control: what was sent, what the client acknowledged

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.window = SendWindow(settings.CHAT_UNACKED_BYTES)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """channels' AsyncConsumer.__call__ (channels 4.3), with chat/dispatch.py's loop instead of
        `await_many_dispatch`: no task and `asyncio.wait` per message in or out."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            sources.append(self.channel_receive)
        self.base_send = send
        with contextlib.suppress(StopConsumer):  # a handler closed the consumer
            await dispatch_many(sources, self.dispatch)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """channels' dispatch without its `aclose_old_connections()` before every handler
        (channels ≥ 4.2, channels/consumer.py): a hop to the database thread for every frame in
        and every event out — per token, per socket. These consumers never use the ORM on the
        event loop: their database work runs through `database_sync_to_async`, which closes
        stale connections itself, or chat/db.py's threads, which keep their own."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """channels' websocket_disconnect without its `aclose_old_connections()`, for the reason
        `dispatch` gives: a hop to channels' database thread for every socket that closes (0.8 %
        of the app's samples at 500 chats with short replies, docs/benchmarks.md, ninth round)."""
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        heartbeats.discard(self)
        if self.ip_counted and self.client_ip:
            await connection_close(key=f"ws:{self.client_ip}")
            self.ip_counted = False
        if self.site_counted and self.site is not None:
            await connection_close(key=f"ws-site:{self.site.site_id}")
            self.site_counted = False
        if self.counted:
            metrics.SOCKETS.labels(kind=self.socket_kind).dec()
            self.counted = False
        if self.conversation_id is not None:
            await self.channel_layer.group_discard(conversation_group(self.conversation_id), self.channel_name)

    async def _attach(self, conversation_id: str, *, after_seq: int | None, opened: Conversation | None = None) -> None:
        """Follow a conversation: join its group first, then catch up from the journal (or a
        database snapshot when the journal cannot cover the gap). `opened`: the conversation's
        row as just read or created, if the caller has it."""
        if self.conversation_id != conversation_id:
            if self.conversation_id is not None:
                await self.channel_layer.group_discard(conversation_group(self.conversation_id), self.channel_name)
            await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
            self.conversation_id = conversation_id
        journal = get_journal()
        with self.window.catching_up():
            events = None if after_seq is None else await journal.since(conversation_id, after_seq)
            if events is not None and after_seq is not None:
                self.last_seq = after_seq
            else:
                # Read before the group was joined is as good: an event published since then is
                # in the journal after its `seq`, and a duplicate from the group is dropped.
                snapshot = (
                    selectors.conversation_snapshot_unstored(opened) if opened is not None else None
                ) or await database_sync_to_async(selectors.conversation_snapshot)(
                    conversation_id=conversation_id, conversation=opened
                )
                self.last_seq = 0
                await self._send(snapshot)
                self.last_seq = snapshot["seq"]
                events = await journal.since(conversation_id, self.last_seq) or []
            for event in events:
                await self._deliver(event)
        if unfinished_replies(events):
            # A reply is mid-way: if its process died, finish it once its lease runs out.
            turns.supervisor.spawn(orphans_watch(conversation_id=conversation_id, events=events), name="orphans")

    async def chat_event(self, message: dict[str, Any]) -> None:
        """Group messages of type chat.event (see chat/events.py)."""
        await self._deliver(message["event"])

    async def chat_typing(self, message: dict[str, Any]) -> None:
        """Group messages of type chat.typing: never stored, no seq."""
        if message["event"]["who"] == self.typing_from:
            await self._send(message["event"])

    @property
    def client_ip(self) -> str | None:
        """The peer's address (behind a proxy, Daphne's --proxy-headers puts the shopper's here)."""
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def _typing_due(self, active: bool) -> bool:
        now = time.monotonic()
        if active and now - self._typing_sent < TYPING_INTERVAL:
            return False
        self._typing_sent = now if active else 0.0
        return True

    async def _deliver(self, event: Event) -> None:
        seq = event["seq"]
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        await self._send(event)

    async def _send(self, frame: Event) -> None:
        if self.window.closed:
            return  # too slow: closed, waiting for the disconnect
        data = frame_encode(frame, language=self.language)
        # isascii() is O(1) in CPython; only other text pays for its UTF-8 length.
        if not self.window.sending(len(data) if data.isascii() else len(data.encode())):
            await self._too_slow()
            return
        self.last_sent = time.monotonic()
        await self.send(text_data=data)

    async def _too_slow(self) -> None:
        """The client left too much unacknowledged (chat/backpressure.py): close rather than
        let Daphne buffer more of it. What it missed is stored; it reconnects and resumes."""
        window = self.window
        logger.info(
            "closing a %s socket that left %d bytes (%d frames) unacknowledged",
            self.socket_kind,
            window.sent - window.credited,
            window.frames - window.acked_frames,
        )
        await self.close(code=TOO_SLOW)

    def _ack(self, frame: AckFrame) -> None:
        self.window.acked(frame.frames)

    async def heartbeat(self) -> None:
        await self._send({"type": "ping"})


class ChatConsumer(ConversationStream):
    owner_token: str

    async def connect(self) -> None:
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in self.scope.get("subprotocols", []) else None)
        key = site_key_from_scope(self.scope)
        site = await database_sync_to_async(site_get_by_key)(key) if key else None
        self.site = site_config(site) if site is not None else None
        self.language = language_choose(self.scope, self.site)
        # Accepted first, so the page can show why instead of a bare refused handshake.
        if key and site is None:
            return await self._refuse(SiteUnknown(), SITE_UNKNOWN)
        if self.site is not None and not self.site.enabled:
            return await self._refuse(SiteDisabled(), SITE_DISABLED)
        if self.client_ip and not await connection_open(
            key=f"ws:{self.client_ip}", limit=settings.CHAT_CONNECTIONS_PER_IP
        ):
            return await self._refuse(TooManyConnections(), TOO_MANY)
        self.ip_counted = True
        if self.site is not None and self.site.connections_max:
            if not await connection_open(key=f"ws-site:{self.site.site_id}", limit=self.site.connections_max):
                return await self._refuse(TooManyConnections(SITE_BUSY), TOO_MANY)
            self.site_counted = True
        self.counted = True
        metrics.SOCKETS.labels(kind=self.socket_kind).inc()
        heartbeats.add(self)
        site_id = self.site.site_id if self.site else None
        # The widget proves its conversation with a token it keeps (third-party iframes get no
        # cookies); the app's own page with its session (chat/routing.py).
        token = owner_token_from_subprotocols(self.scope)
        session_key = None if token else self.scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
        self.owner_token, conversation = await db_call(
            services.conversation_open_for_socket,
            token=token,
            session_key=session_key,
            site_id=site_id,
            language=self.language,
        )
        await self._attach(str(conversation.id), after_seq=None, opened=conversation)

    async def _refuse(self, error: ChatError, code: int) -> None:
        with translation.override(self.language):
            frame = error.as_frame()  # its words, in the socket's language
        await self._send(frame)
        await self.close(code=code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The error frames too are worded in the socket's language: as_frame() renders them.
        with translation.override(self.language):
            try:
                await self._handle(frame_decode(text_data))
            except ChatError as exc:
                await self._send(exc.as_frame())
            except Exception:
                logger.exception("chat frame failed")
                await self._send(ChatError().as_frame())

    async def _handle(self, frame: object) -> None:
        if isinstance(frame, AckFrame):  # the most frequent frame: first, and before any conversation
            self._ack(frame)
            return
        conversation_id = self.conversation_id
        assert conversation_id is not None
        if isinstance(frame, PingFrame):
            await self._send({"type": "pong"})
        elif isinstance(frame, MessageFrame):
            reply = await turns.shopper_message_receive(
                conversation_id=conversation_id,
                rate_key=owner_hash(self.owner_token),
                frame=frame,
                client_ip=self.client_ip,
                site=self.site,
                language=self.language,
            )
            if reply is not None:
                await self._send(reply)
        elif isinstance(frame, StopFrame):
            await turn_stop_request(conversation_id=conversation_id)
        elif isinstance(frame, ResumeFrame):
            await self._resume(frame)
        elif isinstance(frame, HandoffFrame):
            if self.site is not None and not self.site.handoff:
                raise FeatureDisabled(HANDOFF_OFF)
            await handoff.handoff_request(conversation_id=conversation_id)
        elif isinstance(frame, TypingFrame):
            if self._typing_due(frame.active):
                await handoff.typing_relay(
                    conversation_id=conversation_id, who="shopper", name=None, active=frame.active
                )
        elif isinstance(frame, FeedbackFrame):
            await database_sync_to_async(states.feedback_save)(
                conversation_id=conversation_id,
                message_id=frame.message_id,
                value=frame.value,
                reasons=frame.reasons,
                comment=frame.comment,
            )
            await self._send({"type": "feedback.ack", "message_id": str(frame.message_id), "value": frame.value})
            await handoff.lobby_notify(conversation_id=conversation_id)
        elif isinstance(frame, EndFrame):
            await handoff.conversation_close(conversation_id=conversation_id)
        elif isinstance(frame, RatingFrame):
            await database_sync_to_async(states.rating_save)(
                conversation_id=conversation_id, value=frame.value, comment=frame.comment
            )
            await self._send({"type": "rating.ack", "value": frame.value})
            await handoff.lobby_notify(conversation_id=conversation_id)
        elif isinstance(frame, RestartFrame):
            await self._restart(conversation_id)
        elif isinstance(frame, IdentifyFrame):
            await self._identify(conversation_id, frame)

    async def _identify(self, conversation_id: str, frame: IdentifyFrame) -> None:
        """The shop's server vouches for the shopper (an HMAC of user_id and email with the site's
        identify secret); staff then see who they are talking to."""
        site = await database_sync_to_async(site_get_by_key)(self.site.public_key) if self.site else None
        if site is None or not identify_verify(
            site, user_id=frame.user_id, email=frame.email, signature=frame.signature
        ):
            raise IdentifyInvalid()
        await database_sync_to_async(services.conversation_identify)(
            conversation_id=conversation_id, user_id=frame.user_id, email=frame.email, name=frame.name
        )
        await self._send({"type": "identify.ack", "verified": True, "name": frame.name})

    async def _resume(self, frame: ResumeFrame) -> None:
        conversation = await database_sync_to_async(selectors.conversation_get_for_owner)(
            conversation_id=frame.conversation,
            owner_token=self.owner_token,
            site_id=self.site.site_id if self.site else None,
        )
        if conversation is None:
            raise ConversationNotFound()
        await self._attach(str(conversation.id), after_seq=frame.after_seq)

    async def _restart(self, conversation_id: str) -> None:
        status = await database_sync_to_async(selectors.conversation_status)(conversation_id=conversation_id)
        if status != Conversation.Status.CLOSED:
            raise NotClosed(gettext("End this chat before starting a new one."))
        conversation = await database_sync_to_async(services.conversation_create)(
            owner_token=self.owner_token, site_id=self.site.site_id if self.site else None, language=self.language
        )
        await self._attach(str(conversation.id), after_seq=None, opened=conversation)


SITE_BUSY = _("This chat is very busy right now. Please try again in a few minutes.")
HANDOFF_OFF = _("This shop does not offer chatting with a person here.")


def language_choose(scope: dict[str, Any], site: SiteConfig | None) -> str:
    """The socket's language: the page's `lang`, else the site's, else the browser's, if the chat
    speaks it."""
    supported = dict(settings.LANGUAGES)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    for wanted in [*(query.get("lang") or [])[:1], site.language if site else ""]:
        if wanted in supported:
            return str(wanted)
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            for code, _quality in parse_accept_lang_header(value.decode("latin-1")[:200]):
                try:
                    return str(get_supported_language_variant(code))
                except LookupError:
                    continue
    return str(settings.LANGUAGE_CODE)
