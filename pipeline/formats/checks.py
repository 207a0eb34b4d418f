"""What an import checks as it reads an archive: that it is UTF-8 text of a kind dnflow knows,
and its checksum, computed beside the copy.

Shared by the copy (pipeline.formats.copying) and the hard-link import (pipeline.formats.linking).
"""

from __future__ import annotations

import codecs
import hashlib
import queue
import threading

import orjson

from .reading import kind_of
from .report import ArchiveError

CHUNK = 1024 * 1024
# The copy of a JSONL file goes in chunks this big: few system calls, and hashlib hashes each in
# one call without the GIL (see BackgroundChecksum).
COPY_CHUNK = 8 * 1024 * 1024
# Lines sniffed to recognise the data (a v1.1 stream may open with a run of delete notices).
_SNIFF_LINES = 200
BOM = codecs.BOM_UTF8
_ZIP_MAGIC = b"PK\x03\x04"

ACCEPTED = (
    "dnflow imports JSONL (one post or one v2 response page per line, as twarc writes), a JSON array of "
    "posts, a v1.1 search response, a v2 response page, or Twitter's own archive (data/tweets.js), "
    "any of them gzipped"
)


class BackgroundChecksum:
    """SHA-256 of every chunk given to it, computed in a thread: hashlib releases the GIL while it
    hashes a large buffer, so the checksum runs beside the copy, on another core."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        # Two chunks of slack keep both threads busy; more only hold memory (16 MiB at most).
        self._chunks: queue.Queue = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="dnflow-archive-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()


class Utf8Check:
    """Checks that a stream of chunks is UTF-8, cheaply: an ASCII chunk is one C call, others are
    decoded in slices small enough for the CPU cache (an 8 MB chunk with an emoji would otherwise
    be widened into a 32 MB string)."""

    SLICE = 64 * 1024

    def __init__(self, name: str) -> None:
        self._name = name
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def check(self, chunk: bytes, lines_before: int) -> None:
        decoder = self._decoder
        if chunk.isascii() and not decoder.getstate()[0]:
            return
        view = memoryview(chunk)
        for offset in range(0, len(chunk), self.SLICE):
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last slice
            try:
                decoder.decode(view[offset : offset + self.SLICE])
            except UnicodeDecodeError as error:
                at = offset + max(error.start - pending, 0)
                raise not_utf8(self._name, lines_before + chunk[:at].count(b"\n") + 1) from None

    def finish(self, lines: int) -> None:
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise not_utf8(self._name, lines + 1) from None


def not_utf8(name: str, line: int) -> ArchiveError:
    return ArchiveError(
        f"{name} is not valid UTF-8 text (line {line:,}): dnflow reads archives as UTF-8, as X writes them. "
        "Convert the file to UTF-8 (for example: iconv -f <its encoding> -t UTF-8) or export it again."
    )


def check_text_start(head: bytes, name: str) -> None:
    if head.startswith(_ZIP_MAGIC):
        raise ArchiveError(
            f"{name} is a ZIP file: unzip it first, then import the unzipped folder (or its data/tweets.js)."
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ArchiveError(
            f"{name} is UTF-16 text: dnflow reads archives as UTF-8, as X writes them. Convert it "
            "(for example: iconv -f UTF-16 -t UTF-8) and import the result."
        )
    if b"\x00" in head[:8192]:
        raise ArchiveError(f"{name} is a binary file, not JSON text. {ACCEPTED}: choose the file of posts.")


def first_lines_recognised(buffered: bytes) -> str | None:
    """The kind of the first recognisable line among the first few complete ones."""
    for line in buffered.split(b"\n")[:_SNIFF_LINES]:
        try:
            kind = kind_of(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
        if kind:
            return kind
    return None
