"""Copy the archive a person brought into a search's raw `tweets.jsonl`, one document a line.

JSONL inputs are copied byte for byte (only gzip undone): a million-post archive must copy at
disk speed, so nothing is parsed beyond a sniff of the first lines. Single-document inputs (a
JSON array, a search response, a pretty-printed page, tweets.js) are split into one line per
element. The raw file appears only once complete, and `sources.json` beside it records where
every line came from.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tempfile
import zlib
from pathlib import Path

import orjson

from ..contract import COPY_WORK_PREFIX, SOURCES, TEMP_PREFIX, TEMP_SUFFIX
from .checks import (
    ACCEPTED,
    BOM,
    CHUNK,
    COPY_CHUNK,
    BackgroundChecksum,
    Utf8Check,
    check_text_start,
    first_lines_recognised,
    not_utf8,
)
from .linking import link_archive
from .pagecache import MIN_BYTES as PAGE_CACHE_MIN_BYTES
from .pagecache import DropBehind
from .reading import GZIP_MAGIC, kind_of
from .report import ArchiveError, ImportReport

# How far we read looking for the end of the first line before calling the file one document.
_FIRST_LINE_LIMIT = 16 * 1024 * 1024
# Inside a folder, files with these endings are imported; others (a README, twarc.log) are not.
FOLDER_SUFFIXES = (".jsonl", ".ndjson", ".jl", ".json", ".js", ".gz", ".txt")
# Twitter's "download your archive" names its posts data/tweets.js, tweet.js or tweets-part1.js.
_TWEETS_JS_NAME = re.compile(r"^tweets?(-part\d+)?\.js$")
_YTD_PREFIX = re.compile(rb"^\s*window\.YTD\.[\w.]+\s*=\s*")


class _HashingReader:
    """Reads a file while feeding every byte to a checksum: the provenance costs no second pass.

    Only what a copy needs: read(size), and peek(n) to sniff the first bytes.
    """

    def __init__(self, raw, checksum: BackgroundChecksum) -> None:
        self._raw = raw
        self._checksum = checksum
        self._ahead = b""  # read (and checksummed) by peek, not yet returned
        self._position = 0
        # A big archive is read once: its pages are dropped behind the copy, like the copy's own
        # (see pagecache); reading one that was not in memory would otherwise fill it.
        big = os.fstat(raw.fileno()).st_size >= PAGE_CACHE_MIN_BYTES
        self._drop = DropBehind(raw.fileno(), sequential_reads=True) if big else None

    def peek(self, size: int) -> bytes:
        if len(self._ahead) < size:
            self._ahead += self._read_raw(max(size, CHUNK))
        return self._ahead[:size]

    def read(self, size: int = -1) -> bytes:
        if self._ahead:
            if size is None or size < 0:
                data, self._ahead = self._ahead + self._read_raw(-1), b""
            else:
                data, self._ahead = self._ahead[:size], self._ahead[size:]
            return data
        return self._read_raw(size)

    def _read_raw(self, size: int) -> bytes:
        data = self._raw.read() if size is None or size < 0 else self._raw.read(size)
        if data:
            self._checksum.update(data)
            self._position += len(data)
            if self._drop is not None:
                self._drop.advance(self._position)
        return data


def _natural_key(path: Path) -> list:
    # tweets-part2.js before tweets-part10.js
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _input_files(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """The files to copy with the names to show for them, and the folder files left out."""
    files: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for path in map(Path, paths):
        if not path.exists():
            raise ArchiveError(f"No file or folder at {path}: check the path.")
        if not path.is_dir():
            files.append((path, path.name))
            continue
        inside = sorted(
            (
                f
                for f in path.rglob("*")
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts)
            ),
            key=_natural_key,
        )
        # A "download your archive" folder (tweets.js beside account.js or manifest.js, or in data/):
        # its posts, not its likes, messages or account details.
        archive_dirs = {f.parent for f in inside if f.name in ("account.js", "manifest.js")}
        tweets_js = [
            f for f in inside if _TWEETS_JS_NAME.match(f.name) and (f.parent in archive_dirs or f.parent.name == "data")
        ]
        chosen = tweets_js or [f for f in inside if f.name.lower().endswith(FOLDER_SUFFIXES)]
        skipped += [str(f.relative_to(path.parent)) for f in inside if f not in chosen]
        if not chosen:
            found = ", ".join(f.name for f in inside[:5]) or "nothing"
            raise ArchiveError(
                f"The folder {path} holds no archive file (found: {found}). {ACCEPTED}; choose such a file "
                "or a folder that holds them."
            )
        files += [(f, str(f.relative_to(path.parent))) for f in chosen]
    if not files:
        raise ArchiveError("No archive file was given: choose at least one file or folder to import.")
    return files, skipped


def _read_more(stream, buffered: bytes, limit: int) -> bytes:
    """Extend `buffered` until it holds its first line whole (or `limit` bytes, or the whole stream)."""
    while b"\n" not in buffered.lstrip() and len(buffered) < limit:
        more = stream.read(CHUNK)
        if not more:
            break
        buffered += more
    return buffered


def _decode_whole(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(name, data[: error.start].count(b"\n") + 1) from None


def _copy_jsonl(buffered: bytes, stream, out, name: str) -> int:
    """Copy lines untouched, checking the text is UTF-8 on the way; returns the lines written."""
    utf8 = Utf8Check(name)
    # The copy is read back once, by the summarise pass, not kept in memory (see pagecache).
    drop = DropBehind(out.fileno(), out.tell(), writing=True)
    lines = 0
    last = b""
    chunk = buffered
    while chunk:
        utf8.check(chunk, lines)
        out.write(chunk)
        drop.advance(out.tell())
        lines += chunk.count(b"\n")
        last = chunk[-1:]
        chunk = stream.read(COPY_CHUNK)
    utf8.finish(lines)
    if last != b"\n":
        out.write(b"\n")
        lines += 1
    return lines


def _write_items(items: list, out) -> int:
    for item in items:
        out.write(orjson.dumps(item))
        out.write(b"\n")
    return len(items)


def _copy_stream(stream, out, name: str) -> tuple[str, int, bool]:
    """Copy one decompressed input; returns (detected format, lines written, line for line)."""
    buffered = stream.read(CHUNK)
    if buffered.startswith(BOM):
        buffered = buffered[len(BOM) :]
    check_text_start(buffered, name)
    while buffered.isspace() or not buffered:
        more = stream.read(CHUNK)
        if not more:
            raise ArchiveError(f"{name} is empty: there is nothing to import. Choose the file the export wrote.")
        buffered += more
    start = buffered.lstrip()[:1]

    if _YTD_PREFIX.match(buffered):
        return _copy_tweets_js(buffered + stream.read(), out, name)

    if start == b"{":
        buffered = _read_more(stream, buffered, _FIRST_LINE_LIMIT)
        first_line = buffered.lstrip().split(b"\n", 1)[0]
        try:
            orjson.loads(first_line)
            is_jsonl = True
        except orjson.JSONDecodeError:
            is_jsonl = False
        if not is_jsonl:
            whole = buffered + stream.read()
            try:
                return _copy_document(orjson.loads(_decode_whole(whole, name)), out, name)
            except orjson.JSONDecodeError as error:
                # Not one document: JSONL whose first line is broken is still JSONL.
                if first_lines_recognised(whole[:_FIRST_LINE_LIMIT]) is None:
                    raise ArchiveError(f"{name} is not valid JSON or JSONL ({error}). {ACCEPTED}.") from None
                buffered, stream = whole, io.BytesIO(b"")
        kind = first_lines_recognised(buffered)
        if kind is None:
            raise ArchiveError(
                f"{name} is JSON lines, but none of its first lines is an X/Twitter post or response page. {ACCEPTED}."
            )
        return f"JSONL ({kind})", _copy_jsonl(buffered, stream, out, name), True

    if start == b"[":
        whole = buffered + stream.read()
        try:
            document = orjson.loads(_decode_whole(whole, name))
        except orjson.JSONDecodeError as error:
            raise ArchiveError(f"{name} is not valid JSON ({error}): export it again. {ACCEPTED}.") from None
        return _copy_document(document, out, name)

    # JSONL whose first line is broken (a stray byte, a cut line) is still JSONL: that line is
    # reported when the posts are read, like any other broken line.
    kind = first_lines_recognised(buffered)
    if kind is not None:
        return f"JSONL ({kind})", _copy_jsonl(buffered, stream, out, name), True
    snippet = buffered.lstrip()[:40].decode("utf-8", "replace")
    raise ArchiveError(f"{name} is not in a format dnflow reads: it starts with {snippet!r}. {ACCEPTED}.")


def _copy_document(document: object, out, name: str) -> tuple[str, int, bool]:
    """One JSON document: each post (or page) on its own line, content unchanged."""
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


def _ytd_items(data: bytes, name: str) -> list:
    text = _decode_whole(data, name)
    body = text[text.index("=") + 1 :]
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ArchiveError(
            f"{name} starts like Twitter's archive (window.YTD...) but its data is not valid JSON ({error}): "
            "download the archive again."
        ) from None
    if not isinstance(items, list):
        raise ArchiveError(f"{name} starts like Twitter's archive but holds no list of posts: download it again.")
    return items


def _copy_tweets_js(data: bytes, out, name: str) -> tuple[str, int, bool]:
    items = _ytd_items(data, name)
    if items and kind_of(items) is None:
        raise ArchiveError(f"{name} is part of Twitter's archive but holds no posts: import data/tweets.js instead.")
    return "tweets.js (Twitter archive)", _write_items(items, out), False


def _archive_owner(tweets_js: Path) -> str:
    """The screen name in the archive's account.js next to tweets.js: tweets.js has no user object."""
    account = tweets_js.with_name("account.js")
    try:
        items = _ytd_items(account.read_bytes(), account.name)
        return str(items[0]["account"]["username"])
    except (OSError, ArchiveError, IndexError, KeyError, TypeError, ValueError):
        return ""


