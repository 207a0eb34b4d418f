"""Reading a dataset of post ids (what researchers share instead of posts) before looking them up.

    report = read_ids(Path(upload), folder / IDS_REQUESTED, name="dataset.csv")
    if report.should_refuse:          # damaged ids, or ids a spreadsheet rounded: spend nothing
        show(report.problems())       # plain words, with line numbers and examples
    ...
    hydrate(ids_path=folder / IDS_REQUESTED, ...)   # pipeline.hydrate

What it reads (the format is told by the content, not the file name):
- a text file, one id a line, or a CSV file (comma, tab or semicolon), the id in the first column or
  in a column whose header names it (`id`, `tweet_id`, `id_str`, ... see ID_COLUMNS); a header
  row is allowed; UTF-8 (with or without a BOM) or UTF-16 with a BOM (Excel's "Unicode text");
- the same, gzipped;
- a dnflow package (the BagIt zip a finished search offers): its `data/tweet-ids.txt`, checked
  against the bag's sha256 manifest.

It writes the usable ids, each once, in the order first seen, one a line, to `ids_path`
(atomically), and returns an `IdReport`. Nothing is spent and nothing refused here: the caller
decides, with `should_refuse` and the problems in plain words.

Damaged ids are never repaired, because the real id cannot be recovered: a spreadsheet that took
ids for numbers kept 15 significant digits (1408876829491015681 becomes 1.40888E+18 on screen and
1408876829491010000 in a CSV), and a program that wrote them as floating-point numbers kept about
16 (1408876829491015680.0). The one exception is `="1408876829491015681"`, the formula people type
to keep a spreadsheet from doing that: its digits are exact.

The rounding test. A rounded 19-digit id ends in 0000 and an 18-digit one in 000, so a rounded
dataset is (almost) all ids ending in 00. Real ids do too, sometimes: X's ids are snowflakes whose
low 12 bits count posts within a millisecond, often 0, which favours even endings. Measured on
the real recorded posts in ../shared/data/real (1,017 distinct post ids): 1.2% of the 906
19-digit ids end in 00, 6.3% of the 111 18-digit ones (2018), 1.8% of all. So the test is: at
least ROUNDED_MIN_COUNT ids of ROUNDED_MIN_DIGITS or more digits end in 00, and they are at least
ROUNDED_SHARE of those ids. 20% is three times the highest real share measured, and a dataset
rounded by a spreadsheet is near 100%. The minimum count keeps a small file from tripping on
chance: even at a true rate of 6.3%, the chance that a file of real ids trips the test is at most
0.1% (at 50 ids, binomial), and falls quickly with more. Ids of 16 digits or fewer are not
counted: a spreadsheet rounds a 16-digit id to one trailing zero, which this test cannot see.
Too few to trip the test, 19-digit ids ending in 0000 (only zeros after the 15th digit) are still
named as damaged when the file shows a spreadsheet had it (ids in scientific notation, or with
digit-group separators): a rounded one always looks like that, a real one seldom (none of the real
19-digit ids above does). Not so 18-digit ids ending in 000: a few percent of the real 2018 ones
do, so they are not named one by one.

Memory: the dedup is `pipeline.idset.SeenIds` (a bounded set that spills to `<folder>/.spill`),
so millions of ids read in bounded memory; the report keeps a few examples per problem.

Framework-free: no Django.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .contract import TWEET_IDS
from .idset import SeenIds
from .outputs import OutputSet
from .words import counted

# Header names (lower-cased, spaces and dashes as underscores) that say "this column is the post id".
ID_COLUMNS = ("id", "id_str", "tweet_id", "tweetid", "tweet_id_str", "status_id", "post_id", "postid")
# The rounding test (see the module's docstring for the measurement behind these).
ROUNDED_SHARE = 0.20
ROUNDED_MIN_COUNT = 10
ROUNDED_MIN_DIGITS = 17
# Signs that a spreadsheet had the file: its ids then ending in zeros past the 15th digit were rounded too.
SPREADSHEET_DAMAGE = ("scientific-notation", "digit-grouping")
SPREADSHEET_DIGITS = 15
ZERO_FILLED_DIGITS = 19  # shorter ids end in zeros too often to be called rounded one by one
# Examples kept per problem, for the report.
MAX_EXAMPLES = 5
# X's ids are positive 63-bit numbers.
LARGEST_ID = 2**63 - 1
# A line longer than this is not an id list (and must not be read whole into memory).
MAX_LINE_CHARS = 1 << 20

_DIGITS = re.compile(r"[0-9]+")
_FORMULA = re.compile(r'="([0-9]+)"')  # ="1408876829491015681": a spreadsheet's way to keep text
_SCIENTIFIC = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")
_GROUPED = re.compile(r"[0-9]{1,3}(?:[,. '\u00a0\u202f][0-9]{3}){2,}")
_DECIMAL = re.compile(r"[0-9]+[.,][0-9]*")

# Each kind of damage: what it is, in plain words, and what to do.
DAMAGE = {
    "scientific-notation": (
        "in scientific notation",
        "a spreadsheet took the ids for numbers and kept only about 15 significant digits, so the real ids are "
        "lost. Export the ids again from the original data, not from the spreadsheet, or import the file into "
        "the spreadsheet with the id column set to Text.",
    ),
    "decimal": (
        "with a decimal part",
        "a program wrote the ids as floating-point numbers, which keep only about 16 significant digits: the "
        "digits before the point may already be wrong. Export the ids again as text (for example in pandas, "
        "read them with dtype=str).",
    ),
    "digit-grouping": (
        "with digit-group separators",
        "a spreadsheet or program formatted the ids as numbers and may have rounded them. Export the ids again "
        "as plain digits.",
    ),
    "leading-zero": (
        "with a leading zero",
        "X's ids never start with 0: the column was padded or is not an id column.",
    ),
    "too-long": (
        "longer than an X id can be",
        "X's ids have at most 19 digits (they are below 9223372036854775808): the column is not an id column, "
        "or two ids ran together.",
    ),
    "not-a-number": (
        "not made of digits",
        "an id is made of digits only. If these are links to posts, the id is the number after /status/.",
    ),
}


class IdFileError(Exception):
    """An id dataset that cannot be used at all; the message names the file, the problem and the fix.

    `report` holds what was read before the problem was found (None when nothing was).
    """

    def __init__(self, message: str, report: IdReport | None = None):
        super().__init__(message)
        self.report = report


@dataclass
class IdReport:
    """What reading an id dataset found. `should_refuse` and `problems()` are for the caller."""

    name: str  # the file's name as the person knows it (never a server path)
    kind: str  # "text", "csv", "gzip text", "gzip csv", "dnflow package"
    rows: int = 0  # rows with a value, after the header
    blank: int = 0  # empty rows, and rows whose id cell is empty
    header: list[str] | None = None
    column: int = 0  # the index of the column read
    ids: int = 0  # distinct usable ids, written to the ids file
    duplicates: int = 0  # usable ids seen again (not written again)
    damaged: dict[str, int] = field(default_factory=dict)  # kind (DAMAGE's keys) -> rows
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # problem -> [(line, text)]
    long_ids: int = 0  # usable ids of ROUNDED_MIN_DIGITS digits or more (distinct)
    ending_00: int = 0  # of those, how many end in 00
    zero_filled: int = 0  # 19-digit ids all zeros after the 15th digit, as a spreadsheet leaves them
    package_checksum: str = ""  # for a package: "ok" or "mismatch"; "" otherwise

    @property
    def damaged_total(self) -> int:
        return sum(self.damaged.values())

    @property
    def looks_rounded(self) -> bool:
        """Whether a suspicious share of the ids end in 00 (a spreadsheet rounded them)."""
        return self.ending_00 >= ROUNDED_MIN_COUNT and self.ending_00 >= ROUNDED_SHARE * self.long_ids

    @property
    def zero_filled_by_a_spreadsheet(self) -> bool:
        """Whether ids that look rounded are damaged too: too few for `looks_rounded`, but in a file that
        other damage shows a spreadsheet had."""
        return bool(self.zero_filled) and any(self.damaged.get(kind) for kind in SPREADSHEET_DAMAGE)

    @property
    def should_refuse(self) -> bool:
        """True when looking these ids up would spend money on wrong ids: some are damaged, many look
        rounded by a spreadsheet, or a package's ids do not match its manifest."""
        return bool(self.damaged_total or self.looks_rounded or self.package_checksum == "mismatch")

    def problems(self) -> list[str]:
        """Each problem found, in plain words, with line numbers and what to do."""
        said = []
        if self.package_checksum == "mismatch":
            said.append(
                f"{self.name}: its {TWEET_IDS} does not match the checksum in the package's manifest: the package "
                "was changed or damaged after it was made. Download it again from where it was published."
            )
        for kind, count in self.damaged.items():
            what, advice = DAMAGE[kind]
            said.append(
                f"{self.name}: {counted(count, 'id')} {what} ({_examples(self.examples.get(kind, []))}): {advice}"
            )
        if self.looks_rounded:
            share = self.ending_00 / self.long_ids
            said.append(
                f"{self.ending_00:,} of the {self.long_ids:,} long ids in {self.name} end in 00 ({share:.0%}; in real "
                f"data about 1 in 50 do) ({_examples(self.examples.get('ending-00', []))}). This is what a spreadsheet "
                "does to ids it stored as numbers: it keeps 15 significant digits and fills the rest with zeros "
                "(1408876829491015681 becomes 1408876829491010000), so these ids are wrong and cannot be repaired. "
                "Export the ids again from the original data, not from the spreadsheet."
            )
        elif self.zero_filled_by_a_spreadsheet:
            shown = [DAMAGE[kind][0] for kind in SPREADSHEET_DAMAGE if self.damaged.get(kind)]
            these, are = ("this one", "it is") if self.zero_filled == 1 else ("these", "they are")
            said.append(
                f"{self.name}: {counted(self.zero_filled, 'id')} with only zeros after the {SPREADSHEET_DIGITS}th "
                f"digit ({_examples(self.examples.get('zero-filled', []))}), which is what a spreadsheet leaves of "
                f"an id it rounded (1408876829491015681 becomes 1408876829491010000). With ids {' and '.join(shown)} "
                f"in the same file, the same spreadsheet very likely rounded {these} too: {are} wrong and cannot be "
                "repaired. Export the ids again from the original data, not from the spreadsheet."
            )
        return said

    def refusal(self) -> list[str]:
        """Why the whole file is refused, a paragraph each: what was (not) done, then each problem.

        A damaged id is not left out and the rest looked up: the damage says a program changed the
        file, so any id in it may be wrong, and every lookup is paid for.
        """
        return [f"{self.name} was refused: nothing in it was looked up, and nothing was spent.", *self.problems()]

    def summary(self) -> str:
        """One paragraph for a page or a command line."""
        parts = [f"{self.name} ({self.kind}): {counted(self.ids, 'id')} to look up"]
        if self.duplicates:
            parts.append(f"{counted(self.duplicates, 'duplicate')} dropped")
        if self.damaged_total:
            parts.append(counted(self.damaged_total, "damaged row"))
        if self.blank:
            parts.append(f"{counted(self.blank, 'empty row')} skipped")
        text = ", ".join(parts) + "."
        problems = self.problems()
        return text + (" " + " ".join(problems) if problems else "")

    def as_dict(self) -> dict:
        """The report as JSON-ready data (for summary.json or a task's record)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "blank": self.blank,
            "header": self.header,
            "column": self.column,
            "ids": self.ids,
            "duplicates": self.duplicates,
            "damaged": dict(self.damaged),
            "examples": {kind: [list(example) for example in found] for kind, found in self.examples.items()},
            "long_ids": self.long_ids,
            "ending_00": self.ending_00,
            "zero_filled": self.zero_filled,
            "looks_rounded": self.looks_rounded,
            "package_checksum": self.package_checksum,
            "should_refuse": self.should_refuse,
            "problems": self.problems(),
        }

    def _example(self, kind: str, line: int, text: str) -> None:
        found = self.examples.setdefault(kind, [])
        if len(found) < MAX_EXAMPLES:
            found.append((line, text[:80]))


def read_ids(source: Path, ids_path: Path, *, name: str | None = None) -> IdReport:
    """Read the id dataset at `source`; write its usable ids, each once, to `ids_path`.

    name: the file's name to use in messages (an upload's original name); default source's name.
    The dedup spills to `<ids_path's folder>/.spill` (removed after). Returns the report; raises
    IdFileError when the file cannot be read or holds no usable id (ids_path is then not written).
    """
    source, ids_path = Path(source), Path(ids_path)
    name = name or source.name
    try:
        binary = open(source, "rb")  # noqa: SIM115 - closed below, with what wraps it
    except OSError as error:
        raise IdFileError(f"Cannot open the id file {name}: {error.strerror}.") from None
    seen = SeenIds(ids_path.parent)
    try:
        with binary, OutputSet() as out:
            stream, kind, check = _open_dataset(binary, name)
            report = IdReport(name=name, kind=kind)
            written = out.text(ids_path)
            for line, post_id in _usable(_text_lines(stream, name), report):
                if not seen.add(post_id):
                    report.duplicates += 1
                    continue
                report.ids += 1
                written.write(post_id + "\n")
                if len(post_id) >= ROUNDED_MIN_DIGITS:
                    report.long_ids += 1
                    if post_id.endswith("00"):
                        report.ending_00 += 1
                        report._example("ending-00", line, post_id)
                    if len(post_id) >= ZERO_FILLED_DIGITS and not post_id[SPREADSHEET_DIGITS:].strip("0"):
                        report.zero_filled += 1
                        report._example("zero-filled", line, post_id)
            if check is not None:
                report.package_checksum = check()
            if report.ids == 0:
                raise IdFileError(_nothing_usable(report), report)
    finally:
        seen.close()
    return report


def newest_id(ids_path: Path) -> str | None:
    """The largest (newest) id in a file of ids, one a line (tweet-ids.txt): a refresh's since_id."""
    newest = 0
    with open(ids_path, encoding="utf-8") as lines:
        for line in lines:
            text = line.strip()
            if text.isascii() and text.isdigit():
                newest = max(newest, int(text))
    return str(newest) if newest else None


