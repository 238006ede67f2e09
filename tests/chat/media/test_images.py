"""image_process: photos in every accepted form come out upright, RGB, metadata-free and sized
for storage, the model and the thumbnail; everything else is refused with words for a shopper."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from chat.errors import MediaRefused
from chat.media.images import ProcessedImage, image_process, image_rgb
from tests.chat.media.imagefiles import (
    BLUE,
    COMMENT,
    GPS_LATITUDE,
    GREEN,
    RED,
    WHITE,
    animated_gif,
    encode,
    exif,
    heic,
    jpeg_with_metadata,
    marked,
    photo_like,
    png_claiming,
    zip_file,
)

METADATA_KEYS = {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "photoshop", "dpi"}


def refusal(data: bytes) -> MediaRefused:
    with pytest.raises(MediaRefused) as caught:
        image_process(data)
    error = caught.value
    assert len(error.message) > 30 and "Please" in error.message
    assert "LOAD_TRUNCATED_IMAGES" not in error.message and "Traceback" not in error.message
    return error


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def outputs(processed: ProcessedImage) -> dict[str, bytes]:
    return {"stored": processed.stored, "model": processed.model, "thumb": processed.thumb}


def near(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def colour_at(data: bytes, x: float, y: float) -> tuple[int, ...]:
    """The colour at a point given as fractions of the width and height."""
    image = reopened(data).convert("RGB")
    return pixel(image, (int(x * (image.width - 1)), int(y * (image.height - 1))))


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


# Orientation and metadata


def test_exif_orientation_6_turns_the_photo_upright():
    # Stored landscape with a red top-left corner; orientation 6 means "rotate 90° clockwise to
    # view", which puts that corner at the top right of a portrait photo.
    processed = image_process(jpeg_with_metadata(marked((400, 200)), orientation=6))
    assert (processed.width, processed.height) == (200, 400)
    for data in outputs(processed).values():
        image = reopened(data)
        assert image.height > image.width
        assert near(colour_at(data, 0.95, 0.05), RED) and near(colour_at(data, 0.05, 0.05), WHITE)


def test_exif_orientation_3_turns_the_photo_the_right_way_up():
    processed = image_process(jpeg_with_metadata(marked((300, 200)), orientation=3))
    assert (processed.width, processed.height) == (300, 200)
    assert near(colour_at(processed.stored, 0.95, 0.95), RED) and near(colour_at(processed.stored, 0.05, 0.05), WHITE)


def _assert_metadata_free(data: bytes) -> None:
    image = reopened(data)
    assert dict(image.getexif()) == {}
    assert not METADATA_KEYS & set(image.info), image.info.keys()
    for secret in (b"Exif\0\0", COMMENT, b"Secretville", b"TestPhone", b"ICC_PROFILE"):
        assert secret not in data


@pytest.mark.parametrize("model_format", ["jpeg", "webp"])
def test_gps_and_all_other_metadata_are_removed_from_every_output(settings, model_format):
    settings.CHAT_IMAGE_FORMAT = model_format
    upload = jpeg_with_metadata(photo_like((1200, 900)), orientation=1)
    original = reopened(upload)
    assert original.getexif().get_ifd(0x8825)[2] == GPS_LATITUDE and original.info["comment"] == COMMENT
    assert "xmp" in original.info and "icc_profile" in original.info
    processed = image_process(upload)
    assert processed.model_type == f"image/{model_format}"
    for data in outputs(processed).values():
        _assert_metadata_free(data)
    assert processed.image.info == {}


def test_heic_is_accepted_and_its_exif_removed():
    photo = marked((256, 192), corner=BLUE)
    processed = image_process(heic(photo, exif=exif(orientation=1).tobytes()))
    assert processed.source_format == "HEIF" and (processed.width, processed.height) == (256, 192)
    assert near(colour_at(processed.stored, 0.05, 0.05), BLUE) and near(colour_at(processed.stored, 0.9, 0.9), WHITE)
    for data in outputs(processed).values():
        _assert_metadata_free(data)


def test_heic_orientation_is_applied_once():
    # pillow-heif turns the image on decode and resets the EXIF tag; turning it again would be wrong.
    processed = image_process(heic(marked((256, 128), corner=BLUE), exif=exif(orientation=6).tobytes()))
    assert (processed.width, processed.height) == (128, 256)
    assert near(colour_at(processed.stored, 0.95, 0.02), BLUE) and near(colour_at(processed.stored, 0.05, 0.02), WHITE)


# Colour modes


def test_transparent_png_is_composited_on_white():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # transparent black: must not turn black
    image.paste((255, 0, 0, 255), (0, 0, 50, 50))
    image.paste((0, 0, 255, 128), (50, 50, 100, 100))
    processed = image_process(encode(image, "PNG"))
    assert processed.image.mode == "RGB" and processed.source_format == "PNG"
    assert near(pixel(processed.image, (10, 10)), RED, 2)
    assert near(pixel(processed.image, (90, 10)), WHITE, 2)
    assert near(pixel(processed.image, (90, 90)), (127, 127, 255), 3)


def test_greyscale_with_alpha_is_composited_on_white():
    image = Image.new("LA", (40, 40), (0, 0))
    image.paste((0, 255), (0, 0, 20, 20))
    processed = image_process(encode(image, "PNG"))
    assert pixel(processed.image, (5, 5)) == (0, 0, 0) and pixel(processed.image, (30, 30)) == WHITE


def test_palette_png_with_a_transparent_index_becomes_rgb_on_white():
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, *GREEN] + [0, 0, 0] * 254)
    image.paste(1, (0, 0, 20, 40))
    processed = image_process(encode(image, "PNG", transparency=0))
    assert pixel(processed.image, (5, 5)) == GREEN and pixel(processed.image, (35, 5)) == WHITE


def test_palette_png_becomes_rgb():
    image = marked((60, 40), corner=BLUE).convert("P")
    processed = image_process(encode(image, "PNG"))
    assert processed.image.mode == "RGB" and pixel(processed.image, (2, 2)) == BLUE


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours():
    image = Image.new("CMYK", (80, 80), (0, 0, 0, 0))  # white
    image.paste((0, 255, 255, 0), (0, 0, 40, 40))  # red in CMYK
    processed = image_process(encode(image, "JPEG", quality=95))
    assert processed.image.mode == "RGB" and processed.source_format == "JPEG"
    assert near(pixel(processed.image, (10, 10)), RED) and near(pixel(processed.image, (70, 70)), WHITE)


def test_16_bit_greyscale_png_is_scaled_to_8_bits():
    ramp = np.tile(np.array([0, 32896, 65535], dtype=np.uint16).repeat(10), (10, 1))
    upload = encode(Image.fromarray(ramp), "PNG")
    assert reopened(upload).mode == "I;16"
    processed = image_process(upload)
    assert [pixel(processed.image, (x, 5)) for x in (5, 15, 25)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", [0, 32896, 65535], [0, 128, 255]),
        ("I", [0, 100, 255], [0, 100, 255]),
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),
        ("F", [-1.0, 0.0, 1.0], [0, 128, 255]),
    ],
    ids=["I 16-bit range", "I 8-bit range", "F 0 to 1", "F stretched"],
)
def test_32_bit_and_float_images_are_scaled_to_8_bits(mode, values, expected):
    image = Image.fromarray(np.array([values], dtype=np.int32 if mode == "I" else np.float32))
    assert image.mode == mode
    assert [pixel(image_rgb(image), (x, 0)) for x in range(3)] == [(value,) * 3 for value in expected]


# Formats and frames


def test_webp_is_accepted():
    processed = image_process(encode(marked((120, 90), corner=BLUE), "WEBP", quality=90))
    assert processed.source_format == "WEBP" and (processed.width, processed.height) == (120, 90)
    assert near(colour_at(processed.stored, 0.02, 0.02), BLUE)


def test_gif_uses_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in (RED, GREEN, BLUE)]
    upload = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    processed = image_process(upload)
    assert processed.source_format == "GIF" and near(pixel(processed.image, (16, 16)), RED, 8)


def test_mpo_from_a_phone_is_accepted_using_its_first_frame():
    upload = encode(Image.new("RGB", (64, 48), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48))])
    processed = image_process(upload)
    assert processed.source_format == "MPO" and near(pixel(processed.image, (32, 24)), RED)


def test_a_gif_of_500_frames_is_refused_quickly():
    upload = animated_gif(500)
    started = time.perf_counter()
    error = refusal(upload)
    assert time.perf_counter() - started < 0.5
    assert (error.code, error.status) == ("too_many_frames", 413) and "100 frames" in error.message


def test_a_gif_at_the_frame_limit_is_accepted(settings):
    settings.CHAT_IMAGE_MAX_FRAMES = 5
    assert image_process(animated_gif(5)).source_format == "GIF"


@pytest.mark.parametrize("format_", ["GIF", "WEBP", "PNG"], ids=["gif", "animated webp", "apng"])
def test_animations_over_the_frame_limit_are_refused(settings, format_):
    settings.CHAT_IMAGE_MAX_FRAMES = 5
    frames = [Image.new("RGB", (16, 16), (index * 40, 0, 0)) for index in range(6)]
    error = refusal(encode(frames[0], format_, save_all=True, append_images=frames[1:]))
    assert (error.code, error.status) == ("too_many_frames", 413)


def test_a_gif_split_into_tiny_blocks_cannot_make_frame_counting_slow():
    header = encode(Image.new("P", (4, 4)), "GIF")
    head = header[: header.index(b",")]  # header, colour table and any extensions
    body = b",\0\0\0\0\x04\0\x04\0\0\x02" + b"\x01\x00" * 300_000 + b"\0;"  # 300k one-byte sub-blocks
    started = time.perf_counter()
    error = refusal(head + body)
    assert time.perf_counter() - started < 1.0 and error.code == "image_damaged"


# Damage and bombs


def test_truncated_jpeg_is_refused_with_message():
    upload = encode(photo_like((800, 600)), "JPEG", quality=90)
    error = refusal(upload[: len(upload) // 2])
    assert (error.code, error.status) == ("image_damaged", 400) and "damaged or incomplete" in error.message


def test_truncated_jpeg_is_refused_even_when_decoded_at_reduced_scale(settings):
    settings.CHAT_IMAGE_STORE_MAX_SIDE = 256
    upload = encode(photo_like((1000, 750)), "JPEG", quality=90)
    # The whole file decodes at a quarter scale, 250×188, close enough to keep as it is...
    assert image_process(upload).image.size == (250, 188)
    # ...and a cut-off copy is still found out.
    assert refusal(upload[: int(len(upload) * 0.8)]).code == "image_damaged"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff\xe0" + b"\x13" * 500,
        encode(Image.new("RGB", (300, 300), "red"), "PNG")[:-200],
        encode(Image.new("RGB", (300, 300), "red"), "WEBP")[:-50],
    ],
    ids=["jpeg with a garbage header", "truncated png", "truncated webp"],
)
def test_damaged_photos_are_refused_as_damaged(data):
    assert refusal(data).code == "image_damaged"


def _scans(data: bytes) -> list[tuple[int, int]]:
    """Where each scan (SOS header and entropy-coded data) of a JPEG starts and ends."""
    scans, position = [], 2
    while data[position + 1] != 0xD9:  # EOI
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        end = position + 2 + length
        if data[position + 1] == 0xDA:
            while data[end] != 0xFF or data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                end += 1
            scans.append((position, end))
        position = end
    return scans


def test_a_progressive_jpeg_is_accepted_but_one_with_thousands_of_scans_is_refused_quickly():
    upload = encode(photo_like((400, 300)), "JPEG", progressive=True)
    scans = _scans(upload)
    assert 5 < len(scans) < 20 and image_process(upload).image.size == (400, 300)
    # Repeating a refinement scan keeps the file decodable, and makes each repeat a full pass.
    start, end = min(scans, key=lambda scan: scan[1] - scan[0])
    bomb = upload[: scans[-1][1]] + upload[start:end] * 3000 + upload[scans[-1][1] :]
    started = time.perf_counter()
    assert refusal(bomb).code == "image_damaged"
    assert time.perf_counter() - started < 0.2


@pytest.mark.parametrize(
    "side", [30_000, 10_000, 8_000], ids=["past pillow's error", "past pillow's warning", "past our limit only"]
)
def test_png_bomb_is_refused_quickly_from_its_header(side):
    upload = png_claiming(side, side)
    started = time.perf_counter()
    error = refusal(upload)
    assert time.perf_counter() - started < 0.2
    assert (error.code, error.status) == ("too_many_pixels", 413) and "megapixels" in error.message


def test_the_pixel_limit_comes_from_settings(settings):
    settings.CHAT_IMAGE_MAX_PIXELS = 10_000
    assert refusal(encode(Image.new("RGB", (101, 100)), "PNG")).code == "too_many_pixels"
    assert image_process(encode(Image.new("RGB", (100, 100)), "PNG")).width == 100


def test_webp_canvas_over_the_pixel_limit_is_refused_before_decoding():
    upload = bytearray(encode(Image.new("RGB", (8, 8)), "WEBP", lossless=True))
    assert upload[12:16] == b"VP8L"
    bits = int.from_bytes(upload[21:25], "little") & ~0xFFFFFFF | (9000 - 1) | (9000 - 1) << 14
    upload[21:25] = bits.to_bytes(4, "little")
    error = refusal(bytes(upload))
    assert (error.code, error.status) == ("too_many_pixels", 413) and "9000x9000" in error.detail


# Not photos


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"Hello, this is just some text.\n" * 20, "text_not_accepted"),
        (zip_file(), "archive_not_accepted"),
        (b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "pdf_not_accepted"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "markup_not_accepted"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "markup_not_accepted"),
        (encode(Image.new("RGB", (16, 16)), "BMP"), "unsupported_type"),
        (encode(Image.new("RGB", (16, 16)), "TIFF"), "unsupported_type"),
        (encode(Image.new("RGB", (16, 16)), "ICO"), "unsupported_type"),
        (encode(Image.new("RGB", (16, 16)), "AVIF"), "unsupported_type"),
        (b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 64, "unsupported_type"),
    ],
    ids=["zero bytes", "text renamed .jpg", "zip", "pdf", "svg", "html", "bmp", "tiff", "ico", "avif", "wav"],
)
def test_files_that_are_not_photos_are_refused_by_kind(data, code):
    error = refusal(data)
    assert error.code == code and error.status == (400 if code == "empty" else 415)


# Sizes


@pytest.mark.parametrize(("detail", "model_size"), [("high", (1152, 768)), ("auto", (1152, 768)), ("low", (512, 341))])
def test_model_copy_is_sized_for_the_detail_setting(settings, detail, model_size):
    settings.CHAT_IMAGE_DETAIL = detail
    processed = image_process(encode(marked((3000, 2000)), "PNG"))
    assert (processed.width, processed.height) == (2048, 1365)
    assert (processed.model_width, processed.model_height) == model_size == reopened(processed.model).size
    assert reopened(processed.thumb).size == (320, 213) and processed.thumb_type == "image/jpeg"
    assert near(colour_at(processed.model, 0.05, 0.05), RED)


def test_high_detail_fits_2048_before_bringing_the_short_side_to_768(settings):
    settings.CHAT_IMAGE_DETAIL = "high"
    settings.CHAT_IMAGE_STORE_MAX_SIDE = 4096
    processed = image_process(encode(Image.new("RGB", (4096, 1024)), "PNG"))
    assert (processed.width, processed.height) == (4096, 1024)
    assert (processed.model_width, processed.model_height) == (2048, 512)


@pytest.mark.parametrize("detail", ["high", "low"])
def test_small_photos_are_never_upscaled(settings, detail):
    settings.CHAT_IMAGE_DETAIL = detail
    processed = image_process(encode(marked((300, 200)), "JPEG"))
    assert (processed.width, processed.height) == (300, 200) == (processed.model_width, processed.model_height)
    assert reopened(processed.stored).size == reopened(processed.model).size == reopened(processed.thumb).size


def test_a_tall_photo_keeps_its_short_side_when_under_768():
    processed = image_process(encode(Image.new("RGB", (1000, 3000)), "PNG"))
    assert (processed.width, processed.height) == (683, 2048)
    assert (processed.model_width, processed.model_height) == (683, 2048)


def test_a_large_photo_is_stored_at_most_2048_on_its_long_side():
    processed = image_process(encode(marked((5000, 1000)), "PNG"))
    assert (processed.width, processed.height) == (2048, 410) == reopened(processed.stored).size
    assert processed.image.size == (2048, 410) and processed.stored_type == "image/jpeg"
    assert near(colour_at(processed.stored, 0.1, 0.1), RED) and near(colour_at(processed.stored, 0.5, 0.5), WHITE)


def test_a_12_megapixel_jpeg_is_decoded_at_half_scale_to_2016_by_1512():
    processed = image_process(encode(Image.new("RGB", (4032, 3024), BLUE), "JPEG"))
    assert (processed.width, processed.height) == (2016, 1512)
    assert (processed.model_width, processed.model_height) == (1024, 768)
    assert near(pixel(processed.image, (1000, 700)), BLUE, 3)


def test_thumb_follows_the_thumb_side_setting(settings):
    settings.CHAT_IMAGE_THUMB_SIDE = 100
    processed = image_process(encode(marked((800, 400)), "JPEG"))
    assert reopened(processed.thumb).size == (100, 50)