def _copy_one(path: Path, name: str, out) -> dict:
    size = path.stat().st_size
    if size == 0:
        raise ArchiveError(f"{name} is empty (0 bytes): there is nothing to import. Choose the file the export wrote.")
    checksum = BackgroundChecksum()
    try:
        with path.open("rb", buffering=0) as raw:
            reader = _HashingReader(raw, checksum)
            gzipped = reader.peek(2)[:2] == GZIP_MAGIC
            stream = gzip.GzipFile(fileobj=reader, mode="rb") if gzipped else reader
            try:
                label, lines, line_for_line = _copy_stream(stream, out, name)
            except EOFError:
                raise ArchiveError(
                    f"{name} is a truncated gzip file (it ends before its compressed data does): "
                    "copy or download it again."
                ) from None
            except (gzip.BadGzipFile, zlib.error) as error:
                raise ArchiveError(f"{name} is a damaged gzip file ({error}): copy or download it again.") from None
            while reader.read(COPY_CHUNK):  # the checksum covers the whole file, trailing bytes too
                pass
        sha256 = checksum.hexdigest()
    finally:
        checksum.close()
    entry = {
        "name": name,
        "size": size,
        "sha256": sha256,
        "format": f"gzip, {label}" if gzipped else label,
        "lines": lines,
        "line_for_line": line_for_line,
    }
    if label.startswith("tweets.js"):
        owner = _archive_owner(path)
        if owner:
            entry["account"] = owner
    return entry


