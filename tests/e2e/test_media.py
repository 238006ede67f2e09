"""Photos and voice notes on the chat page, in a real browser: the photo picker, a voice note from
Chromium's fake microphone (it plays a speech WAV), and an upload the server refuses."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Request, Response, expect

from tests.conftest import require
from tests.e2e.conftest import ROOT, chromium_launch, page_open

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

pytestmark = pytest.mark.browser

ASSISTANT = ".msg[data-role=assistant]"
SHOPPER = ".msg[data-role=user]"
CHIPS = "#attachments .chip"
PHOTO = ROOT / "catalog" / "demo" / "images" / "cascade-rain-jacket-forest.jpg"
SPEECH = ROOT / "tests" / "fixtures" / "speech.wav"  # "…a blue cotton t-shirt in size medium…"
FFMPEG = "/usr/bin/ffmpeg"
# Quieter than this on average is silence: the fake microphone got no (or the wrong) file.
SILENCE_DB = -45.0


def open_chat(page: Page) -> None:
    page.goto("/")
    page.locator("#status[data-state=connected]").wait_for(timeout=10_000)


def eventually(check: Callable[[], Any], *, timeout: float, what: str) -> None:
    """Poll `check` until it is truthy. (wait_for_function evaluates a string: the CSP forbids it.)"""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def image_loaded(img: Any) -> bool:
    return bool(img.evaluate("img => img.complete && img.naturalWidth > 0"))


def fetch(page: Page, url: str) -> dict[str, Any]:
    """GET `url` from the page (its cookies, its session): status, content type and body size."""
    result: dict[str, Any] = page.evaluate(
        """async (url) => {
            const response = await fetch(url, { credentials: "same-origin" });
            const body = await response.arrayBuffer();
            return { status: response.status, type: response.headers.get("content-type"), size: body.byteLength };
        }""",
        url,
    )
    return result


def timer_seconds(page: Page) -> int:
    minutes, seconds = page.locator("#recorder-time").inner_text().split(":")
    return int(minutes) * 60 + int(seconds)


def mean_volume(path: Path) -> float:
    result = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostats", "-i", str(path), "-af", "volumedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"mean_volume: (-?[\d.]+) dB", result.stderr)
    return float(found.group(1)) if found else float("-inf")


def expect_reply(page: Page, index: int = 0) -> None:
    reply = page.locator(ASSISTANT).nth(index)
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    assert reply.locator(".msg-body").inner_text().strip()


# --- A photo ----------------------------------------------------------------------------------


def test_a_photo_is_previewed_uploaded_sent_and_shown_in_the_transcript(page, fake_openai_server):
    fake_openai_server.reset()
    open_chat(page)
    page.locator("#photo-input").set_input_files(PHOTO)

    chip = page.locator(f"{CHIPS}[data-kind=image]")
    expect(chip).to_have_count(1)
    expect(chip).to_have_attribute("data-state", "ready", timeout=15_000)
    # The local preview gave way to the server's thumbnail.
    expect(chip.locator("img")).to_have_attribute(
        "src", re.compile(r"/api/conversations/[^/]+/attachments/.+/thumb\?s=[^&]+$")
    )
    eventually(lambda: image_loaded(chip.locator("img")), timeout=5, what="the chip's thumbnail")
    # A photo alone is a message: Send works with an empty text box.
    expect(page.locator("#input")).to_have_value("")
    expect(page.locator("#send")).to_be_enabled()
    page.locator("#send").click()

    expect(page.locator(CHIPS)).to_have_count(0)
    shopper = page.locator(SHOPPER).last
    expect(shopper).to_have_attribute("data-status", "complete")
    link = shopper.locator(".msg-attachments a.att-photo")
    expect(link).to_have_count(1)
    thumb = link.locator("img")
    expect(thumb).to_have_attribute("alt", f"Photo: {PHOTO.name}")
    eventually(lambda: image_loaded(thumb), timeout=5, what="the thumbnail in the shopper's bubble")
    href = link.get_attribute("href") or ""
    assert re.search(r"/api/conversations/[^/]+/attachments/[^/]+$", href), href
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener"

    # The thumbnail opens the full-size photo over the chat; Escape closes it.
    link.click()
    full = page.locator("dialog.lightbox[open] img")
    expect(full).to_have_attribute("src", href)
    eventually(lambda: image_loaded(full), timeout=5, what="the full-size photo")
    thumb_width = thumb.evaluate("img => img.naturalWidth")
    assert full.evaluate("img => img.naturalWidth") > thumb_width
    page.keyboard.press("Escape")
    expect(page.locator("dialog.lightbox[open]")).to_have_count(0)

    expect_reply(page)

    page.reload()  # the photo is part of the stored message
    page.locator("#status[data-state=connected]").wait_for()
    stored = page.locator(f"{SHOPPER} .msg-attachments a.att-photo img")
    expect(stored).to_have_count(1)
    eventually(lambda: image_loaded(stored), timeout=5, what="the thumbnail after a reload")
    assert page.errors == []


# --- A voice note -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speech fixture as Chromium's fake capture wants it: 48 kHz mono 16-bit (24-bit records
    silence without a word), with a little silence before and after the words."""
    require(Path(FFMPEG).exists(), f"{FFMPEG} is missing (scripts/system-deps.sh installs it when run as root)")
    wav = tmp_path_factory.mktemp("mic") / "speech-48k.wav"
    pad = "adelay=300:all=1,apad=pad_dur=2"
    output = ["-ar", "48000", "-ac", "1", "-c:a", "pcm_s16le", str(wav)]
    subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(SPEECH), "-af", pad, *output], check=True)
    assert mean_volume(wav) > SILENCE_DB, "the speech fixture itself is silent"
    return wav.resolve()


