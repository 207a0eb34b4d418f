"""How big an import may grow: the decompressed size of its files, and how far a gzip may expand.

A small upload must not be able to fill the server's disk. The copy counts what it reads once
gzip is undone, as it reads it, and stops (the partial copy is removed) when:

- the files of one import together pass `max_bytes` (DNFLOW_MAX_ARCHIVE_BYTES; 0: no limit).
  Plain files are added up before anything is read, so they are refused at once;
- a gzip file has given more than RATIO_FLOOR_BYTES and more than MAX_EXPANSION_RATIO times the
  compressed bytes read so far. Archives of posts expand 4 to 20 times (the real recorded
  fixtures 4 to 8; JSON of one post repeated, the most a copy of posts can compress, about 170);
  gzip's own bound is about 1,030 times, reached only by runs of one byte: a decompression bomb.
  The floor lets small files expand as they like: below 1 GiB no disk is at risk.

Framework-free: the caller passes the limit (a search takes it from settings).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .report import ArchiveError

GIB = 1024**3
# The default of DNFLOW_MAX_ARCHIVE_BYTES: twice the largest upload the web form takes by default
# (DNFLOW_MAX_UPLOAD_BYTES, 16 GiB), about 9 million real-sized v1.1 posts (3.7 KB each).
DEFAULT_MAX_ARCHIVE_BYTES = 32 * GIB
MAX_EXPANSION_RATIO = 100
RATIO_FLOOR_BYTES = 1 * GIB


def size_text(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" or count == int(count) else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} TiB"


class ImportBudget:
    """The bytes one import may still write, across all its files."""

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes or 0
        self.used = 0  # what the files finished so far gave

    def check_plain_sizes(self, files: list[tuple[Path, str]], is_gzip: Callable[[Path], bool]) -> None:
        """Refuse before reading anything when the plain (not gzipped) files alone are too big."""
        if not self.max_bytes:
            return
        total = 0
        for path, name in files:
            if not is_gzip(path):
                total += path.stat().st_size
                if total > self.max_bytes:
                    raise self.too_big(name, total, so_far=False)

    def meter(self, name: str, *, compressed: bool) -> FileMeter:
        return FileMeter(self, name, compressed)

    def too_big(self, name: str, total: int, *, so_far: bool = True) -> ArchiveError:
        """`total`: the bytes of the import up to and including `name`; `so_far`: it was still
        being read (decompressed), so there may be more."""
        size = f"over {size_text(total)} once decompressed" if so_far else size_text(total)
        return ArchiveError(
            f"{name} is too big to import: with it the archive holds {size}, more than the limit of "
            f"{size_text(self.max_bytes)} (DNFLOW_MAX_ARCHIVE_BYTES), so the import stopped before it filled the "
            "disk and kept nothing. Split the archive and import the parts as separate searches, or, if the "
            "server has the room, raise DNFLOW_MAX_ARCHIVE_BYTES (0: no limit) and import it again."
        )


class FileMeter:
    """One input file's share of the budget. The file may be read more than once (a big document
    is surveyed, then read for its posts): only the furthest point read counts."""

    def __init__(self, budget: ImportBudget, name: str, compressed: bool) -> None:
        self._budget = budget
        self._name = name
        self._compressed = compressed
        self.furthest = 0

    def reached(self, position: int, compressed_position: int) -> None:
        self.furthest = position
        budget = self._budget
        if budget.max_bytes and budget.used + position > budget.max_bytes:
            raise budget.too_big(self._name, budget.used + position)
        if (
            self._compressed
            and position > RATIO_FLOOR_BYTES
            and position > MAX_EXPANSION_RATIO * max(compressed_position, 1)
        ):
            raise ArchiveError(
                f"{self._name} expands more than {MAX_EXPANSION_RATIO:,} times when decompressed "
                f"({size_text(compressed_position)} of gzip gave over {size_text(position)}), where archives of "
                "posts expand 4 to 20 times: it looks like a decompression bomb, so the import stopped before it "
                "filled the disk and kept nothing. If the file is genuine, decompress it yourself (gunzip) and "
                "import the result: a plain file is held only to DNFLOW_MAX_ARCHIVE_BYTES."
            )

    def finish(self) -> None:
        self._budget.used += self.furthest


class MeteredStream:
    """A decompressed input stream that reports to its file's meter as it is read.

    `compressed_position`: how many compressed bytes were read so far (for the ratio).
    """

    def __init__(self, stream, meter: FileMeter, compressed_position: Callable[[], int], *, closing=()) -> None:
        self._stream = stream
        self._meter = meter
        self._compressed_position = compressed_position
        self._closing = closing  # what to close with this stream (the file under a gzip reader)
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self.position += len(data)
            if self.position > self._meter.furthest:
                self._meter.reached(self.position, self._compressed_position())
        return data

    def seek_forward(self, offset: int) -> None:
        """Skip to `offset` without handing over what lies between: a seek for a plain file; a gzip
        must be decompressed on the way (what was surveyed before was metered then)."""
        if offset <= self.position:
            return
        if not self._meter._compressed and self._stream.seekable():
            self._stream.seek(offset)
            self.position = offset
            return
        while self.position < offset:
            if not self.read(min(offset - self.position, 1024 * 1024)):
                return

    def close(self) -> None:
        self._stream.close()
        for handle in self._closing:
            handle.close()

    def __enter__(self) -> MeteredStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
