"""Read a search's raw `tweets.jsonl`: every line parsed once, every post normalised once.

Each line is one JSON document of whatever kind the archive or the API gave (a v1.1 tweet, a
v2 response page, a v2 stream line, a twarc2 flattened tweet, a tweets.js item); its kind is
decided per line, so one raw file may mix them.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import orjson

from pipeline.contract import SOURCES
from pipeline.idset import SeenIds
from pipeline.records import Post

from .normalise import PageLookups, post_from_twarc2, post_from_v1
from .pagecache import MIN_BYTES as PAGE_CACHE_MIN_BYTES
from .pagecache import DropBehind
from .report import ArchiveError, ImportReport
from .typed import read_v1

# A line longer than this is skipped as a problem, and read in pieces rather than whole: a
# v2 page of 500 posts with its includes is a few MB, nothing legitimate comes near this.
MAX_LINE_BYTES = 10 * 1024 * 1024
_SKIP_PIECE = 1024 * 1024
# Reading buffer: big reads keep system calls and copies few (lines are a few KB each).
READ_BUFFER = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def kind_of(doc: object) -> str | None:
    """What kind of document a parsed line is, in words; None when it is not X data at all."""
    if isinstance(doc, list):
        kinds = {kind_of(item) for item in doc[:20]}
        kinds.discard(None)
        return f"array of {sorted(kinds)[0]}s" if kinds else None
    if not isinstance(doc, dict):
        return None
    if "data" in doc:
        data = doc["data"]
        if isinstance(data, list):
            return "v2 response page"
        if isinstance(data, dict):
            return "v2 stream line" if "matching_rules" in doc else "v2 single-post response"
        return None
    if isinstance(doc.get("tweet"), dict):
        return "tweets.js item"
    if isinstance(doc.get("statuses"), list):
        return "v1.1 search response"
    entities = doc.get("entities")
    v1_entities = isinstance(entities, dict) and "user_mentions" in entities
    # Keys only a post has: such a line is a post even when its id is missing, so it is reported as
    # a broken post (with its line number) rather than passed over as some other kind of message.
    if (
        "id_str" in doc
        or isinstance(doc.get("user"), dict)
        or "full_text" in doc
        or v1_entities
        or isinstance(doc.get("extended_tweet"), dict)
        or isinstance(doc.get("retweeted_status"), dict)
    ):
        return "v1.1 tweet" if isinstance(doc.get("user"), dict) else "tweets.js item"
    # twarc2 marks its flattened tweets with "__twarc", and its response pages too: a page without
    # posts (the empty last one, {"meta": {"result_count": 0}, "__twarc": ...}) is not a tweet.
    if isinstance(doc.get("author"), dict) or ("__twarc" in doc and "meta" not in doc):
        return "twarc2 flattened tweet"
    if "author_id" in doc or "edit_history_tweet_ids" in doc or ("text" in doc and "id" in doc):
        return "v2 tweet"
    return None


def _problem_reason(error: orjson.JSONDecodeError, line: bytes = b"") -> str:
    message = str(error)
    if message.startswith("str is not valid UTF-8"):
        return "not valid UTF-8 text"  # the copy keeps such a line as it was; here it is skipped
    if "unexpected end" in message.lower() or "EOF" in message:
        return "truncated JSON"
    if message.startswith(("unexpected control character in string", "invalid escape")) and _ends_inside_a_string(line):
        # A line cut in the middle of a text: its own line break is what the parser stumbled on
        # (read as an escape when the cut fell just after a backslash).
        return "truncated JSON"
    if "after document" in message:
        # Files joined without a line break between them: a whole page of posts may be on that line.
        return (
            "two JSON documents run together on one line, none of its posts read: put each on a line "
            f"of its own ({message})"
        )
    return f"invalid JSON ({message})"


def _ends_inside_a_string(line: bytes) -> bool:
    try:
        orjson.loads(line.rstrip(b"\r\n"))
    except orjson.JSONDecodeError as error:
        return str(error).startswith("unexpected end")
    return False


def _has_author_id(tweet: dict) -> bool:
    """Whether a post names its author by id where no screen name came with it (a v2 post whose
    author is missing from the page's includes, a v1.1 user object without its screen name)."""
    author_id = tweet.get("author_id")
    if type(author_id) is str and author_id:
        return True
    for key in ("user", "author"):
        who = tweet.get(key)
        if isinstance(who, dict) and (who.get("id_str") or who.get("id")):
            return True
    return False


def not_a_post(post: Post, tweet: dict, *, author_known: bool = False) -> str:
    """Why a parsed post is not one the output contract can use ("" when it is): every post needs
    its id, its time and its author. `author_known`: the author is implied (tweets.js: the archive's
    owner, even when account.js is not there to name them)."""
    if not post.id:
        return "a post without an id"
    missing = []
    if not (author_known or post.user or _has_author_id(tweet)):
        missing.append("author")
    if not post.created_at:
        missing.append("time")
    return "not a post: no " + " and no ".join(missing) if missing else ""


class SourceMap:
    """Maps a raw line number back to the archive file (and its line) it was copied from.

    copy_archive records in sources.json which raw lines each input became; without that file
    (a raw file written by the API collector), or with `recorded=False`, problems name the raw
    file itself.
    """

    def __init__(self, raw_path: Path, *, recorded: bool = True) -> None:
        self.raw_path = Path(raw_path)
        self.raw_name = raw_path.name
        self.entries: list[dict] = []
        self._index = 0
        if not recorded:
            return
        try:
            recorded = orjson.loads(raw_path.with_name(SOURCES).read_bytes())
            self.entries = sorted(
                (e for e in recorded.get("files", []) if isinstance(e.get("first_line"), int)),
                key=lambda e: e["first_line"],
            )
        except (OSError, orjson.JSONDecodeError, AttributeError, TypeError):
            self.entries = []

    @property
    def has_owners(self) -> bool:
        """Whether some input needs its line's entry to know its posts' author (tweets.js)."""
        return any(entry.get("account") for entry in self.entries)

    def entry(self, line: int) -> dict | None:
        # Lines arrive in order, so the pointer only moves forwards.
        while self._index < len(self.entries):
            current = self.entries[self._index]
            if line < current["first_line"]:
                return None
            if line < current["first_line"] + current.get("lines", 0):
                return current
            self._index += 1
        return None

    def where(self, line: int) -> tuple[str, int, str]:
        """(file name, line number, a note) to report a problem on this raw line."""
        entry = self.entry(line)
        if entry is None:
            return self.raw_name, line, ""
        if entry.get("line_for_line"):
            return entry["name"], line - entry["first_line"] + 1, ""
        return self.raw_name, line, f" (item {line - entry['first_line'] + 1} of {entry['name']})"


def _drop_behind(stream, start: int) -> DropBehind | None:
    """Drop-behind for reading a big uncompressed raw file (see pipeline.formats.pagecache)."""
    if isinstance(stream, gzip.GzipFile):
        return None
    fd = stream.fileno()
    if os.fstat(fd).st_size < PAGE_CACHE_MIN_BYTES:
        return None
    return DropBehind(fd, start, sequential_reads=True)


def _open_raw(raw_path: Path):
    try:
        handle = raw_path.open("rb", buffering=READ_BUFFER)
    except FileNotFoundError:
        raise ArchiveError(f"The raw posts file {raw_path} does not exist: collect or import first.") from None
    if handle.read(2) == GZIP_MAGIC:
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle, mode="rb")
    handle.seek(0)
    return handle


