"""One big v2 response page, copied as several pages that each keep the includes their posts use.

A page up to 10 MiB is copied as it was, on one line: a page with its includes
(pipeline.formats.documents). A bigger one could not be read back as one line (the reader skips
lines over reading.MAX_LINE_BYTES), and parsing it whole takes ten times its size in memory. So
its posts are written PAGE_POSTS at a time, each group on a line of its own,
`{"data": [...], "includes": {...}}`, with the objects of the page's `includes` that those posts
point at: their authors, the users they reply to or mention, the posts they retweet, quote or
answer (and those posts' authors, mentions and media), their media, polls and places. An object
goes on every line that needs it. The page's other members (meta, errors, ...) and any object no
post points at go on one last line, `{"data": [], ...}`. Each line is a v2 page in its own right,
together they hold everything the page held, and the posts read from them are the page's posts
with the same authors, originals and photos: what a reader needs of `includes` is always on the
line of the post that needs it.

X writes `includes` after `data`, so the includes are indexed first (by section and id, in a
SQLite file in the copy's scratch folder, the objects themselves in a spool file beside it), then
the posts are read; only one line's worth is ever in memory.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from .checks import ACCEPTED, UTF8_VERDICT_LINES, Utf8Verdict
from .jsonscan import JsonScanner, ScanError, Value
from .report import ArchiveError

PAGE_POSTS = 100  # posts a line: a search page's worth
PAGE_BYTES = 4 * 1024 * 1024  # a line is ended early past this many bytes of posts
_KEY = {"media": "media_key"}  # the field an includes object is found by; "id" for the others
_SQL_BATCH = 500  # keys per query (SQLite allows 32,766 parameters; fewer keep statements small)
_PRAGMAS = ("journal_mode = OFF", "synchronous = OFF", "cache_size = -8192", "temp_store = FILE")

Opener = Callable[[], contextlib.AbstractContextManager[JsonScanner]]


def _text(value: object) -> str | None:
    return value if type(value) is str and value else None


def references(tweet: object) -> dict[str, set[str]]:
    """What in `includes` a v2 post points at, by section: the keys X's expansions use."""
    found: dict[str, set[str]] = defaultdict(set)
    if not isinstance(tweet, dict):
        return found

    def add(section: str, value: object) -> None:
        if key := _text(value):
            found[section].add(key)

    add("users", tweet.get("author_id"))
    add("users", tweet.get("in_reply_to_user_id"))
    for holder in (tweet, tweet.get("note_tweet")):
        entities = holder.get("entities") if isinstance(holder, dict) else None
        mentions = entities.get("mentions") if isinstance(entities, dict) else None
        for mention in mentions if isinstance(mentions, list) else ():
            if isinstance(mention, dict):
                add("users", mention.get("id"))
                add("usernames", mention.get("username"))
    for referenced in tweet.get("referenced_tweets") or ():
        if isinstance(referenced, dict):
            add("tweets", referenced.get("id"))
    attachments = tweet.get("attachments")
    if isinstance(attachments, dict):
        for section, field in (("media", "media_keys"), ("polls", "poll_ids")):
            for key in attachments.get(field) or ():
                add(section, key)
    geo = tweet.get("geo")
    if isinstance(geo, dict):
        add("places", geo.get("place_id"))
    return found