# --- Opening -------------------------------------------------------------------------------------


def _open_dataset(binary: IO[bytes], name: str):
    """(binary stream of the ids, kind, checksum check or None) for a text, gzip or package file."""
    magic = binary.read(4)
    binary.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=binary, mode="rb"), "gzip", None
    if magic in (b"PK\x03\x04", b"PK\x05\x06"):
        return _open_package(binary, name)
    return binary, "", None  # the kind (text or csv) is told by the first line


def _open_package(binary: IO[bytes], name: str):
    try:
        archive = zipfile.ZipFile(binary)
    except zipfile.BadZipFile:
        raise IdFileError(f"{name} looks like a zip file but cannot be opened as one: download it again.") from None
    names = archive.namelist()
    wanted = f"data/{TWEET_IDS}"
    found = [n for n in names if n == wanted or (n.endswith("/" + wanted) and n.count("/") == 2)]
    if not found:
        if any(n.startswith("xl/") for n in names):
            raise IdFileError(
                f"{name} is an Excel workbook, which dnflow does not read. Save the sheet as CSV (with the id column "
                "formatted as Text, so that the ids are not rounded) and give that file instead."
            )
        raise IdFileError(
            f"{name} is a zip file but not a dnflow package: it has no {wanted} inside its bag folder. Give the "
            f"package a finished dnflow search offers, or unzip the file and give the id list itself."
        )
    member = found[0]
    prefix = member[: -len(wanted)]
    expected = _manifest_sha256(archive, prefix + "manifest-sha256.txt", wanted)
    hashing = _HashingReader(archive.open(member))

    def check() -> str:
        hashing.read()  # the rest, if reading stopped early
        if expected is None:
            return ""
        return "ok" if hashing.hexdigest() == expected else "mismatch"

    return io.BufferedReader(hashing), "dnflow package", check