def _write_atomically(dest: Path, write) -> None:
    # Not a `with` block: the file must outlive it, renamed into place, or be removed on failure.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        dir=dest.parent, prefix=f"{TEMP_PREFIX}{dest.name}.", suffix=TEMP_SUFFIX, delete=False
    )
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # like every other file of the search, not private to this process
        os.replace(handle.name, dest)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _link(files: list[tuple[Path, str]], staged: Path) -> dict | None:
    if len(files) != 1:
        return None
    (path, name) = files[0]
    return link_archive(path, name, staged)


def copy_archive(
    paths: list[Path], dest: Path, report: ImportReport | None = None, *, link: bool = False
) -> ImportReport:
    """Copy the archive files (or folders) into `dest`, one JSON document per line, and record
    each input's name, size, sha256 and format in sources.json beside it.

    `link`: hard-link a single plain JSONL file instead of copying it, where that gives the same
    bytes (see pipeline.formats.linking for what that trades away); otherwise copy.
    """
    report = report if report is not None else ImportReport()
    dest = Path(dest)
    files, skipped = _input_files(list(paths))
    dest.parent.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []

    def write_raw(out) -> None:
        next_line = 1
        for path, name in files:
            entry = _copy_one(path, name, out)
            entry["first_line"] = next_line
            next_line += entry["lines"]
            entries.append(entry)

    provenance = dest.with_name(SOURCES)
    # The raw file is replaced last: its presence means the copy, and its provenance, are complete.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=COPY_WORK_PREFIX) as scratch:
        staged = Path(scratch) / dest.name
        linked = _link(files, staged) if link else None
        if linked is not None:
            entries.append({**linked, "first_line": 1})
        else:
            _write_atomically(staged, write_raw)
        document = {"raw": dest.name, "files": entries, "skipped": skipped}
        _write_atomically(provenance, lambda out: out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2)))
        os.replace(staged, dest)
    report.sources = entries
    report.skipped_files = skipped
    return report
