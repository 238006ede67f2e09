"""Test audio made with the real ffmpeg, from tests/fixtures/speech.wav (espeak: "Hello, I am
looking for a blue cotton t-shirt in size medium. Do you have it in stock?", 5 s, 16 kHz mono)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import require

SPEECH = Path(__file__).resolve().parents[2] / "fixtures" / "speech.wav"
SPEECH_MS = 5058  # the fixture's length; the speech in it runs from about 10 ms to 4710 ms

# How each kind of upload is made, like the browser or app that would send it. Encoding to a pipe
# leaves no duration in the header, as MediaRecorder's WebM has none.
RECIPES: dict[str, list[str]] = {
    "webm": ["-c:a", "libopus", "-b:a", "32k", "-f", "webm", "pipe:1"],  # Chrome, Firefox
    "ogg": ["-c:a", "libopus", "-f", "ogg", "pipe:1"],  # Firefox (audio/ogg), Android apps
    "ogg-vorbis": ["-c:a", "libvorbis", "-f", "ogg", "pipe:1"],
    # Safari's MediaRecorder writes fragmented MP4; files from apps have moov at the end or the front.
    "mp4-fragmented": ["-c:a", "aac", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "pipe:1"],
    "mp4": ["-c:a", "aac", "-f", "mp4", "{out}"],
    "mp4-faststart": ["-c:a", "aac", "-movflags", "+faststart", "-f", "mp4", "{out}"],
    "m4a": ["-c:a", "aac", "-f", "ipod", "{out}"],
    "mp3": ["-c:a", "libmp3lame", "-f", "mp3", "pipe:1"],
    "wav": ["-c:a", "pcm_s16le", "-f", "wav", "{out}"],
    "flac": ["-c:a", "flac", "-f", "flac", "pipe:1"],
    "aac": ["-c:a", "aac", "-f", "adts", "pipe:1"],  # a raw AAC stream, as some Android recorders save
}


def need_ffmpeg() -> None:
    require(bool(shutil.which("ffmpeg") and shutil.which("ffprobe")), "ffmpeg/ffprobe not installed (apt: ffmpeg)")


def ffmpeg(*args: str | Path) -> bytes:
    """Run ffmpeg quietly; its stdout."""
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *map(str, args)]
    return subprocess.run(command, capture_output=True, check=True, timeout=120).stdout


def encode(recipe: str, *inputs: str | Path, filters: str = "") -> bytes:
    """`inputs` (ffmpeg input arguments; default the speech fixture) encoded per RECIPES[recipe]."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        tail = [str(out) if arg == "{out}" else arg for arg in RECIPES[recipe]]
        args = [*(inputs or ("-i", SPEECH)), *(["-af", filters] if filters else []), *tail]
        piped = ffmpeg(*args)
        return out.read_bytes() if "{out}" in RECIPES[recipe] else piped


def speech(recipe: str = "webm", *, filters: str = "") -> bytes:
    return encode(recipe, "-i", SPEECH, filters=filters)


def probe(data: bytes) -> dict[str, Any]:
    """ffprobe's view of `data`: {"format": {...}, "streams": [...]}."""
    with tempfile.NamedTemporaryFile() as file:
        file.write(data)
        file.flush()
        out = subprocess.run(
            ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", file.name],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def long_recording(path: Path, *, seconds: int = 20 * 60) -> Path:
    """A long WebM/Opus recording like MediaRecorder's (no duration in the header): a quiet sine at
    8 kHz and 6 kbit/s, so making 20 minutes of it takes about a second and a half."""
    if not path.exists():
        source = f"sine=frequency=440:sample_rate=8000:duration={seconds}"
        opus = ["-c:a", "libopus", "-b:a", "6k", "-application", "voip", "-frame_duration", "60"]
        data = ffmpeg("-f", "lavfi", "-i", source, *opus, "-compression_level", "0", "-f", "webm", "pipe:1")
        path.write_bytes(data)
    return path
