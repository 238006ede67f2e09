"""A shopper's browser for upload tests: its cookies, its conversation, and test files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from django.test import AsyncClient

from tests.chat.shopper import Shopper

DEMO_PHOTO = Path(__file__).resolve().parents[3] / "catalog/demo/images/cascade-rain-jacket-forest.jpg"
SPEECH = Path(__file__).resolve().parents[2] / "fixtures/speech.wav"


class Browser:
    """A shopper's browser: its session and CSRF cookies, and the conversation its page opened."""

    def __init__(self) -> None:
        self.client = AsyncClient(enforce_csrf_checks=True)
        self.conversation_id = ""
        self.csrf = ""
        self.session = ""

    async def open(self) -> Browser:
        page = await self.client.get("/")
        self.csrf = page.cookies["csrftoken"].value
        self.session = page.cookies["sessionid"].value
        shopper = Shopper(self.session)
        self.conversation_id = (await shopper.connect())["id"]
        await shopper.disconnect()
        return self

    @property
    def upload_url(self) -> str:
        return f"/api/conversations/{self.conversation_id}/attachments"

    async def upload(self, data: bytes, name: str = "photo.jpg", *, csrf: bool = True, **headers: str) -> Any:
        file = io.BytesIO(data)
        file.name = name
        if csrf:
            headers.setdefault("X-CSRFToken", self.csrf)
        return await self.client.post(self.upload_url, {"file": file}, headers=headers)

    async def attach(self, data: bytes, name: str = "photo.jpg") -> dict[str, Any]:
        response = await self.upload(data, name)
        assert response.status_code == 201, response.content
        body: dict[str, Any] = response.json()
        return body

    def shopper(self) -> Shopper:
        return Shopper(self.session)