class _Includes:
    """The objects of a page's `includes`, found by section and key; kept on disk."""

    def __init__(self, folder: Path) -> None:
        handle, self._path = tempfile.mkstemp(dir=folder, prefix=".includes-", suffix=".sqlite3")
        os.close(handle)
        self._db = sqlite3.connect(self._path, isolation_level=None)
        for pragma in _PRAGMAS:
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE objects (section TEXT NOT NULL, key TEXT, username TEXT, whole INTEGER NOT NULL, "
            "at INTEGER NOT NULL, length INTEGER NOT NULL, refs BLOB, used INTEGER NOT NULL DEFAULT 0)"
        )
        self._db.execute("BEGIN")
        self._spool = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 -- closed in close()
        self.size = 0  # bytes in the spool
        self._rows: list[tuple] = []

    # --- indexing -------------------------------------------------------------------------------

    def spill(self, piece: bytes) -> None:
        """Part of an object too long to parse, kept as it is (a raw newline can only be whitespace)."""
        self._write(piece.replace(b"\n", b" "))

    def _write(self, data: bytes) -> None:
        self._spool.write(data)
        self.size += len(data)

    def add(self, section: str, start: int, *, whole: bool = False, item: object = None, data: bytes = b"") -> None:
        """An object from spool offset `start` (what spill() wrote of it) plus `data`; `item` is
        it parsed, to be found by its key (an object that is not parsed is found by none)."""
        self._write(data)
        key = username = refs = None
        if isinstance(item, dict) and not whole:
            key = _text(item.get(_KEY.get(section, "id")))
            if section == "users":
                username = _text(item.get("username"))
            elif section == "tweets":
                pointed = references(item)
                pointed.pop("tweets", None)  # X expands referenced posts one level deep
                refs = orjson.dumps([[s, k] for s, keys in pointed.items() for k in sorted(keys)]) if pointed else None
        self._rows.append((section, key, username, int(whole), start, self.size - start, refs))
        if len(self._rows) >= 10_000:
            self._flush()

    def drop(self, section: str) -> None:
        """A section given again: the later one replaces it, as when the page is parsed whole."""
        self._flush()
        self._db.execute("DELETE FROM objects WHERE section = ?", (section,))

    def _flush(self) -> None:
        self._db.executemany(
            "INSERT INTO objects (section, key, username, whole, at, length, refs) VALUES (?, ?, ?, ?, ?, ?, ?)",
            self._rows,
        )
        self._rows.clear()

    def indexed(self) -> None:
        self._flush()
        self._db.execute("CREATE INDEX by_key ON objects (section, key)")
        self._db.execute("CREATE INDEX by_username ON objects (username)")
        self._db.execute("COMMIT")
        self._spool.flush()

    # --- lookups --------------------------------------------------------------------------------

    def referenced(self, wanted: dict[str, set[str]]) -> list[int]:
        """The rowids of the objects `wanted` points at, and of those their posts point at, in order."""
        rowids: set[int] = set()
        second: dict[str, set[str]] = defaultdict(set)
        self._find(wanted, rowids, second)
        self._find(second, rowids, None)
        return sorted(rowids)

    def _find(self, wanted: dict[str, set[str]], rowids: set[int], second: dict | None) -> None:
        for section, keys in wanted.items():
            keys = sorted(keys)
            for at in range(0, len(keys), _SQL_BATCH):
                chunk = keys[at : at + _SQL_BATCH]
                marks = ",".join("?" * len(chunk))
                if section == "usernames":
                    query = f"SELECT rowid, refs FROM objects WHERE username IN ({marks})"  # noqa: S608
                    values: tuple = tuple(chunk)
                else:
                    query = f"SELECT rowid, refs FROM objects WHERE section = ? AND key IN ({marks})"  # noqa: S608
                    values = (section, *chunk)
                for rowid, refs in self._db.execute(query, values):
                    rowids.add(rowid)
                    if refs and second is not None:
                        for ref_section, ref_key in orjson.loads(refs):
                            second[ref_section].add(ref_key)

    def objects(self, rowids: list[int]) -> Iterator[tuple[str, bool, bytes]]:
        """(section, whole, bytes) of these objects in the page's order, marked as used."""
        for at in range(0, len(rowids), _SQL_BATCH):
            chunk = rowids[at : at + _SQL_BATCH]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT section, whole, at, length FROM objects WHERE rowid IN ({marks}) ORDER BY rowid",  # noqa: S608
                chunk,
            ).fetchall()
            self._db.execute(f"UPDATE objects SET used = 1 WHERE rowid IN ({marks})", chunk)  # noqa: S608
            for section, whole, start, length in rows:
                yield section, bool(whole), os.pread(self._spool.fileno(), length, start)

    def unused(self) -> Iterator[tuple[str, bool, bytes]]:
        rows = self._db.execute("SELECT section, whole, at, length FROM objects WHERE used = 0 ORDER BY rowid")
        for section, whole, start, length in rows:
            yield section, bool(whole), os.pread(self._spool.fileno(), length, start)

    def any_unused(self) -> bool:
        return self._db.execute("SELECT 1 FROM objects WHERE used = 0 LIMIT 1").fetchone() is not None

    def close(self) -> None:
        self._db.close()
        self._spool.close()
        Path(self._path).unlink(missing_ok=True)


def _write_includes(out, objects: Iterator[tuple[str, bool, bytes]]) -> None:
    """`,"includes":{...}` of these objects (nothing when there are none): lists, grouped by section."""
    current: str | None = None
    current_whole = False
    for section, whole, data in objects:
        if section != current:
            if current is not None and not current_whole:
                out.write(b"]")
            out.write((b',"includes":{' if current is None else b",") + orjson.dumps(section) + b":")
            if not whole:
                out.write(b"[")
            current, current_whole = section, whole
        elif not whole:
            out.write(b",")
        out.write(data)
    if current is not None:
        out.write(b"}" if current_whole else b"]}")


def _parse(value: Value, scanner: JsonScanner, name: str) -> tuple[object, bool]:
    """(the parsed value, True); (None, False) for one that is not UTF-8 (kept as it is)."""
    try:
        return orjson.loads(value.data), True
    except orjson.JSONDecodeError as error:
        try:
            value.data.decode("utf-8")
        except UnicodeDecodeError:
            return None, False
        raise ArchiveError(
            f"{name} is not valid JSON ({error}, in the value at {scanner.where(value.start)}). {ACCEPTED}."
        ) from None


def _index(scanner: JsonScanner, store: _Includes, name: str) -> None:
    seen: set[str] = set()
    for section in scanner.members():
        if section in seen:
            store.drop(section)
        seen.add(section)
        start = store.size
        if scanner.peek() != b"[":
            value = scanner.value(store.spill)
            item, ok = _parse(value, scanner, name) if value.data is not None else (None, False)
            data = orjson.dumps(item) if ok else (value.data or b"").replace(b"\n", b" ")
            store.add(section, start, whole=True, data=data)
            continue
        for value in scanner.items(store.spill):
            if value.data is None:
                store.add(section, start)
            else:
                item, ok = _parse(value, scanner, name)
                if ok:
                    store.add(section, start, item=item, data=orjson.dumps(item))
                else:
                    store.add(section, start, data=value.data.replace(b"\n", b" "))
            start = store.size


