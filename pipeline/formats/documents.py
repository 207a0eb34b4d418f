"""The single-document formats, copied one element a line: a JSON array of posts, a v1.1 search
response, Twitter's tweets.js, and a v2 response page (or any one JSON object).

Such a file is one document, however big, and parsed whole it takes 10 to 15 times its size in
memory. So it is read a value at a time (pipeline.formats.jsonscan) and each element is parsed and
written on its own, with orjson, as the whole document's elements were: the copy is the same bytes
and memory stays about a megabyte plus one element.

- An array (and tweets.js) is streamed as it is read.
- An object of up to WHOLE_DOCUMENT_BYTES is read whole, as it always was: a page stays one line
  with its includes. A bigger one is surveyed first (which members it has, where), then read
  again for what it holds: the posts of a search response, or a page's posts split into pages
  that keep their includes (pipeline.formats.pagesplit). Anything else that big is refused.

An element too long to read back as a line (reading.MAX_LINE_BYTES) is copied as it is, on one
line, and reported when the posts are read, as such a line of a JSONL file is. So is an element
that is not UTF-8, unless most are not (the file is then refused, as checks.Utf8Verdict says).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .checks import ACCEPTED, UTF8_VERDICT_LINES, Utf8Verdict, first_lines_recognised, not_utf8
from .jsonscan import JsonScanner, ScanError, Value, advance
from .pagesplit import split_page
from .reading import MAX_LINE_BYTES, kind_of
from .report import ArchiveError

# An object document up to this size is read whole and copied as before (a page on one line); it
# is the reader's line limit, so that line can still be read back.
WHOLE_DOCUMENT_BYTES = MAX_LINE_BYTES
# kind_of judges a list by its first 20 items.
KIND_ITEMS = 20
# How much of a file that is not one document is looked at to see whether it is JSON lines.
SNIFF_BYTES = 16 * 1024 * 1024

Reopen = Callable[[], contextlib.AbstractContextManager]  # the decompressed input again, from its start
# Copy as JSON lines after all: (head, rest of the stream, from_start=whether head is the file's start).
AsJsonl = Callable[..., tuple[str, int, bool]]


def scanner_for(stream, head: bytes = b"", offset: int = 0, first_line: int | None = 1) -> JsonScanner:
    return JsonScanner(stream, head=head, offset=offset, first_line=first_line, max_value=MAX_LINE_BYTES)


def first_bad_utf8_line(data: bytes) -> int | None:
    """The line (from 1) of the first byte that is not UTF-8, or None when all of `data` is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return data[: error.start].count(b"\n") + 1
    return None


class _Elements:
    """Writes an array's elements one a line as orjson writes them, and notes how many there
    were, of what kind (kind_of, on the first KIND_ITEMS) and whether they were UTF-8."""

    def __init__(self, out, name: str, invalid: Callable[[str], ArchiveError]) -> None:
        self._out = out
        self._invalid = invalid
        self._utf8 = Utf8Verdict(name)
        self.count = 0
        self.kinds: set[str] = set()

    def spill(self, piece: bytes) -> None:
        # A raw newline can only be whitespace between JSON tokens: the element stays one line.
        self._out.write(piece.replace(b"\n", b" "))

    def add(self, value: Value, scanner: JsonScanner) -> None:
        self.count += 1
        if value.data is None:  # too long to parse: spill() copied it as it is
            self._out.write(b"\n")
        else:
            try:
                item = orjson.loads(value.data)
            except orjson.JSONDecodeError as error:
                if first_bad_utf8_line(value.data) is None:
                    raise self._invalid(f"{error}, in the item at {scanner.where(value.start)}") from None
                self._utf8.bad(self.count, scanner.line(value.start))
                self._out.write(value.data.replace(b"\n", b" ") + b"\n")
            else:
                if self.count <= KIND_ITEMS and (kind := kind_of(item)):
                    self.kinds.add(kind)
                self._out.write(orjson.dumps(item))
                self._out.write(b"\n")
        if self.count == UTF8_VERDICT_LINES:
            self._utf8.decide(self.count)

    def finish(self) -> None:
        self._utf8.decide(self.count)

    def copy(self, scanner: JsonScanner, *, check_kind: Callable[[], None] | None = None) -> None:
        """Every element of the array at the scanner, then nothing but whitespace."""
        try:
            for value in scanner.items(self.spill):
                self.add(value, scanner)
                if self.count == KIND_ITEMS and check_kind is not None:
                    check_kind()
            if not scanner.at_end():
                raise scanner.error("more text after the end of the document")
        except ScanError as error:
            raise self._invalid(str(error)) from None
        self.finish()
        if check_kind is not None:
            check_kind()

    @property
    def kind(self) -> str | None:
        return f"array of {sorted(self.kinds)[0]}s" if self.kinds else None


