"""What an import checks as it reads an archive: that it is UTF-8 text of a kind dnflow knows,
and its checksum, computed beside the copy.

Shared by the copy (pipeline.formats.copying, .documents) and the hard-link import
(pipeline.formats.linking).
"""

from __future__ import annotations

import codecs
import hashlib
import queue
import re
import threading

import orjson

from .reading import MAX_LINE_BYTES, kind_of
from .report import ArchiveError

CHUNK = 1024 * 1024
# The copy of a JSONL file goes in chunks this big: few system calls, and hashlib hashes each in
# one call without the GIL (see BackgroundChecksum).
COPY_CHUNK = 8 * 1024 * 1024
# Below this size bytes.count finds the newlines of a chunk sooner than numpy is called.
_VECTOR_COUNT_BYTES = 64 * 1024
# Lines sniffed to recognise the data (a v1.1 stream may open with a run of delete notices).
_SNIFF_LINES = 200
BOM = codecs.BOM_UTF8
_ZIP_MAGIC = b"PK\x03\x04"
_HTML = re.compile(rb"\s*<(?:!doctype\s+html|html|head|body)[\s>]", re.IGNORECASE)
# A file is refused as "not UTF-8" only when most of its first lines (or items) are not: a few bad
# lines among many are skipped, and reported by number, when the posts are read.
UTF8_VERDICT_LINES = 1000

ACCEPTED = (
    "dnflow imports JSONL (one post or one v2 response page per line, as twarc writes), a JSON array of "
    "posts, a v1.1 search response, a v2 response page, or Twitter's own archive (data/tweets.js, or "
    "the ZIP X gives), any of them gzipped or several in a ZIP"
)


def newlines(chunk: bytes) -> int:
    """chunk.count(b"\\n"), several times as fast on a big chunk: bytes.count looks at one byte at
    a time, numpy at a vector of them. On a 3.4 GiB archive the copy's line count took a second of
    its four. (numpy is imported here, by the copy only, when first needed.)"""
    if len(chunk) < _VECTOR_COUNT_BYTES:
        return chunk.count(b"\n")
    import numpy

    octets = numpy.frombuffer(chunk, dtype=numpy.uint8)
    # Slice by slice, so that each slice and its comparison's result stay in the CPU's cache.
    step = _VECTOR_COUNT_BYTES * 4
    return sum(int(numpy.count_nonzero(octets[at : at + step] == 0x0A)) for at in range(0, len(octets), step))


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


