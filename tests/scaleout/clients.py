"""Clients of a real server over real sockets: browser sessions over HTTP (httpx) and the chat and
staff websockets (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from tests.scaleout.conftest import STAFF_PASSWORD, STAFF_USER, Daphne


async def shopper_session(server: Daphne) -> str:
    """Open the chat page like a browser and return its session cookie."""
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
        response = await client.get("/")
        assert response.status_code == 200
        return str(response.cookies["sessionid"])


async def staff_session(server: Daphne, username: str = STAFF_USER, password: str = STAFF_PASSWORD) -> str:
    """Sign in through the admin's login form (CSRF token from the page) and return the session."""
    async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
        page = await client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None, "no CSRF token on the admin login page"
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token[1], "next": "/admin/"}
        response = await client.post("/admin/login/?next=/admin/", data=form)
        assert response.status_code == 302, f"staff login failed ({response.status_code})"
        return str(client.cookies["sessionid"])


class Socket:
    """One websocket to one server; `frames` keeps everything received, in order."""

    def __init__(self, connection: ClientConnection, server: Daphne) -> None:
        self.connection = connection
        self.server = server
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, server: Daphne, path: str, session: str | None) -> Socket:
        headers = {"Cookie": f"sessionid={session}"} if session else {}
        connection = await connect(
            server.ws_url(path), origin=Origin(server.origin), additional_headers=headers, proxy=None, open_timeout=10
        )
        return cls(connection, server)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            frame: dict[str, Any] = json.loads(await self.connection.recv())
        self.frames.append(frame)
        return frame

    async def recv_until(self, kind: str, timeout: float = 10.0, **match: Any) -> list[dict[str, Any]]:
        """Frames up to and including the first of type `kind` (with the `match` fields)."""
        frames = []
        while True:
            frame = await self.recv(timeout)
            frames.append(frame)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frames

    async def nothing_more(self, timeout: float) -> bool:
        try:
            await self.recv(timeout)
        except TimeoutError:
            return True
        return False

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def say(self, text: str) -> str:
        client_msg_id = str(uuid.uuid4())
        await self.send({"type": "message", "text": text, "client_msg_id": client_msg_id})
        return client_msg_id

    async def drain_until_closed(self, timeout: float = 10.0) -> None:
        """Read what is left until the server side is gone (e.g. its process was killed)."""
        async with asyncio.timeout(timeout):
            try:
                while True:
                    self.frames.append(json.loads(await self.connection.recv()))
            except ConnectionClosed:
                return

    async def close(self) -> None:
        await self.connection.close()


def client_sees(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply the protocol's client rule over everything one shopper received, across sockets and
    processes: handle each seq once, in order; a repeated seq must be the very same event."""
    by_seq: dict[int, dict[str, Any]] = {}
    kept = []
    last = 0
    for frame in frames:
        if "seq" not in frame or frame["type"] == "conversation":
            continue
        seq = frame["seq"]
        if seq in by_seq:
            assert by_seq[seq] == frame, f"seq {seq} was sent as two different events: {by_seq[seq]} / {frame}"
            continue
        assert seq > last, f"seq {seq} came after {last}: an event arrived late and would be dropped"
        by_seq[seq] = frame
        kept.append(frame)
        last = seq
    return kept


def reply_text(frames: list[dict[str, Any]], message_id: str | None = None) -> str:
    return "".join(f["text"] for f in frames if f["type"] == "reply.delta" and message_id in (None, f["message_id"]))
