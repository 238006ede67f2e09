"""What an upload really is, decided from its bytes alone.

A file name or a browser's content type is whatever the sender wants it to be (a ZIP renamed
photo.jpg, an SVG sent as image/png), so neither is read here. The formats we take are matched
by exact signatures written out below, because a general-purpose guesser ranks weak matches
(two bytes of "BM") next to strong ones and cannot tell a HEIC photo from an M4A voice note:
both are ISO-BMFF files and only the `ftyp` brands differ. puremagic is asked only about files
we refuse, to name them in the message and in the log.

AVIF is refused: Pillow could decode it, but the model API and the photo pipeline are specified
for JPEG, PNG, WebP, GIF and HEIC, and every extra decoder is more attack surface for little use
(phones do not save photos as AVIF).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import puremagic
from django.utils.translation import gettext_lazy, gettext_noop

from chat.errors import MediaRefused, lazy_format

logger = logging.getLogger(__name__)

# Refusals are lazy (see chat/errors.py): they are read in the conversation's language.
PHOTO_TYPES = gettext_lazy("JPEG, PNG, WebP, GIF or HEIC")
VOICE_TYPES = gettext_lazy("WebM, Ogg, M4A, MP3, WAV or FLAC")
_HEAD = 8192  # enough for every signature below and for puremagic's header rules

_SIGNATURES: tuple[tuple[bytes, Literal["image", "audio"], str, str], ...] = (
    (b"\xff\xd8\xff", "image", "JPEG", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image", "PNG", "png"),
    (b"GIF87a", "image", "GIF", "gif"),
    (b"GIF89a", "image", "GIF", "gif"),
    (b"\x1a\x45\xdf\xa3", "audio", "WEBM", "webm"),  # EBML: WebM/Matroska, what browsers record
    (b"OggS", "audio", "OGG", "ogg"),
    (b"fLaC", "audio", "FLAC", "flac"),
)

# ISO-BMFF `ftyp` brands. HEVC-coded HEIF ("HEIC") is what iPhones save; mif1/msf1 are the
# generic HEIF brands, which AVIF files carry too, so the specific brands are looked at first.
_HEIC_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"})
_HEIF_BRANDS = frozenset({"mif1", "msf1", "mif2"})
_AVIF_BRANDS = frozenset({"avif", "avis"})
_MP4_BRANDS = frozenset(
    {"M4A ", "M4B ", "M4P ", "M4V ", "mp41", "mp42", "mp71", "isom", "dash", "avc1", "qt  ", "f4a ", "f4v "}
    | {f"iso{n}" for n in range(2, 10)}
    | {"3gp4", "3gp5", "3gp6", "3gp7", "3ge6", "3ge7", "3gg6", "3g2a", "3g2b", "3g2c"}
)

_ARCHIVE_MAGIC = (
    b"PK\x03\x04",  # ZIP, and everything built on it: docx, xlsx, jar, apk, epub
    b"PK\x05\x06",  # an empty ZIP
    b"PK\x07\x08",  # a spanned ZIP
    b"Rar!\x1a\x07",
    b"7z\xbc\xaf\x27\x1c",
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",  # zstd
)
_ARCHIVE_EXTENSIONS = frozenset(
    {"zip", "rar", "7z", "gz", "tgz", "bz2", "xz", "zst", "tar", "cab", "iso", "dmg", "jar", "apk", "lz", "lzma", "z"}
)
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows .exe/.dll
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",  # Mach-O, both word sizes and byte orders
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary or Java class
    b"\x00asm",  # WebAssembly
    b"dex\n",  # Android
)
_EXECUTABLE_EXTENSIONS = frozenset({"exe", "dll", "msi", "com", "scr", "bat", "cmd", "sh", "so", "dylib", "class"})
_MARKUP_OPENINGS = (b"<?xml", b"<svg", b"<!doctype", b"<html", b"<head", b"<body", b"<script", b"<!--", b"<iframe")
_TEXT_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13, 27}  # tab, newline, form feed, CR and ESC occur in text


@dataclass(frozen=True)
class Sniffed:
    kind: Literal["image", "audio"]
    format: str  # "JPEG", "PNG", "GIF", "WEBP", "HEIF", "WEBM", "OGG", "MP4", "MP3", "WAV", "FLAC", "AAC"
    extension: str  # for temporary files and the file name a transcription API is sent


def media_sniff(data: bytes) -> Sniffed:
    """What kind of photo or voice note `data` is, from its bytes only.

    Returns:
        The kind ("image" or "audio"), the format and the usual file extension. Only the
        signature is checked: a file that starts right but is damaged further on is refused
        later, when it is decoded.

    Raises:
        MediaRefused: `empty` (400) for zero bytes; 415 with `markup_not_accepted` (SVG, XML,
            HTML), `pdf_not_accepted`, `archive_not_accepted`, `text_not_accepted`,
            `executable_not_accepted`, or `unsupported_type` for every other format (AVIF, BMP,
            TIFF, video, other audio formats) and for bytes we cannot place.
    """
    if not data:
        raise MediaRefused(
            gettext_lazy("That file is empty (0 bytes). Please choose the photo or voice note again."),
            code="empty",
            status=400,
        )
    for magic, kind, format_, extension in _SIGNATURES:
        if data.startswith(magic):
            return Sniffed(kind, format_, extension)
    found = _riff(data) or _iso_bmff(data) or _mpeg_audio(data)
    if found is not None:
        return found
    raise _refusal(data[:_HEAD])


def _riff(data: bytes) -> Sniffed | None:
    if data[:4] not in (b"RIFF", b"RF64"):
        return None
    if data[8:12] == b"WEBP":
        return Sniffed("image", "WEBP", "webp")
    if data[8:12] == b"WAVE":
        return Sniffed("audio", "WAV", "wav")
    return None  # AVI and other RIFF files are named by puremagic and refused


def _iso_bmff(data: bytes) -> Sniffed | None:
    if data[4:8] != b"ftyp" or len(data) < 12:
        return None
    major = data[8:12].decode("latin-1")
    box_end = min(int.from_bytes(data[:4], "big"), len(data), 1024)
    brands = {major} | {data[i : i + 4].decode("latin-1") for i in range(16, box_end - 3, 4)}
    if major in _AVIF_BRANDS or (brands & _AVIF_BRANDS and not brands & _HEIC_BRANDS):
        raise MediaRefused(
            lazy_format(
                gettext_noop(
                    "AVIF images aren't accepted yet. Please send the photo as %(photo_types)s — a screenshot "
                    "works too."
                ),
                photo_types=PHOTO_TYPES,
            ),
            code="unsupported_type",
            status=415,
            detail=f"ftyp brands {sorted(brands)}",
        )
    if brands & (_HEIC_BRANDS | _HEIF_BRANDS):
        return Sniffed("image", "HEIF", "heic")
    if brands & _MP4_BRANDS:
        # MP4/M4A is what Safari records; a video's sound track is found later or the file is refused.
        return Sniffed("audio", "MP4", "m4a")
    return None


def _mpeg_audio(data: bytes) -> Sniffed | None:
    offset = 0
    if data.startswith(b"ID3") and len(data) >= 10:
        # An ID3v2 tag (title, cover art) comes before the first frame; its size is "syncsafe",
        # 7 bits a byte. MP3 is by far the usual content, but ADTS AAC is tagged the same way.
        offset = 10 + int.from_bytes(bytes(b & 0x7F for b in data[6:10]), "big") + (10 if data[5] & 0x10 else 0)
    header = data[offset : offset + 4]
    if _is_adts(header):
        return Sniffed("audio", "AAC", "aac")
    if offset or _is_mpeg_frame(header):
        return Sniffed("audio", "MP3", "mp3")
    return None


def _is_adts(header: bytes) -> bool:
    # 12 sync bits, layer 0, and a sampling-frequency index that exists (0-12).
    return len(header) >= 4 and header[0] == 0xFF and header[1] & 0xF6 == 0xF0 and (header[2] >> 2) & 0xF < 13


def _is_mpeg_frame(header: bytes) -> bool:
    # 11 sync bits, then fields that each have a reserved value; checking them keeps random bytes
    # that happen to start with 0xFF 0xE0 from passing as MP3. Layer I (unused since the 90s) is
    # left out: its header is the UTF-16 byte-order mark, 0xFF 0xFE.
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate, rate = header[2] >> 4, (header[2] >> 2) & 3
    return version != 1 and layer in (1, 2) and bitrate != 15 and rate != 3


def _refusal(head: bytes) -> MediaRefused:
    """The refusal for a file that is not a photo or voice note we take, naming what it is."""
    opening = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if opening.startswith(b"<") or any(tag in opening[:1024] for tag in (b"<svg", b"<html", b"<script")):
        return _markup(opening)
    if b"%PDF-" in head[:1024]:  # readers accept junk before the header, so look a little way in
        message = gettext_noop(
            "That file is a PDF. Please send a photo (%(photo_types)s) or a voice note. For a document, a "
            "screenshot of the page works."
        )
        return _refused(message, "pdf")
    if head.startswith(_ARCHIVE_MAGIC):
        return _archive("")
    if head.startswith(_EXECUTABLE_MAGIC) or (head.startswith(b"#!") and not head.startswith(b"#!AMR")):
        return _executable("")
    if _looks_like_text(head):
        message = gettext_noop(
            "That file is plain text, not a photo or a voice note. Please type it in the chat box, or send a "
            "photo (%(photo_types)s)."
        )
        return _refused(message, "text")
    return _guessed(head)


def _markup(opening: bytes) -> MediaRefused:
    if b"<svg" in opening:
        message = gettext_noop(
            "SVG images aren't accepted, because they can contain scripts. Please send the picture as a photo "
            "or screenshot (%(photo_types)s)."
        )
    else:
        message = gettext_noop(
            "That file is a web page or XML document, not a photo (SVG and other markup aren't accepted). "
            "Please send a photo (%(photo_types)s) or a voice note."
        )
    return _refused(message, "markup")


def _archive(detail: str) -> MediaRefused:
    message = gettext_noop(
        "That file is a ZIP or other archive (or a document packed like one), not a photo, whatever its name "
        "says. Please send the photo itself (%(photo_types)s) or a voice note."
    )
    return _refused(message, "archive", detail)


def _executable(detail: str) -> MediaRefused:
    message = gettext_noop(
        "That file is a program or script, which we never accept. Please send a photo (%(photo_types)s) or a "
        "voice note."
    )
    return _refused(message, "executable", detail)


def _refused(message: str, what: str, detail: str = "") -> MediaRefused:
    """`message`: marked with gettext_noop, with a %(photo_types)s placeholder."""
    text = lazy_format(message, photo_types=PHOTO_TYPES)
    return MediaRefused(text, code=f"{what}_not_accepted", status=415, detail=detail)


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
        return True
    # Binary formats have NULs and control bytes within their first few hundred bytes; text,
    # in any 8-bit encoding, has almost none.
    return b"\x00" not in head and sum(byte in _TEXT_CONTROLS for byte in head) * 100 <= len(head)


def _guessed(head: bytes) -> MediaRefused:
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        matches = []
    if not matches:
        logger.info("refused an upload of unknown type starting %r", head[:16])
        message = gettext_noop(
            "We can't tell what kind of file that is. Please send a photo (%(photo_types)s) or a voice note."
        )
        return MediaRefused(lazy_format(message, photo_types=PHOTO_TYPES), code="unsupported_type", status=415)
    best = matches[0]
    extension, mime = best.extension.lower().lstrip("."), best.mime_type.lower()
    detail = f"puremagic: {best.name} ({best.extension} {best.mime_type})"
    if extension in _ARCHIVE_EXTENSIONS or any(word in mime for word in ("zip", "compressed", "archive")):
        return _archive(detail)
    if extension in _EXECUTABLE_EXTENSIONS or "executable" in best.name.lower() or "mach-o" in best.name.lower():
        return _executable(detail)
    family = mime.partition("/")[0]
    label = extension.upper() or best.name
    if family == "image":
        message = gettext_noop(
            "%(label)s images aren't accepted. Please send the photo as %(photo_types)s — a screenshot works too."
        )
    elif family == "video":
        message = gettext_noop("Videos aren't accepted. Please send a photo (%(photo_types)s) or a voice note.")
    elif family == "audio" or extension == "amr":
        message = gettext_noop(
            "That kind of audio (%(label)s) isn't accepted. Please record a voice note in the chat, or send "
            "%(voice_types)s."
        )
    else:
        message = gettext_noop(
            "That kind of file (%(name)s) isn't accepted. Please send a photo (%(photo_types)s) or a voice note."
        )
    text = lazy_format(message, label=label, name=best.name, photo_types=PHOTO_TYPES, voice_types=VOICE_TYPES)
    return MediaRefused(text, code="unsupported_type", status=415, detail=detail)
