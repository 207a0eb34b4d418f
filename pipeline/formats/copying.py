"""Copy the archive a person brought into a search's raw `tweets.jsonl`, one document a line.

JSONL inputs are copied byte for byte, except that gzip is undone, a UTF-8 byte order mark is left
out and a missing last newline is added (sources.json keeps the checksum of the input as it was):
a million-post archive must copy at disk speed, so nothing is parsed beyond a sniff of the first
lines. Single-document inputs (a
JSON array, a search response, a pretty-printed page, tweets.js) are split into one line per
element, streamed in bounded memory (pipeline.formats.documents). The raw file appears only once
complete, and `sources.json` beside it records where every line came from. What an import may
take from the disk is bounded (pipeline.formats.limits).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
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
    newlines,
)
from .documents import Reopen, copy_array, copy_object, copy_tweets_js, scanner_for
from .limits import DEFAULT_MAX_ARCHIVE_BYTES, FileMeter, ImportBudget, MeteredStream
from .linking import link_archive
from .names import ARCHIVE_MARKERS, FOLDER_SUFFIXES, TWEETS_JS_NAME, TXT_SNIFF, maybe_posts
from .pagecache import MIN_BYTES as PAGE_CACHE_MIN_BYTES
from .pagecache import DropBehind
from .reading import GZIP_MAGIC, MAX_LINE_BYTES
from .report import ArchiveError, ImportReport, NotPosts
from .zipped import is_zip, unpack

# A first line longer than the reader's limit would be skipped as a line: such a file is read as
# one document (or, if it is not one, as JSON lines after all).
_FIRST_LINE_LIMIT = MAX_LINE_BYTES + 1
_YTD_PREFIX = re.compile(rb"^\s*window\.YTD\.[\w.]+\s*=\s*")
_POST_ID = re.compile(rb"\d{1,20}")  # a first line that is only this: an id dataset given as an archive

# copy_archive's on_read: (bytes of the inputs read so far, their size in all), after every read.
ReadProgress = Callable[[int, int], None]


class _HashingReader:
    """Reads a file while feeding every byte to a checksum: the provenance costs no second pass.

    Only what a copy needs: read(size), peek(n) to sniff the first bytes, and how far it read.
    """

    def __init__(self, raw, checksum: BackgroundChecksum, on_read: Callable[[int], None] | None = None) -> None:
        self._raw = raw
        self._checksum = checksum
        self._on_read = on_read  # told how far it read, after every read
        self._ahead = b""  # read (and checksummed) by peek, not yet returned
        self.position = 0  # bytes read from the file
        # A big archive is read once: its pages are dropped behind the copy, like the copy's own
        # (see pagecache); reading one that was not in memory would otherwise fill it.
        big = os.fstat(raw.fileno()).st_size >= PAGE_CACHE_MIN_BYTES
        self._drop = DropBehind(raw.fileno(), sequential_reads=True) if big else None

    @property
    def consumed(self) -> int:
        """Bytes of the file handed on (read, not merely peeked at)."""
        return self.position - len(self._ahead)

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
            self.position += len(data)
            if self._drop is not None:
                self._drop.advance(self.position)
            if self._on_read is not None:
                self._on_read(self.position)
        return data


def _natural_key(path: Path) -> list:
    # tweets-part2.js before tweets-part10.js; and Twitter's tweets.js is part 0, before tweets-part1.js
    # (by its characters alone, "tweets-" comes before "tweets.").
    match = TWEETS_JS_NAME.match(path.name)
    if match and not match.group(1):
        path = path.with_name(f"{path.stem}-part0.js")
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _maybe_posts(path: Path) -> bool:
    if not path.name.lower().endswith(".txt"):
        return True
    with path.open("rb") as handle:
        return maybe_posts(path.name, handle.read(TXT_SNIFF))


def input_files(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[str]]:
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
        archive_dirs = {f.parent for f in inside if f.name in ARCHIVE_MARKERS}
        tweets_js = [
            f for f in inside if TWEETS_JS_NAME.match(f.name) and (f.parent in archive_dirs or f.parent.name == "data")
        ]
        chosen = tweets_js or [f for f in inside if f.name.lower().endswith(FOLDER_SUFFIXES) and _maybe_posts(f)]
        # account.js is read too, beside tweets.js (it names their author): not left out.
        read = set(chosen) | {f for f in inside if tweets_js and f.name == "account.js" and f.parent in archive_dirs}
        skipped += [str(f.relative_to(path.parent)) for f in inside if f not in read]
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


def _read_more(stream, buffered: bytes, limit: int) -> tuple[bytes, bool]:
    """Extend `buffered` until it holds its first line whole (or `limit` bytes, or the whole
    stream); and whether it does hold the whole first line (or the whole stream)."""
    while b"\n" not in buffered.lstrip() and len(buffered) < limit:
        more = stream.read(CHUNK)
        if not more:
            return buffered, True
        buffered += more
    return buffered, b"\n" in buffered.lstrip()


def _copy_jsonl(buffered: bytes, stream, out, name: str, *, lines: int = 0) -> int:
    """Copy lines untouched, judging on the way whether the text is UTF-8 (checks.Utf8Check);
    returns the lines written. `lines`: lines already written ahead of `buffered`."""
    utf8 = Utf8Check(name)
    # The copy is read back once, by the summarise pass, not kept in memory (see pagecache).
    drop = DropBehind(out.fileno(), out.tell(), writing=True)
    last = b"\n" if lines else b""
    chunk = buffered
    while chunk:
        utf8.check(chunk, lines)
        out.write(chunk)
        drop.advance(out.tell())
        lines += newlines(chunk)
        last = chunk[-1:]
        chunk = stream.read(COPY_CHUNK)
    utf8.finish(lines)
    if last != b"\n":
        out.write(b"\n")
        lines += 1
    return lines


def _as_jsonl(buffered: bytes, stream, out, name: str, *, lines: int = 0) -> tuple[str, int, bool]:
    kind = first_lines_recognised(buffered)
    if kind is None:
        raise NotPosts(
            f"{name} is JSON lines, but none of its first lines is an X/Twitter post or response page. {ACCEPTED}."
        )
    return f"JSONL ({kind})", _copy_jsonl(buffered, stream, out, name, lines=lines), True


def copy_stream(stream, out, name: str, *, reopen: Reopen, workdir: Path) -> tuple[str, int, bool]:
    """Copy one decompressed input; returns (detected format, lines written, line for line)."""
    buffered = stream.read(CHUNK)
    offset = 0  # of buffered[0] in the stream
    if buffered.startswith(BOM):
        buffered, offset = buffered[len(BOM) :], len(BOM)
    check_text_start(buffered, name)
    # Leading blank lines are written ahead as they come, not held (they are part of a JSONL copy;
    # for the other formats they are taken back).
    ahead = out.tell()
    blank_lines = 0
    while buffered.isspace() or not buffered:
        if len(buffered) >= CHUNK:
            out.write(buffered)
            blank_lines += buffered.count(b"\n")
            offset += len(buffered)
            buffered = b""
        more = stream.read(CHUNK)
        if not more:
            raise NotPosts(f"{name} is empty: there is nothing to import. Choose the file the export wrote.")
        buffered += more

    def take_back_blank_lines() -> None:
        if out.tell() != ahead:
            out.seek(ahead)
            out.truncate()

    def jsonl(head: bytes, rest, *, from_start: bool = False) -> tuple[str, int, bool]:
        if from_start:
            take_back_blank_lines()
        return _as_jsonl(head, rest, out, name, lines=0 if from_start else blank_lines)

    start = buffered.lstrip()[:1]
    first_line = blank_lines + 1  # the line buffered starts
    ytd = _YTD_PREFIX.match(buffered)
    if ytd is not None:
        take_back_blank_lines()
        first_line += buffered.count(b"\n", 0, ytd.end())
        return copy_tweets_js(scanner_for(stream, buffered[ytd.end() :], offset + ytd.end(), first_line), out, name)

    if start == b"{":
        buffered, whole_line = _read_more(stream, buffered, _FIRST_LINE_LIMIT)
        line = buffered.lstrip().split(b"\n", 1)[0]
        if whole_line and len(line) <= MAX_LINE_BYTES:
            try:
                orjson.loads(line)
                return jsonl(buffered, stream)
            except orjson.JSONDecodeError:
                pass
        return copy_object(
            buffered,
            stream,
            out,
            name,
            offset=offset,
            first_line=first_line,
            reopen=reopen,
            workdir=workdir,
            as_jsonl=jsonl,
            take_back=take_back_blank_lines,
        )

    if start == b"[":
        take_back_blank_lines()
        return copy_array(scanner_for(stream, buffered, offset, first_line), out, name)

    # JSONL whose first line is broken (a stray byte, a cut line) is still JSONL: that line is
    # reported when the posts are read, like any other broken line.
    if first_lines_recognised(buffered) is not None:
        return jsonl(buffered, stream)
    first = buffered.lstrip().split(b"\n", 1)[0].strip()
    if _POST_ID.fullmatch(first):
        raise NotPosts(
            f'{name} is a list of post ids, not of posts: look them up instead ("Tweet ids" on the form, '
            f"or manage.py run_search --ids {name}; X API credentials needed)."
        )
    snippet = buffered.lstrip()[:40].decode("utf-8", "replace")
    raise NotPosts(f"{name} is not in a format dnflow reads: it starts with {snippet!r}. {ACCEPTED}.")


def _archive_owner(tweets_js: Path) -> str:
    """The screen name in the archive's account.js next to tweets.js: tweets.js has no user object."""
    account = tweets_js.with_name("account.js")
    try:
        with account.open("rb") as handle:
            text = handle.read(CHUNK)  # a few hundred bytes in a real archive
        items = orjson.loads(text[text.index(b"=") + 1 :])
        return str(items[0]["account"]["username"])
    except (OSError, IndexError, KeyError, TypeError, ValueError):
        return ""


