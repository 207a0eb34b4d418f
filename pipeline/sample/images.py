"""The sample's SYNTHETIC photos: drawn locally from their number, never fetched.

Each base image is a distinct arrangement of shapes; every third one also has near-duplicate
variants (brighter; cropped and recoloured a little) so that perceptual matching has real
look-alikes to group. Every image is captioned "dnflow synthetic sample".
"""

from __future__ import annotations

import random
import re
from urllib.parse import urlsplit

SAMPLE_PHOTO_HOST = "media.sample.dnflow.invalid"  # reserved .invalid TLD: honest, never resolvable
PHOTO_COUNT = 240  # base images
VARIANTS = 2  # near-duplicates of every third base image: img-0003-v1.jpg, img-0003-v2.jpg
PHOTO_SIZE = (320, 240)
_PHOTO_PATH = re.compile(r"^/photos/img-(\d{4})(?:-v(\d))?\.jpg$")


def photo_url(index: int, variant: int = 0) -> str:
    suffix = f"-v{variant}" if variant else ""
    return f"https://{SAMPLE_PHOTO_HOST}/photos/img-{index:04d}{suffix}.jpg"


def has_variants(index: int) -> bool:
    return index % 3 == 0


def parse_photo_url(url: str) -> tuple[int, int, str] | None:
    """(image number, variant, file name) of a sample photo URL; None for any other URL."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.hostname != SAMPLE_PHOTO_HOST:
        return None
    found = _PHOTO_PATH.match(parts.path)
    if not found:
        return None
    index, variant = int(found.group(1)), int(found.group(2) or 0)
    if index >= PHOTO_COUNT or variant > VARIANTS or (variant and not has_variants(index)):
        return None
    return index, variant, parts.path.rsplit("/", 1)[1]


def draw_photo(index: int, variant: int = 0):
    """The PIL image for a sample photo: the same pixels every time for the same arguments."""
    from PIL import Image, ImageDraw, ImageEnhance, ImageFont

    rng = random.Random(1_000_003 * index + 17)
    width, height = PHOTO_SIZE
    image = Image.new("RGB", PHOTO_SIZE)
    draw = ImageDraw.Draw(image)
    # A coarse grid of random colours gives each picture its own low frequencies, which is what a
    # perceptual hash compares; a few shapes on top make it look less like a test card.
    columns, rows = 8, 6
    for column in range(columns):
        for row in range(rows):
            colour = tuple(rng.randrange(256) for _ in range(3))
            box = (
                column * width // columns,
                row * height // rows,
                (column + 1) * width // columns,
                (row + 1) * height // rows,
            )
            draw.rectangle(box, fill=colour)
    for _ in range(rng.randrange(3, 6)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x0, y0 = rng.randrange(-20, width - 40), rng.randrange(-20, height - 60)
        box = (x0, y0, x0 + rng.randrange(30, 90), y0 + rng.randrange(30, 80))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour)
        else:
            draw.rectangle(box, fill=colour)
    draw.rectangle((0, height - 22, width, height), fill=(20, 20, 20))
    draw.text((6, height - 18), f"dnflow synthetic sample #{index:04d}", fill=(240, 240, 240),
              font=ImageFont.load_default(size=12))  # fmt: skip

    if variant == 1:
        image = ImageEnhance.Brightness(image).enhance(1.15)
    elif variant == 2:
        margin_x, margin_y = width // 80, height // 80
        image = image.crop((margin_x, margin_y, width - margin_x, height - margin_y)).resize(PHOTO_SIZE)
        image = ImageEnhance.Color(image).enhance(0.85)
    return image
