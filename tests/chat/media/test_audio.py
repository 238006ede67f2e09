"""Voice notes through the real ffmpeg: every format a browser or phone sends, and every refusal."""

from __future__ import annotations

import io
import random
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from chat.errors import MediaRefused
from chat.media.audio import PEAK_CEILING, ProcessedAudio, audio_process
from tests.chat.media.audiofiles import SPEECH, encode, ffmpeg, long_recording, need_ffmpeg, probe, speech

CEILING = 10 ** (PEAK_CEILING / 20) * 1.05  # lossy encoding may overshoot the ceiling a little


@pytest.fixture(autouse=True)
def _ffmpeg() -> None:
    need_ffmpeg()


@pytest.fixture(scope="session")
def twenty_minutes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return long_recording(tmp_path_factory.mktemp("audio") / "twenty-minutes.webm")


def refused(data: bytes, **kwargs: str) -> MediaRefused:
    with pytest.raises(MediaRefused) as caught:
        audio_process(data, **kwargs)
    return caught.value


def speech_level(samples: np.ndarray) -> float:
    """RMS in dBFS over the 10 ms windows that hold speech (within 35 dB of the loudest)."""
    windows = samples[: samples.size // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10(np.maximum(np.square(windows).mean(axis=1), 1e-12))
    loud = level > level.max() - 35
    return float(10 * np.log10(np.square(windows[loud]).mean()))


def wav(samples: np.ndarray, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as note:
        note.setnchannels(1)
        note.setsampwidth(2)
        note.setframerate(rate)
        note.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def assert_speech_note(note: ProcessedAudio) -> None:
    assert note.format == "mp3" and note.content_type == "audio/mpeg"
    (stream,) = probe(note.data)["streams"]
    assert stream["codec_name"] == "mp3" and stream["channels"] == 1 and stream["sample_rate"] == "24000"
    assert 4600 <= note.duration_ms <= 5100
    assert note.samples.dtype == np.float32 and note.samples.ndim == 1
    assert abs(note.samples.size / 16 - note.duration_ms) < 50  # 16 kHz, as long as the note
    assert np.abs(note.samples).max() <= CEILING


@pytest.mark.parametrize(
    ("recipe", "source_format"),
    [
        ("webm", "webm/opus"),
        ("ogg", "ogg/opus"),
        ("ogg-vorbis", "ogg/vorbis"),
        ("mp4-fragmented", "mp4/aac"),
        ("mp4", "mp4/aac"),
        ("mp4-faststart", "mp4/aac"),
        ("m4a", "mp4/aac"),
        ("mp3", "mp3/mp3"),
        ("wav", "wav/pcm_s16le"),
        ("flac", "flac/flac"),
        ("aac", "aac/aac"),
    ],
)
def test_every_browser_and_phone_format_becomes_a_mono_mp3(recipe: str, source_format: str) -> None:
    note = audio_process(speech(recipe))
    assert note.source_format == source_format
    assert_speech_note(note)


def test_stereo_is_mixed_down_to_mono() -> None:
    note = audio_process(encode("webm", "-i", SPEECH, "-ac", "2"))
    assert_speech_note(note)


def test_silence_before_and_after_the_speech_is_trimmed() -> None:
    padded = speech("webm", filters="adelay=2000,apad=pad_dur=3")
    assert len(probe(padded)["streams"]) == 1
    note = audio_process(padded)
    assert 4600 <= note.duration_ms <= 5100  # 10 s in, the 4.7 s of speech plus a little padding out
    # About PAD_MS (200 ms) of quiet kept at each end, so the first and last words aren't clipped.
    loud = np.flatnonzero(np.abs(note.samples) > 0.01)
    assert 100 < loud[0] / 16 < 300 and 100 < (note.samples.size - loud[-1]) / 16 < 300


def test_a_quiet_recording_is_raised_to_the_same_level_as_a_normal_one() -> None:
    normal = audio_process(speech("wav"))
    quiet_upload = speech("wav", filters="volume=-35dB")
    with wave.open(io.BytesIO(quiet_upload)) as source:
        before = np.frombuffer(source.readframes(source.getnframes()), "<i2").astype(np.float32) / 32768
    quiet = audio_process(quiet_upload)
    assert speech_level(before) < -50
    assert abs(speech_level(quiet.samples) - speech_level(normal.samples)) < 1.5
    assert -22 < speech_level(quiet.samples) < -18  # about TARGET_RMS, -20 dBFS
    assert np.abs(quiet.samples).max() <= CEILING


def test_a_loud_clipping_recording_is_turned_down_below_the_peak_ceiling() -> None:
    note = audio_process(speech("wav", filters="volume=12dB"))
    assert np.abs(note.samples).max() <= CEILING
    assert speech_level(note.samples) < -15


def test_wav_output_is_16khz_mono_pcm(settings) -> None:
    settings.CHAT_AUDIO_FORMAT = "wav"
    note = audio_process(speech("webm"))
    assert note.format == "wav" and note.content_type == "audio/wav"
    with wave.open(io.BytesIO(note.data)) as stored:
        assert (stored.getnchannels(), stored.getsampwidth(), stored.getframerate()) == (1, 2, 16000)
        assert abs(stored.getnframes() / 16 - note.duration_ms) < 20
    assert abs(note.samples.size / 16 - note.duration_ms) < 20


def test_a_twenty_minute_recording_is_refused_fast(twenty_minutes: Path) -> None:
    data = twenty_minutes.read_bytes()
    assert probe(data)["format"].get("duration") is None  # like MediaRecorder: decoding must tell
    started = time.monotonic()
    error = refused(data)
    assert time.monotonic() - started < 3
    assert (error.code, error.status) == ("audio_too_long", 413) and "decoded more than" in error.detail
    assert error.message.startswith("Voice notes can be at most 2 minutes long")


def test_a_recording_whose_header_gives_its_length_is_refused_before_decoding(settings) -> None:
    settings.CHAT_AUDIO_MAX_SECONDS = 3
    error = refused(speech("wav"))  # 5 s, and a WAV header says so
    assert (error.code, error.status) == ("audio_too_long", 413) and "header says" in error.detail


def test_the_length_limit_follows_the_setting(settings) -> None:
    settings.CHAT_AUDIO_MAX_SECONDS = 3
    error = refused(speech("webm"))  # no length in the header: decoding tells
    assert (error.code, error.status) == ("audio_too_long", 413)
    assert error.message.startswith("Voice notes can be at most 3 seconds long")


@pytest.mark.parametrize(
    "silence",
    [
        pytest.param(lambda: speech("webm", filters="volume=0"), id="digital-silence-webm"),
        pytest.param(lambda: wav(np.zeros(48000)), id="zeros-wav"),
        pytest.param(lambda: wav(np.random.default_rng(1).normal(0, 0.0003, 48000)), id="faint-hiss"),
        pytest.param(lambda: wav(np.r_[np.zeros(24000), 0.8 * np.ones(80), np.zeros(24000)]), id="one-click"),
    ],
)
def test_a_silent_recording_is_refused(silence) -> None:
    error = refused(silence())
    assert (error.code, error.status) == ("audio_silent", 400)
    assert "couldn't hear anything" in error.message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(bytes(random.Random(7).randrange(1, 255) for _ in range(20_000)), id="random-bytes"),
        pytest.param(b"Hello, this is a text file and not a voice note.\n" * 50, id="text"),
        pytest.param(b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n", id="playlist"),
        pytest.param(b"%PDF-1.7\n" + b"\0" * 2000, id="pdf"),
    ],
)
def test_a_file_that_is_not_audio_is_refused_as_unsupported(data: bytes) -> None:
    error = refused(data)
    assert (error.code, error.status) == ("unsupported_type", 415)
    assert "isn't a voice note" in error.message and "WebM" in error.message


def test_a_video_is_refused_as_unsupported() -> None:
    video = encode("webm", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5", "-i", SPEECH, "-t", "2", "-c:v", "libvpx")
    error = refused(video)
    assert (error.code, error.status) == ("unsupported_type", 415) and "Videos" in error.message


def test_cover_art_in_an_mp3_is_not_a_video(tmp_path: Path) -> None:
    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "color=red:size=32x32", "-frames:v", "1", cover)
    out = tmp_path / "with-cover.mp3"  # the picture goes into the ID3 tag: a file, not a pipe
    ffmpeg("-i", SPEECH, "-i", cover, "-map", "0:a", "-map", "1:v", "-c:v", "png", "-id3v2_version", "3", out)
    with_cover = out.read_bytes()
    assert [s["codec_type"] for s in probe(with_cover)["streams"]] == ["audio", "video"]
    assert audio_process(with_cover).source_format == "mp3/mp3"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda webm: webm[:300], id="truncated-in-the-header"),
        pytest.param(lambda webm: webm[:40], id="truncated-in-the-ebml-header"),
        pytest.param(lambda webm: webm[:20] + bytes(range(180)) + webm[200:], id="header-overwritten"),
        pytest.param(lambda webm: webm[:4], id="magic-only"),
    ],
)
def test_a_damaged_webm_is_refused_as_damaged(damage) -> None:
    error = refused(damage(speech("webm")))
    assert (error.code, error.status) == ("audio_damaged", 400)
    assert "damaged" in error.message and "record it again" in error.message


def test_a_recording_cut_off_part_way_keeps_what_arrived() -> None:
    whole = speech("webm")
    note = audio_process(whole[: len(whole) // 2])
    assert 1500 < note.duration_ms < 4000


def test_an_empty_file_is_refused() -> None:
    error = refused(b"")
    assert (error.code, error.status) == ("empty", 400)


def test_a_file_over_the_byte_limit_is_refused(settings) -> None:
    settings.CHAT_AUDIO_MAX_BYTES = 10_000
    error = refused(speech("wav"))
    assert (error.code, error.status) == ("too_large", 413) and "at most" in error.message


def test_the_extension_only_names_the_temporary_file() -> None:
    assert audio_process(speech("ogg"), extension="../../etc/passwd; rm -rf /").source_format == "ogg/opus"
    assert audio_process(speech("mp4"), extension="m4a").source_format == "mp4/aac"