@pytest.fixture(scope="module")
def mic_browser(playwright_driver: Playwright, speech_wav: Path) -> Iterator[Browser]:
    """Chromium whose microphone plays `speech_wav` once (then silence), granted without asking."""
    browser = chromium_launch(
        playwright_driver,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={speech_wav}%noloop",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def mic_page(mic_browser: Browser, daphne_server: str) -> Iterator[Page]:
    with page_open(mic_browser, daphne_server) as page:
        yield page


def is_upload(message: Request | Response) -> bool:
    request = message if isinstance(message, Request) else message.request
    return request.method == "POST" and request.url.endswith("/attachments")


def uploads(page: Page) -> list[str]:
    """The URLs of the page's upload requests, from now on."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if is_upload(r) else None)
    return seen


def test_a_voice_note_is_recorded_played_back_transcribed_and_sent(mic_page, fake_openai_server, tmp_path):
    page = mic_page
    fake_openai_server.reset()
    open_chat(page)
    page.locator("#mic").click()

    expect(page.locator("#recorder")).to_be_visible()
    expect(page.locator("#mic")).to_be_hidden()
    expect(page.locator("#send")).to_be_disabled()  # nothing goes out half-recorded
    assert page.evaluate("() => supportbotChat.micOpen")
    started = timer_seconds(page)
    # The WAV holds about 5.4 s of speech after the padding: record all of it.
    eventually(lambda: timer_seconds(page) >= 6, timeout=15, what="the timer to reach 0:06")
    assert timer_seconds(page) > started
    chip = page.locator(f"{CHIPS}[data-kind=audio]")
    # The upload transcribes the note: it takes a few seconds, during which the chip says so.
    with page.expect_response(is_upload, timeout=60_000) as upload:
        page.locator("#recorder-done").click()

        expect(page.locator("#recorder")).to_be_hidden()
        expect(page.locator("#mic")).to_be_visible()
        assert not page.evaluate("() => supportbotChat.micOpen"), "the microphone stays on after Done"
        expect(chip).to_have_count(1)
        player = chip.locator("audio")
        expect(player).to_have_attribute("src", re.compile(r"^blob:"))  # played back from the recording itself
        assert player.evaluate("a => a.controls")
        expect(chip.locator(".att-transcript")).to_have_text("Transcribing…")
        expect(page.locator("#send")).to_be_disabled()  # until the upload is in

    response = upload.value
    assert response.status == 201, (response.status, response.text())
    # Before reading the words, make sure there was sound at all (a bad fake-mic file records
    # silence). The page's CSP keeps even its own blob: URLs from fetch: read what was stored.
    stored = page.request.get(response.json()["url"])  # the browser context's cookies: its session
    assert stored.ok, stored.status
    recording = tmp_path / "voice-note"
    recording.write_bytes(stored.body())
    assert mean_volume(recording) > SILENCE_DB, "the fake microphone recorded silence"

    expect(chip).to_have_attribute("data-state", "ready")
    transcript = chip.locator(".att-transcript").inner_text()
    assert transcript.startswith("Transcript:"), transcript
    assert "blue" in transcript.lower() and "shirt" in transcript.lower(), transcript

    page.locator("#input").fill("Here is my question as a voice note.")
    expect(page.locator("#send")).to_be_enabled()
    page.locator("#send").click()

    expect(page.locator(CHIPS)).to_have_count(0)
    shopper = page.locator(SHOPPER).last
    expect(shopper).to_have_attribute("data-status", "complete")
    assert shopper.locator(".msg-body").inner_text() == "Here is my question as a voice note."
    audio = shopper.locator(".msg-attachments .att-voice audio")
    expect(audio).to_have_count(1)
    assert audio.evaluate("a => a.controls && a.preload === 'none'")
    src = audio.get_attribute("src") or ""
    assert re.search(r"/api/conversations/[^/]+/attachments/[^/]+$", src), src
    served = fetch(page, src)
    assert served["status"] == 200 and served["type"].startswith("audio/") and served["size"] > 1000, served
    caption = shopper.locator(".att-voice .att-transcript").inner_text()
    assert caption.startswith("Transcript:") and "blue" in caption.lower(), caption

    expect_reply(page)
    assert page.errors == []


def test_cancel_discards_the_recording_and_turns_the_microphone_off(mic_page):
    page = mic_page
    open_chat(page)
    posted = uploads(page)
    page.locator("#mic").click()
    expect(page.locator("#recorder")).to_be_visible()
    eventually(lambda: timer_seconds(page) >= 1, timeout=10, what="the timer to reach 0:01")
    assert page.evaluate("() => supportbotChat.micOpen")

    page.locator("#recorder-cancel").click()

    expect(page.locator("#recorder")).to_be_hidden()
    expect(page.locator("#mic")).to_be_focused()
    assert not page.evaluate("() => supportbotChat.micOpen"), "the microphone stays on after Cancel"
    page.wait_for_timeout(500)  # a late "stop" event must not attach anything either
    expect(page.locator(CHIPS)).to_have_count(0)
    assert posted == []
    expect(page.locator("#attachments")).to_be_hidden()
    assert page.errors == []


# --- A refused upload -------------------------------------------------------------------------


def test_a_refused_upload_shows_the_servers_words_and_the_chat_goes_on(page, fake_openai_server):
    fake_openai_server.reset()
    open_chat(page)
    with page.expect_response(is_upload) as answer:
        page.locator("#photo-input").set_input_files(
            files=[{"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": b"Not a photo at all, just text.\n"}]
        )
    response = answer.value
    assert 400 <= response.status < 500, response.status
    message = response.json()["error"]["message"]
    assert message

    expect(page.locator("#notice")).to_have_text(message)
    expect(page.locator(CHIPS)).to_have_count(0)
    expect(page.locator("#send")).to_be_enabled()

    page.locator("#input").fill("Do you sell tents?")
    page.locator("#input").press("Enter")
    expect(page.locator(SHOPPER).last).to_have_attribute("data-status", "complete")
    expect(page.locator("#notice")).to_have_text("")
    expect_reply(page)
    # The browser logs the refused request itself; nothing else may go wrong.
    assert [e for e in page.errors if "Failed to load resource" not in e] == []
