"""Importing an archive by hard link instead of a copy: DNFLOW_ARCHIVE_IMPORT=link (opt-in).

By default an archive is copied, byte for byte: the raw posts are the archival original that
every output of the search derives from, and a copy keeps them so whatever later happens to the
file they came from. A hard link shares that file instead. The import then writes nothing and
only reads the archive once (checksum, line count, UTF-8 check), but an edit of the original in
place (a tool that appends to it, a hand fix) changes the search's raw posts too, and sources.json
no longer describes them. That is the trade: speed for protection against in-place edits.

Only a file that a copy would reproduce byte for byte is linked: one plain (not gzipped) JSONL
file, UTF-8 without a byte order mark, ending with a newline, that this process may hard-link
(same filesystem, and the kernel's rules on linking others' files). Anything else is copied.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from pathlib import Path

import orjson

from . import checks
from .checks import CHUNK, COPY_CHUNK, BackgroundChecksum, Utf8Check, check_text_start, first_lines_recognised
from .pagecache import MIN_BYTES, DropBehind
from .reading import GZIP_MAGIC

LINKED = "hard link"  # the "imported" field of a linked file's sources.json entry


def link_archive(path: Path, name: str, staged: Path, on_read: Callable[[int], None] | None = None) -> dict | None:
    """Hard-link `path` at `staged` and return its sources.json entry (without first_line), or
    None when it has to be copied. Raises ArchiveError (and links nothing) for a file that the
    copy would refuse as well. `on_read(bytes read)`: told as the file is read for its checksum."""
    kind = _linkable_kind(path, name)
    if kind is None:
        return None
    try:
        os.link(path, staged)
    except OSError:  # another filesystem, or a file the kernel will not let us link
        return None
    try:
        sha256, lines = _checksum_and_lines(staged, name, on_read)
        size = staged.stat().st_size
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return {
        "name": name,
        "size": size,
        "sha256": sha256,
        "format": f"JSONL ({kind})",
        "lines": lines,
        "line_for_line": True,
        "imported": LINKED,
    }


def _linkable_kind(path: Path, name: str) -> str | None:
    """The kind of posts of a JSONL file that can be linked as it is, else None."""
    try:
        with path.open("rb") as handle:
            head = handle.read(CHUNK)
            if not head or head.startswith((GZIP_MAGIC, codecs.BOM_UTF8)) or head.lstrip()[:1] != b"{":
                return None
            check_text_start(head, name)
            first_line = head.lstrip().split(b"\n", 1)[0]
            if b"\n" not in head.lstrip():
                return None  # a first line longer than a chunk: let the copy work it out
            orjson.loads(first_line)
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                return None  # the copy would add the missing newline
    except (OSError, orjson.JSONDecodeError):
        return None
    return first_lines_recognised(head)


def _checksum_and_lines(path: Path, name: str, on_read: Callable[[int], None] | None) -> tuple[str, int]:
    """What the copy would have found reading the file: its SHA-256 and lines, checking UTF-8."""
    checksum = BackgroundChecksum()
    utf8 = Utf8Check(name)
    lines = 0
    try:
        with path.open("rb", buffering=0) as handle:
            # Read once here, and once more by the summarise pass: not kept in memory (see pagecache).
            big = os.fstat(handle.fileno()).st_size >= MIN_BYTES
            drop = DropBehind(handle.fileno(), sequential_reads=True) if big else None
            position = 0
            while chunk := handle.read(COPY_CHUNK):
                checksum.update(chunk)
                utf8.check(chunk, lines)
                lines += checks.newlines(chunk)
                position += len(chunk)
                if drop is not None:
                    drop.advance(position)
                if on_read is not None:
                    on_read(position)
        utf8.finish(lines)
        return checksum.hexdigest(), lines
    finally:
        checksum.close()
