"""media_sniff: what an upload is, from its bytes only, and the refusal for everything else."""

from __future__ import annotations

import gzip

import pytest
from PIL import Image

from chat.errors import MediaRefused
from chat.media.sniff import Sniffed, media_sniff
from tests.chat.media.imagefiles import animated_gif, audio, encode, heic, marked, zip_file

PHOTO = marked((64, 48))
_FRAGMENTED = ("-c:a", "aac", "-movflags", "frag_keyframe+empty_moov")  # MP4 written to a pipe


def refusal(data: bytes) -> MediaRefused:
    with pytest.raises(MediaRefused) as caught:
        media_sniff(data)
    error = caught.value
    # Words for a shopper: what is wrong and what to do, never a parser's complaint.
    assert len(error.message) > 30 and "Please" in error.message and "Error" not in error.message
    return error


@pytest.mark.parametrize(
    ("build", "format_", "extension"),
    [
        (lambda: encode(PHOTO, "JPEG"), "JPEG", "jpg"),
        (lambda: encode(PHOTO, "PNG"), "PNG", "png"),
        (lambda: animated_gif(3), "GIF", "gif"),
        (lambda: encode(PHOTO.convert("P"), "GIF"), "GIF", "gif"),
        (lambda: encode(PHOTO, "WEBP"), "WEBP", "webp"),
        (lambda: encode(PHOTO, "WEBP", lossless=True), "WEBP", "webp"),
        (lambda: heic(PHOTO), "HEIF", "heic"),
    ],
    ids=["jpeg", "png", "animated gif", "gif", "webp lossy", "webp lossless", "heic"],
)
def test_photos_are_recognised_from_their_bytes(build, format_, extension):
    assert media_sniff(build()) == Sniffed("image", format_, extension)


@pytest.mark.parametrize(
    ("muxer", "args", "format_", "extension"),
    [
        ("webm", (), "WEBM", "webm"),
        ("ogg", ("-c:a", "libopus"), "OGG", "ogg"),
        ("mp3", (), "MP3", "mp3"),
        ("mp3", ("-id3v2_version", "0", "-write_xing", "0"), "MP3", "mp3"),
        ("wav", (), "WAV", "wav"),
        ("flac", (), "FLAC", "flac"),
        ("adts", (), "AAC", "aac"),
        ("ipod", _FRAGMENTED, "MP4", "m4a"),
        ("mp4", _FRAGMENTED, "MP4", "m4a"),
    ],
    ids=["webm", "ogg opus", "mp3 with id3", "mp3 bare frames", "wav", "flac", "aac adts", "m4a", "mp4 isom"],
)
def test_voice_notes_made_by_ffmpeg_are_recognised_as_audio(muxer, args, format_, extension):
    assert media_sniff(audio(muxer, *args)) == Sniffed("audio", format_, extension)


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\0\0\0\x08free"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_ftyp(b"heic", b"mif1", b"heic"), Sniffed("image", "HEIF", "heic")),
        (_ftyp(b"mif1", b"heic", b"miaf"), Sniffed("image", "HEIF", "heic")),
        (_ftyp(b"msf1", b"hevc"), Sniffed("image", "HEIF", "heic")),
        (_ftyp(b"M4A ", b"M4A ", b"isom"), Sniffed("audio", "MP4", "m4a")),
        (_ftyp(b"mp42", b"isom"), Sniffed("audio", "MP4", "m4a")),
        (_ftyp(b"iso5", b"iso6", b"mp41"), Sniffed("audio", "MP4", "m4a")),
    ],
    ids=["heic", "mif1 with heic", "heic sequence", "m4a", "mp42", "safari iso5"],
)
def test_iso_media_files_are_told_apart_by_their_brands(data, expected):
    assert media_sniff(data) == expected


@pytest.mark.parametrize("data", [_ftyp(b"avif", b"mif1", b"miaf"), _ftyp(b"mif1", b"avif", b"miaf")])
def test_avif_is_refused_as_unsupported_by_name(data):
    error = refusal(data)
    assert (error.code, error.status) == ("unsupported_type", 415) and "AVIF" in error.message


def test_an_unknown_iso_media_brand_is_refused():
    assert refusal(_ftyp(b"crx ", b"crx ")).code == "unsupported_type"


def test_riff_wave_is_audio_and_riff_webp_is_an_image():
    assert media_sniff(b"RIFF\x24\0\0\0WAVEfmt ").kind == "audio"
    assert media_sniff(b"RIFF\x24\0\0\0WEBPVP8 ").kind == "image"


