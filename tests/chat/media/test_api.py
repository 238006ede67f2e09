"""The upload endpoint and attachment files through the Django test client: session binding,
CSRF, limits, and every kind of bad input refused with a message and nothing stored."""

from __future__ import annotations

import io
import uuid
import zipfile
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.test import AsyncClient
from PIL import Image

from chat.models import Attachment
from tests.chat.media.imagefiles import animated_gif, png_claiming
from tests.chat.media.uploads import DEMO_PHOTO, SPEECH, Browser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("turns_idle")]


def stored_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


async def attachment_count() -> int:
    count: int = await database_sync_to_async(Attachment.objects.count)()
    return count


def jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (640, 480), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "Secret Phone 15"  # camera model
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 40.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_a_photo_upload_is_stored_and_served_to_its_session_only(attachments_dir):
    browser = await Browser().open()
    response = await browser.upload(DEMO_PHOTO.read_bytes(), "rain jacket.jpg")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "image" and body["content_type"] == "image/jpeg" and body["name"] == "rain_jacket.jpg"
    assert body["width"] and body["height"] and body["duration_ms"] is None
    assert body["url"].startswith(f"/api/conversations/{browser.conversation_id}/attachments/")

    full = await browser.client.get(body["url"])
    thumb = await browser.client.get(body["thumb_url"])
    assert full.status_code == 200 and full["Content-Type"] == "image/jpeg"
    assert "private" in full["Cache-Control"]
    assert Image.open(io.BytesIO(full.content)).size == (body["width"], body["height"])
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320

    # The links are signed (the widget's iframe has no cookies to prove ownership with): another
    # session gets nothing without the signature, or with a forged or borrowed one.
    stranger = await Browser().open()
    bare = body["url"].split("?")[0]
    assert (await stranger.client.get(bare)).status_code == 404
    assert (await stranger.client.get(body["thumb_url"].split("?")[0])).status_code == 404
    assert (await stranger.client.get(bare + "?s=" + body["url"].split("s=")[1][:-2] + "xx")).status_code == 404
    other = (await stranger.upload(DEMO_PHOTO.read_bytes())).json()
    borrowed = bare + "?" + other["url"].split("?")[1]
    assert (await stranger.client.get(borrowed)).status_code == 404
    # The owning session still reads it without the signature.
    assert (await browser.client.get(bare)).status_code == 200
    # Files are kept only under ids, never under anything the shopper sent.
    assert all("rain" not in str(path) for path in stored_files(attachments_dir))


async def test_staff_can_open_any_attachment_and_anonymous_clients_cannot():
    browser = await Browser().open()
    body = (await browser.upload(DEMO_PHOTO.read_bytes())).json()
    bare = body["url"].split("?")[0]
    assert (await AsyncClient().get(bare)).status_code == 404
    staff = await database_sync_to_async(User.objects.create_user)("reviewer", password="pw-123456789", is_staff=True)
    client = AsyncClient()
    await client.aforce_login(staff)
    assert (await client.get(bare)).status_code == 200


async def test_uploading_to_another_sessions_conversation_is_refused(attachments_dir):
    owner = await Browser().open()
    other = await Browser().open()
    other.conversation_id = owner.conversation_id
    response = await other.upload(DEMO_PHOTO.read_bytes())
    assert response.status_code == 404
    assert "not available" in response.json()["error"]["message"]
    assert await attachment_count() == 0 and stored_files(attachments_dir) == []


async def test_an_upload_without_the_csrf_token_is_refused_in_json():
    browser = await Browser().open()
    response = await browser.upload(DEMO_PHOTO.read_bytes(), csrf=False)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert await attachment_count() == 0


async def test_an_upload_from_another_origin_is_refused():
    browser = await Browser().open()
    response = await browser.upload(DEMO_PHOTO.read_bytes(), Origin="https://evil.example")
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"
    assert await attachment_count() == 0


async def test_gps_and_camera_metadata_never_reach_storage(attachments_dir):
    browser = await Browser().open()
    body = (await browser.upload(jpeg_with_gps())).json()
    for path in stored_files(attachments_dir):
        data = path.read_bytes()
        assert b"Secret Phone" not in data and b"Exif" not in data, path
    full = await browser.client.get(body["url"])
    assert not Image.open(io.BytesIO(full.content)).getexif()


async def test_a_file_name_with_a_path_or_markup_is_only_a_cleaned_label(attachments_dir):
    browser = await Browser().open()
    response = await browser.upload(DEMO_PHOTO.read_bytes(), '../../etc/<img src=x onerror="alert(1)">.jpg')
    assert response.status_code == 201
    name = response.json()["name"]
    assert "/" not in name and "<" not in name and ".." not in name and '"' not in name
    assert all(attachments_dir in path.parents for path in stored_files(attachments_dir))
    full = await browser.client.get(response.json()["url"])
    assert "<" not in full["Content-Disposition"]


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello" * 100)
    return out.getvalue()