class _Pages:
    """Writes the posts PAGE_POSTS to a line, each line with the includes its posts point at."""

    def __init__(self, out, store: _Includes | None, name: str) -> None:
        self._out = out
        self._store = store
        self._utf8 = Utf8Verdict(name)
        self._posts: list[bytes] = []
        self._wanted: dict[str, set[str]] = defaultdict(set)
        self._size = 0
        self._spilling = False
        self.lines = 0
        self.count = 0  # data items read

    def spill(self, piece: bytes) -> None:
        """A post too long to read back: on a line of its own, as it is (the reader reports it)."""
        if not self._spilling:
            self.flush()
            self._out.write(b'{"data":[')
            self._spilling = True
        self._out.write(piece.replace(b"\n", b" "))

    def _alone(self, data: bytes) -> None:
        self.flush()
        self._out.write(b'{"data":[' + data + b"]}\n")
        self.lines += 1

    def add(self, value: Value, scanner: JsonScanner, name: str) -> None:
        self.count += 1
        if value.data is None:
            self._out.write(b"]}\n")
            self._spilling = False
            self.lines += 1
        else:
            tweet, ok = _parse(value, scanner, name)
            if not ok:
                self._utf8.bad(self.count, scanner.line(value.start))
                self._alone(value.data.replace(b"\n", b" "))
            else:
                data = orjson.dumps(tweet)
                self._posts.append(data)
                self._size += len(data)
                for section, keys in references(tweet).items():
                    self._wanted[section] |= keys
                if len(self._posts) >= PAGE_POSTS or self._size >= PAGE_BYTES:
                    self.flush()
        if self.count == UTF8_VERDICT_LINES:
            self._utf8.decide(self.count)

    def flush(self) -> None:
        if not self._posts:
            return
        out = self._out
        out.write(b'{"data":[' + b",".join(self._posts) + b"]")
        if self._store is not None and self._wanted:
            _write_includes(out, self._store.objects(self._store.referenced(self._wanted)))
        out.write(b"}\n")
        self.lines += 1
        self._posts.clear()
        self._wanted.clear()
        self._size = 0

    def finish(self) -> None:
        self.flush()
        self._utf8.decide(self.count)


def _write_rest(scanner: JsonScanner, survey, store: _Includes | None, out, name: str) -> None:
    """The last line: `{"data":[]` and every member of the page but its posts, with the includes
    no post pointed at, each value as orjson writes it (as it is when too long to parse)."""

    def spill(piece: bytes) -> None:
        out.write(piece.replace(b"\n", b" "))

    out.write(b'{"data":[]')
    for key in scanner.members():
        if key in ("data", "includes"):
            chosen = survey.data if key == "data" else survey.includes
            scanner.peek()
            if scanner.offset != chosen.start:
                scanner.skip()  # given again later: that one counts, as when the page is parsed whole
                continue
            if key == "data" or store is not None:
                if key == "includes":
                    _write_includes(out, store.unused())
                scanner.skip_to(chosen.end)
                continue
        out.write(b"," + orjson.dumps(key) + b":")
        value = scanner.value(spill)
        if value.data is not None:
            item, ok = _parse(value, scanner, name)
            out.write(orjson.dumps(item) if ok else value.data.replace(b"\n", b" "))
    out.write(b"}\n")


def split_page(*, data: Opener, includes: Opener, rest: Opener, survey, out, name: str, workdir: Path) -> int:
    """Copy a big v2 page as pages of PAGE_POSTS posts with their includes; returns the lines written.

    `data`, `includes`, `rest`: the page read again from the start of its `data`, of its
    `includes`, of the page; `survey`: where its members are (documents._Survey).
    """
    store = _Includes(workdir) if survey.includes is not None and survey.includes.first == b"{" else None
    try:
        if store is not None:
            with includes() as scanner:
                try:
                    _index(scanner, store, name)
                except ScanError as error:
                    raise ArchiveError(f"{name} is not valid JSON ({error}). {ACCEPTED}.") from None
            store.indexed()
        pages = _Pages(out, store, name)
        with data() as scanner:
            try:
                for value in scanner.items(pages.spill):
                    pages.add(value, scanner, name)
            except ScanError as error:
                raise ArchiveError(f"{name} is not valid JSON ({error}). {ACCEPTED}.") from None
        pages.finish()
        lines = pages.lines
        if survey.others or (survey.includes is not None and (store is None or store.any_unused())):
            with rest() as scanner:
                try:
                    _write_rest(scanner, survey, store, out, name)
                except ScanError as error:
                    raise ArchiveError(f"{name} is not valid JSON ({error}). {ACCEPTED}.") from None
            lines += 1
        return lines
    finally:
        if store is not None:
            store.close()
