"""Transcribing voice notes: the endpoint's /audio/transcriptions (the fake OpenAI server over
loopback) and the offline faster-whisper tiny.en model, for real."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from chat.llm.transcribe import Transcript, transcribe, transcriber_describe
from chat.media.audio import ProcessedAudio, audio_process
from tests.chat.media.audiofiles import need_ffmpeg, speech
from tests.fakes import Script
from tests.fakes.openai_server import FakeOpenAI

MODEL = "gpt-4o-mini-transcribe"
KEY = "sk-test-key-for-the-fake-server"  # what the fake_openai fixture sets as LLM_API_KEY


@pytest.fixture(autouse=True)
def transcription_settings(settings) -> None:
    """No endpoint and offline on, whatever the environment says; tests turn on what they need."""
    need_ffmpeg()
    settings.LLM_TRANSCRIBE_MODEL = ""
    settings.LLM_TRANSCRIBE_BASE_URL = ""
    settings.LLM_TRANSCRIBE_API_KEY = ""
    settings.LLM_TRANSCRIBE_TIMEOUT = 5.0
    settings.CHAT_TRANSCRIBE_OFFLINE = True


@pytest.fixture(scope="module")
def note() -> ProcessedAudio:
    need_ffmpeg()
    return audio_process(speech("webm"))


@pytest.fixture
def endpoint(fake_openai: FakeOpenAI, settings) -> FakeOpenAI:
    settings.LLM_TRANSCRIBE_MODEL = MODEL
    return fake_openai


def transcription_requests(fake: FakeOpenAI) -> list:
    return [r for r in fake.requests if r.path == "/v1/audio/transcriptions"]


def heard_the_question(transcript: Transcript | None) -> bool:
    text = transcript.text.lower() if transcript else ""
    return "blue" in text and "shirt" in text


async def test_offline_transcription_hears_the_shoppers_words(note: ProcessedAudio) -> None:
    transcript = await transcribe(note)
    assert transcript is not None and transcript.source == "offline:tiny.en"
    assert heard_the_question(transcript), transcript


async def test_a_quiet_note_is_transcribed_once_levelled() -> None:
    transcript = await transcribe(audio_process(speech("mp4-fragmented", filters="volume=-35dB")))
    assert heard_the_question(transcript), transcript


async def test_the_endpoint_gets_the_note_as_multipart_with_model_and_key(endpoint, note) -> None:
    endpoint.enqueue_transcription(Script.transcription("  I'd like the blue shirt, please.  "))
    transcript = await transcribe(note)
    assert transcript == Transcript(text="I'd like the blue shirt, please.", source=f"endpoint:{MODEL}")
    (request,) = transcription_requests(endpoint)
    assert request.method == "POST" and request.headers["authorization"] == f"Bearer {KEY}"
    assert request.form == {"model": MODEL, "response_format": "json"}
    upload = request.files["file"]
    assert (upload.filename, upload.content_type, upload.data) == ("voice-note.mp3", "audio/mpeg", note.data)
    assert not [r for r in endpoint.requests if r.path.endswith("/chat/completions")]


async def test_a_wav_note_is_sent_as_wav(endpoint, settings) -> None:
    settings.CHAT_AUDIO_FORMAT = "wav"
    wav_note = audio_process(speech("ogg"))
    await transcribe(wav_note)
    upload = transcription_requests(endpoint)[0].files["file"]
    assert (upload.filename, upload.content_type, upload.data[:4]) == ("voice-note.wav", "audio/wav", b"RIFF")


async def test_a_500_is_retried_once_then_offline_takes_over(endpoint, note) -> None:
    endpoint.enqueue_transcription(Script.http_error(500), Script.http_error(503))
    transcript = await transcribe(note)
    assert len(transcription_requests(endpoint)) == 2
    assert transcript is not None and transcript.source == "offline:tiny.en" and heard_the_question(transcript)


async def test_a_429_is_retried_after_the_delay_the_server_asks(endpoint, note) -> None:
    endpoint.enqueue_transcription(Script.http_error(429, retry_after=0.3), Script.transcription("blue shirt"))
    started = time.monotonic()
    transcript = await transcribe(note)
    assert transcript == Transcript(text="blue shirt", source=f"endpoint:{MODEL}")
    first, second = transcription_requests(endpoint)
    assert second.received_at - first.received_at >= 0.3 and time.monotonic() - started < 3


async def test_a_long_retry_after_is_not_waited_for(endpoint, note) -> None:
    endpoint.enqueue_transcription(Script.http_error(429, retry_after=60))
    started = time.monotonic()
    transcript = await transcribe(note)
    assert time.monotonic() - started < 5 and len(transcription_requests(endpoint)) == 1
    assert transcript is not None and transcript.source == "offline:tiny.en"


async def test_a_refusal_is_not_retried(endpoint, note) -> None:
    endpoint.enqueue_transcription(Script.http_error(400, "Unsupported file format"))
    transcript = await transcribe(note)
    assert len(transcription_requests(endpoint)) == 1
    assert transcript is not None and transcript.source == "offline:tiny.en"


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Script.garbage(), id="not-json"),
        pytest.param(Script.completion("a chat completion"), id="no-text-field"),
        pytest.param(Script.hang(before_headers=True), id="no-answer-in-time"),
    ],
)
async def test_a_useless_answer_falls_back_to_offline(endpoint, note, settings, answer: Script) -> None:
    settings.LLM_TRANSCRIBE_TIMEOUT = 0.5
    endpoint.enqueue_transcription(answer)
    transcript = await transcribe(note)
    assert transcript is not None and transcript.source == "offline:tiny.en"


async def test_an_unreachable_endpoint_falls_back_to_offline_without_logging_the_key(note, settings, caplog) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.LLM_API_KEY = "sk-secret-never-logged"
    settings.LLM_TRANSCRIBE_MODEL = MODEL
    with caplog.at_level(logging.INFO, logger="chat.llm.transcribe"):
        transcript = await transcribe(note)
    assert transcript is not None and transcript.source == "offline:tiny.en"
    assert "falling back" in caplog.text and "sk-secret" not in caplog.text


async def test_another_server_never_gets_the_chat_key(fake_openai, note, settings) -> None:
    settings.LLM_BASE_URL = "https://chat.example/v1"
    settings.LLM_TRANSCRIBE_BASE_URL = fake_openai.base_url
    settings.LLM_TRANSCRIBE_MODEL = "whisper-1"
    transcript = await transcribe(note)
    assert transcript is not None and transcript.source == "endpoint:whisper-1"
    assert "authorization" not in transcription_requests(fake_openai)[0].headers

    settings.LLM_TRANSCRIBE_API_KEY = "sk-transcribe-only"
    await transcribe(note)
    assert transcription_requests(fake_openai)[1].headers["authorization"] == "Bearer sk-transcribe-only"


async def test_offline_off_and_no_endpoint_means_no_transcript(note, settings) -> None:
    settings.CHAT_TRANSCRIBE_OFFLINE = False
    assert await transcribe(note) is None


async def test_offline_off_and_the_endpoint_failing_means_no_transcript(endpoint, note, settings) -> None:
    settings.CHAT_TRANSCRIBE_OFFLINE = False
    endpoint.enqueue_transcription(Script.http_error(401))
    assert await transcribe(note) is None


def test_the_description_names_what_will_transcribe(settings) -> None:
    assert transcriber_describe() == "offline:tiny.en (faster-whisper)"
    settings.LLM_BASE_URL = "https://api.openai.com/v1"
    settings.LLM_TRANSCRIBE_MODEL = MODEL
    assert transcriber_describe() == (
        f"endpoint:{MODEL} at https://api.openai.com/v1/audio/transcriptions, "
        "then offline:tiny.en (faster-whisper) if it fails"
    )
    settings.CHAT_TRANSCRIBE_OFFLINE = False
    assert transcriber_describe() == f"endpoint:{MODEL} at https://api.openai.com/v1/audio/transcriptions"
    settings.LLM_TRANSCRIBE_MODEL = ""
    assert transcriber_describe() == "none: voice notes are not transcribed"