def _manifest_sha256(archive: zipfile.ZipFile, manifest: str, wanted: str) -> str | None:
    try:
        text = archive.read(manifest).decode("utf-8", "replace")
    except KeyError:
        return None
    for line in text.splitlines():
        digest, _, path = line.strip().partition(" ")
        if path.strip() == wanted:
            return digest.lower()
    return None


class _HashingReader(io.RawIOBase):
    """A readable stream that hashes what passes through it (sha256)."""

    def __init__(self, inner: IO[bytes]):
        self._inner = inner
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(len(buffer))
        self._hash.update(data)
        buffer[: len(data)] = data
        return len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _text_lines(binary: IO[bytes], name: str) -> Iterator[tuple[int, str]]:
    """The file's lines as text, numbered from 1, each at most MAX_LINE_CHARS long."""
    try:
        start = binary.peek(4)[:4] if hasattr(binary, "peek") else b""
    except (OSError, EOFError, zlib.error) as error:
        raise IdFileError(f"{name} is a damaged gzip file ({error}): copy or download it again.") from None
    # UTF-16 only with its byte-order mark (Excel's "Unicode text"); UTF-8 with or without one.
    encoding = "utf-16" if start.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    text = io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")
    number = 0
    try:
        while True:
            line = text.readline(MAX_LINE_CHARS)
            if not line:
                return
            number += 1
            if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                raise IdFileError(
                    f"{name}, line {number:,}, is longer than {MAX_LINE_CHARS:,} characters: this is not a list of "
                    "ids. Give a text or CSV file with one id a line."
                )
            yield number, line
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise IdFileError(f"{name} is damaged ({error}) after line {number:,}: copy or download it again.") from None


