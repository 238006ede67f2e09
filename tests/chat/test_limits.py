"""Limits per client address and per session, on top of the per-session message limit: over a
limit, a clear message and a back-off, never a crash; others are not affected."""

from __future__ import annotations

import uuid

import pytest

from tests.chat.media.uploads import DEMO_PHOTO, Browser
from tests.chat.shopper import Shopper, browser_session

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


def address() -> str:
    """A client address of this test run only: counters in a shared Redis never collide."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def from_address(shopper: Shopper, ip: str) -> Shopper:
    shopper.communicator.scope["client"] = (ip, 40000)
    return shopper


async def test_too_many_open_sockets_from_one_address_are_turned_away_politely(offline, settings):
    settings.CHAT_CONNECTIONS_PER_IP = 2
    busy = address()
    first = from_address(Shopper(), busy)
    second = from_address(Shopper(), busy)
    await first.connect()
    await second.connect()
    third = from_address(Shopper(), busy)
    connected, _ = await third.communicator.connect()
    assert connected  # accepted, to say why…
    error = await third.recv()
    assert error["code"] == "too_many_connections" and "Close a few" in error["message"]
    assert (await third.communicator.receive_output())["type"] == "websocket.close"  # …then closed
    elsewhere = from_address(Shopper(), address())  # another address is not affected
    await elsewhere.connect()
    await first.disconnect()  # a closed socket frees its place
    again = from_address(Shopper(), busy)
    await again.connect()
    for shopper in (second, elsewhere, again):
        await shopper.disconnect()


@pytest.mark.usefixtures("rate_window")
async def test_messages_per_minute_are_limited_per_address_across_sessions(offline, settings):
    settings.CHAT_MESSAGES_PER_MINUTE = 100
    settings.CHAT_MESSAGES_PER_MINUTE_PER_IP = 2
    shared = address()
    shoppers = [from_address(Shopper(await browser_session()), shared) for _ in range(3)]
    for shopper in shoppers:
        await shopper.connect()
    for shopper in shoppers[:2]:
        assert (await shopper.turn("hello"))[-1]["type"] == "reply.end"
    await shoppers[2].say("hello")
    refused = await shoppers[2].recv()
    assert refused["code"] == "rate_limited" and refused["retry_after"] >= 1
    for shopper in shoppers:
        await shopper.disconnect()


async def test_uploads_per_hour_and_bytes_per_hour_are_limited_per_session(settings):
    settings.CHAT_UPLOADS_PER_HOUR = 2
    browser = await Browser().open()
    assert [(await browser.upload(DEMO_PHOTO.read_bytes())).status_code for _ in range(3)] == [201, 201, 429]

    settings.CHAT_UPLOADS_PER_HOUR = 100
    settings.CHAT_UPLOAD_BYTES_PER_HOUR = len(DEMO_PHOTO.read_bytes()) * 2 + 10
    other = await Browser().open()
    statuses = [(await other.upload(DEMO_PHOTO.read_bytes())).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    last = await other.upload(DEMO_PHOTO.read_bytes())
    assert "last hour" in last.json()["error"]["message"] and int(last["Retry-After"]) >= 1