def copy_array(scanner: JsonScanner, out, name: str) -> tuple[str, int, bool]:
    """A JSON array: each element on its own line."""
    elements = _Elements(
        out, name, lambda detail: ArchiveError(f"{name} is not valid JSON ({detail}): export it again. {ACCEPTED}.")
    )

    def check_kind() -> None:
        if elements.count and elements.kind is None:
            raise ArchiveError(f"{name} is a JSON array, but not of X/Twitter posts. {ACCEPTED}.")

    elements.copy(scanner, check_kind=check_kind)
    return f"JSON {elements.kind or 'array (empty)'}", elements.count, False


def copy_tweets_js(scanner: JsonScanner, out, name: str) -> tuple[str, int, bool]:
    """Twitter's archive, the scanner just after `window.YTD.tweets.part0 =`: its list of posts."""

    def invalid(detail: str) -> ArchiveError:
        return ArchiveError(
            f"{name} starts like Twitter's archive (window.YTD...) but its data is not valid JSON ({detail}): "
            "download the archive again."
        )

    if scanner.peek() != b"[":
        try:
            orjson.loads(scanner.value().data)
        except (ScanError, orjson.JSONDecodeError) as error:
            raise invalid(str(error)) from None
        raise ArchiveError(f"{name} starts like Twitter's archive but holds no list of posts: download it again.")
    elements = _Elements(out, name, invalid)

    def check_kind() -> None:
        if elements.count and elements.kind is None:
            raise ArchiveError(
                f"{name} is part of Twitter's archive but holds no posts: import data/tweets.js instead."
            )

    elements.copy(scanner, check_kind=check_kind)
    return "tweets.js (Twitter archive)", elements.count, False


# --- one JSON object ---------------------------------------------------------------------------


def _write_items(items: list, out) -> int:
    for item in items:
        out.write(orjson.dumps(item))
        out.write(b"\n")
    return len(items)


def copy_document(document: object, out, name: str) -> tuple[str, int, bool]:
    """One parsed JSON document: each post (or page) on its own line, content unchanged."""
    if isinstance(document, dict) and isinstance(document.get("statuses"), list):
        items, label = document["statuses"], "v1.1 search response"
    elif isinstance(document, list):
        items = document
        kind = kind_of(document)
        if items and kind is None:
            raise ArchiveError(f"{name} is a JSON array, but not of X/Twitter posts. {ACCEPTED}.")
        label = f"JSON {kind or 'array (empty)'}"
    else:
        kind = kind_of(document)
        if kind is None:
            raise ArchiveError(f"{name} is JSON, but not X/Twitter data. {ACCEPTED}.")
        items, label = [document], f"JSON document ({kind})"
    return label, _write_items(items, out), False


def read_up_to(stream, buffered: bytes, limit: int) -> bytes:
    """`buffered` and what follows it, until there are `limit` bytes or the stream ends."""
    parts = [buffered]
    size = len(buffered)
    while size < limit:
        more = stream.read(min(limit - size, io.DEFAULT_BUFFER_SIZE * 128))
        if not more:
            break
        parts.append(more)
        size += len(more)
    return b"".join(parts)


def copy_object(
    buffered: bytes,
    stream,
    out,
    name: str,
    *,
    offset: int,
    first_line: int,
    reopen: Reopen,
    workdir: Path,
    as_jsonl: AsJsonl,
    take_back: Callable[[], None],
) -> tuple[str, int, bool]:
    """A file that starts with "{" and is not JSON lines (its first line is not one document).
    `offset`, `first_line`: where `buffered` starts in the stream; `take_back`: undo what was
    written ahead (leading blank lines, which only a JSONL copy keeps)."""
    buffered = read_up_to(stream, buffered, WHOLE_DOCUMENT_BYTES + 1)
    if len(buffered) <= WHOLE_DOCUMENT_BYTES:
        return _copy_whole(buffered, out, name, first_line, as_jsonl, take_back)
    try:
        survey = _Survey.of(scanner_for(stream, buffered, offset, first_line))
    except ScanError as error:
        return _as_jsonl_after_all(error, reopen, name, as_jsonl)
    take_back()
    if survey.statuses is not None and survey.statuses.first == b"[":
        with _reopened_at(reopen, survey.statuses.start) as scanner:
            elements = _Elements(
                out, name, lambda detail: ArchiveError(f"{name} is not valid JSON ({detail}). {ACCEPTED}.")
            )
            elements.copy(_Bounded(scanner, survey.statuses.end))
        return "v1.1 search response", elements.count, False
    if survey.data is not None and survey.data.first == b"[":
        lines = split_page(
            data=lambda: _reopened_at(reopen, survey.data.start),
            includes=lambda: _reopened_at(reopen, survey.includes.start),
            rest=lambda: _reopened_at(reopen, survey.start),
            survey=survey,
            out=out,
            name=name,
            workdir=workdir,
        )
        return f"JSON document (v2 response page, split into {lines:,} lines)", lines, False
    if kind_of(survey.shape) is None:
        raise ArchiveError(f"{name} is JSON, but not X/Twitter data. {ACCEPTED}.")
    # One post (or stream line) of over 10 MiB: copied on one line, as it always was; the reader
    # skips such a line and says why.
    with reopen() as again:
        advance(again, 0, survey.start)
        left = survey.end - survey.start
        while left > 0 and (piece := again.read(min(left, 1024 * 1024))):
            out.write(piece.replace(b"\n", b" "))
            left -= len(piece)
    out.write(b"\n")
    return "JSON document (one object, too long to read back)", 1, False


