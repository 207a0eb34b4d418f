"""Writing output files so that no half-written file ever looks complete.

Every file is written under a temporary name in its own folder and moved into place with
`os.replace` (atomic on one filesystem). A task that makes several files opens them all in one
`OutputSet`; on success the temporaries are moved into place in the order they were opened, so the
file opened last (the task's marker, e.g. the pass's facts) appears last. On any error every
temporary is removed and nothing is replaced.

CSV files use the `csv` module's default dialect (RFC 4180 quoting). Text-like columns (post text,
user names, hashtags, URLs, ...) are *neutralised*: a cell starting with `=`, `+`, `-`, `@`, a tab or
a carriage return gets a leading single quote, so a spreadsheet opening the file shows the text
instead of running it as a formula (CSV injection). Ids and numbers are never touched: they are
written as they are, so `-1` stays a number and ids stay exact strings.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from .contract import TEMP_PREFIX, TEMP_SUFFIX

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """The text of a cell that a spreadsheet will show rather than evaluate.

    Idempotent: a neutralised cell starts with a quote, which is not a formula start.
    """
    if cell and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def unneutralise(cell: str) -> str:
    """The text a cell of ours stood for before neutralise(): whoever uses a cell as a name (a photo
    file, a user, a hashtag) rather than showing it in a spreadsheet reads it through this.

    A leading quote followed by a formula start is taken for ours: neutralise() never leaves a
    formula start first, so such a cell came from it (or from a text that began with that very
    quote, which X's names and file names never do).
    """
    if cell[:1] == "'" and cell[1:2] and cell[1] in FORMULA_STARTS:
        return cell[1:]
    return cell


def _quoted(cell: str) -> str:
    if "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def csv_records(rows: Iterable[Sequence[str]]) -> str:
    """Rows of text cells exactly as a `csv.writer` with the default dialect writes them.

    The default dialect quotes a cell only if it holds a comma, a double quote, CR or LF
    (QUOTE_MINIMAL, quotes doubled) and ends records with CRLF. Most rows hold none of these,
    and a row whose joined text holds no quote, no line break and exactly one comma per cell
    boundary can be written as it is; that check runs in C over the whole row, which makes this
    twice as fast as the csv module on long post texts. Rows of one cell are not supported (the
    csv module quotes a lone empty cell).
    """
    records = []
    add = records.append
    for row in rows:
        line = ",".join(row)
        if line.count(",") == len(row) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
            add(line)
        else:
            add(",".join([_quoted(cell) for cell in row]))
    if not records:
        return ""
    add("")
    return "\r\n".join(records)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes files only their owner can read; outputs get the usual permissions instead,
# so a web server running as another user can serve what a worker wrote.
FILE_MODE = 0o666 & ~_current_umask()


def new_temp_path(final: Path) -> tuple[int, Path]:
    """An open descriptor and the path of a fresh temporary file beside `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, Path(temp)


def _temp_file(path: Path, mode: str) -> tuple[IO, Path]:
    fd, temp = new_temp_path(path)
    if "b" in mode:
        return os.fdopen(fd, mode), temp
    # newline="" lets the csv module write its own \r\n record ends unchanged.
    return os.fdopen(fd, mode, encoding="utf-8", newline=""), temp


class CsvWriter:
    """One CSV output: a header, rows, and the indexes of the columns that hold text."""

    def __init__(self, handle: IO, header: Sequence[str], text_columns: Iterable[str]) -> None:
        self._writer = csv.writer(handle)
        text = set(text_columns)
        unknown = text - set(header)
        if unknown:
            raise ValueError(f"text columns {sorted(unknown)} are not in the header {list(header)}")
        self._text_indexes = [i for i, name in enumerate(header) if name in text]
        self._writer.writerow(header)
        self.rows = 0

    def writerow(self, row: Sequence[Any]) -> None:
        cells = ["" if cell is None else str(cell) for cell in row]
        for i in self._text_indexes:
            cells[i] = neutralise(cells[i])
        self._writer.writerow(cells)
        self.rows += 1

    def writerows(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class OutputSet:
    """Several files of one task, all put in place together, in the order they were opened.

    with OutputSet() as out:
        ids = out.text(folder / TWEET_IDS)
        ...
        out.json(folder / SUMMARISED, facts)   # opened last, replaced last
    """

    def __init__(self) -> None:
        self._pending: list[tuple[IO, Path, Path]] = []  # (handle, temp, final)

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def open(self, path: Path, mode: str = "w") -> IO:
        handle, temp = _temp_file(Path(path), mode)
        self._pending.append((handle, temp, Path(path)))
        return handle

    def temp_path(self, handle: IO) -> Path:
        """Where a file opened here is written until it is put in place (for other processes to
        append to: flush the handle first, and seek to its end before writing to it again)."""
        for pending, temp, _final in self._pending:
            if pending is handle:
                return temp
        raise ValueError("this handle was not opened by this OutputSet")

    def csv(self, path: Path, header: Sequence[str], text_columns: Iterable[str] = ()) -> CsvWriter:
        return CsvWriter(self.open(path), header, text_columns)

    def text(self, path: Path) -> IO:
        return self.open(path)

    def json(self, path: Path, data: Any) -> None:
        handle = self.open(path)
        json.dump(data, handle, ensure_ascii=False, indent=2, sort_keys=False)
        handle.write("\n")

    def commit(self) -> None:
        try:
            for handle, _temp, _final in self._pending:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        except BaseException:
            self.discard()
            raise
        for _handle, temp, final in self._pending:
            os.replace(temp, final)
        self._pending = []

    def discard(self) -> None:
        for handle, temp, _final in self._pending:
            try:
                handle.close()
            finally:
                temp.unlink(missing_ok=True)
        self._pending = []


def write_json(path: Path, data: Any) -> None:
    """One JSON file, atomically."""
    with OutputSet() as out:
        out.json(path, data)


def write_csv(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]], text_columns: Iterable[str] = ()
) -> int:
    """One CSV file, atomically; returns the number of data rows."""
    with OutputSet() as out:
        writer = out.csv(path, header, text_columns)
        writer.writerows(rows)
    return writer.rows


def replace_from_temp(final: Path) -> tuple[Path, Callable[[], None]]:
    """A temporary path beside `final` and a function that moves it into place.

    For files written by code that wants a path rather than a handle (a zip, a download).
    """
    fd, temp_path = new_temp_path(Path(final))
    os.close(fd)
    final = Path(final)

    def finish() -> None:
        os.replace(temp_path, final)

    return temp_path, finish
