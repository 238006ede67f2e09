"""Shoppers' photos, normalised: decoded once, turned upright, flattened to RGB, stripped of every
piece of metadata (EXIF with its GPS position, XMP, comments, colour profiles) and written out in
three sizes: the kept "original", the copy the model sees, and a thumbnail.

Synchronous and CPU-bound: callers run `image_process` in the media thread pool.

Every check that can be made from the header (format, pixel count, frame count) is made before a
single pixel is decoded, so a decompression bomb costs a header read. A JPEG — nearly every phone
photo — is decoded by libjpeg at a reduced DCT scale when the kept size is much smaller than the
photo: 4032×3024 decodes straight to 2016×1512 in a quarter of the time, with no resampling step.
The whole file is still read and entropy-decoded, so a truncated photo is still caught.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
import pillow_heif
from django.conf import settings
from django.utils.translation import gettext_lazy, gettext_noop
from PIL import Image, ImageOps

from chat.errors import MediaRefused, lazy_format, lazy_number
from chat.media.sniff import PHOTO_TYPES, media_sniff

logger = logging.getLogger(__name__)

# Once per process. Thumbnails, depth maps and auxiliary images inside a HEIC are never used, so
# pillow-heif is told not to read them.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# Pillow's names for what we take. MPO is a JPEG with extra frames (phones' portrait and 3D shots);
# Pillow hands it out from its JPEG opener. Naming the formats when opening means Pillow never
# tries its other parsers (BMP, TIFF, PSD…) on shopper bytes at all.
OPEN_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "HEIF")
ACCEPTED_FORMATS = frozenset({*OPEN_FORMATS, "MPO"})

STORED_QUALITY = 88
MODEL_QUALITY = 85
THUMB_QUALITY = 80
WEBP_METHOD = 2  # libwebp's effort, 0-6: 4 (the default) takes twice as long for a few percent
# A reduced JPEG decode is used when it lands within 5 % of the kept size: 4032 px → 2016 for a
# 2048 limit. Closer to the limit would need a full decode plus a resample, three times the work.
DRAFT_SLACK = 0.95
# GIF frames are counted by walking block headers; a GIF packed the usual way (255-byte data
# sub-blocks) needs one step per 256 bytes, so this covers far more than the largest upload.
GIF_WALK_BUDGET = 200_000
# A progressive JPEG is a series of scans, each a pass over the whole image; cameras and
# encoders write about ten. Thousands of tiny scans make a small file that decodes for minutes,
# and Pillow has no limit of its own (libjpeg-turbo's djpeg -maxscans is the same defence).
JPEG_MAX_SCANS = 500
HIGH_DETAIL_BOX, HIGH_DETAIL_SHORT_SIDE, LOW_DETAIL_BOX = 2048, 768, 512  # OpenAI's image sizing

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_DEEP_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


@dataclass(frozen=True)
class ProcessedImage:
    image: Image.Image  # the normalised RGB image at stored size, for catalog photo matching
    stored: bytes  # the normalised "original": JPEG, long side <= CHAT_IMAGE_STORE_MAX_SIDE
    stored_type: str
    width: int  # of `stored`
    height: int
    model: bytes  # what the model is sent, per CHAT_IMAGE_FORMAT and CHAT_IMAGE_DETAIL
    model_type: str
    model_width: int
    model_height: int
    thumb: bytes  # JPEG, long side <= CHAT_IMAGE_THUMB_SIDE
    thumb_type: str
    source_format: str  # Pillow's name for what was uploaded: JPEG, MPO, PNG, GIF, WEBP, HEIF


def image_process(data: bytes) -> ProcessedImage:
    """Check, decode and normalise an uploaded photo.

    Args:
        data: the uploaded bytes, any size (the caller has already applied CHAT_IMAGE_MAX_BYTES).

    Returns:
        The normalised image and its three encodings, all free of metadata.

    Raises:
        MediaRefused: `image_damaged` (400) when it cannot be decoded in full; `too_many_pixels`
            (413) over CHAT_IMAGE_MAX_PIXELS; `too_many_frames` (413) for an animation over
            CHAT_IMAGE_MAX_FRAMES; `unsupported_type` (415) or media_sniff's refusals when it is
            not a JPEG, PNG, WebP, GIF or HEIC photo.
    """
    with _open(data) as source:
        _check_header(source, data)
        _decode(source, settings.CHAT_IMAGE_STORE_MAX_SIDE)
        source_format = str(source.format)
        image = image_rgb(_upright(source))
    image = _fitted(image, _fit(image.size, settings.CHAT_IMAGE_STORE_MAX_SIDE), Image.Resampling.LANCZOS)
    # Encoders fall back to `info` for some metadata (a JPEG comment, for one): start it empty.
    image.info = {}
    model_format = "WEBP" if settings.CHAT_IMAGE_FORMAT == "webp" else "JPEG"
    # Hamming: sharper than bilinear at the same cost, half of bicubic's and a third of Lanczos';
    # the model resamples the image again anyway.
    model = _fitted(image, model_size(image.size, settings.CHAT_IMAGE_DETAIL), Image.Resampling.HAMMING)
    thumb_side = settings.CHAT_IMAGE_THUMB_SIDE
    thumb_source = model if max(model.size) >= min(thumb_side, max(image.size)) else image
    thumb = _fitted(thumb_source, _fit(image.size, thumb_side), Image.Resampling.LANCZOS)
    return ProcessedImage(
        image=image,
        stored=_encode(image, "JPEG", STORED_QUALITY),
        stored_type="image/jpeg",
        width=image.width,
        height=image.height,
        model=_encode(model, model_format, MODEL_QUALITY),
        model_type=f"image/{model_format.lower()}",
        model_width=model.width,
        model_height=model.height,
        thumb=_encode(thumb, "JPEG", THUMB_QUALITY),
        thumb_type="image/jpeg",
        source_format=source_format,
    )


def model_size(size: tuple[int, int], detail: str) -> tuple[int, int]:
    """The size OpenAI would scale a photo to for `detail`, never larger than the photo: "low"
    fits 512×512; "high" (and "auto") fits 2048×2048, then brings the short side down to 768."""
    if detail == "low":
        return _fit(size, LOW_DETAIL_BOX)
    width, height = _fit(size, HIGH_DETAIL_BOX)
    scale = min(1.0, HIGH_DETAIL_SHORT_SIDE / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(data: bytes) -> Image.Image:
    canvas = _webp_canvas(data)
    if canvas is not None and canvas[0] * canvas[1] > settings.CHAT_IMAGE_MAX_PIXELS:
        raise _too_many_pixels(settings.CHAT_IMAGE_MAX_PIXELS, f"WebP canvas {canvas[0]}x{canvas[1]}")
    try:
        return Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own global limit, raised while reading the header (the warning is an error
        # where warnings are errors, as in the tests). Ours is lower and checked next; this is
        # the same refusal for the same reason.
        raise _too_many_pixels(settings.CHAT_IMAGE_MAX_PIXELS, str(exc)) from exc
    except Exception as exc:  # UnidentifiedImageError, or whatever a parser raises on a bad header
        raise _not_a_photo(data, exc) from exc


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas size a WebP header states. Opening a WebP creates libwebp's decoder, which
    allocates the whole canvas at once, so this is checked before Pillow sees the file."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _check_header(image: Image.Image, data: bytes) -> None:
    if image.format not in ACCEPTED_FORMATS:
        raise MediaRefused(
            lazy_format(
                gettext_noop("That image type isn't accepted. Please send the photo as %(photo_types)s."),
                photo_types=PHOTO_TYPES,
            ),
            code="unsupported_type",
            status=415,
            detail=f"Pillow opened it as {image.format}",
        )
    max_pixels = settings.CHAT_IMAGE_MAX_PIXELS
    if image.width * image.height > max_pixels:
        raise _too_many_pixels(max_pixels, f"{image.width}x{image.height}")
    # Every start-of-scan marker counts, thumbnails' and extra MPO frames' too: entropy-coded data
    # cannot contain 0xFF 0xDA (a 0xFF there is always followed by 0x00 or a restart marker).
    if image.format in ("JPEG", "MPO") and (scans := data.count(b"\xff\xda")) > JPEG_MAX_SCANS:
        raise _damaged(f"{scans} JPEG scans")
    max_frames = settings.CHAT_IMAGE_MAX_FRAMES
    # Pillow's n_frames is read from a header for APNG, WebP, HEIF and MPO; for a GIF it walks the
    # whole file with no upper bound, so GIF frames are counted here, stopping past the limit.
    frames = _gif_frames(data, stop=max_frames + 1) if image.format == "GIF" else getattr(image, "n_frames", 1)
    if frames > max_frames:
        raise MediaRefused(
            lazy_format(
                gettext_noop(
                    "That animation has more than %(max_frames)s frames. Please send a still photo or a screenshot "
                    "instead."
                ),
                max_frames=max_frames,
            ),
            code="too_many_frames",
            status=413,
            detail=f"{frames}+ frames",
        )


def _decode(image: Image.Image, max_side: int) -> None:
    if image.format in ("JPEG", "MPO"):
        scale = _dct_scale(image.size, max_side)
        if scale > 1:
            image.draft("RGB", (image.width // scale, image.height // scale))
    try:
        image.load()
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError… on damaged data
        raise _damaged(repr(exc)) from exc


def _dct_scale(size: tuple[int, int], max_side: int) -> int:
    """The largest JPEG decode scale (1/8, 1/4, 1/2) whose result is still close to the kept size."""
    long_side = max(size)
    wanted = min(long_side, max_side) * DRAFT_SLACK
    return next((scale for scale in (8, 4, 2) if -(-long_side // scale) >= wanted), 1)


def _upright(image: Image.Image) -> Image.Image:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block costs the rotation, not the photo; it is dropped anyway
        logger.info("could not read the EXIF orientation of an uploaded photo", exc_info=True)
        return image.copy()
    return upright if upright is not None else image.copy()


def image_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB: transparency composited on white, CMYK, palette, greyscale and
    16-bit or floating-point samples converted. Returns `image` itself when it is RGB already."""
    if image.mode in _DEEP_MODES:
        image = _eight_bit(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")  # transparent areas show as the chat's white
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _eight_bit(image: Image.Image) -> Image.Image:
    """A greyscale image of 16-bit or 32-bit integers or floats, scaled to 8 bits."""
    values = np.asarray(image)
    if image.mode.startswith("I;16"):
        return Image.fromarray((values >> 8).astype(np.uint8))
    values = np.nan_to_num(values.astype(np.float32))
    low, high = float(values.min()), float(values.max())
    if image.mode == "F" and low >= 0 and high <= 1:
        values = values * 255  # the usual convention for floats
    elif low < 0 or high > 255:
        # Assume 16-bit samples when they fit, as PNG and TIFF deliver them; stretch anything else.
        values = values / 257 if low >= 0 and high <= 65535 else (values - low) * (255 / ((high - low) or 1))
    return Image.fromarray(values.clip(0, 255).round().astype(np.uint8))


def _fit(size: tuple[int, int], box: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, box / width, box / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fitted(image: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    if image.size == size:
        return image
    # reducing_gap: box-average by a whole factor first, then resample the last step; a large
    # shrink costs little more than a small one, and looks the same.
    return image.resize(size, resample, reducing_gap=2.0)


def _encode(image: Image.Image, format_: str, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile=, xmp= or comment=, and `info` is empty: nothing but pixels is written.
    if format_ == "WEBP":
        image.save(out, "WEBP", quality=quality, method=WEBP_METHOD)
    else:
        image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _gif_frames(data: bytes, *, stop: int) -> int:
    """How many frames a GIF has, counting no further than `stop`, without decoding any."""
    if len(data) < 13:
        return 0
    position = 13 + _colour_table_size(data[10])
    frames = steps = 0
    while position < len(data) and frames < stop:
        block = data[position]
        if block == 0x2C:  # image descriptor: 9 bytes, a local colour table, the LZW code size
            frames += 1
            if position + 10 > len(data):
                break
            position += 11 + _colour_table_size(data[position + 9])
        elif block == 0x21:  # extension: label, then data sub-blocks
            position += 2
        else:  # 0x3B, the trailer, or bytes that are no block at all; decoding frame 0 judges those
            break
        while position < len(data):  # data sub-blocks, each led by its length, up to a zero length
            length = data[position]
            position += 1 + length
            steps += 1
            if steps > GIF_WALK_BUDGET:
                raise _damaged(f"GIF walk gave up after {steps} sub-blocks and {frames} frames")
            if length == 0:
                break
    return frames


def _colour_table_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _not_a_photo(data: bytes, exc: Exception) -> MediaRefused:
    sniffed = media_sniff(data)  # raises its own, more specific refusal for anything it can name
    if sniffed.kind == "audio":
        return MediaRefused(
            lazy_format(
                gettext_noop("That file is a voice note, not a photo. Please send a photo as %(photo_types)s."),
                photo_types=PHOTO_TYPES,
            ),
            code="unsupported_type",
            status=415,
        )
    return _damaged(f"{sniffed.format}: {exc!r}")


def _damaged(detail: str) -> MediaRefused:
    return MediaRefused(
        gettext_lazy(
            "The photo seems damaged or incomplete, so we couldn't open it. Please send it again, or send a "
            "screenshot of it."
        ),
        code="image_damaged",
        status=400,
        detail=detail,
    )


def _too_many_pixels(max_pixels: int, detail: str) -> MediaRefused:
    return MediaRefused(
        lazy_format(
            gettext_noop(
                "That photo has too many pixels: we take up to %(megapixels)s megapixels. Please send a smaller "
                "photo or a screenshot."
            ),
            megapixels=lazy_number(max_pixels / 1_000_000),
        ),
        code="too_many_pixels",
        status=413,
        detail=detail,
    )
