"""Draw the demo catalog's product images: stylised illustrations, one per entry in products.json.

    .venv/bin/python scripts/make_demo_images.py            # writes catalog/demo/images/*.jpg

Deterministic: every random choice is seeded from the image's file name, so re-running with the
same Pillow version reproduces the committed files. Each image combines a product silhouette
(chosen by product type) in the variant's colour with a pattern, the vendor's logo, the title and
a seeded backdrop of small shapes, so photo matching has distinctive detail in every region.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

DEMO_DIR = Path(__file__).resolve().parents[1] / "catalog" / "demo"
SIZE = 512
MAX_BYTES = 40_000

Colour = tuple[int, int, int]
Points = list[tuple[float, float]]

COLOURS: dict[str, Colour] = {
    "black": (38, 40, 44),
    "ocean": (24, 110, 170),
    "brown": (120, 78, 44),
    "forest": (34, 100, 58),
    "slate": (92, 108, 124),
    "moss": (110, 124, 60),
    "steel": (150, 156, 162),
    "glacier blue": (120, 180, 220),
    "charcoal": (64, 66, 72),
    "mustard": (212, 160, 40),
    "navy": (30, 44, 90),
    "white": (236, 236, 230),
    "red": (190, 40, 40),
    "ember": (220, 90, 40),
    "olive": (100, 110, 50),
    "teal": (20, 140, 140),
    "rust": (170, 80, 40),
    "red check": (180, 30, 40),
    "green check": (40, 110, 60),
    "tan": (190, 150, 100),
    "grey": (130, 130, 130),
    "orange": (240, 130, 30),
    "lime": (160, 200, 40),
    "smoke": (70, 70, 70),
}
VENDOR_MARKS = {"Ridgeline": "ridge", "Northpeak": "star", "Alder & Co": "leaf", "Tern Outdoor": "wave"}


def main() -> None:
    data = json.loads((DEMO_DIR / "products.json").read_text(encoding="utf-8"))
    out_dir = DEMO_DIR / "images"
    out_dir.mkdir(exist_ok=True)
    for product in data["products"]:
        for entry in product.get("images", []):
            image = draw_product(product, entry)
            path = out_dir / entry["file"]
            path.write_bytes(encode_jpeg(image))
            print(f"{path.relative_to(DEMO_DIR.parents[1])}: {path.stat().st_size // 1024} KB")


def draw_product(product: dict[str, Any], entry: dict[str, str]) -> Image.Image:
    # Seeded for reproducible art, not for secrecy.
    rng = random.Random(hashlib.sha256(entry["file"].encode()).digest())  # noqa: S311
    colour = product_colour(product, entry.get("variant_sku"), rng)
    background = tuple(235 - rng.randrange(40) for _ in range(3))
    image = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(image)
    draw_backdrop(draw, rng)
    shape = silhouette(product["product_type"])(rng)
    draw_patterned(image, shape, colour, rng, check="check" in entry["file"])
    draw_logo(draw, product.get("vendor", ""), rng)
    draw_caption(draw, product["title"], colour)
    return image


def product_colour(product: dict[str, Any], sku: str | None, rng: random.Random) -> Colour:
    options = product.get("options", [])
    variants = product["variants"]
    variant = next((v for v in variants if v["sku"] == sku), variants[0])
    if "Color" in options:
        name = variant["options"][options.index("Color")].lower()
        if name in COLOURS:
            return COLOURS[name]
    return tuple(rng.randrange(30, 220) for _ in range(3))  # type: ignore[return-value]


def draw_backdrop(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    """Small seeded shapes all over: every crop of the image keeps some unique corners."""
    palette = [tuple(rng.randrange(60, 200) for _ in range(3)) for _ in range(3)]
    for _ in range(70):
        x, y, r = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(5, 16)
        fill = rng.choice(palette)
        kind = rng.randrange(4)
        if kind == 0:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif kind == 3:
            draw.line((x - r, y, x + r, y), fill=fill, width=3)
            draw.line((x, y - r, x, y + r), fill=fill, width=3)
        else:
            sides = 3 if kind == 1 else 4
            angle = rng.uniform(0, math.tau)
            draw.polygon(regular(x, y, r, sides, angle), fill=fill)


def regular(x: float, y: float, r: float, sides: int, angle: float = 0.0) -> Points:
    return [
        (x + r * math.cos(angle + i * math.tau / sides), y + r * math.sin(angle + i * math.tau / sides))
        for i in range(sides)
    ]


def draw_patterned(image: Image.Image, shape: list[Points], colour: Colour, rng: random.Random, *, check: bool) -> None:
    """Fill the silhouette with the colour, a seeded pattern in a contrasting shade, and an outline."""
    mask = Image.new("L", image.size, 0)
    mask_draw = ImageDraw.Draw(mask)
    for polygon in shape:
        mask_draw.polygon(polygon, fill=255)
    fill = Image.new("RGB", image.size, colour)
    accent = tuple(min(255, c + 90) if sum(colour) < 380 else max(0, c - 90) for c in colour)
    pattern_draw = ImageDraw.Draw(fill)
    kind = 4 if check else rng.randrange(4)
    step = rng.randrange(18, 34)
    width = rng.randrange(3, 8)
    offset = rng.randrange(step)
    for k in range(-SIZE, 2 * SIZE, step):
        if kind == 4:  # a check: bands both ways
            pattern_draw.line((0, k + offset, SIZE, k + offset), fill=accent, width=width)
            pattern_draw.line((k + offset, 0, k + offset, SIZE), fill=accent, width=width)
        elif kind == 0:  # diagonal stripes
            pattern_draw.line((k + offset, 0, k + offset - SIZE, SIZE), fill=accent, width=width)
        elif kind == 1:  # horizontal bands
            pattern_draw.line((0, k + offset, SIZE, k + offset), fill=accent, width=width)
        elif kind == 2:  # dots
            for j in range(0, SIZE, step):
                r = width
                pattern_draw.ellipse((k + offset - r, j - r, k + offset + r, j + r), fill=accent)
        else:  # chevrons
            for j in range(0, SIZE, step * 2):
                pattern_draw.line(
                    (k, j + offset, k + step // 2, j + offset + step // 2, k + step, j + offset),
                    fill=accent,
                    width=width,
                )
    image.paste(fill, (0, 0), mask)
    draw = ImageDraw.Draw(image)
    outline = tuple(max(0, c - 70) for c in colour)
    for polygon in shape:
        draw.polygon(polygon, outline=outline, width=4)
    # A woven label with a seeded code: small, high-contrast detail inside the product.
    x, y = shape[0][0]
    x, y = min(max(x, 170), 330), min(max(y + 60, 180), 300)
    draw.rectangle((x, y, x + 60, y + 26), fill=(250, 250, 245), outline=outline, width=2)
    code = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ23456789") for _ in range(4))
    draw.text((x + 6, y + 3), code, fill=outline, font=ImageFont.load_default(size=18))


def draw_logo(draw: ImageDraw.ImageDraw, vendor: str, rng: random.Random) -> None:
    mark = VENDOR_MARKS.get(vendor, "ridge")
    draw.rounded_rectangle((14, 14, 218, 62), radius=12, fill=(250, 250, 248), outline=(30, 30, 30), width=2)
    if mark == "ridge":
        draw.polygon([(22, 54), (38, 26), (48, 40), (58, 22), (76, 54)], fill=(200, 60, 40))
    elif mark == "star":
        draw.polygon(star(48, 38, 20, 9), fill=(30, 60, 140))
    elif mark == "leaf":
        draw.ellipse((26, 22, 70, 56), fill=(50, 120, 60))
        draw.line((30, 52, 66, 26), fill=(250, 250, 248), width=3)
    else:
        for i in range(3):
            draw.arc((22 + i * 12, 24, 46 + i * 12, 52), 200, 340, fill=(20, 120, 160), width=4)
    draw.text((82, 26), vendor.upper()[:12], fill=(30, 30, 30), font=ImageFont.load_default(size=17))


def star(x: float, y: float, outer: float, inner: float) -> Points:
    return [
        (
            x + (outer if i % 2 == 0 else inner) * math.cos(-math.pi / 2 + i * math.pi / 5),
            y + (outer if i % 2 == 0 else inner) * math.sin(-math.pi / 2 + i * math.pi / 5),
        )
        for i in range(10)
    ]


def draw_caption(draw: ImageDraw.ImageDraw, title: str, colour: Colour) -> None:
    draw.rectangle((0, SIZE - 64, SIZE, SIZE), fill=colour)
    text_colour = (255, 255, 255) if sum(colour) < 450 else (20, 20, 20)
    font = ImageFont.load_default(size=26 if len(title) <= 30 else 20)
    width = draw.textlength(title, font=font)
    draw.text(((SIZE - width) / 2, SIZE - 48), title, fill=text_colour, font=font)


# Silhouettes: lists of polygons in a 512 × 512 frame, jittered by the seed.


def _jitter(points: Points, rng: random.Random, amount: float = 10) -> Points:
    return [(x + rng.uniform(-amount, amount), y + rng.uniform(-amount, amount)) for x, y in points]


def top(rng: random.Random) -> list[Points]:
    return [
        _jitter(
            [
                (190, 110),
                (322, 110),
                (430, 200),
                (395, 240),
                (350, 210),
                (350, 420),
                (162, 420),
                (162, 210),
                (117, 240),
                (82, 200),
            ],
            rng,
        )
    ]


def vest(rng: random.Random) -> list[Points]:
    return [_jitter([(200, 100), (312, 100), (360, 170), (370, 420), (142, 420), (152, 170)], rng)]


def pants(rng: random.Random) -> list[Points]:
    return [_jitter([(170, 90), (342, 90), (372, 420), (290, 420), (256, 200), (222, 420), (140, 420)], rng)]


def shoe(rng: random.Random) -> list[Points]:
    return [
        _jitter([(90, 230), (200, 200), (260, 260), (400, 300), (430, 350), (420, 380), (90, 380)], rng),
        _jitter([(80, 380), (440, 380), (440, 405), (80, 405)], rng, 4),
    ]


def sock(rng: random.Random) -> list[Points]:
    return [_jitter([(200, 90), (300, 90), (300, 300), (380, 330), (390, 400), (300, 420), (200, 380)], rng)]


def bag(rng: random.Random) -> list[Points]:
    return [
        _jitter([(160, 140), (352, 140), (372, 420), (140, 420)], rng),
        _jitter([(200, 90), (312, 90), (312, 140), (200, 140)], rng, 6),
        _jitter([(190, 300), (322, 300), (322, 380), (190, 380)], rng, 6),
    ]


def bottle(rng: random.Random) -> list[Points]:
    return [
        _jitter([(215, 90), (297, 90), (297, 140), (330, 170), (330, 420), (182, 420), (182, 170), (215, 140)], rng)
    ]


def hat(rng: random.Random) -> list[Points]:
    dome = [(256 + 120 * math.cos(a), 300 - 150 * math.sin(a)) for a in (i * math.pi / 12 for i in range(13))]
    return [_jitter(dome, rng, 5), _jitter([(90, 290), (422, 290), (422, 330), (90, 330)], rng, 6)]


def glove(rng: random.Random) -> list[Points]:
    return [
        _jitter(
            [
                (180, 420),
                (180, 200),
                (200, 120),
                (240, 110),
                (300, 130),
                (320, 200),
                (380, 190),
                (390, 230),
                (330, 310),
                (330, 420),
            ],
            rng,
        )
    ]


def long_item(rng: random.Random) -> list[Points]:
    return [
        _jitter([(120, 380), (380, 110), (400, 130), (140, 400)], rng, 6),
        _jitter([(160, 400), (410, 170), (430, 190), (180, 420)], rng, 6),
        _jitter([(100, 360), (150, 360), (150, 420), (100, 420)], rng, 4),
    ]


def gadget(rng: random.Random) -> list[Points]:
    return [
        regular(256, 250, 130 + rng.uniform(-10, 10), 24),
        _jitter([(120, 240), (392, 240), (392, 270), (120, 270)], rng, 5),
    ]


def tent(rng: random.Random) -> list[Points]:
    return [_jitter([(256, 100), (440, 420), (72, 420)], rng), _jitter([(256, 220), (320, 420), (192, 420)], rng, 6)]


def roll(rng: random.Random) -> list[Points]:
    return [
        _jitter([(110, 170), (402, 170), (430, 260), (402, 350), (110, 350), (82, 260)], rng),
        _jitter([(180, 140), (230, 140), (230, 380), (180, 380)], rng, 5),
    ]


def box(rng: random.Random) -> list[Points]:
    return [
        _jitter([(130, 160), (382, 160), (382, 400), (130, 400)], rng),
        _jitter([(220, 110), (292, 110), (292, 160), (220, 160)], rng, 5),
    ]


SILHOUETTES: dict[str, Callable[[random.Random], list[Points]]] = {
    "Jackets": top,
    "Fleece": top,
    "Base Layers": top,
    "Hoodies": top,
    "Shirts": top,
    "Kids' Outerwear": top,
    "Ponchos": tent,
    "Vests": vest,
    "Running Vests": vest,
    "Pants": pants,
    "Tights": pants,
    "Shorts": pants,
    "Running Shoes": shoe,
    "Hiking Boots": shoe,
    "Hiking Shoes": shoe,
    "Sandals": shoe,
    "Socks": sock,
    "Gaiters": sock,
    "Backpacks": bag,
    "Dry Bags": bag,
    "First Aid": box,
    "Water Bottles": bottle,
    "Lanterns": bottle,
    "Water Treatment": bottle,
    "Camp Kitchen": bottle,
    "Hats": hat,
    "Neckwear": roll,
    "Gloves": glove,
    "Trekking Poles": long_item,
    "Belts": long_item,
    "Headlamps": gadget,
    "Navigation": gadget,
    "Sunglasses": gadget,
    "Stoves": box,
    "Tents": tent,
    "Sleeping Bags": roll,
    "Sleeping Pads": roll,
    "Camp Furniture": box,
}


def silhouette(product_type: str) -> Callable[[random.Random], list[Points]]:
    return SILHOUETTES.get(product_type, box)


def encode_jpeg(image: Image.Image) -> bytes:
    """Highest JPEG quality that keeps the file under MAX_BYTES."""
    for quality in range(90, 40, -5):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    return buffer.getvalue()


if __name__ == "__main__":
    main()
