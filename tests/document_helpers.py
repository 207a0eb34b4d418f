"""SYNTHETIC single-document archives of a chosen size (a JSON array, a v1.1 search response,
tweets.js, one v2 response page), written without ever holding them whole, and what a copy of
each must hold: one orjson line per element.

Posts come from pipeline.sample's generator, cycled (with fresh ids) until the file is big enough.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import orjson

from pipeline.sample import generate_posts

from .conftest import PROJECT_DIR

KINDS = ("array", "statuses", "tweets.js", "v2 page")
_PRETTY = orjson.OPT_INDENT_2


def synthetic_v1_posts(seed: int = 7):
    """Endless synthetic v1.1 posts: 2,000 generated ones, then the same with new ids."""
    base = list(generate_posts(2000, seed=seed))
    for round_number in itertools.count():
        for post in base:
            copy = dict(post)
            copy["id_str"] = str(int(post["id_str"]) + round_number * 10_000_000)
            copy["id"] = int(copy["id_str"])
            yield copy


def _v2_pages(seed: int = 7):
    base = list(generate_posts(2000, seed=seed, fmt="v2"))
    for round_number in itertools.count():
        for page in base:
            data = []
            for tweet in page["data"]:
                tweet = dict(tweet)
                tweet["id"] = str(int(tweet["id"]) + round_number * 10_000_000)
                data.append(tweet)
            yield {**page, "data": data}


class Expected:
    """The copy's lines, hashed as they are written: orjson's compact form of each element."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.lines = 0

    def add(self, element: object) -> None:
        self.digest.update(orjson.dumps(element) + b"\n")
        self.lines += 1


def write_document(path: Path, kind: str, size: int, *, pretty: bool = True) -> Expected:
    """A synthetic single-document archive of about `size` bytes; returns what its copy holds
    (for a v2 page: only the number of posts, in `lines`; the page is split when copied)."""
    expected = Expected()
    option = _PRETTY if pretty else 0
    separator = b",\n" if pretty else b","
    with path.open("wb") as out:
        if kind == "v2 page":
            return _write_page(out, size, option, separator)
        out.write({"array": b"[", "statuses": b'{"statuses": [', "tweets.js": b"window.YTD.tweets.part0 = ["}[kind])
        for number, post in enumerate(synthetic_v1_posts()):
            element = {"tweet": {k: v for k, v in post.items() if k != "user"}} if kind == "tweets.js" else post
            if number:
                out.write(separator)
            out.write(orjson.dumps(element, option=option))
            expected.add(element)
            if out.tell() >= size:
                break
        out.write(b"]\n" if kind != "statuses" else b'], "search_metadata": {"count": 100}}\n')
    return expected


def _write_page(out, size: int, option: int, separator: bytes) -> Expected:
    """One v2 page: every post in `data`, every user, original and photo in `includes` (kept on
    disk while the data is written)."""
    expected = Expected()
    seen: dict[str, set] = {"users": set(), "tweets": set(), "media": set()}
    spool = {section: out.name + f".{section}" for section in seen}
    handles = {section: open(name, "wb") for section, name in spool.items()}  # noqa: SIM115
    try:
        out.write(b'{"data": [')
        for page in _v2_pages():
            for tweet in page["data"]:
                if expected.lines:
                    out.write(separator)
                out.write(orjson.dumps(tweet, option=option))
                expected.lines += 1
            for section, key in (("users", "id"), ("tweets", "id"), ("media", "media_key")):
                for item in page["includes"].get(section, []):
                    if item[key] not in seen[section]:
                        seen[section].add(item[key])
                        handles[section].write((separator if handles[section].tell() else b"") + orjson.dumps(item))
            if out.tell() >= size * 0.7:
                break
        out.write(b'], "includes": {')
        for number, section in enumerate(seen):
            handles[section].close()
            out.write((b", " if number else b"") + orjson.dumps(section) + b": [")
            with open(spool[section], "rb") as part:
                while chunk := part.read(1024 * 1024):
                    out.write(chunk)
            out.write(b"]")
        out.write(b'}, "meta": {"result_count": %d}}\n' % expected.lines)
    finally:
        for section, handle in handles.items():
            handle.close()
            Path(spool[section]).unlink(missing_ok=True)
    return expected


def gzip_file(path: Path) -> Path:
    packed = path.with_name(path.name + ".gz")
    with path.open("rb") as source, gzip.open(packed, "wb", compresslevel=1) as target:
        while chunk := source.read(1024 * 1024):
            target.write(chunk)
    return packed


# Run in a fresh process so that its peak memory is its own (VmHWM of its /proc/self/status).
_MEASURE = """
import hashlib, sys
from pathlib import Path
from pipeline.formats import ImportReport, copy_archive, iter_posts
source, raw = Path(sys.argv[1]), Path(sys.argv[2])
report = copy_archive([source], raw)
digest = hashlib.sha256()
with raw.open("rb") as copied:
    while chunk := copied.read(1 << 20):
        digest.update(chunk)
read = ImportReport()
posts = sum(1 for _ in iter_posts(raw, read))
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak * 1024, digest.hexdigest(), report.sources[0]["lines"], posts, read.bad_lines, report.sources[0]["format"],
      sep="\\t")
"""


def import_in_a_fresh_process(source: Path, raw: Path) -> tuple[int, str, int, int, int, str]:
    """(peak bytes, sha256 of the copy, lines copied, posts read back, bad lines, format)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(source), str(raw)],
        cwd=PROJECT_DIR,
        env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    peak, digest, lines, posts, bad, label = done.stdout.strip().split("\t")
    return int(peak), digest, int(lines), int(posts), int(bad), label
