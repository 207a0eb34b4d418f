"""Purging: removing from a run's folder the posts a recheck found gone, once the owner chooses to.

A recheck already leaves the posts X no longer gives out of the search's results and of everything
published; the owner's own copies stay until they purge them. `purge_folder` rewrites, in one run
folder, every file that holds a gone post's content, and nothing else:

- The raw posts (contract.RAW_POSTS, and LIVE_PARTIAL, what a stopped collection left), whatever
  each line is. A line that is one gone post (an archive's post, a stream line, a tweets.js item)
  is left empty, so every other line keeps its number (SOURCES maps the lines to the archive's
  files). A page of posts (an X API v2 response, a v1.1 search response) loses the gone posts
  from `data` (`statuses`) and from `includes.tweets`, and keeps everything else. A post that is
  still there but carries a copy of a gone one (v1.1 `retweeted_status` and `quoted_status`,
  twarc2's inlined `referenced_tweets`) loses that copy and keeps its own fields, the gone post's
  id among them. A line with nothing of a gone post in it stays byte for byte; a changed line is
  written again as compact JSON.
- The tables with the posts' text (TABLES): the rows of gone posts go, every other row stays byte
  for byte.

What stays: ids (a recheck's availability file, tweet-ids.txt, counts, edge lists: what may be
shared anyway), the users, media and places of a page, the text a post that is still there holds
as its own (a retweet's text repeats the start of its original; X removes a retweet with its
original, so a recheck normally finds both gone), and a line that cannot be read as JSON (it was
never a post; it is counted in the note).

Before any file is replaced, the folder's SOURCES records the purge (NOTES): the record that
lists the posts, and per file what was removed and its new size and SHA-256, so a checksum that
no longer matches the archive's (SOURCES keeps the archive's own) is explained. Then each file is
moved into place from its temporary (pipeline.outputs). Run again with the same ids, it changes
nothing; after a kill it finishes the job and the note keeps what the first attempt did.

A collection is the first `count` posts of its raw file (pipeline.formats.iter_collection), and a
post a recheck found gone still counts towards that limit. Once purged it is no longer in the file,
so the note also says how many removed posts counted (`within_limit`), and the summary pass takes
that many fewer (`posts_purged_within_limit`): a later summary of the file holds the same posts,
less the purged ones, and never takes in posts that were not part of the collection.

Framework-free: no Django.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import orjson

from .contract import LIVE_PARTIAL, RAW_POSTS, RETWEETED_POSTS, SAMPLE, SOURCES, TWEETS_CSV
from .formats import ArchiveError, ImportReport, iter_collection
from .formats.reading import GZIP_MAGIC
from .hydrate import AVAILABLE, NOT_RETURNED
from .outputs import OutputSet, write_csv, write_json

RAW_FILES = (RAW_POSTS, LIVE_PARTIAL)
# The tables that hold the posts' text, each with the column that holds a row's post id.
TABLES = {TWEETS_CSV: "id", SAMPLE: "id", RETWEETED_POSTS: "tweet_id"}
PURGED_FILES = (*RAW_FILES, *TABLES)
RECORD_HEADER = ("tweet_id", "reason", "checked_at", "purged_at")
NOTES = "purges"  # SOURCES' list of the purges of its folder
# A line is parsed only when one of its numbers is a gone post's id.
_NUMBER = re.compile(rb"[0-9]+")


class PurgeError(Exception):
    """A file cannot be purged; the message says which and what to do."""


def in_data_folder(path: Path) -> str:
    """A file of a run's folder as a message names it: its run folder and name, which the owner finds
    in the data folder. Not the server's whole path: a published search's page shows its runs' errors."""
    return f"{path.parent.name}/{path.name}"


# --- What to purge, and the record ---------------------------------------------------------------


@dataclass(frozen=True)
class GonePost:
    tweet_id: str
    reason: str  # X's, as a recheck records it (pipeline.hydrate.REASONS)
    checked_at: str