BAD_FILES = {
    "empty": (b"", "photo.jpg", 400),
    "text renamed .jpg": (b"Hello, this is just some text.\n" * 20, "photo.jpg", 415),
    "zip renamed .jpg": (_zip(), "photo.jpg", 415),
    "truncated jpeg": (DEMO_PHOTO.read_bytes()[:4000], "photo.jpg", 400),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg", 415),
    "pdf": (b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "doc.pdf", 415),
    "not audio named .webm": (bytes(range(256)) * 40, "voice.webm", 415),
    "corrupt webm": (bytes.fromhex("1a45dfa3") + b"\x00" * 3000, "voice.webm", 400),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
async def test_bad_files_are_refused_with_a_message_and_nothing_is_stored(case, attachments_dir):
    data, name, status = BAD_FILES[case]
    browser = await Browser().open()
    response = await browser.upload(data, name)
    assert response.status_code == status, (case, response.content)
    error = response.json()["error"]
    assert error["code"] and len(error["message"]) > 20 and "Traceback" not in error["message"]
    assert await attachment_count() == 0 and stored_files(attachments_dir) == []


async def test_a_png_bomb_and_a_500_frame_gif_are_refused_as_too_large(attachments_dir):
    browser = await Browser().open()
    for data in (png_claiming(30000, 30000), animated_gif(500)):
        response = await browser.upload(data, "big.png")
        assert response.status_code == 413, response.content
    assert await attachment_count() == 0 and stored_files(attachments_dir) == []


async def test_an_oversized_file_is_refused_with_its_size(settings, attachments_dir):
    settings.CHAT_IMAGE_MAX_BYTES = 50_000
    browser = await Browser().open()
    response = await browser.upload(DEMO_PHOTO.read_bytes() + b"\0" * 60_000)
    assert response.status_code == 413
    assert "MB" in response.json()["error"]["message"]
    assert await attachment_count() == 0 and stored_files(attachments_dir) == []


async def test_a_request_body_over_every_limit_is_refused_before_parsing(settings):
    settings.CHAT_IMAGE_MAX_BYTES = settings.CHAT_AUDIO_MAX_BYTES = 10_000
    browser = await Browser().open()
    response = await browser.upload(b"\xff\xd8" + b"\0" * 200_000)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


async def test_a_post_without_a_file_is_refused():
    browser = await Browser().open()
    response = await browser.client.post(browser.upload_url, {"other": "x"}, headers={"X-CSRFToken": browser.csrf})
    assert response.status_code == 400 and response.json()["error"]["code"] == "no_file"


@pytest.mark.usefixtures("rate_window")
async def test_uploads_are_rate_limited_per_session(settings):
    settings.CHAT_UPLOADS_PER_MINUTE = 2
    browser = await Browser().open()
    statuses = [(await browser.upload(DEMO_PHOTO.read_bytes())).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    last = await browser.upload(DEMO_PHOTO.read_bytes())
    assert int(last["Retry-After"]) >= 1 and "wait" in last.json()["error"]["message"]


async def test_a_voice_note_is_normalised_transcribed_and_served_as_audio(attachments_dir):
    browser = await Browser().open()
    response = await browser.upload(SPEECH.read_bytes(), "note.wav")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "audio" and body["content_type"] == "audio/mpeg" and body["thumb_url"] is None
    assert 3000 < body["duration_ms"] < 6000
    assert "blue" in body["transcript"].lower() and "shirt" in body["transcript"].lower()
    played = await browser.client.get(body["url"])
    assert played.status_code == 200 and played["Content-Type"] == "audio/mpeg" and len(played.content) > 1000


async def test_a_silent_recording_is_refused(attachments_dir):
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as note:
        note.setnchannels(1)
        note.setsampwidth(2)
        note.setframerate(16000)
        note.writeframes(b"\0\0" * 16000 * 3)
    browser = await Browser().open()
    response = await browser.upload(out.getvalue(), "note.wav")
    assert response.status_code == 400 and response.json()["error"]["message"]
    assert await attachment_count() == 0 and stored_files(attachments_dir) == []


async def test_the_owner_can_delete_an_unsent_upload_and_nobody_else_can(attachments_dir):
    browser = await Browser().open()
    stranger = await Browser().open()
    kept = await browser.attach(DEMO_PHOTO.read_bytes())
    removed = await browser.attach(DEMO_PHOTO.read_bytes())
    csrf = {"X-CSRFToken": browser.csrf}

    assert (await browser.client.delete(removed["url"])).status_code == 403  # no CSRF token
    refused = await stranger.client.delete(removed["url"], headers={"X-CSRFToken": stranger.csrf})
    assert refused.status_code == 404
    assert (await browser.client.delete(removed["url"], headers=csrf)).status_code == 204
    assert (await browser.client.get(removed["url"])).status_code == 404
    assert (await browser.client.delete(removed["url"], headers=csrf)).status_code == 404
    assert len(stored_files(attachments_dir)) == 3  # the kept photo: stored, model copy, thumbnail

    shopper = browser.shopper()
    await shopper.connect()
    await shopper.send({"type": "message", "client_msg_id": str(uuid.uuid4()), "text": "", "attachments": [kept["id"]]})
    await shopper.recv_until("reply.end", timeout=15)
    await shopper.disconnect()
    sent = await browser.client.delete(kept["url"], headers=csrf)
    assert sent.status_code == 404 and "already sent" in sent.json()["error"]["message"]
    assert (await browser.client.get(kept["url"])).status_code == 200
