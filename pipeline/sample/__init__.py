"""The bundled SYNTHETIC sample: invented posts and photos, so dnflow runs end to end with no
credentials and no network.

Nothing here is real. Every post carries `"dnflow_synthetic": true` and the source "dnflow
synthetic sample"; accounts say so in their description; photos are drawn locally, captioned
"dnflow synthetic sample", and their URLs use the reserved `.invalid` top-level domain, which
can never resolve. Links point at `.example` domains (reserved too).

The same logical stream of posts renders as v1.1 tweets or as v2 response pages, so both
formats of one seed normalise to the same records. Generation is deterministic (fixed seeds,
no clock, no network) and streaming.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson
from django.conf import settings

from .generator import SYNTHETIC_SOURCE, generate_posts
from .images import SAMPLE_PHOTO_HOST, draw_photo, parse_photo_url, photo_url

__all__ = [
    "SAMPLE_PHOTO_HOST",
    "SYNTHETIC_SOURCE",
    "ensure_sample",
    "generate_posts",
    "local_photo_path",
    "photo_url",
]

SAMPLE_SIZE = 3000
SAMPLE_SEED = 2024
# Bump when the generator changes: the cached sample file is named after it.
SAMPLE_VERSION = 2


def sample_dir() -> Path:
    return Path(settings.DNFLOW_DATA_DIR) / "sample"


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            write(out)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the web server may read it too
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def ensure_sample() -> Path:
    """The bundled synthetic sample archive (v1.1 JSONL), generated on first use."""
    path = sample_dir() / f"synthetic-sample-v{SAMPLE_VERSION}.jsonl"
    if not path.exists():

        def write(out) -> None:
            for tweet in generate_posts(SAMPLE_SIZE, seed=SAMPLE_SEED, fmt="v1"):
                out.write(orjson.dumps(tweet))
                out.write(b"\n")

        _write_atomically(path, write)
    return path


def local_photo_path(url: str) -> Path | None:
    """The generated image file behind a sample photo URL; None for any other URL."""
    parsed = parse_photo_url(url)
    if parsed is None:
        return None
    index, variant, name = parsed
    path = sample_dir() / "photos" / name
    if not path.exists():
        image = draw_photo(index, variant)
        _write_atomically(path, lambda out: image.save(out, format="JPEG", quality=85))
    return path