def test_ebml_is_webm_audio_even_when_the_rest_is_damaged():
    # Decoding judges the rest; the signature alone decides the kind.
    assert media_sniff(bytes.fromhex("1a45dfa3") + b"\0" * 3000) == Sniffed("audio", "WEBM", "webm")


def test_zero_bytes_are_refused_as_empty():
    error = refusal(b"")
    assert (error.code, error.status) == ("empty", 400) and "empty" in error.message


SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    "data",
    [
        SVG,
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"\xef\xbb\xbf  \n" + SVG,
        b"Look at this: <svg onload=alert(1)>" + b"x" * 50,
    ],
    ids=["svg with xml prolog", "bare svg", "svg after bom and spaces", "svg inside text"],
)
def test_svg_is_refused_saying_svg_is_not_accepted(data):
    error = refusal(data)
    assert (error.code, error.status) == ("markup_not_accepted", 415) and "SVG" in error.message


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>",
        b"<html><script>alert(1)</script></html>",
        b'<?xml version="1.0"?><note>hi</note>',
    ],
    ids=["html", "html without doctype", "xml"],
)
def test_html_and_xml_are_refused_as_markup(data):
    error = refusal(data)
    assert (error.code, error.status) == ("markup_not_accepted", 415) and "SVG" in error.message


def test_a_pdf_is_refused_as_a_pdf():
    error = refusal(b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    assert (error.code, error.status) == ("pdf_not_accepted", 415) and "PDF" in error.message


@pytest.mark.parametrize(
    "data",
    [zip_file(), b"PK\x05\x06" + b"\0" * 18, gzip.compress(b"hello" * 100), b"Rar!\x1a\x07\x01\x00" + b"\0" * 64],
    ids=["zip renamed .jpg", "empty zip", "gzip", "rar"],
)
def test_archives_are_refused_as_archives(data):
    error = refusal(data)
    assert (error.code, error.status) == ("archive_not_accepted", 415) and "archive" in error.message


@pytest.mark.parametrize(
    "data",
    [
        b"MZ\x90\x00\x03" + b"\0" * 200,
        b"\x7fELF\x02\x01\x01" + b"\0" * 200,
        bytes.fromhex("cffaedfe07000001") + b"\0" * 200,
        b"#!/bin/sh\nrm -rf ~\n",
    ],
    ids=["windows exe", "elf", "mach-o", "shell script"],
)
def test_programs_and_scripts_are_refused_as_executables(data):
    error = refusal(data)
    assert (error.code, error.status) == ("executable_not_accepted", 415) and "program" in error.message


@pytest.mark.parametrize(
    "data",
    [b"Hello, this is just some text.\n" * 20, "Grüße, ça va? 日本語\r\n".encode() * 10, "hi".encode("utf-16")],
    ids=["ascii", "utf-8", "utf-16"],
)
def test_plain_text_renamed_jpg_is_refused_as_text(data):
    error = refusal(data)
    assert (error.code, error.status) == ("text_not_accepted", 415) and "text" in error.message


@pytest.mark.parametrize(
    ("format_", "name"), [("BMP", "BMP"), ("TIFF", "TIF"), ("ICO", "ICO")], ids=["bmp", "tiff", "ico"]
)
def test_other_image_formats_are_refused_by_name(format_, name):
    error = refusal(encode(Image.new("RGB", (16, 16), "red"), format_))
    assert (error.code, error.status) == ("unsupported_type", 415)
    assert name in error.message and "JPEG, PNG, WebP, GIF or HEIC" in error.message


def test_a_video_is_refused_as_a_video():
    error = refusal(b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x01" * 100)
    assert (error.code, error.status) == ("unsupported_type", 415) and "Videos" in error.message


def test_an_unsupported_audio_format_is_refused_naming_the_ones_we_take():
    error = refusal(b"#!AMR\n" + bytes(range(256)) * 4)
    assert error.code == "unsupported_type" and "AMR" in error.message and "MP3" in error.message


@pytest.mark.parametrize(
    "data",
    [bytes(range(256)) * 40, b"\0\0\0\0" * 100, b"\xff\xe0\xff\xff" + b"\x01" * 100],
    ids=["byte ramp", "zeros", "almost mpeg sync"],
)
def test_unknown_bytes_are_refused_as_unsupported_type(data):
    error = refusal(data)
    assert (error.code, error.status) == ("unsupported_type", 415)
