"""Test photos and files, built in memory: no downloaded samples, nothing written to disk."""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms

SPEECH = Path(__file__).resolve().parents[2] / "fixtures/speech.wav"
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 160, 0), (0, 0, 255), (255, 255, 255)
GPS_LATITUDE = (51.0, 30.0, 26.0)
COMMENT = b"shot at 12 Secret Lane"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>'
    b'<rdf:Description photoshop:City="Secretville"/></rdf:RDF></x:xmpmeta>'
)


def encode(image: Image.Image, format_: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format_, **params)
    return out.getvalue()


def marked(size: tuple[int, int], mode: str = "RGB", background: Any = WHITE, corner: Any = RED) -> Image.Image:
    """A plain image with a block of `corner` colour in its top-left corner (a fifth of each side),
    so a test can see where that corner ends up after rotation and resizing."""
    image = Image.new(mode, size, background)
    image.paste(corner, (0, 0, max(1, size[0] // 5), max(1, size[1] // 5)))
    return image


def exif(orientation: int = 1, *, gps: bool = True) -> Image.Exif:
    data = Image.Exif()
    data[ExifTags.Base.Orientation] = orientation
    data[ExifTags.Base.Make] = "TestPhone"
    if gps:
        position = data.get_ifd(ExifTags.IFD.GPSInfo)
        position[ExifTags.GPS.GPSLatitudeRef] = "N"
        position[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
        position[ExifTags.GPS.GPSLongitudeRef] = "W"
        position[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    return data


def jpeg_with_metadata(image: Image.Image, orientation: int = 1, quality: int = 90) -> bytes:
    """A JPEG carrying what a phone photo can: EXIF orientation and GPS, XMP, an sRGB colour
    profile and a comment."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(image, "JPEG", quality=quality, exif=exif(orientation), xmp=XMP, icc_profile=profile, comment=COMMENT)


def photo_like(size: tuple[int, int], seed: int = 7) -> Image.Image:
    """An RGB image with the statistics of a photo rather than a test card: smooth colour areas,
    texture at several scales and sensor noise, so JPEG sizes and decode times are realistic."""
    width, height = size
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    texture = Image.fromarray(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8))
    texture = texture.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(coarse, dtype=np.int16) * 3 // 4 + np.asarray(texture, dtype=np.int16) // 4
    pixels += rng.normal(0, 5, (height, width, 1)).astype(np.int16)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny palette PNG whose header claims `width`×`height` pixels: a decompression bomb's
    header without its (cheap to compress, costly to decode) body."""
    data = bytearray(encode(Image.new("P", (8, 8)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(data[12:29]))
    return bytes(data)


def animated_gif(frames: int, size: tuple[int, int] = (16, 16)) -> bytes:
    images = [Image.new("P", size, index % 256) for index in range(frames)]
    for image in images:
        image.putpalette([channel for value in range(256) for channel in (value, 255 - value, 0)])
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=40, disposal=1)


def heic(image: Image.Image, **params: Any) -> bytes:
    heif = pillow_heif.from_pillow(image)
    out = io.BytesIO()
    heif.save(out, quality=90, **params)
    return out.getvalue()


def zip_file() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("photo.jpg", encode(marked((32, 32)), "JPEG"))
    return out.getvalue()


def audio(format_: str, *args: str) -> bytes:
    """The speech fixture, re-encoded by ffmpeg into `format_` (a muxer name) and returned as bytes."""
    command = ["/usr/bin/ffmpeg", "-v", "error", "-i", str(SPEECH), "-t", "1", *args, "-f", format_, "pipe:1"]
    return subprocess.run(command, check=True, capture_output=True, timeout=60).stdout
