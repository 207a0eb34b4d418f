"""An import is refused, while it streams and before the disk fills, when the archive is larger
than DNFLOW_MAX_ARCHIVE_BYTES once decompressed, or when a gzip expands far more than archives
of posts do (a decompression bomb); nothing of it is left behind.

The posts are SYNTHETIC (tests.formats_helpers).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zlib

import orjson
import pytest

from pipeline.formats import ArchiveError, copy_archive, limits
from pipeline.formats import copying as copying_module

from .conftest import PROJECT_DIR
from .formats_helpers import import_files, v1_tweet, write_jsonl

MIB = 1024 * 1024


def bomb(path, *, expanded: int, first: bytes = b"") -> None:
    """A gzip of one post's line, then `expanded` bytes of newlines (about 1,000x smaller packed):
    repeated members of one compressed block, so a bomb of gigabytes is made in milliseconds."""
    block = 16 * MIB
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    member = packer.compress(b"\n" * block) + packer.flush()
    with path.open("wb") as out:
        out.write(gzip.compress(first or orjson.dumps(v1_tweet("1", "the only post")) + b"\n"))
        for _ in range(expanded // block):
            out.write(member)


class WrittenBytes:
    """Records the most bytes the copy ever had in its staged raw file."""

    def __init__(self, monkeypatch) -> None:
        self.most = 0
        original = copying_module._write_atomically

        def spying(dest, write):
            def counting(out):
                real_write = out.write

                def write_and_count(data):
                    done = real_write(data)
                    self.most = max(self.most, out.tell())
                    return done

                out.write = write_and_count
                return write(out)

            return original(dest, counting)

        monkeypatch.setattr(copying_module, "_write_atomically", spying)


def refused(tmp_path, paths, **options) -> str:
    dest = tmp_path / "out" / "tweets.jsonl"
    with pytest.raises(ArchiveError) as caught:
        copy_archive(paths, dest, **options)
    assert not dest.exists()
    assert not list(dest.parent.iterdir()) if dest.parent.exists() else True, "nothing partial is left behind"
    return str(caught.value)


def test_a_gzip_bigger_than_the_limit_once_decompressed_stops_at_the_limit(tmp_path, monkeypatch):
    archive = tmp_path / "big.jsonl.gz"
    bomb(archive, expanded=512 * MIB)
    written = WrittenBytes(monkeypatch)

    message = refused(tmp_path, [archive], max_bytes=64 * MIB)

    assert "big.jsonl.gz" in message and "64 MiB" in message and "DNFLOW_MAX_ARCHIVE_BYTES" in message
    assert "raise" in message  # what to do about it
    # Stopped while streaming: never more than the limit and one read's worth on the disk.
    assert 0 < written.most <= 64 * MIB + 8 * MIB, written.most


def test_the_limit_counts_every_file_of_the_import_and_plain_files_are_refused_before_reading(tmp_path):
    posts = [v1_tweet(str(n), "x" * 500) for n in range(1, 3000)]
    first = write_jsonl(tmp_path / "a.jsonl", posts)
    second = write_jsonl(tmp_path / "b.jsonl", posts)
    size = first.stat().st_size

    message = refused(tmp_path, [first, second], max_bytes=size + size // 2)
    assert "DNFLOW_MAX_ARCHIVE_BYTES" in message and "b.jsonl" in message

    posts_read, _ = import_files([first, second], tmp_path / "ok" / "tweets.jsonl")  # the default limit is far off
    assert len(posts_read) == len(posts)
    assert copy_archive([first], tmp_path / "nolimit" / "tweets.jsonl", max_bytes=0).sources  # 0: no limit


def test_a_decompression_bomb_is_refused_by_its_expansion_ratio_before_the_size_limit(tmp_path, monkeypatch):
    # The ratio is judged once this much came out (1 GiB by default: a test writes less).
    monkeypatch.setattr(limits, "RATIO_FLOOR_BYTES", 32 * MIB)
    archive = tmp_path / "tiny.json.gz"
    bomb(archive, expanded=512 * MIB)  # about 0.5 MB expanding over 1,000x
    written = WrittenBytes(monkeypatch)

    message = refused(tmp_path, [archive])  # the default size limit is far higher

    assert "tiny.json.gz" in message and f"{limits.MAX_EXPANSION_RATIO:,}" in message
    assert "gunzip" in message  # what to do about it
    assert 0 < written.most <= 32 * MIB + 8 * MIB, written.most


def test_a_real_sized_gzip_is_not_taken_for_a_bomb(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "RATIO_FLOOR_BYTES", 64 * 1024)
    archive = tmp_path / "posts.jsonl.gz"
    archive.write_bytes(
        gzip.compress(b"".join(orjson.dumps(v1_tweet(str(n), f"post {n}")) + b"\n" for n in range(1, 5000)))
    )

    posts, _ = import_files([archive], tmp_path / "s" / "tweets.jsonl")

    assert len(posts) == 4999


def test_the_setting_is_read_from_the_environment_with_a_documented_default():
    probe = "from django.conf import settings; print(settings.DNFLOW_MAX_ARCHIVE_BYTES)"
    env = {k: v for k, v in os.environ.items() if k != "DNFLOW_MAX_ARCHIVE_BYTES"}
    env["DJANGO_SETTINGS_MODULE"] = "dnflow_site.settings"

    def setting(**extra) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {probe}"],
            cwd=PROJECT_DIR,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert setting().stdout.strip() == str(limits.DEFAULT_MAX_ARCHIVE_BYTES)
    assert setting(DNFLOW_MAX_ARCHIVE_BYTES="1048576").stdout.strip() == "1048576"
    bad = setting(DNFLOW_MAX_ARCHIVE_BYTES="lots")
    assert bad.returncode != 0 and "DNFLOW_MAX_ARCHIVE_BYTES='lots' is not a whole number" in bad.stderr