def read_gone(availability: Path) -> list[GonePost]:
    """The posts a recheck's availability file (tweet_id,status,reason,checked_at) says are gone,
    in its order (the same rows read_availability counts as gone)."""
    with Path(availability).open(newline="", encoding="utf-8") as handle:
        return [
            GonePost(row["tweet_id"], row.get("reason") or NOT_RETURNED, row.get("checked_at") or "")
            for row in csv.DictReader(handle)
            if row.get("status") != AVAILABLE
        ]


def write_record(path: Path, gone: list[GonePost], purged_at: datetime) -> None:
    """The purge's record (contract.PURGE_RECORD): each gone post, X's reason, when it was checked
    and when it was purged. Ids only, like the availability file it comes from."""
    when = purged_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    write_csv(path, RECORD_HEADER, ((post.tweet_id, post.reason, post.checked_at, when) for post in gone))


def read_record_posts(path: Path) -> list[GonePost]:
    """The posts a purge's record lists, with X's reason and when they were checked."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [
            GonePost(row["tweet_id"], row.get("reason") or NOT_RETURNED, row.get("checked_at") or "")
            for row in csv.DictReader(handle)
            if row.get("tweet_id")
        ]


def read_record(path: Path) -> list[str]:
    """The ids of the posts a purge's record (contract.PURGE_RECORD) lists."""
    return [post.tweet_id for post in read_record_posts(path)]


