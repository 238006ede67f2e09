"""A shopper's side of the websocket protocol, driven through the real ASGI application."""

from __future__ import annotations

import json
import uuid
from typing import Any

from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from supportbot.asgi import application


async def browser_session() -> str:
    """Open the chat page like a browser does and return its session cookie value."""
    response = await AsyncClient().get("/")
    assert response.status_code == 200
    return response.cookies["sessionid"].value


class Shopper:
    def __init__(self, session: str | None = None, *, origin: str = "http://localhost") -> None:
        headers = [(b"origin", origin.encode())]
        if session is not None:
            headers.append((b"cookie", f"sessionid={session}".encode()))
        self.communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        self.conversation: dict[str, Any] = {}
        self.frames: list[dict[str, Any]] = []

    async def connect(self) -> dict[str, Any]:
        connected, _ = await self.communicator.connect()
        assert connected, "the websocket was refused"
        self.conversation = await self.recv()
        assert self.conversation["type"] == "conversation"
        return self.conversation

    async def disconnect(self) -> None:
        await self.communicator.disconnect()

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await self.communicator.receive_from(timeout=timeout))
        self.frames.append(frame)
        return frame

    async def recv_until(self, kind: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Frames up to and including the first of type `kind`."""
        frames = []
        while True:
            frame = await self.recv(timeout)
            frames.append(frame)
            if frame["type"] == kind:
                return frames

    async def nothing_more(self, timeout: float = 0.2) -> bool:
        return bool(await self.communicator.receive_nothing(timeout=timeout))

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def say(self, text: str, client_msg_id: str | None = None) -> str:
        client_msg_id = client_msg_id or str(uuid.uuid4())
        await self.send({"type": "message", "text": text, "client_msg_id": client_msg_id})
        return client_msg_id

    async def turn(self, text: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Say something and collect every frame up to the reply's end."""
        await self.say(text)
        return await self.recv_until("reply.end", timeout)


def reply_text(frames: list[dict[str, Any]]) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "reply.delta")


def as_client_sees(frames: list[dict[str, Any]], after_seq: int) -> list[dict[str, Any]]:
    """Apply the protocol's client rule: handle each seq once, in order, ignoring repeats."""
    kept = []
    for frame in frames:
        if "seq" in frame and frame["type"] != "conversation":
            if frame["seq"] <= after_seq:
                continue
            after_seq = frame["seq"]
        kept.append(frame)
    return kept