class Utf8Verdict:
    """Whether a file is UTF-8 text, judged on its first UTF8_VERDICT_LINES lines (or array items):
    it is refused when more than half of them are not, and accepted otherwise."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._bad = 0
        self._first_bad: tuple[int, int | None] | None = None  # (index, line) of the first bad one
        self.decided = False

    def bad(self, index: int, line: int | None = None) -> None:
        """The line (or item) numbered `index`, from 1, is not UTF-8; `line` is where it starts."""
        if not self.decided and index <= UTF8_VERDICT_LINES:
            self._bad += 1
            if self._first_bad is None:
                self._first_bad = (index, line)

    def decide(self, seen: int) -> None:
        """`seen` lines (or items) were read: refuse the file now, or never."""
        if self.decided:
            return
        self.decided = True
        if self._first_bad is not None and self._bad * 2 > min(seen, UTF8_VERDICT_LINES):
            index, line = self._first_bad
            raise not_utf8(self._name, line if line is not None else index)


class Utf8Check:
    """Checks the first lines of a stream of chunks for UTF-8 (see Utf8Verdict), cheaply: an ASCII
    chunk is one C call, others are decoded in slices small enough for the CPU cache (an 8 MB
    chunk with an emoji would otherwise be widened into a 32 MB string). A line that is not UTF-8
    is left as it is: the copy keeps it, the reader skips and reports it. Once the verdict is in,
    the rest of the stream costs nothing."""

    SLICE = 64 * 1024

    def __init__(self, name: str) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._in_bad_line = False  # the rest of a line found bad goes undecoded
        self._last = b"\n"
        self.verdict = Utf8Verdict(name)

    def check(self, chunk: bytes, lines_before: int) -> None:
        verdict = self.verdict
        if verdict.decided:
            return
        if lines_before >= UTF8_VERDICT_LINES:
            verdict.decide(lines_before)
            return
        if chunk:
            self._last = chunk[-1:]
        if chunk.isascii() and not self._in_bad_line and not self._decoder.getstate()[0]:
            return
        self._check_slices(chunk, lines_before)

    def _check_slices(self, chunk: bytes, lines_before: int) -> None:
        decoder = self._decoder
        view = memoryview(chunk)
        at, end = 0, len(chunk)
        counted, line = 0, lines_before + 1  # the line at chunk[counted]
        if self._in_bad_line:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            self._in_bad_line = False
            at = newline + 1
        while at < end:
            stop = min(at + self.SLICE, end)
            pending = len(decoder.getstate()[0])  # bytes of a character cut by the last slice
            try:
                decoder.decode(view[at:stop])
            except UnicodeDecodeError as error:
                bad = at + max(error.start - pending, 0)
                line += chunk.count(b"\n", counted, bad)
                counted = bad
                self.verdict.bad(line, line)
                decoder.reset()
                newline = chunk.find(b"\n", bad)
                if newline < 0:
                    self._in_bad_line = True
                    return
                at = newline + 1
            else:
                at = stop

    def finish(self, lines: int) -> None:
        """The stream ended after `lines` newlines (and a last line without one, maybe)."""
        if self.verdict.decided:
            return
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            if not self._in_bad_line:  # the last line ends inside a character
                self.verdict.bad(lines + 1, lines + 1)
        self.verdict.decide(lines + (self._last != b"\n"))


def not_utf8(name: str, line: int) -> ArchiveError:
    return ArchiveError(
        f"{name} is not valid UTF-8 text (line {line:,}): dnflow reads archives as UTF-8, as X writes them. "
        "Convert the file to UTF-8 (for example: iconv -f <its encoding> -t UTF-8) or export it again."
    )


# Compressed files dnflow does not undo (gzip it does): what they are, and the command that undoes them.
_OTHER_COMPRESSION = (
    (re.compile(rb"BZh[1-9]1AY&SY"), "bzip2-compressed", "bunzip2 -k {name}"),
    (re.compile(re.escape(b"\xfd7zXZ\x00")), "xz-compressed", "unxz -k {name}"),
    (re.compile(re.escape(b"\x28\xb5\x2f\xfd")), "zstd-compressed", "unzstd {name}"),
    (re.compile(re.escape(b"7z\xbc\xaf\x27\x1c")), "a 7-Zip archive", "7z x {name}"),
    (re.compile(re.escape(b"Rar!\x1a\x07")), "a RAR archive", "unrar x {name}"),
)
_TAR_MAGIC_AT = 257  # "ustar" in a tar header


def check_text_start(head: bytes, name: str) -> None:
    for magic, what, command in _OTHER_COMPRESSION:
        if magic.match(head):
            raise ArchiveError(
                f"{name} is {what}: dnflow reads plain or gzipped files. Decompress it first "
                f"({command.format(name=name)}) and import the result, or compress it with gzip instead."
            )
    if head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar":
        raise ArchiveError(
            f"{name} is a tar archive: extract it first (tar xf {name}) and import the folder or files it holds."
        )
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
    if _HTML.match(head):
        raise ArchiveError(
            f"{name} is a web page (HTML), not an archive of posts: a login or error page may have been saved "
            f"instead of the file. Download the archive again. {ACCEPTED}."
        )


def first_lines_recognised(buffered: bytes) -> str | None:
    """The kind of the first recognisable line among the first few complete ones. A line over the
    reader's limit is not looked at: it would not be read either."""
    for line in buffered.split(b"\n")[:_SNIFF_LINES]:
        if len(line) > MAX_LINE_BYTES:
            continue
        try:
            kind = kind_of(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
        if kind:
            return kind
    return None