def _posts_in(
    doc: object, owner: str, bad: Callable[[str], None], not_post: Callable[[], None], *, from_archive: bool = False
) -> Iterator[Post]:
    """The top-level posts of one parsed line. `from_archive`: the line was copied from a tweets.js."""
    if isinstance(doc, list):
        for item in doc:
            yield from _posts_in(item, owner, bad, not_post, from_archive=from_archive)
        return
    if not isinstance(doc, dict):
        not_post()
        return
    if "data" in doc:
        lookups = PageLookups(doc.get("includes"))
        data = doc["data"]
        for item in data if isinstance(data, list) else (data,):
            yield from _one(lambda t, lookups=lookups: lookups.post(t), item, bad)
        return
    if isinstance(doc.get("statuses"), list):
        for item in doc["statuses"]:
            yield from _one(post_from_v1, item, bad)
        return
    kind = kind_of(doc)
    if kind == "tweets.js item":
        # Its author is the archive's owner: in a tweets.js, or wrapped as only tweets.js wraps posts.
        wrapped = isinstance(doc.get("tweet"), dict)
        tweet = doc["tweet"] if wrapped else doc
        make = partial(post_from_v1, source_format="tweets.js", owner=owner)
        yield from _one(make, tweet, bad, author_known=wrapped or from_archive)
    elif kind == "v1.1 tweet":
        yield from _one(post_from_v1, doc, bad)
    elif kind in ("twarc2 flattened tweet", "v2 tweet"):
        yield from _one(post_from_twarc2, doc, bad)
    elif "matching_rules" in doc:
        bad("a stream line without its post (no data)")
    elif "errors" in doc or "meta" in doc:
        # An empty last page ({"meta": {"result_count": 0}}) or an error response: no posts.
        meta = doc.get("meta")
        if not (isinstance(meta, dict) and meta.get("result_count") == 0):
            not_post()
    else:
        not_post()