# --- Rows ---------------------------------------------------------------------------------------------


def _usable(lines: Iterator[tuple[int, str]], report: IdReport) -> Iterator[tuple[int, str]]:
    """(line number, id) for each usable id, in file order; the rest is counted in `report`."""
    first: list[tuple[int, str]] = []
    for numbered in lines:
        first.append(numbered)
        if numbered[1].strip():
            break
    sample = first[-1][1] if first else ""
    delimiter = next((d for d in (",", "\t", ";") if d in sample), None)
    if report.kind != "dnflow package":
        report.kind = " ".join(filter(None, (report.kind, "csv" if delimiter else "text")))
    # One line per item, so that csv.reader's line_num is the line a record ends on.
    reader = csv.reader((line for _, line in itertools.chain(first, lines)), delimiter=delimiter or ",")
    column = None
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if not any(cells):
                report.blank += 1
                continue
            if column is None:
                column = 0
                # A header: the first row, when its first cell has no digit and no cell is an id.
                if not any(c.isdigit() for c in cells[0]) and not any(_DIGITS.fullmatch(c) for c in cells):
                    report.header = row
                    column = report.column = _id_column(cells)
                    continue
            value = cells[column] if column < len(cells) else ""
            if not value:
                report.blank += 1
                continue
            report.rows += 1
            post_id, damage = _classify(value)
            if damage:
                report.damaged[damage] = report.damaged.get(damage, 0) + 1
                report._example(damage, reader.line_num, value)
                continue
            yield reader.line_num, post_id
    except csv.Error as error:
        raise IdFileError(
            f"{report.name}, line {reader.line_num:,}: {error}. Give a text file with one id a line, or a CSV file."
        ) from None


