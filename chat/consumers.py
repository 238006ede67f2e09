"""The chat websocket: receives frames, validates them, hands them to the turn code, and relays
conversation events to the client in sequence order. No business logic lives here."""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from chat import selectors, services, turns
from chat.errors import ChatError, ConversationNotFound
from chat.events import conversation_group, turn_stop_request
from chat.journal import Event, get_journal
from chat.ownership import owner_token_ephemeral, owner_token_from_scope
from chat.protocol import MessageFrame, ResumeFrame, StopFrame, frame_decode, frame_encode

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    owner_token: str
    conversation_id: str | None = None
    # The highest seq sent on this socket: replayed and live events may overlap.
    last_seq = 0

    async def connect(self) -> None:
        self.owner_token = await owner_token_from_scope(self.scope) or owner_token_ephemeral()
        await self.accept()
        conversation = await database_sync_to_async(selectors.conversation_latest_for_owner)(
            owner_token=self.owner_token
        ) or await database_sync_to_async(services.conversation_create)(owner_token=self.owner_token)
        await self._attach(str(conversation.id), after_seq=None)

    async def disconnect(self, code: int) -> None:
        if self.conversation_id is not None:
            await self.channel_layer.group_discard(conversation_group(self.conversation_id), self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = frame_decode(text_data)
            if isinstance(frame, MessageFrame):
                await self._message(frame)
            elif isinstance(frame, StopFrame):
                if self.conversation_id is not None:
                    await turn_stop_request(conversation_id=self.conversation_id)
            elif isinstance(frame, ResumeFrame):
                await self._resume(frame)
        except ChatError as exc:
            await self._send(exc.as_frame())
        except Exception:
            logger.exception("chat frame failed")
            await self._send(ChatError().as_frame())

    async def _message(self, frame: MessageFrame) -> None:
        assert self.conversation_id is not None
        reply = await turns.shopper_message_receive(
            conversation_id=self.conversation_id, rate_key=services.owner_hash(self.owner_token), frame=frame
        )
        if reply is not None:
            await self._send(reply)

    async def _resume(self, frame: ResumeFrame) -> None:
        conversation = await database_sync_to_async(selectors.conversation_get_for_owner)(
            conversation_id=frame.conversation, owner_token=self.owner_token
        )
        if conversation is None:
            raise ConversationNotFound()
        await self._attach(str(conversation.id), after_seq=frame.after_seq)

    async def _attach(self, conversation_id: str, *, after_seq: int | None) -> None:
        """Follow a conversation: join its group first, then catch up from the journal (or a
        database snapshot when the journal cannot cover the gap)."""
        if self.conversation_id != conversation_id:
            if self.conversation_id is not None:
                await self.channel_layer.group_discard(conversation_group(self.conversation_id), self.channel_name)
            await self.channel_layer.group_add(conversation_group(conversation_id), self.channel_name)
            self.conversation_id = conversation_id
        journal = get_journal()
        events = None if after_seq is None else await journal.since(conversation_id, after_seq)
        if events is not None and after_seq is not None:
            self.last_seq = after_seq
        else:
            snapshot = await database_sync_to_async(selectors.conversation_snapshot)(conversation_id=conversation_id)
            self.last_seq = 0
            await self._send(snapshot)
            self.last_seq = snapshot["seq"]
            events = await journal.since(conversation_id, self.last_seq) or []
        for event in events:
            await self._deliver(event)

    async def chat_event(self, message: dict[str, Any]) -> None:
        """Group messages of type chat.event (see chat/events.py)."""
        await self._deliver(message["event"])

    async def _deliver(self, event: Event) -> None:
        seq = event["seq"]
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        await self._send(event)

    async def _send(self, frame: Event) -> None:
        await self.send(text_data=frame_encode(frame))
