"""Voice notes: decode whatever the browser recorded, trim, level, and encode one tidy file.

Browsers record WebM/Opus (Chrome, Firefox) or MP4/AAC (Safari); shoppers may also send OGG,
MP3, WAV, M4A or FLAC. The steps:

1. Look at the first bytes: anything that is not one of those containers is refused before any
   decoder sees it.
2. ffprobe, with only those demuxers allowed and only local files: a playlist or concat file
   can't make ffmpeg open other files or the network.
3. ffmpeg decodes the first audio stream to mono PCM, at most CHAT_AUDIO_MAX_SECONDS + 1 s of it,
   so a 20-minute recording is refused after decoding about two minutes. The length comes from
   decoding, not the header: MediaRecorder's WebM has no duration in its header.
4. Trim the silence before and after the speech and set the level (numpy measures, pydub cuts and
   applies the gain).
5. One more ffmpeg run encodes the stored note (CHAT_AUDIO_FORMAT) and the 16 kHz float samples
   that faster-whisper reads.

ffmpeg and ffprobe run as subprocesses of our own with argument lists (never a shell). Each one
has a hard timeout. That is why we call them directly and don't use pydub's `from_file`/`export`:
those wait on ffmpeg with no time limit. The input goes to a temporary file, because an MP4 whose
index (moov) is at the end can't be read from a pipe.

Synchronous and CPU-bound: call it through chat.media.workers.media_run.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.utils.translation import gettext_lazy, gettext_noop, ngettext
from pydub import AudioSegment

from chat.errors import MediaRefused, lazy_format, lazy_number, lazy_text

# Working rate: what ffmpeg decodes to and what we trim and level. The mp3 is stored at this rate;
# the wav and the transcription samples are made at 16 kHz from it.
WORK_RATE = 24_000
WHISPER_RATE = 16_000
MP3_BITRATE = "48k"  # plenty for one voice at 24 kHz mono

# Demuxers ffmpeg may use for an upload (`ffmpeg -demuxers`; "mov" is MP4/M4A, "matroska" WebM).
DEMUXERS = "matroska,ogg,mov,mp3,wav,flac,aac"
# ffprobe's format_name → the container name in `source_format`.
CONTAINERS = {"matroska,webm": "webm", "mov,mp4,m4a,3gp,3g2,mj2": "mp4"}

PROBE_TIMEOUT = 10.0  # seconds; probing reads only the headers
# Decoding 2 minutes of audio takes well under a second. This limit is for a file that makes
# ffmpeg spin: it is killed and the note refused.
FFMPEG_TIMEOUT = 30.0

# Levels in dBFS, from 10 ms windows.
SILENT_BELOW = -55.0  # no window this loud anywhere: nothing was recorded (or the mic was muted)
SOUND_RANGE = 35.0  # a window counts as sound if within this many dB of the loudest one…
SOUND_FLOOR = -70.0  # …and above this
MIN_SOUND_MS = 300  # less sound than this (a click, a breath) is not a voice note
PAD_MS = 200  # silence kept before and after the speech, so the first word isn't clipped
# Level the speech (RMS over the windows that hold sound) to TARGET_RMS, unless that would push
# a peak over PEAK_CEILING. Just a gain, no compressor or limiter: the voice sounds the same,
# only louder or quieter, and nothing clips. -20 dBFS is about where phone voice messages sit;
# -1 dBFS keeps headroom for the small overshoot that lossy encoding adds to peaks.
TARGET_RMS = -20.0
PEAK_CEILING = -1.0
MAX_GAIN = 45.0  # a mic 35 dB too quiet is still helped; past this we would only be raising noise
WINDOW = WORK_RATE // 100  # 10 ms

ACCEPTED = gettext_lazy("WebM, Ogg, MP4/M4A, MP3, WAV or FLAC")


@dataclass(frozen=True)
class ProcessedAudio:
    data: bytes = field(repr=False)  # the normalised note, per CHAT_AUDIO_FORMAT
    content_type: str  # "audio/mpeg" | "audio/wav"
    format: str  # "mp3" | "wav": what OpenAI's input_audio accepts
    duration_ms: int  # after trimming
    samples: np.ndarray = field(repr=False, compare=False)  # float32 mono 16 kHz in -1..1, for faster-whisper
    source_format: str  # container/codec as ffprobe saw it, e.g. "webm/opus", "mp4/aac"


def audio_process(data: bytes, *, extension: str = "") -> ProcessedAudio:
    """Decode, check, trim, level and encode one voice note.

    Args:
        data: the uploaded bytes.
        extension: the sniffed file extension, if known; used only to name the temporary file.

    Returns:
        The note as CHAT_AUDIO_FORMAT plus 16 kHz samples for offline transcription.

    Raises:
        MediaRefused: `empty` (400), `unsupported_type` (415: not audio, no audio stream, or a
            video), `audio_damaged` (400), `audio_silent` (400), `too_large` (413: over
            CHAT_AUDIO_MAX_BYTES), `audio_too_long` (413: over CHAT_AUDIO_MAX_SECONDS).
        RuntimeError: ffmpeg/ffprobe are not installed (our problem, not the shopper's).
    """
    if not data:
        raise MediaRefused(gettext_lazy("That file is empty. Please record your voice note again."), code="empty")
    _bytes_check(len(data))
    container = _container(data)
    if not container:
        raise _not_audio("unknown signature")
    max_seconds = settings.CHAT_AUDIO_MAX_SECONDS
    fmt = settings.CHAT_AUDIO_FORMAT
    with tempfile.TemporaryDirectory(prefix="voice-") as folder:
        source = Path(folder) / f"upload.{_suffix(extension, container)}"
        source.write_bytes(data)
        source_format = _probe(source, container=container, max_seconds=max_seconds)
        pcm = _decode(source, max_seconds=max_seconds)
        segment = _trim_and_level(pcm)
        stored, samples = _encode(segment, Path(folder), fmt=fmt)
    return ProcessedAudio(
        data=stored,
        content_type="audio/mpeg" if fmt == "mp3" else "audio/wav",
        format=fmt,
        duration_ms=len(segment),
        samples=samples,
        source_format=source_format,
    )


# --------------------------------------------------------------------------- refusals


def _not_audio(detail: str) -> MediaRefused:
    return MediaRefused(
        lazy_format(
            gettext_noop(
                "That file isn't a voice note we can play. Please record one, or send a %(types)s audio file."
            ),
            types=ACCEPTED,
        ),
        code="unsupported_type",
        status=415,
        detail=detail,
    )


def _damaged(detail: str) -> MediaRefused:
    return MediaRefused(
        gettext_lazy("That voice note seems to be damaged and can't be played. Please record it again."),
        code="audio_damaged",
        detail=detail,
    )


def _silent(detail: str) -> MediaRefused:
    return MediaRefused(
        gettext_lazy("We couldn't hear anything in that voice note. Please check your microphone and record it again."),
        code="audio_silent",
        detail=detail,
    )


def _duration(total_seconds: int) -> str:
    """The length in words ("90 seconds", "2 minutes"), in the active language."""
    minutes, seconds = divmod(total_seconds, 60)
    if seconds or not minutes:
        return ngettext("%(count)d second", "%(count)d seconds", total_seconds) % {"count": total_seconds}
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


def _too_long(max_seconds: int, detail: str) -> MediaRefused:
    return MediaRefused(
        lazy_format(
            gettext_noop("Voice notes can be at most %(limit)s long. Please record a shorter one."),
            limit=lazy_text(lambda: _duration(max_seconds)),
        ),
        code="audio_too_long",
        status=413,
        detail=detail,
    )


def _bytes_check(size: int) -> None:
    limit = settings.CHAT_AUDIO_MAX_BYTES
    if size > limit:
        mb = 1024 * 1024
        most = f"{limit / mb:.0f} MB" if limit >= mb else f"{limit // 1024} KB"
        raise MediaRefused(
            lazy_format(
                gettext_noop("Voice notes can be at most %(limit)s; this file is %(size)s MB."),
                limit=most,
                size=lazy_number(size / mb, 1),
            ),
            code="too_large",
            status=413,
        )


# --------------------------------------------------------------------------- container


def _container(data: bytes) -> str:
    """The audio container the first bytes announce, or "" for anything else."""
    head = data[:16]
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"OggS"):
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ID3"):
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync: layer bits 00 mean an ADTS AAC stream, anything else MP3.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return ""


def _suffix(extension: str, container: str) -> str:
    ext = extension.lower().lstrip(".")
    return ext if re.fullmatch(r"[a-z0-9]{1,5}", ext) else container


# --------------------------------------------------------------------------- ffmpeg


def _run(args: list[str], *, timeout: float, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(  # noqa: S603 - a fixed argument list; the only file names are our temp names
            args,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise RuntimeError(
            f"{args[0]} is not installed: voice notes need ffmpeg and ffprobe (Debian: apt-get install ffmpeg)"
        ) from None
    except subprocess.TimeoutExpired:  # run() has killed it
        raise _damaged(f"{args[0]} took longer than {timeout:.0f}s") from None


def _stderr(result: subprocess.CompletedProcess[bytes]) -> str:
    """The end of what ffmpeg said, on one line (for the refusal's `detail`: logs only)."""
    return " | ".join(result.stderr.decode(errors="replace").split("\n")).strip()[-300:]


# Input options for every ffmpeg/ffprobe run on an upload: known demuxers, local files only.
_SAFE_INPUT = ["-protocol_whitelist", "file", "-format_whitelist", DEMUXERS]


def _probe(source: Path, *, container: str, max_seconds: int) -> str:
    """Check there is an audio stream (and no video); return "container/codec". A header that
    already says the note is too long is refused here, before decoding anything."""
    args = ["ffprobe", "-v", "error", *_SAFE_INPUT, "-show_format", "-show_streams", "-of", "json", str(source)]
    result = _run(args, timeout=PROBE_TIMEOUT)
    if result.returncode != 0:
        # The first bytes promised an audio container and ffprobe can't read it.
        raise _damaged(f"ffprobe: {_stderr(result)}")
    try:
        info: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        raise _damaged("ffprobe printed no JSON") from None
    streams = info.get("streams") or []
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    # Cover art in MP3/M4A is a picture stream, not a video.
    video = [
        s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    if video:
        raise MediaRefused(
            gettext_lazy("Videos can't be sent here. Please send a photo, or record a voice note."),
            code="unsupported_type",
            status=415,
            detail=f"{container} with a video stream",
        )
    if not audio:
        if streams:
            raise _not_audio(f"{container} without an audio stream")
        raise _damaged(f"{container} with no streams")
    fmt = info.get("format") or {}
    name = CONTAINERS.get(str(fmt.get("format_name")), str(fmt.get("format_name") or container))
    try:
        header_seconds = float(fmt.get("duration") or 0)
    except ValueError:  # "N/A": MediaRecorder WebM; decoding will tell
        header_seconds = 0.0
    if header_seconds > max_seconds + 1:
        raise _too_long(max_seconds, f"header says {header_seconds:.1f}s")
    return f"{name}/{audio[0].get('codec_name') or 'unknown'}"


def _decode(source: Path, *, max_seconds: int) -> np.ndarray:
    """The first audio stream as mono int32 PCM at WORK_RATE, at most max_seconds + 1 s of it."""
    args = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", *_SAFE_INPUT, "-i", str(source)]
    args += ["-map", "0:a:0", "-vn", "-sn", "-dn", "-t", str(max_seconds + 1)]
    args += ["-ac", "1", "-ar", str(WORK_RATE), "-c:a", "pcm_s32le", "-f", "s32le", "pipe:1"]
    result = _run(args, timeout=FFMPEG_TIMEOUT)
    if result.returncode != 0:
        raise _damaged(f"ffmpeg decode: {_stderr(result)}")
    pcm = np.frombuffer(result.stdout, dtype="<i4")
    if pcm.size == 0:
        raise _silent("no audio decoded")
    if pcm.size > (max_seconds + 0.5) * WORK_RATE:
        raise _too_long(max_seconds, f"decoded more than {max_seconds}s")
    return pcm


def _encode(segment: AudioSegment, folder: Path, *, fmt: str) -> tuple[bytes, np.ndarray]:
    """The stored note ("mp3" or "wav") and the 16 kHz float samples, in one ffmpeg run."""
    stored = folder / f"note.{fmt}"
    samples = folder / "samples.f32"
    args = ["ffmpeg", "-hide_banner", "-v", "error", "-f", "s32le", "-ar", str(segment.frame_rate)]
    args += ["-ac", "1", "-i", "pipe:0", "-map_metadata", "-1"]
    if fmt == "mp3":
        args += ["-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-ar", str(WORK_RATE), "-f", "mp3", str(stored)]
    else:
        args += ["-c:a", "pcm_s16le", "-ar", str(WHISPER_RATE), "-f", "wav", "-bitexact", str(stored)]
    args += ["-c:a", "pcm_f32le", "-ar", str(WHISPER_RATE), "-f", "f32le", str(samples)]
    result = _run(args, timeout=FFMPEG_TIMEOUT, stdin=segment.raw_data)
    if result.returncode != 0:
        # Our own clean PCM failed to encode: a server problem, not the shopper's file.
        raise RuntimeError(f"ffmpeg could not encode a voice note: {_stderr(result)}")
    return stored.read_bytes(), np.fromfile(samples, dtype="<f4")


# --------------------------------------------------------------------------- level and trim


def _trim_and_level(pcm: np.ndarray) -> AudioSegment:
    """Cut the silence around the speech (keeping PAD_MS) and level it; refuse a silent note."""
    x = pcm.astype(np.float32) / 2**31
    windows = x[: x.size // WINDOW * WINDOW].reshape(-1, WINDOW)
    if not windows.size:
        raise _silent(f"only {x.size} samples")
    power = np.square(windows).mean(axis=1)
    level = 10 * np.log10(np.maximum(power, 1e-12))
    loudest = float(level.max())
    if loudest < SILENT_BELOW:
        raise _silent(f"loudest 10 ms at {loudest:.1f} dBFS")
    sound = level > max(loudest - SOUND_RANGE, SOUND_FLOOR)
    sound_ms = int(sound.sum()) * 10
    if sound_ms < MIN_SOUND_MS:
        raise _silent(f"only {sound_ms} ms of sound")
    first = int(np.argmax(sound))
    last = sound.size - int(np.argmax(sound[::-1]))  # one past the last window with sound
    start_ms = max(0, first * 10 - PAD_MS)
    end_ms = min(x.size * 1000 // WORK_RATE, last * 10 + PAD_MS)
    speech_rms = 10 * np.log10(float(power[sound].mean()))
    peak = float(np.abs(x[start_ms * WORK_RATE // 1000 : end_ms * WORK_RATE // 1000]).max())
    peak_db = 20 * np.log10(max(peak, 1e-9))
    gain = min(TARGET_RMS - speech_rms, PEAK_CEILING - peak_db, MAX_GAIN)
    segment = AudioSegment(data=pcm.tobytes(), sample_width=4, frame_rate=WORK_RATE, channels=1)
    trimmed: AudioSegment = segment[start_ms:end_ms]
    return trimmed.apply_gain(gain)
