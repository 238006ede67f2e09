"""The staff live page's websocket (/ws/staff/): the lobby of active conversations, one open
conversation followed live, and the hand-off actions (take over, message, return, close).

Only signed-in staff with chat.handle_conversation get in. Whether an action is allowed is
decided by chat/states.py under a row lock, never by what the page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chat import handoff, metrics, selectors
from chat.consumers import ConversationStream
from chat.errors import ChatError, NoConversation
from chat.handoff import LOBBY_GROUP
from chat.heartbeat import heartbeats
from chat.protocol import (
    AckFrame,
    CloseFrame,
    OpenFrame,
    ReleaseFrame,
    StaffMessageFrame,
    TakeFrame,
    TypingFrame,
    staff_frame_decode,
)
from chat.states import display_name

logger = logging.getLogger(__name__)

FORBIDDEN = 4403  # close code: not signed in as staff allowed to handle conversations


class StaffConsumer(ConversationStream):
    typing_from = "shopper"
    socket_kind = "staff"
    user: Any
    staff_name = ""
    _presence: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        allowed = (
            user is not None
            and user.is_active
            and user.is_staff
            and await database_sync_to_async(user.has_perm)("chat.handle_conversation")
        )
        if not allowed:
            await self.close(code=FORBIDDEN)
            return
        self.user = user
        self.staff_name = display_name(user)
        await self.accept()
        self.counted = True
        metrics.SOCKETS.labels(kind=self.socket_kind).inc()
        heartbeats.add(self)  # a staff page left open all day sits behind the same proxies
        await self.channel_layer.group_add(LOBBY_GROUP, self.channel_name)
        # Seen before the list is read: from here on every change is notified (chat/handoff.py).
        await handoff.staff_seen()
        self._presence = asyncio.create_task(self._keep_present())
        conversations = await database_sync_to_async(selectors.lobby_conversations)()
        await self._send(
            {"type": "lobby", "me": {"id": user.pk, "name": self.staff_name}, "conversations": conversations}
        )

    async def disconnect(self, code: int) -> None:
        if self._presence is not None:
            self._presence.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._presence
        await self.channel_layer.group_discard(LOBBY_GROUP, self.channel_name)
        await super().disconnect(code)

    async def _keep_present(self) -> None:
        """Shoppers asking for a person are told staff are online while a live page is open."""
        while True:
            await asyncio.sleep(settings.CHAT_STAFF_ONLINE_SECONDS / 3)
            await handoff.staff_seen()

    async def lobby_update(self, message: dict[str, Any]) -> None:
        """Group messages of type lobby.update (see chat/handoff.py)."""
        await self._send({"type": "lobby.update", "conversation": message["conversation"]})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            await self._handle(staff_frame_decode(text_data))
        except ChatError as exc:
            await self._send(exc.as_frame())
        except Exception:
            logger.exception("staff frame failed")
            await self._send(ChatError().as_frame())

    async def _handle(self, frame: object) -> None:
        if isinstance(frame, AckFrame):  # flow control, as on the shopper's socket (chat/backpressure.py)
            self._ack(frame)
            return
        if isinstance(frame, OpenFrame):
            exists = await database_sync_to_async(selectors.conversation_exists)(conversation_id=frame.conversation)
            if not exists:
                raise NoConversation("That conversation does not exist (any more).")
            await self._attach(str(frame.conversation), after_seq=None)
            return
        conversation_id = self.conversation_id
        if conversation_id is None:
            raise NoConversation()
        if isinstance(frame, TakeFrame):
            await handoff.conversation_take(conversation_id=conversation_id, user=self.user)
        elif isinstance(frame, StaffMessageFrame):
            resent = await handoff.staff_message_send(
                conversation_id=conversation_id, user=self.user, text=frame.text, client_msg_id=frame.client_msg_id
            )
            if resent is not None:
                await self._send(resent)
        elif isinstance(frame, TypingFrame):
            if self._typing_due(frame.active):
                await handoff.typing_relay(
                    conversation_id=conversation_id, who="staff", name=self.staff_name, active=frame.active
                )
        elif isinstance(frame, ReleaseFrame):
            await handoff.conversation_release(conversation_id=conversation_id, user=self.user)
        elif isinstance(frame, CloseFrame):
            await handoff.conversation_close(conversation_id=conversation_id, user=self.user)
