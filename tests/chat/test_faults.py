"""The fault matrix of issue 8 (docs/faults.md), for the rows the other test modules do not
cover whole: for each fault, what the shopper sees (frames), what is stored, and that a later turn
still works. Everything runs through the real ASGI application and the loopback model; faults are
made for real (a closed port, a name that does not resolve, a locked database, dropped Redis
connections), never by patching the code under test."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator

import psycopg
import pytest
import redis
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.db import connection

from chat.models import Message
from chat.replies import STORE_FAILED, STORE_RETRY_PAUSES
from chat.turns import supervisor
from tests.chat.shopper import Shopper, browser_session, reply_text
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


@database_sync_to_async
def stored(conversation_id: str) -> list[tuple[str, str, str, str]]:
    rows = Message.objects.filter(conversation_id=conversation_id).order_by("seq")
    return [(m.author, m.text, m.status, m.error_code) for m in rows]


async def connected() -> tuple[Shopper, str]:
    shopper = Shopper(await browser_session())
    conversation = await shopper.connect()
    return shopper, conversation["id"]


async def later_turn_works(shopper: Shopper, fake_openai, conversation_id: str) -> None:
    """The conversation goes on: the next message gets a normal reply from the model."""
    fake_openai.enqueue(Script.stream("Back to normal."))
    frames = await shopper.turn("Hello again", timeout=10)
    assert reply_text(frames) == "Back to normal." and frames[-1]["status"] == "complete"
    assert not [f for f in frames if f["type"] == "error"]
    assert (await stored(conversation_id))[-2:] == [
        ("shopper", "Hello again", "complete", ""),
        ("bot", "Back to normal.", "complete", ""),
    ]


def closed_port() -> int:
    """A loopback port nobody listens on (connecting to it is refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- upstream ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        Script.http_error(429),  # no Retry-After: the client's own back-off
        Script.http_error(429, retry_after=0.2),
        Script.http_error(502),
    ],
    ids=["429-no-retry-after", "429-retry-after", "502"],
)
async def test_a_retryable_refusal_then_success_shows_still_working_and_the_reply(fake_openai, settings, script):
    settings.LLM_MAX_RETRIES = 1
    fake_openai.enqueue(script, Script.stream("Your order left today."))
    shopper, conversation_id = await connected()
    frames = await shopper.turn("Where is my order?", timeout=10)
    assert [f["code"] for f in frames if f["type"] == "reply.notice"] == ["retrying"]
    assert reply_text(frames) == "Your order left today." and frames[-1]["status"] == "complete"
    assert not [f for f in frames if f["type"] == "error"]
    assert len(fake_openai.requests) == 2
    assert await stored(conversation_id) == [
        ("shopper", "Where is my order?", "complete", ""),
        ("bot", "Your order left today.", "complete", ""),
    ]
    await later_turn_works(shopper, fake_openai, conversation_id)
    await shopper.disconnect()


@pytest.mark.parametrize(
    "base_url",
    [lambda: f"http://127.0.0.1:{closed_port()}/v1", lambda: "http://model.supportbot-test.invalid/v1"],
    ids=["connection-refused", "dns-failure"],
)
async def test_an_unreachable_model_gets_the_offline_answer_and_the_model_again_once_back(
    fake_openai, settings, base_url
):
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_CONNECT_TIMEOUT = 2.0
    settings.LLM_BASE_URL = base_url()
    shopper, conversation_id = await connected()
    frames = await shopper.turn("Do you ship to Norway?", timeout=10)
    assert not [f for f in frames if f["type"] == "error"]
    assert "offline assistant" in reply_text(frames) and frames[-1]["status"] == "complete"
    rows = await stored(conversation_id)
    assert rows[0] == ("shopper", "Do you ship to Norway?", "complete", "")
    assert rows[1][0] == "bot" and rows[1][2:] == ("complete", "upstream_unavailable")
    assert not fake_openai.requests
    settings.LLM_BASE_URL = fake_openai.base_url  # the model is reachable again
    await later_turn_works(shopper, fake_openai, conversation_id)
    await shopper.disconnect()