def _one(
    make: Callable[[dict], Post], tweet: object, bad: Callable[[str], None], *, author_known: bool = False
) -> Iterator[Post]:
    if not isinstance(tweet, dict):
        bad("a post that is not a JSON object")
        return
    try:
        post = make(tweet)
    except (AttributeError, TypeError, KeyError, ValueError) as error:
        bad(f"a post of an unexpected shape ({type(error).__name__}: {error})")
        return
    reason = not_a_post(post, tweet, author_known=author_known)
    if reason:
        bad(reason)
        return
    yield post


def _is_v1_tweet(doc: object) -> bool:
    """The common case of kind_of(doc) == "v1.1 tweet", decided in a few lookups: what
    _posts_in would do with a plain v1.1 tweet, without its general dispatch."""
    return (
        type(doc) is dict
        and type(doc.get("user")) is dict
        and ("id_str" in doc or "id" in doc)
        and "data" not in doc
        and "statuses" not in doc
        and "tweet" not in doc
    )


def iter_posts(
    raw_path: Path,
    report: ImportReport,
    *,
    start: int = 0,
    end: int | None = None,
    sources: SourceMap | None = None,
) -> Iterator[Post]:
    """Every top-level post of a raw tweets.jsonl, in file order; no dedup. Bad lines are
    skipped and recorded in `report` with the file and line they came from.

    `start`/`end`: read only the lines in this byte range of an uncompressed file (`start` at
    the beginning of a line, `end` after one); line numbers then count from the range's start,
    and `sources` (default: the raw file's sources.json) names where problems are.
    """
    raw_path = Path(raw_path)
    sources = sources if sources is not None else SourceMap(raw_path)
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    shape_errors = (AttributeError, TypeError, KeyError, ValueError)
    limit = MAX_LINE_BYTES
    remaining = None if end is None else end - start
    number = 0
    with _open_raw(raw_path) as stream:
        if start:
            stream.seek(start)
        readline = stream.readline
        drop = _drop_behind(stream, start)
        try:
            while remaining is None or remaining > 0:
                line = readline(limit + 1)
                if not line:
                    break
                number += 1
                if drop is not None and not number & 4095:
                    drop.advance(stream.tell())
                if remaining is not None:
                    remaining -= len(line)
                if len(line) > limit and not line.endswith(b"\n"):
                    size = len(line)
                    while True:
                        piece = readline(_SKIP_PIECE)
                        size += len(piece)
                        if remaining is not None:
                            remaining -= len(piece)
                        if not piece or piece.endswith(b"\n"):
                            break
                    name, at, note = sources.where(number)
                    report.lines_read += 1
                    reason = f"line of {size:,} bytes is over the {MAX_LINE_BYTES:,}-byte limit"
                    report.add_problem(name, at, reason + note)
                    continue
                if line.isspace():
                    continue
                report.lines_read += 1
                # The common line, a plain v1.1 tweet, is decoded into the fields a Post needs
                # only (see typed.py); anything else is parsed whole below.
                post = read_v1(line)
                if post is not None:
                    report.posts_seen += 1
                    yield post
                    continue
                try:
                    doc = loads(line)
                except decode_error as error:
                    name, at, note = sources.where(number)
                    report.add_problem(name, at, _problem_reason(error, line) + note)
                    continue

                if _is_v1_tweet(doc):
                    # The fast path of the formats' most common line; the same as _posts_in's.
                    try:
                        post = post_from_v1(doc)
                    except shape_errors as error:
                        name, at, note = sources.where(number)
                        reason = f"a post of an unexpected shape ({type(error).__name__}: {error})"
                        report.add_problem(name, at, reason + note)
                        continue
                    if not (post.id and post.created_at and post.user):
                        reason = not_a_post(post, doc)
                        if reason:
                            name, at, note = sources.where(number)
                            report.add_problem(name, at, reason + note)
                            continue
                        report.authorless += not post.user
                    report.posts_seen += 1
                    yield post
                    continue

                entry = sources.entry(number) or {}
                owner = entry.get("account", "")
                from_archive = "tweets.js" in entry.get("format", "")

                def bad(reason: str, number: int = number) -> None:
                    name, at, note = sources.where(number)
                    report.add_problem(name, at, reason + note)

                def not_post() -> None:
                    report.not_posts += 1

                for post in _posts_in(doc, owner, bad, not_post, from_archive=from_archive):
                    report.posts_seen += 1
                    if not post.user:
                        report.authorless += 1
                        if from_archive and not report.unnamed_tweets_js:
                            report.unnamed_tweets_js = entry.get("name", "tweets.js")
                    yield post
        except (EOFError, gzip.BadGzipFile, OSError) as error:
            raise ArchiveError(f"{raw_path.name} could not be read to the end ({error}): import it again.") from None
        finally:
            report.last_line = number
            if drop is not None:
                drop.finish(stream.tell())