@contextlib.contextmanager
def gzip_errors(name: str) -> Iterator[None]:
    """A gzip file that ends early or is damaged, refused in words."""
    try:
        yield
    except EOFError:
        raise ArchiveError(
            f"{name} is a truncated gzip file (it ends before its compressed data does): copy or download it again."
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise ArchiveError(f"{name} is a damaged gzip file ({error}): copy or download it again.") from None


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _reopener(path: Path, gzipped: bool, meter: FileMeter) -> Reopen:
    """The input's decompressed text again from its start, for a document read more than once."""

    def reopen() -> MeteredStream:
        raw = path.open("rb")
        if gzipped:
            return MeteredStream(gzip.GzipFile(fileobj=raw, mode="rb"), meter, raw.tell, closing=(raw,))
        return MeteredStream(raw, meter, lambda: 0)

    return reopen


def _copy_one(
    path: Path, name: str, out, budget: ImportBudget, workdir: Path, on_read: Callable[[int], None] | None = None
) -> dict:
    size = path.stat().st_size
    if size == 0:
        raise NotPosts(f"{name} is empty (0 bytes): there is nothing to import. Choose the file the export wrote.")
    checksum = BackgroundChecksum()
    try:
        with path.open("rb", buffering=0) as raw:
            reader = _HashingReader(raw, checksum, on_read)
            gzipped = reader.peek(2)[:2] == GZIP_MAGIC
            meter = budget.meter(name, compressed=gzipped)
            decompressed = gzip.GzipFile(fileobj=reader, mode="rb") if gzipped else reader
            stream = MeteredStream(decompressed, meter, lambda: reader.consumed)
            with gzip_errors(name):
                label, lines, line_for_line = copy_stream(
                    stream, out, name, reopen=_reopener(path, gzipped, meter), workdir=workdir
                )
            meter.finish()
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


def _unzipped(paths: list[Path], into: Path, max_bytes: int) -> tuple[list[Path], list[str], list[dict]]:
    """The paths, each ZIP file among them replaced by the folder of what an import reads in it;
    the names of the ZIPs' members left out; and each ZIP's name, size and SHA-256, so that the
    file a person holds can be checked against the record (its members' checksums are the copy's)."""
    result, left_out, zips = [], [], []
    for path in map(Path, paths):
        if path.is_file() and is_zip(path):
            with path.open("rb") as whole:
                zips.append(
                    {
                        "name": path.name,
                        "size": path.stat().st_size,
                        "sha256": hashlib.file_digest(whole, "sha256").hexdigest(),
                    }
                )
            path, left = unpack(path, into, max_bytes=max_bytes)
            left_out += left
        result.append(path)
    return result, left_out, zips


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


def one_of_many(refused: NotPosts, name: str) -> ArchiveError:
    """One file of a folder or ZIP that holds no posts stops the whole import: how to go on without it."""
    return ArchiveError(
        f"{refused} If {name} is not meant to be imported (notes, settings), take it out of the folder or the "
        "ZIP and import again: nothing was imported."
    )


def _raw_checksum(raw: Path, entries: list[dict]) -> dict:
    """The raw file's own size and SHA-256, so that the copy kept can be checked against the record
    too: it is not always the input's bytes (a gzip is kept decompressed, several files one after
    the other, an array or tweets.js a post a line, a missing last newline added, a UTF-8 BOM
    dropped). A single input copied byte for byte (the common case) has the input's checksum,
    known already; any other copy is read once more."""
    size = raw.stat().st_size
    if (
        len(entries) == 1
        and entries[0]["size"] == size
        and entries[0].get("line_for_line") is not False
        and not entries[0]["format"].startswith("gzip")
    ):
        # Same length, every byte copied as read (a JSONL copy adds or drops bytes only at the ends).
        return {"raw_size": size, "raw_sha256": entries[0]["sha256"]}
    with raw.open("rb") as handle:
        return {"raw_size": size, "raw_sha256": hashlib.file_digest(handle, "sha256").hexdigest()}


def _link(files: list[tuple[Path, str]], staged: Path, on_read: Callable[[int], None] | None) -> dict | None:
    if len(files) != 1:
        return None
    (path, name) = files[0]
    return link_archive(path, name, staged, on_read)


def copy_archive(
    paths: list[Path],
    dest: Path,
    report: ImportReport | None = None,
    *,
    link: bool = False,
    max_bytes: int = DEFAULT_MAX_ARCHIVE_BYTES,
    on_read: ReadProgress | None = None,
) -> ImportReport:
    """Copy the archive files (or folders) into `dest`, one JSON document per line, and record
    each input's name, size, sha256 and format in sources.json beside it.

    `link`: hard-link a single plain JSONL file instead of copying it, where that gives the same
    bytes (see pipeline.formats.linking for what that trades away); otherwise copy.
    `max_bytes`: the most the files may hold together once decompressed (a search passes
    DNFLOW_MAX_ARCHIVE_BYTES; 0: no limit). Past it, or past a gzip's expansion bound (see
    pipeline.formats.limits), the import stops while it streams and leaves nothing behind.
    `on_read(done, total)`: called as the files are read (bytes as stored, so compressed bytes of
    a gzip), for a progress bar; an exception it raises (a cancelled search) stops the import,
    which then leaves nothing behind either.
    """
    report = report if report is not None else ImportReport()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []

    provenance = dest.with_name(SOURCES)
    # The raw file is replaced last: its presence means the copy, and its provenance, are complete.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=COPY_WORK_PREFIX) as scratch:
        staged = Path(scratch) / dest.name
        # A ZIP is read as the folder it unpacks to; what it unpacks goes with the working folder.
        paths, left_in_zips, zips = _unzipped(list(paths), Path(scratch) / "unzipped", max_bytes)
        files, skipped = input_files(paths)
        skipped = left_in_zips + skipped
        total = sum(path.stat().st_size for path, _ in files)
        budget = ImportBudget(max_bytes)
        budget.check_plain_sizes(files, is_gzip)

        def read_so_far(before: int) -> Callable[[int], None] | None:
            """A file's reader's progress as the whole import's: `before` bytes were read ahead of it."""
            return None if on_read is None else lambda position: on_read(before + position, total)

        def write_raw(out) -> None:
            next_line = 1
            before = 0
            for path, name in files:
                try:
                    entry = _copy_one(path, name, out, budget, Path(scratch), read_so_far(before))
                except NotPosts as refused:
                    if len(files) == 1:
                        raise
                    raise one_of_many(refused, name) from None
                entry["first_line"] = next_line
                next_line += entry["lines"]
                before += entry["size"]
                entries.append(entry)

        linked = _link(files, staged, read_so_far(0)) if link else None
        if linked is not None:
            entries.append({**linked, "first_line": 1})
        else:
            _write_atomically(staged, write_raw)
        document = {"raw": dest.name, **_raw_checksum(staged, entries), "files": entries, "skipped": skipped} | (
            {"zips": zips} if zips else {}
        )
        _write_atomically(provenance, lambda out: out.write(orjson.dumps(document, option=orjson.OPT_INDENT_2)))
        os.replace(staged, dest)
    report.sources = entries
    report.skipped_files = skipped
    return report