def record_time(path: Path) -> str:
    """When the record at `path` says its posts were purged ("" for an empty record)."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        first = next(csv.DictReader(handle), None)
    return (first or {}).get("purged_at") or ""


# --- One folder ----------------------------------------------------------------------------------


@dataclass
class FileChange:
    """What a purge removed from one file."""

    posts: int = 0  # gone posts removed (rows, for a table)
    copies: int = 0  # copies of gone posts removed from pages and other posts
    blank_lines: int = 0  # lines left empty: each was one gone post
    unreadable: int = 0  # lines that name a gone id but are not JSON: left as they were
    within_limit: int = 0  # removed posts that counted towards the collection's limit (raw posts)
    size: int = 0  # the file's size afterwards
    digest: object = field(default_factory=hashlib.sha256, repr=False)  # ... and its checksum

    @property
    def changed(self) -> bool:
        return bool(self.posts or self.copies)

    def write(self, target: IO, data: bytes | str) -> None:
        target.write(data)
        encoded = data.encode("utf-8") if isinstance(data, str) else data
        self.digest.update(encoded)
        self.size += len(encoded)

    def note(self) -> dict:
        found = {
            "posts_removed": self.posts,
            "copies_removed": self.copies,
            "lines_left_empty": self.blank_lines,
            "within_limit": self.within_limit,
            "unreadable_lines_naming_a_gone_id": self.unreadable,
            "bytes": self.size,
            "sha256": self.digest.hexdigest(),
        }
        return {key: value for key, value in found.items() if value or key in ("posts_removed", "bytes", "sha256")}


def purge_folder(
    folder: Path,
    gone: Collection[str],
    *,
    purge: dict,
    within_limit: Callable[[Path], int] | None = None,
) -> dict[str, FileChange]:
    """Remove the gone posts (their ids) from every file of this run folder that holds posts'
    text; returns what changed, by file name (nothing: nothing of them was left).

    `purge`: what the folder's SOURCES records about this purge; its "record" (where the record of
    the posts is) tells one purge from another, so a second attempt of the same purge adds to its
    note instead of writing another. `within_limit(raw)`: how many of the gone posts the collection
    takes from this raw file towards its limit, asked before the file changes (None: no limit).
    """
    folder = Path(folder)
    ids = frozenset(gone)
    numbers = frozenset(post_id.encode() for post_id in ids)
    staged: list[OutputSet] = []
    changes: dict[str, FileChange] = {}
    try:
        for name in PURGED_FILES:
            path = folder / name
            if not path.is_file():
                continue
            out = OutputSet()
            staged.append(out)
            try:
                if name in TABLES:
                    change = _purge_table(path, TABLES[name], ids, out)
                else:
                    change = _purge_raw(path, numbers, ids, out)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise PurgeError(
                    f"{in_data_folder(path)} is not the table dnflow wrote ({exc}), so its gone posts cannot be "
                    "found: nothing was changed in that folder. Put the file back as it was, or delete it, then "
                    "purge again."
                ) from None
            if not change.changed:
                staged.pop().discard()
                continue
            if name == RAW_POSTS and within_limit is not None:
                change.within_limit = within_limit(path)  # the file as it still is
            changes[name] = change
        if changes:
            _note(folder, purge, changes)
            for out in staged:
                out.commit()
            staged = []
    finally:
        for out in staged:
            out.discard()
    return changes


def _note(folder: Path, purge: dict, changes: dict[str, FileChange]) -> None:
    sources = read_sources(folder)
    notes = sources.setdefault(NOTES, [])
    entry = next((note for note in notes if note.get("record") == purge.get("record")), None)
    if entry is None:
        entry = {**purge, "files": {}}
        notes.append(entry)
    entry.setdefault("files", {}).update({name: change.note() for name, change in changes.items()})
    write_json(folder / SOURCES, sources)


def read_sources(folder: Path) -> dict:
    """The folder's SOURCES (what an archive import and purges recorded), or {} without one."""
    try:
        sources = json.loads((Path(folder) / SOURCES).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise PurgeError(
            f"{in_data_folder(Path(folder) / SOURCES)} is damaged, so the purge cannot record what it changes there: "
            "nothing was changed in that folder."
        ) from None
    if not isinstance(sources, dict) or not isinstance(sources.get(NOTES, []), list):
        raise PurgeError(
            f"{in_data_folder(Path(folder) / SOURCES)} is not what dnflow writes: nothing was changed in that folder."
        )
    return sources


def purge_notes(folder: Path) -> list[dict]:
    """The purges SOURCES records for this folder (none if it has no readable SOURCES)."""
    try:
        return [note for note in read_sources(folder).get(NOTES, []) if isinstance(note, dict)]
    except (PurgeError, OSError):
        return []


def posts_purged_within_limit(folder: Path, *, except_record: str = "") -> int:
    """How many posts purges removed from the folder's raw posts that its collection counted
    towards its limit (leaving out the purge whose record is `except_record`)."""
    total = 0
    for note in purge_notes(folder):
        raw = (note.get("files") or {}).get(RAW_POSTS)
        if note.get("record") != except_record and isinstance(raw, dict):
            total += int(raw.get("within_limit") or 0)
    return total


def counted_in_collection(raw: Path, ids: Collection[str], *, limit: int | None, **query) -> int:
    """How many of `ids` the collection takes from this raw file within `limit` (query: the
    collection's term, lang, start and end, as pipeline.formats.iter_collection takes them). Only
    this file is read: the files of one collection never hold the same post (a refresh asks X only
    for newer ones)."""
    if limit is None or limit <= 0:
        return 0
    wanted = frozenset(ids)
    try:
        return sum(1 for post in iter_collection(raw, limit=limit, report=ImportReport(), **query) if post.id in wanted)
    except ArchiveError:  # no valid post at all: nothing counted
        return 0


# --- Raw posts -----------------------------------------------------------------------------------


def _purge_raw(path: Path, numbers: frozenset[bytes], ids: frozenset[str], out: OutputSet) -> FileChange:
    change = FileChange()
    with path.open("rb") as raw:
        if raw.read(2) == GZIP_MAGIC:
            raise PurgeError(
                f"{in_data_folder(path)} is gzipped, which dnflow never writes: purge it by hand or delete the search."
            )
        raw.seek(0)
        target = out.open(path, "wb")
        for line in raw:
            change.write(target, _purge_line(line, numbers, ids, change))
    return change


def _purge_line(line: bytes, numbers: frozenset[bytes], ids: frozenset[str], change: FileChange) -> bytes:
    if numbers.isdisjoint(_NUMBER.findall(line)):
        return line
    body = line.rstrip(b"\r\n")
    ending = line[len(body) :]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        change.unreadable += 1
        return line
    found = _Found(ids)
    kept = found.document(document)
    if not (found.posts or found.copies):
        return line  # the id is only named here (a reply to it, a retweet of it): nothing of it to remove
    change.posts += found.posts
    change.copies += found.copies
    if kept is None:
        change.blank_lines += 1
        return ending
    return orjson.dumps(kept) + ending


class _Found:
    """Walks one line's document, removing the gone posts and the copies of them; counts both."""

    def __init__(self, ids: frozenset[str]) -> None:
        self.ids = ids
        self.posts = 0
        self.copies = 0

    def document(self, doc: object) -> object | None:
        """What stays of a line's document; None when the line was one gone post."""
        if isinstance(doc, list):
            kept = [item for item in map(self.document, doc) if item is not None]
            return kept if kept or not doc else None
        if not isinstance(doc, dict):
            return doc
        if "data" in doc:
            return self._page(doc)
        if isinstance(doc.get("statuses"), list):  # a v1.1 search response
            doc["statuses"] = self._without(doc["statuses"])
            return doc
        post = doc["tweet"] if isinstance(doc.get("tweet"), dict) else doc  # a tweets.js item wraps its post
        if self._is_gone(post):
            return None
        self._strip(post)
        return doc

    def _page(self, page: dict) -> dict | None:
        data = page["data"]
        if isinstance(data, dict):  # a stream line, or a response about one post: the line is that post's
            if self._is_gone(data):
                return None
            self._strip(data)
        elif isinstance(data, list):
            page["data"] = self._without(data)
        includes = page.get("includes")
        if isinstance(includes, dict) and isinstance(includes.get("tweets"), list):
            attached = includes["tweets"]
            includes["tweets"] = [item for item in attached if not (isinstance(item, dict) and _id(item) in self.ids)]
            self.copies += len(attached) - len(includes["tweets"])
        return page

    def _without(self, posts: list) -> list:
        kept = []
        for post in posts:
            if isinstance(post, dict):
                if self._is_gone(post):
                    continue
                self._strip(post)
            kept.append(post)
        return kept

    def _is_gone(self, post: dict) -> bool:
        if _id(post) in self.ids:
            self.posts += 1
            return True
        return False

    def _strip(self, post: dict) -> None:
        """Remove the copies of gone posts a post carries, keeping its own fields."""
        for key in ("retweeted_status", "quoted_status"):  # v1.1
            inner = post.get(key)
            if isinstance(inner, dict):
                if _id(inner) in self.ids:
                    del post[key]
                    self.copies += 1
                else:
                    self._strip(inner)
        references = post.get("referenced_tweets")
        if isinstance(references, list):  # twarc2 inlines the referenced posts here
            for number, reference in enumerate(references):
                if not isinstance(reference, dict) or not reference.keys() - {"type", "id"}:
                    continue
                if _id(reference) in self.ids:
                    # What twarc2 leaves for a reference it could not look up.
                    references[number] = {key: reference[key] for key in ("type", "id") if key in reference}
                    self.copies += 1
                else:
                    self._strip(reference)


def _id(post: dict) -> str:
    value = post.get("id_str")
    if not (isinstance(value, str) and value):
        value = post.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else ""


# --- Tables --------------------------------------------------------------------------------------


def _purge_table(path: Path, column: str, ids: frozenset[str], out: OutputSet) -> FileChange:
    change = FileChange()
    with path.open(newline="", encoding="utf-8") as handle:
        records = _records(handle)
        header = next(records, None)
        if header is None:
            return change
        cells, text = header
        if column not in cells:
            raise PurgeError(
                f"{in_data_folder(path)} has no {column} column, so its gone posts cannot be found: nothing was "
                "changed in that folder. Run the search again to write it anew, or delete the file."
            )
        index = cells.index(column)
        target = out.open(path, "w")
        change.write(target, text)
        for cells, text in records:
            if index < len(cells) and cells[index] in ids:
                change.posts += 1
                continue
            change.write(target, text)
    return change


def _records(handle: IO[str]) -> Iterator[tuple[list[str], str]]:
    """Each CSV record of an open file (newline="") with the exact text it was read from, so that a
    row that stays is written back byte for byte. The csv reader asks for the next line only when
    a record needs it (a quoted cell across lines), never ahead."""
    taken: list[str] = []

    def lines() -> Iterator[str]:
        for line in handle:
            taken.append(line)
            yield line

    for cells in csv.reader(lines()):
        text = "".join(taken)
        taken.clear()
        yield cells, text
