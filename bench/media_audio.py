"""How fast a voice note is processed and transcribed offline, on one CPU core.

    cd /work/main && .venv/bin/python bench/media_audio.py [--runs 5]

Builds a 60-second note the way Chrome records one (tests/fixtures/speech.wav looped, WebM/Opus,
48 kHz, no duration in the header). Then prints:

- the median `audio_process` time (decode, trim, level, encode mp3 + 16 kHz samples), target ≤ 1 s;
- the model load time, once per process;
- the offline transcription real-time factor (transcription time / 60 s; target ≤ 0.3), with
  faster-whisper tiny.en int8 on one thread. A looped sentence is the worst case: every 30 s window
  repeats itself, looks like a decoding loop to whisper, and so is decoded twice (see
  TEMPERATURES in chat/llm/transcribe.py). Ordinary speech is decoded once: about half this time.

The process is pinned to core 0 (and ffmpeg, which it starts, inherits that). Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.update(
    DJANGO_SETTINGS_MODULE="supportbot.settings",
    SUPPORTBOT_ENV_FILE=os.devnull,
    SUPPORTBOT_VAR_DIR=tempfile.mkdtemp(prefix="bench-audio-"),
    # One media worker on one core: the model gets cpu_threads = cores // workers = 1.
    CHAT_MEDIA_WORKERS="1",
    CHAT_TRANSCRIBE_OFFLINE="true",
    LLM_TRANSCRIBE_MODEL="",
)
os.sched_setaffinity(0, {0})

import django  # noqa: E402

django.setup()
logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # a line per transcription otherwise

from chat.llm.transcribe import offline_model_load, transcribe  # noqa: E402
from chat.media.audio import audio_process  # noqa: E402

SPEECH = ROOT / "tests" / "fixtures" / "speech.wav"
SPEECH_SECONDS = 5.058  # the fixture, looped
SECONDS = 60


def browser_note() -> bytes:
    """60 s of the speech fixture, looped, as MediaRecorder's WebM/Opus."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-stream_loop", "-1", "-i", str(SPEECH), "-t", str(SECONDS)]
    command += ["-ar", "48000", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-f", "webm", "pipe:1"]
    return subprocess.run(command, capture_output=True, check=True, timeout=120).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description="Voice note processing and offline transcription speed.")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    data = browser_note()
    print(f"note: {SECONDS} s WebM/Opus, {len(data) / 1024:.0f} KiB; pinned to CPU {sorted(os.sched_getaffinity(0))}")

    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        note = audio_process(data, extension="webm")
        timings.append(time.perf_counter() - started)
    print(
        f"audio_process: median {statistics.median(timings):.3f} s over {args.runs} runs "
        f"(min {min(timings):.3f}, max {max(timings):.3f}; target ≤ 1 s) → {note.duration_ms / 1000:.1f} s "
        f"{note.format}, {len(note.data) / 1024:.0f} KiB, from {note.source_format}"
    )

    started = time.perf_counter()
    offline_model_load()
    print(f"model load: {time.perf_counter() - started:.2f} s (tiny.en int8, once per process)")

    factors = []
    text = ""
    for _ in range(max(1, args.runs // 2)):
        started = time.perf_counter()
        transcript = asyncio.run(transcribe(note))
        factors.append((time.perf_counter() - started) / (note.duration_ms / 1000))
        text = transcript.text if transcript else ""
    print(
        f"offline transcription: real-time factor median {statistics.median(factors):.3f} over {len(factors)} runs "
        f"(target ≤ 0.3); 'blue' heard {text.lower().count('blue')} times, said {math.ceil(SECONDS / SPEECH_SECONDS)}"
    )


if __name__ == "__main__":
    main()
