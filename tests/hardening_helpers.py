"""Helpers for the hardening tests (bad input, faults, security): builders and checks they share.

The posts built here are SYNTHETIC (made up for these tests), in the v1.1 shape.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import lzma
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.records import Post

from .conftest import TEST_REDIS_URL
from .worker_helpers import PROJECT_DIR, worker_database_url

_TEXT_FIELDS = ("id", "created_at", "user", "text", "lang", "retweeted_id", "quoted_id", "in_reply_to_id")
_TEXT_FIELDS += ("in_reply_to_user", "source_format")
_COUNT_FIELDS = ("retweet_count", "like_count", "reply_count", "quote_count")
_LIST_FIELDS = ("hashtags", "mentions", "urls", "photos")


def assert_well_formed(post: Post) -> None:
    """A post every later step can use: an id, and each field of the type `Post` declares."""
    assert isinstance(post, Post)
    assert isinstance(post.id, str) and post.id.strip(), f"a post without a usable id: {post!r}"
    for name in _TEXT_FIELDS:
        assert isinstance(getattr(post, name), str), f"{name} is {getattr(post, name)!r} in {post!r}"
    for name in _COUNT_FIELDS:
        assert type(getattr(post, name)) is int, f"{name} is {getattr(post, name)!r} in {post!r}"
    for name in ("followers", "following"):
        assert getattr(post, name) is None or type(getattr(post, name)) is int, f"{name} in {post!r}"
    for name in _LIST_FIELDS:
        values = getattr(post, name)
        assert isinstance(values, list) and all(isinstance(v, str) for v in values), f"{name} in {post!r}"
    assert isinstance(post.has_media, bool)


# --- synthetic archives --------------------------------------------------------------------------


def synthetic_tweet(
    post_id: int,
    text: str,
    *,
    user: str = "ann",
    hashtags: Iterable[str] = (),
    mentions: Iterable[str] = (),
    urls: Iterable[str] = (),
    followers: int = 10,
    following: int = 5,
    retweet_count: int = 0,
    when: str = "Mon Mar 04 10:00:00 +0000 2024",
) -> dict:
    """A SYNTHETIC v1.1 tweet (tweet_mode=extended) with exactly the entities given."""
    return {
        "created_at": when,
        "id": post_id,
        "id_str": str(post_id),
        "full_text": text,
        "lang": "en",
        "user": {
            "id_str": f"9{post_id}",
            "screen_name": user,
            "followers_count": followers,
            "friends_count": following,
        },
        "entities": {
            "hashtags": [{"text": tag, "indices": [0, 1]} for tag in hashtags],
            "user_mentions": [{"screen_name": name, "id_str": "1"} for name in mentions],
            "urls": [{"url": "https://t.co/x", "expanded_url": url} for url in urls],
        },
        "retweet_count": retweet_count,
        "favorite_count": 0,
    }


def write_jsonl(path: Path, documents: Iterable[dict], *, extra_lines: Iterable[str] = ()) -> Path:
    lines = [json.dumps(doc) for doc in documents] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def small_archive(path: Path, posts: int = 3) -> Path:
    """A valid SYNTHETIC archive of a few posts."""
    return write_jsonl(path, [synthetic_tweet(1000 + n, f"post number {n} #climate") for n in range(posts)])


# Over 10 MB, the importer's line limit (pipeline.formats.reading.MAX_LINE_BYTES).
HUGE_TEXT_BYTES = 10 * 1024 * 1024 + 4096

# (case, file name, bytes, words the refusal must contain: the problem, then the fix)
BAD_ARCHIVES = {
    "empty": ("empty.jsonl", lambda: b"", ("is empty", "Choose the file the export wrote")),
    "binary": (
        "photo.jsonl",
        lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
        ("is a binary file, not JSON text", "choose the file of posts"),
    ),
    "a line over 10 MB": (
        "huge.jsonl",
        lambda: json.dumps(synthetic_tweet(7, "x" * HUGE_TEXT_BYTES)).encode() + b"\n",
        ("over the 10,485,760-byte limit", "Check that the archive is X/Twitter data"),
    ),
    "unknown format": (
        "export.csv",
        lambda: b"id,text\n1,hello\n2,world\n",
        ("is not in a format dnflow reads", "dnflow imports JSONL"),
    ),
    "invalid UTF-8": (  # most of its lines: one bad line among many is skipped and reported instead
        "latin1.jsonl",
        lambda: json.dumps(synthetic_tweet(8, "cafe")).replace("cafe", "caf\\u00e9").encode() + b"\n"
        + json.dumps(synthetic_tweet(9, "CAFE")).encode().replace(b"CAFE", b"caf\xe9") + b"\n"
        + json.dumps(synthetic_tweet(10, "CAFE")).encode().replace(b"CAFE", b"caf\xe9") + b"\n",
        ("is not valid UTF-8 text (line 2)", "Convert the file to UTF-8"),
    ),
    "truncated gzip": (
        "tweets.jsonl.gz",
        lambda: gzip.compress(
            "".join(json.dumps(synthetic_tweet(100 + n, f"post {n} " * 40)) + "\n" for n in range(200)).encode()
        )[:3000],
        ("is a truncated gzip file", "copy or download it again"),
    ),
    "bzip2": (
        "tweets.jsonl.bz2",
        lambda: bz2.compress(_lines(3)),
        ("tweets.jsonl.bz2 is bzip2-compressed", "(bunzip2 -k tweets.jsonl.bz2)", "compress it with gzip instead"),
    ),
    "xz": ("tweets.jsonl.xz", lambda: lzma.compress(_lines(3)), ("is xz-compressed", "(unxz -k tweets.jsonl.xz)")),
    "a gzipped tar": (
        "collection.tar.gz",
        lambda: gzip.compress(_tar({"collection/tweets.jsonl": _lines(3)})),
        ("collection.tar.gz is a tar archive: extract it first (tar xf collection.tar.gz)",),
    ),
    "post ids": (
        "ids.txt",
        lambda: b"1380242611781386245\n1380242611781386246\n",
        ("ids.txt is a list of post ids, not of posts", "--ids ids.txt"),
    ),
    "JSON documents one after another": (  # as `jq . a.json` writes several
        "pretty.json",
        lambda: b"".join(json.dumps(synthetic_tweet(n, "x"), indent=2).encode() + b"\n" for n in (11, 12)),
        ("several JSON documents one after another", "jq -c . pretty.json > pretty.jsonl"),
    ),
}  # fmt: skip


def _lines(posts: int) -> bytes:
    return "".join(json.dumps(synthetic_tweet(200 + n, f"post {n}")) + "\n" for n in range(posts)).encode()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def assert_no_complete_outputs(folder: Path | None) -> None:
    """A failed search's folder holds nothing that looks finished, and no leftover temporaries."""
    if folder is None or not folder.exists():
        return
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert "summary.json" not in names, names
    assert not [n for n in names if n.endswith(".zip")], names
    assert not [n for n in names if n.startswith("count-") or n.endswith(".csv")], names
    assert not [n for n in names if Path(n).name.startswith(".")], names