def _utc_text(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def iter_collection(
    raw_path: Path | Sequence[Path],
    *,
    term: str = "",
    lang: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None | Sequence[int | None] = None,
    unavailable: Collection[str] = frozenset(),
    report: ImportReport,
) -> Iterator[Post]:
    """The collection: distinct posts (first occurrence kept) matching the term, language and
    time window [start, end), at most `limit` of them, less those in `unavailable` (posts X no
    longer gives, found by a recheck: they still count towards the limit, so a recheck leaves
    them out of the same collection rather than taking others in their place).

    `raw_path` may be several raw files read as one, in order (a search's earlier collections and
    the posts a later one added): a post is kept once, whichever file holds it first. Each file
    then has its own limit (`limit` is a list, one per file), as each collection had.

    A malformed term raises QueryError here, before anything is read. Raises ArchiveError after
    reading everything if not one valid post was found. The ids met so far may be spilled to
    disk beside the last raw file (see pipeline.idset); that is removed when the iteration ends.
    """
    from pipeline.query import compile_query

    matches = compile_query(term)
    paths = [Path(raw_path)] if isinstance(raw_path, str | Path) else [Path(p) for p in raw_path]
    limits = list(limit) if isinstance(limit, list | tuple) else [limit] * (1 if limit is not None else len(paths))
    if len(limits) != len(paths):
        raise ValueError(f"one limit per raw file: {len(paths)} files, {len(limits)} limits")
    if all(each is not None and each <= 0 for each in limits):
        return iter(())
    keep = CollectionFilter(matches, lang, start, end, unavailable)
    return _distinct_posts(list(zip(paths, limits, strict=True)), keep, report)


def _distinct_posts(
    parts: list[tuple[Path, int | None]], keep: CollectionFilter, report: ImportReport
) -> Iterator[Post]:
    seen = SeenIds(parts[-1][0].parent)
    try:
        posts_before = report.posts_seen
        for path, limit in parts:
            if limit is None or limit > 0:
                yield from collection(iter_posts(path, report), keep, limit=limit, seen=seen, report=report)
        if report.posts_seen == posts_before:
            raise no_valid_post(parts[0][0], report)
    finally:
        seen.close()


class CollectionFilter:
    """Which distinct posts belong to the collection: the term, language and time window."""

    def __init__(
        self,
        matches: Callable[[Post], bool],
        lang: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        unavailable: Collection[str] = frozenset(),
    ) -> None:
        from pipeline.query import match_all

        self.matches = None if matches is match_all else matches
        self.unavailable = frozenset(unavailable)
        self.lang = lang.strip().lower()
        self.start_text = _utc_text(start)
        self.end_text = _utc_text(end)


def collection(
    posts: Iterable[Post],
    keep: CollectionFilter,
    *,
    limit: int | None,
    seen: SeenIds,
    report: ImportReport,
) -> Iterator[Post]:
    """The posts of `posts` that are in the collection: not seen before, matching `keep`, and
    no more than `limit`. `seen` holds the ids met so far and is updated: every post read is
    added, kept or not."""
    if limit is not None and limit <= 0:
        return
    matches, lang, start_text, end_text = keep.matches, keep.lang, keep.start_text, keep.end_text
    filtered = bool(matches or lang or start_text or end_text)
    unavailable = keep.unavailable
    remember = seen.add
    yielded = 0
    for post in posts:
        if not remember(post.id):
            report.duplicates += 1
            continue
        if filtered:
            if lang and post.lang.lower() != lang:
                continue
            # created_at is always ISO 8601 in UTC to the second, so text order is time order.
            if start_text and not (post.created_at and post.created_at >= start_text):
                continue
            if end_text and not (post.created_at and post.created_at < end_text):
                continue
            if matches is not None and not matches(post):
                continue
        if unavailable and post.id in unavailable:
            report.unavailable += 1  # of the collection, no longer shown: it counts towards the limit
        else:
            yield post
        yielded += 1
        if limit is not None and yielded >= limit:
            return


def _purged_from(raw_path: Path) -> int:
    """How many posts purges removed from this raw file, as its sources.json records (pipeline.purge)."""
    try:
        recorded = orjson.loads(raw_path.with_name(SOURCES).read_bytes())
        notes = recorded.get("purges") or []
        return sum(
            int(((note.get("files") or {}).get(raw_path.name) or {}).get("posts_removed") or 0) for note in notes
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def no_valid_post(raw_path: Path, report: ImportReport) -> ArchiveError:
    # Named as the person knows it (the files they imported), not as the run's copy of it.
    names = [entry["name"] for entry in SourceMap(raw_path).entries if entry.get("name")]
    what = (
        ", ".join(names[:3]) + (f" and {len(names) - 3:,} more" if len(names) > 3 else "") if names else raw_path.name
    )
    if _purged_from(raw_path):
        # Not a file of the wrong kind: a file whose every post a purge removed (and collecting it again did too).
        return ArchiveError(
            f"{what}: no post is left to summarise, because a purge removed every post this search held from it "
            "(X no longer gave them). There is nothing to collect; the purge's record keeps which posts they were."
        )
    return ArchiveError(
        f"{what} {'holds' if len(names) < 2 else 'hold'} no valid post ({report.summary()}). Check that the "
        "archive is X/Twitter data: v1.1 tweets, v2 response pages, twarc2 output or Twitter's tweets.js."
    )