def _copy_whole(
    whole: bytes, out, name: str, first_line: int, as_jsonl: AsJsonl, take_back: Callable[[], None]
) -> tuple[str, int, bool]:
    try:
        document = orjson.loads(whole)
    except orjson.JSONDecodeError as error:
        # Not one document: JSON lines whose first line is broken are still JSON lines.
        if first_lines_recognised(whole) is not None:
            return as_jsonl(whole, io.BytesIO(b""))
        line = first_bad_utf8_line(whole)
        if line is not None:
            raise not_utf8(name, first_line - 1 + line) from None
        raise ArchiveError(
            f"{name} is not valid JSON or JSONL ({error}).{_several_documents(error, name)} {ACCEPTED}."
        ) from None
    take_back()
    return copy_document(document, out, name)


def _as_jsonl_after_all(error: ScanError, reopen: Reopen, name: str, as_jsonl: AsJsonl) -> tuple[str, int, bool]:
    with reopen() as again:
        head = read_up_to(again, b"", SNIFF_BYTES)
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        if first_lines_recognised(head) is None:
            raise ArchiveError(
                f"{name} is not valid JSON or JSONL ({error}).{_several_documents(error, name)} {ACCEPTED}."
            ) from None
        return as_jsonl(head, again, from_start=True)


def _several_documents(error: object, name: str) -> str:
    """The fix for the commonest such file: JSON documents one after another, as `jq .` writes them."""
    if "after document" not in str(error) and "trailing" not in str(error).lower():
        return ""
    return (
        " It seems to hold several JSON documents one after another, as `jq .` writes them: write one "
        f"a line instead (for example: jq -c . {name} > {Path(name).stem}.jsonl) and import that."
    )


@dataclass(slots=True)
class Member:
    first: bytes  # the first byte of its value
    start: int  # the offsets of its value in the stream
    end: int


# The keys that reading.kind_of looks at, and a stand-in for a value by its first byte: enough for
# kind_of to tell what a document is that is too big to parse.
_KIND_KEYS = frozenset(
    ("data", "tweet", "statuses", "entities", "id_str", "user", "full_text", "extended_tweet", "retweeted_status")
    + ("author", "__twarc", "author_id", "edit_history_tweet_ids", "text", "id", "matching_rules")
)
_STAND_IN = {b"{": dict, b"[": list, b'"': str}


@dataclass
class _Survey:
    """Where the members of a big object document are. A key given twice counts where it was
    given last, as when the document is parsed whole."""

    start: int
    end: int = 0
    statuses: Member | None = None
    data: Member | None = None
    includes: Member | None = None
    others: int = 0  # how many other members
    shape: dict = field(default_factory=dict)  # the document as kind_of needs to see it

    @classmethod
    def of(cls, scanner: JsonScanner) -> _Survey:
        scanner.peek()
        survey = cls(start=scanner.offset)
        for key in scanner.members():
            first = scanner.peek()
            start = scanner.offset
            scanner.skip()
            member = Member(first, start, scanner.offset)
            if key in ("statuses", "data", "includes"):
                setattr(survey, key, member)
            else:
                survey.others += 1
            if key in _KIND_KEYS:
                survey.shape[key] = _STAND_IN.get(first, int)()
        survey.end = scanner.offset
        if not scanner.at_end():
            raise scanner.error("more text after the end of the document")
        return survey


@contextlib.contextmanager
def _reopened_at(reopen: Reopen, offset: int) -> Iterator[JsonScanner]:
    with reopen() as stream:
        advance(stream, 0, offset)
        yield scanner_for(stream, offset=offset, first_line=None)


class _Bounded:
    """A scanner over one member's value (an array), that ends where the value ends."""

    def __init__(self, scanner: JsonScanner, end: int) -> None:
        self._scanner = scanner
        self._end = end

    def items(self, spill):
        return self._scanner.items(spill)

    def at_end(self) -> bool:
        return self._scanner.offset == self._end

    def line(self, offset: int | None = None) -> int | None:
        return self._scanner.line(offset)

    def where(self, offset: int | None = None) -> str:
        return self._scanner.where(offset)

    def error(self, problem: str) -> ScanError:
        return self._scanner.error(problem)