def _id_column(header: list[str]) -> int:
    names = [re.sub(r"[\s-]+", "_", cell.lower()) for cell in header]
    for wanted in ID_COLUMNS:
        if wanted in names:
            return names.index(wanted)
    return 0


def _classify(value: str) -> tuple[str, str]:
    """(id, "") for a usable id, else ("", the kind of damage)."""
    formula = _FORMULA.fullmatch(value)
    if formula:
        value = formula.group(1)
    if _DIGITS.fullmatch(value) and value.isascii():
        if value[0] == "0":
            return "", "leading-zero"
        if len(value) > 19 or int(value) > LARGEST_ID:
            return "", "too-long"
        return value, ""
    if _SCIENTIFIC.fullmatch(value):
        return "", "scientific-notation"
    if _GROUPED.fullmatch(value):
        return "", "digit-grouping"
    if _DECIMAL.fullmatch(value):
        return "", "decimal"
    return "", "not-a-number"


def _nothing_usable(report: IdReport) -> str:
    if report.rows == 0:
        return (
            f"{report.name} holds no ids: it is empty{' but for its header' if report.header else ''}. Give a text "
            "file with one post id a line, a CSV file with the ids in its first column, or a dnflow package."
        )
    return "\n".join(
        [f"{report.name} holds no usable id: all {counted(report.rows, 'row')} are damaged.", *report.problems()]
    )


def _examples(found: list[tuple[int, str]]) -> str:
    return "; ".join(f"line {line:,}: {text}" for line, text in found)
