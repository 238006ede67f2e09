"""Photos and voice notes in a turn: what the model receives (asserted at the loopback fake
server) for a vision model, an audio model and a text-only model, failover between them, the
image budget for later turns, and attachment ids that cannot be used."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command

from chat.models import Attachment, Message
from tests.chat.media.uploads import DEMO_PHOTO, SPEECH, Browser
from tests.chat.shopper import Shopper
from tests.fakes import Script

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]

JACKET = "Cascade 2.5L Rain Jacket"


@pytest.fixture
async def demo_catalog():
    await database_sync_to_async(call_command)("load_demo_catalog", verbosity=0)


def latest_user_content(request) -> str | list[dict]:
    content: str | list[dict] = request.json["messages"][-1]["content"]
    assert request.json["messages"][-1]["role"] == "user"
    return content


async def send(shopper: Shopper, text: str, attachments: list[str]) -> list[dict[str, Any]]:
    await shopper.send(
        {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": text, "attachments": attachments}
    )
    return await shopper.recv_until("reply.end", timeout=15)


async def test_a_vision_model_gets_the_photo_as_a_data_url_with_the_catalog_match(fake_openai, demo_catalog):
    browser = await Browser().open()
    photo = await browser.attach(DEMO_PHOTO.read_bytes())
    shopper = browser.shopper()
    await shopper.connect()
    frames = await send(shopper, "Is this waterproof?", [photo["id"]])

    ack = next(f for f in frames if f["type"] == "message.ack")
    assert [a["id"] for a in ack["message"]["attachments"]] == [photo["id"]]
    content = latest_user_content(fake_openai.last_request)
    assert isinstance(content, list)
    assert content[0] == {"type": "text", "text": "Is this waterproof?"}
    image = next(part for part in content if part["type"] == "image_url")["image_url"]
    assert image["detail"] == "high" and image["url"].startswith("data:image/jpeg;base64,")
    assert base64.b64decode(image["url"].split(",", 1)[1])[:2] == b"\xff\xd8"
    assert any(part["type"] == "text" and JACKET in part["text"] for part in content)
    assert "_fallback" not in json.dumps(fake_openai.last_request.json)
    # The matched product is the first catalog fact.
    facts = [m["content"] for m in fake_openai.last_request.json["messages"] if m["role"] == "system"][-1]
    assert json.loads(facts.split("\n", 1)[1])[0]["handle"] == "cascade-rain-jacket"
    await shopper.disconnect()

    again = browser.shopper()  # a reload shows the photo in the transcript
    snapshot = await again.connect()
    # The same file (the link's signature carries a timestamp, so it may differ by a second).
    assert snapshot["messages"][0]["attachments"][0]["thumb_url"].split("?")[0] == photo["thumb_url"].split("?")[0]
    await again.disconnect()


async def test_a_text_only_model_gets_the_photo_as_words(fake_openai, demo_catalog, settings):
    settings.LLM_MODEL = "llama3.1"
    settings.LLM_MODEL_CAPABILITIES = {"llama3.1": {"vision": False, "audio": False, "tools": True}}
    browser = await Browser().open()
    photo = await browser.attach(DEMO_PHOTO.read_bytes())
    shopper = browser.shopper()
    await shopper.connect()
    await send(shopper, "Do you have this in green?", [photo["id"]])
    content = latest_user_content(fake_openai.last_request)
    assert isinstance(content, str)
    assert content.startswith("Do you have this in green?") and "sent a photo" in content and JACKET in content
    assert "image_url" not in json.dumps(fake_openai.last_request.json)
    await shopper.disconnect()


async def test_an_audio_model_hears_the_voice_note_and_a_text_model_reads_its_transcript(fake_openai, settings):
    browser = await Browser().open()
    note = await browser.attach(SPEECH.read_bytes(), "note.wav")
    shopper = browser.shopper()
    await shopper.connect()

    settings.LLM_MODEL = "gpt-4o-audio-preview"
    frames = await send(shopper, "", [note["id"]])
    assert next(f for f in frames if f["type"] == "message.ack")["message"]["attachments"][0]["transcript"]
    content = latest_user_content(fake_openai.last_request)
    assert isinstance(content, list) and [part["type"] for part in content] == ["input_audio"]
    audio = content[0]["input_audio"]
    assert audio["format"] == "mp3"
    mp3 = base64.b64decode(audio["data"])
    assert mp3[:3] == b"ID3" or (mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0)

    settings.LLM_MODEL = "gpt-5.2"  # sees images, does not hear: the transcript instead
    note2 = await browser.attach(SPEECH.read_bytes(), "note.wav")
    await send(shopper, "", [note2["id"]])
    content = latest_user_content(fake_openai.last_request)
    assert isinstance(content, str) and "transcribed" in content and "blue" in content.lower()
    # The earlier voice note is history now: its transcript, never its audio again.
    assert "input_audio" not in json.dumps(fake_openai.last_request.json)
    await shopper.disconnect()


async def test_failover_to_a_text_only_model_swaps_the_photo_for_words(fake_openai, demo_catalog, settings):
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_FALLBACKS = [{"model": "llama3.1"}]
    settings.LLM_MODEL_CAPABILITIES = {"llama3.1": {"vision": False}}
    fake_openai.enqueue(Script.http_error(500), Script.stream("It is the Cascade jacket."))
    browser = await Browser().open()
    photo = await browser.attach(DEMO_PHOTO.read_bytes())
    shopper = browser.shopper()
    await shopper.connect()
    await send(shopper, "What is this?", [photo["id"]])
    primary, fallback = fake_openai.requests[-2:]
    assert primary.json["model"] == "gpt-5.2" and fallback.json["model"] == "llama3.1"
    sent = latest_user_content(primary)
    assert isinstance(sent, list) and any(part["type"] == "image_url" for part in sent)
    words = latest_user_content(fallback)
    assert isinstance(words, str) and "sent a photo" in words and JACKET in words
    for request in (primary, fallback):
        assert "_fallback" not in request.raw_body.decode()
    await shopper.disconnect()


async def test_later_turns_resend_earlier_photos_only_within_the_budget(fake_openai, demo_catalog, settings):
    settings.CHAT_IMAGE_HISTORY = 1
    browser = await Browser().open()
    shopper = browser.shopper()
    await shopper.connect()
    for question in ("First photo", "Second photo", "Third photo"):
        photo = await browser.attach(DEMO_PHOTO.read_bytes())
        await send(shopper, question, [photo["id"]])
    users = [m for m in fake_openai.last_request.json["messages"] if m["role"] == "user"]
    assert len(users) == 3

    def details(message: dict) -> list[str]:
        parts = message["content"] if isinstance(message["content"], list) else []
        return [part["image_url"]["detail"] for part in parts if part["type"] == "image_url"]

    assert [details(m) for m in users] == [[], ["low"], ["high"]]
    assert "sent a photo" in users[0]["content"]  # the oldest is a line of text now
    await shopper.disconnect()


async def test_unusable_attachment_ids_are_refused_and_nothing_is_stored(fake_openai):
    browser = await Browser().open()
    other = await Browser().open()
    theirs = await other.attach(DEMO_PHOTO.read_bytes())
    shopper = browser.shopper()
    await shopper.connect()
    for attachments in ([str(uuid.uuid4())], [theirs["id"]]):
        await shopper.send(
            {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "x", "attachments": attachments}
        )
        error = await shopper.recv()
        assert (
            error["type"] == "error"
            and error["code"] == "attachment_not_found"
            and "attach it again" in error["message"]
        )

    mine = await browser.attach(DEMO_PHOTO.read_bytes())
    await send(shopper, "Here it is", [mine["id"]])  # the connection is still up and works
    await shopper.send(
        {"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "again", "attachments": [mine["id"]]}
    )
    error = await shopper.recv()
    assert error["code"] == "attachment_not_found"  # already sent with the earlier message
    stored = await database_sync_to_async(
        lambda: list(Message.objects.filter(author="shopper").values_list("text", flat=True))
    )()
    assert stored == ["Here it is"]
    await shopper.disconnect()


async def test_too_many_attachments_in_one_message_are_refused(fake_openai, settings):
    settings.CHAT_MAX_ATTACHMENTS = 2
    browser = await Browser().open()
    ids = [(await browser.attach(DEMO_PHOTO.read_bytes()))["id"] for _ in range(3)]
    shopper = browser.shopper()
    await shopper.connect()
    await shopper.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "", "attachments": ids})
    error = await shopper.recv()
    assert error["code"] == "too_many_attachments" and "at most 2" in error["message"]
    unsent = await database_sync_to_async(Attachment.objects.filter(message__isnull=True).count)()
    assert unsent == 3
    await shopper.disconnect()