# --- the command line ----------------------------------------------------------------------------


def run_cli(data_dir: Path, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """`manage.py run_search ...` in a real process on the test database and data folder."""
    environment = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": TEST_REDIS_URL,  # its heartbeats: never REDIS_URL's database, which may be a real queue
        "DNFLOW_DATA_DIR": str(data_dir),
        "DNFLOW_FETCH_PHOTOS": "0",
        "X_BEARER_TOKEN": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "run_search", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- a private Redis server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, on a free port, that the test may stop and start again.

    Nothing is persisted: a restart comes back empty, as a Redis without persistence (or one
    whose disk was lost) does.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self, down_for: float = 1.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- looking for a secret ------------------------------------------------------------------------


def redis_contents(conn) -> bytes:
    """Every key and value in a Redis database, compressed values (rq's job data) unpacked too."""
    parts: list[bytes] = []
    for key in conn.scan_iter(count=1000):
        parts.append(key)
        kind = conn.type(key)
        if kind == b"string":
            values = [conn.get(key) or b""]
        elif kind == b"hash":
            values = [b for pair in conn.hgetall(key).items() for b in pair]
        elif kind == b"list":
            values = conn.lrange(key, 0, -1)
        elif kind == b"set":
            values = list(conn.smembers(key))
        elif kind == b"zset":
            values = [member for member, _score in conn.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            values = [b for _id, fields in conn.xrange(key) for pair in fields.items() for b in pair]
        else:
            values = []
        for value in values:
            parts.append(value)
            with contextlib.suppress(zlib.error):
                parts.append(zlib.decompress(value))
    return b"\n".join(parts)


def files_contents(folder: Path) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every file under `folder`, and of every member of the zips there."""
    import zipfile

    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        yield str(path), data
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    yield f"{path}!{member}", archive.read(member)
