"""Refusing a bad archive from its first bytes: what the web form can tell at once.

check_archive_start (a path) and check_archive_upload (an open file) run the very copy an import
runs (pipeline.formats.copying) on the first HEAD_BYTES of each file (gzip undone), writing
nowhere. Whatever the copy refuses within those bytes they refuse with the same message: a binary
file, a ZIP, UTF-16, a web page, text that is not JSON, JSON that is not X data, a file that is
not UTF-8 at all, an empty or cut gzip. What can only be known further in (a broken element in
the middle of a big array, a decompression bomb) is the import's to find.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .copying import copy_stream, gzip_errors, input_files, one_of_many
from .reading import GZIP_MAGIC
from .report import NotPosts
from .zipped import EMPTY_ZIP, ZIP_MAGIC, chosen_members, is_zip, member, opened

# Enough for the first lines of any format (a v2 page of 500 posts is about 2 MB) and for the
# first items of a big document; read in a few milliseconds.
HEAD_BYTES = 4 * 1024 * 1024


class _HeadReached(Exception):
    """The copy asked for more than the start: nothing in the start was refused."""


class _Head:
    """The first `limit` bytes of a stream: reading on past them raises _HeadReached."""

    def __init__(self, stream, limit: int) -> None:
        self._stream = stream
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            raise _HeadReached
        data = self._stream.read(self._left if size is None or size < 0 else min(size, self._left))
        self._left -= len(data)
        return data


class _Nowhere:
    """What the check's copy writes to: nothing is kept (and, unlike /dev/null, it can be
    truncated, as a copy takes back leading blank lines)."""

    def __init__(self, devnull) -> None:
        self._fd = devnull.fileno()
        self._position = 0

    def write(self, data: bytes) -> int:
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def seek(self, position: int) -> None:
        self._position = position

    def truncate(self) -> None:
        pass

    def fileno(self) -> int:
        return self._fd


@contextlib.contextmanager
def _head_of(raw: BinaryIO) -> Iterator[_Head]:
    """The first HEAD_BYTES of a binary file from its start, gzip undone."""
    raw.seek(0)
    gzipped = raw.read(2) == GZIP_MAGIC
    raw.seek(0)
    if gzipped:
        with gzip.GzipFile(fileobj=raw, mode="rb") as unpacked:
            yield _Head(unpacked, HEAD_BYTES)
    else:
        yield _Head(raw, HEAD_BYTES)


def _check(raw: BinaryIO, name: str, size: int | None = None, *, damage=gzip_errors) -> None:
    """`size`: the file's, when known (a ZIP member's: seeking to its end would unpack all of it).
    `damage(name)`: a context that says in words what a damaged compressed stream raises."""
    if size is None:
        raw.seek(0, os.SEEK_END)
        size = raw.tell()
    if size == 0:
        raise NotPosts(f"{name} is empty (0 bytes): there is nothing to import. Choose the file the export wrote.")
    with (
        _head_of(raw) as stream,
        open(os.devnull, "wb") as devnull,
        tempfile.TemporaryDirectory(prefix="dnflow-check-") as scratch,
        damage(name),
        contextlib.suppress(_HeadReached),
    ):
        copy_stream(stream, _Nowhere(devnull), name, reopen=lambda: _head_of(raw), workdir=Path(scratch))


def check_archive_start(path: Path) -> None:
    """Raise ArchiveError, with the message the import would give, if the file or folder at `path`
    would be refused on what its first bytes hold. Reads at most HEAD_BYTES of each file."""
    path = Path(path)
    if path.is_file() and is_zip(path):
        with opened(path, path.name) as archive:
            _check_zip(archive, path.name)
        return
    files, _skipped = input_files([path])
    for file, name in files:
        with file.open("rb") as raw:
            try:
                _check(raw, name)
            except NotPosts as refused:
                if len(files) == 1:
                    raise
                raise one_of_many(refused, name) from None


def check_archive_upload(upload: BinaryIO, name: str) -> None:
    """check_archive_start for an open binary file that may have no path (a small upload that
    Django keeps in memory): seekable, read from its start, left open and rewound."""
    try:
        upload.seek(0)
        if upload.read(len(ZIP_MAGIC)) in (ZIP_MAGIC, EMPTY_ZIP):
            upload.seek(0)
            with opened(upload, name) as archive:
                _check_zip(archive, name)
            return
        _check(upload, name)
    finally:
        upload.seek(0)


def _check_zip(archive: zipfile.ZipFile, name: str) -> None:
    """A ZIP's members that the import reads, each checked as a file would be."""
    chosen, _beside, _left_out = chosen_members(archive, name)
    for info in chosen:
        with member(archive, info, name) as source:
            # A zlib error here is the ZIP's (member() says so), not a gzip's.
            member_name = f"{name}/{info.filename}"
            try:
                _check(source, member_name, size=info.file_size, damage=lambda _: contextlib.nullcontext())
            except NotPosts as refused:
                if len(chosen) == 1:
                    raise
                raise one_of_many(refused, member_name) from None