@pytest.mark.parametrize(
    "script",
    [
        Script.mid_stream_error(["The Featherlite ", "weighs "], message="overloaded"),
        Script.cut(["The Featherlite ", "weighs "]),
        Script.hang(["The Featherlite ", "weighs "], timeout=5),
        Script.stream(["The Featherlite ", "weighs "], finish_reason=None, usage=None, done=False).then(
            *Script.garbage().steps[1:]
        ),
    ],
    ids=["error-event", "connection-cut", "stalled", "garbage-after-text"],
)
async def test_a_reply_broken_midway_keeps_its_text_as_incomplete_and_the_chat_goes_on(fake_openai, settings, script):
    settings.LLM_IDLE_TIMEOUT = 0.5
    fake_openai.enqueue(script)
    shopper, conversation_id = await connected()
    frames = await shopper.turn("How heavy is the tent?", timeout=10)
    assert reply_text(frames) == "The Featherlite weighs "
    errors = [f for f in frames if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["upstream_error"] and "kept" in errors[0]["message"]
    assert frames[-1]["type"] == "reply.end" and frames[-1]["status"] == "incomplete"
    rows = await stored(conversation_id)
    assert rows[0] == ("shopper", "How heavy is the tent?", "complete", "")
    assert rows[1] == ("bot", "The Featherlite weighs ", "incomplete", "upstream_error")
    await later_turn_works(shopper, fake_openai, conversation_id)
    await shopper.disconnect()


async def test_a_gateway_that_ignores_stream_true_answers_stores_and_goes_on(fake_openai):
    fake_openai.enqueue(Script.completion("One JSON body."))
    shopper, conversation_id = await connected()
    frames = await shopper.turn("hi")
    assert reply_text(frames) == "One JSON body." and frames[-1]["status"] == "complete"
    assert (await stored(conversation_id))[1] == ("bot", "One JSON body.", "complete", "")
    await later_turn_works(shopper, fake_openai, conversation_id)
    await shopper.disconnect()


# --- client ------------------------------------------------------------------------------


async def test_a_socket_closed_mid_reply_leaves_the_reply_to_finish_and_be_stored_once(fake_openai):
    pieces = [f"part{i} " for i in range(15)]
    fake_openai.enqueue(Script.stream(pieces, delay=0.03))
    session = await browser_session()
    first = Shopper(session)
    conversation_id = (await first.connect())["id"]
    await first.say("Long answer please")
    await first.recv_until("reply.delta")
    await first.disconnect()  # the tab is closed mid-reply; nobody listens any more
    await asyncio.to_thread(fake_openai.last_request.wait)
    assert fake_openai.last_request.completed  # the model was not cut off for it
    async with asyncio.timeout(5):
        while len(await stored(conversation_id)) < 2:
            await asyncio.sleep(0.05)
    assert await stored(conversation_id) == [
        ("shopper", "Long answer please", "complete", ""),
        ("bot", "".join(pieces), "complete", ""),
    ]
    again = Shopper(session)  # back later: the whole reply, once
    snapshot = await again.connect()
    assert [m["text"] for m in snapshot["messages"]] == ["Long answer please", "".join(pieces)]
    assert await again.nothing_more()
    await later_turn_works(again, fake_openai, conversation_id)
    await again.disconnect()


async def test_two_tabs_share_one_reply_and_a_message_from_the_other_tab_mid_reply_is_refused(fake_openai):
    session = await browser_session()
    one, two = Shopper(session), Shopper(session)
    conversation_id = (await one.connect())["id"]
    assert (await two.connect())["id"] == conversation_id
    fake_openai.enqueue(Script.stream_forever(rate=30, count=12))
    await one.say("What tents do you have?")
    await two.recv_until("reply.delta")
    await two.say("And sleeping bags?")  # typed in the other tab while the reply streams
    refused = (await two.recv_until("error"))[-1]
    assert refused["code"] == "reply_in_progress" and "seq" not in refused
    seen_one, seen_two = await one.recv_until("reply.end"), await two.recv_until("reply.end")
    text = "".join(f"tick {n}. " for n in range(12))
    assert reply_text(one.frames) == reply_text(two.frames) == text
    assert seen_one[-1] == seen_two[-1]
    assert "And sleeping bags?" not in str(one.frames)
    assert await stored(conversation_id) == [
        ("shopper", "What tents do you have?", "complete", ""),
        ("bot", text, "complete", ""),
    ]
    await later_turn_works(two, fake_openai, conversation_id)
    assert reply_text(await one.recv_until("reply.end")) == "Back to normal."  # the first tab saw it too
    await one.disconnect()
    await two.disconnect()


# --- server: the database while a reply is stored ---------------------------------------


@contextlib.contextmanager
def writes_blocked() -> Iterator[None]:
    """The database refuses writes for a while, for real, from another connection: on SQLite an
    exclusive transaction on the (shared-cache) test database; on PostgreSQL an ACCESS EXCLUSIVE
    lock on chat_message while every connection that waits for it is terminated (what a failover
    or a restart does to a client mid-query)."""
    if connection.vendor == "sqlite":
        name = connection.settings_dict["NAME"]
        holder = sqlite3.connect(name, uri=name.startswith("file:"), timeout=0, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    holder_pg = psycopg.connect(**params, autocommit=False)
    killer = psycopg.connect(**params, autocommit=True)
    holder_pg.execute("LOCK TABLE chat_message IN ACCESS EXCLUSIVE MODE")
    stop = threading.Event()

    def terminate_waiters() -> None:
        while not stop.wait(0.02):
            killer.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )

    thread = threading.Thread(target=terminate_waiters, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        holder_pg.rollback()
        holder_pg.close()
        killer.close()


async def store_attempts(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for r in caplog.records if r.getMessage().startswith("storing a reply failed"))


async def test_a_database_briefly_unavailable_when_storing_a_reply_is_retried(fake_openai, caplog):
    caplog.set_level(logging.ERROR, logger="chat.replies")
    fake_openai.enqueue(Script.stream(["In stock ", "in all sizes."], delay=0.1))
    shopper, conversation_id = await connected()
    await shopper.say("Is the jacket in stock?")
    frames = await shopper.recv_until("reply.delta")
    with writes_blocked():
        await asyncio.sleep(0.1 + STORE_RETRY_PAUSES[0] + 0.1)  # the first write fails, and a retry
    frames += await shopper.recv_until("reply.end", timeout=10)
    assert reply_text(frames) == "In stock in all sizes." and frames[-1]["status"] == "complete"
    assert not [f for f in frames if f["type"] == "error"]
    assert 1 <= await store_attempts(caplog) < len(STORE_RETRY_PAUSES) + 1
    assert await stored(conversation_id) == [
        ("shopper", "Is the jacket in stock?", "complete", ""),
        ("bot", "In stock in all sizes.", "complete", ""),
    ]
    await later_turn_works(shopper, fake_openai, conversation_id)
    await shopper.disconnect()


async def test_a_database_down_for_longer_gives_a_clear_failure_and_keeps_the_shoppers_message(fake_openai, caplog):
    caplog.set_level(logging.ERROR, logger="chat.replies")
    fake_openai.enqueue(Script.stream(["In stock ", "in all sizes."], delay=0.1))
    shopper, conversation_id = await connected()
    await shopper.say("Is the jacket in stock?")
    frames = await shopper.recv_until("reply.delta")
    with writes_blocked():
        frames += await shopper.recv_until("reply.end", timeout=15)
    assert await store_attempts(caplog) == len(STORE_RETRY_PAUSES) + 1
    errors = [f for f in frames if f["type"] == "error"]
    assert [(e["code"], e["message"]) for e in errors] == [("internal_error", STORE_FAILED)]
    assert reply_text(frames) == "In stock in all sizes."
    assert frames[-1]["type"] == "reply.end" and frames[-1]["status"] == "incomplete"
    assert await stored(conversation_id) == [("shopper", "Is the jacket in stock?", "complete", "")]
    await later_turn_works(shopper, fake_openai, conversation_id)
    await shopper.disconnect()


# --- server: Redis restart ---------------------------------------------------------------


def redis_connections_of_this_process_drop() -> int:
    """What a Redis restart does to this process: every connection it has to Redis is closed by
    the server (CLIENT KILL by address, so other processes using the same Redis are left alone)."""
    ports = _local_tcp_ports_of_this_process()
    admin = redis.Redis.from_url(django_settings.REDIS_URL)
    killed = 0
    try:
        for client in admin.client_list():
            port = client["addr"].rpartition(":")[2]
            if int(port) in ports and int(client["id"]) != admin.client_id():
                killed += int(admin.client_kill_filter(_id=client["id"]))
    finally:
        admin.close()
    return killed


def _local_tcp_ports_of_this_process() -> set[int]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_after_a_redis_restart_a_reconnecting_shopper_chats_on(fake_openai):
    if not django_settings.REDIS_URL:
        pytest.skip("in-memory channel layer: there is no Redis to restart (runs in the scale-out pass)")
    session = await browser_session()
    shopper = Shopper(session)
    conversation_id = (await shopper.connect())["id"]
    fake_openai.enqueue(Script.stream("Before the restart."))
    assert reply_text(await shopper.turn("First question")) == "Before the restart."
    assert redis_connections_of_this_process_drop() > 0
    # The open socket's receive from the channel layer was on a dropped connection.
    await shopper.disconnect()
    again = Shopper(session)  # the page reconnects, as chat.js does
    snapshot = await again.connect()
    assert [m["text"] for m in snapshot["messages"]] == ["First question", "Before the restart."]
    # The first turn may still be letting go of the conversation: its last Redis calls, after
    # reply.end, met the dropped connections and are being retried. Until it has, a message gets
    # reply_in_progress ("please wait"), so the shopper's next message comes once it is done.
    async with asyncio.timeout(10):
        await supervisor.wait_idle()
    await later_turn_works(again, fake_openai, conversation_id)
    await again.disconnect()
