"""Counts that outgrow memory: the distinct hashtags, mentions, URLs, photos and authors of a
big collection, kept in a SQLite file instead of Python dicts.

The count files list every distinct key, so what the summary pass holds grows with the variety
of the posts (a million posts can have hundreds of thousands of authors), not only with their
number. The pass counts in memory as usual; when the distinct keys it holds pass a bound
(pipeline.tally.MEMORY_KEYS), they are added to a CountStore and the dicts start again empty.
SQLite adds and sorts in C, on disk, with a page cache of fixed size: the count files are read
back from it in their order (count, highest first, then key) without ever being in memory whole.

Exactness: counts add up; an author's snapshot is replaced by a later one, as in memory, because
what is added later is always later in the collection. Keys compare as in Python: SQLite's BINARY
order compares UTF-8 bytes, which is the order of code points.

A store is one file in the spill folder (pipeline.idset.SPILL_FOLDER), removed with it. It
pickles to its path, so a range process can hand its store to the parent.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

COUNTED = ("hashtags", "mentions", "urls", "media", "posters")  # posters: posts per author
# The tables of counts a store holds: the summary pass's, and the networks' distinct edges (keys: an
# edge list's rows as bytes, which SQLite keeps and orders as BLOBs; pipeline.networks).
TABLES = (*COUNTED, "edges")
CACHE_KIB = 16 * 1024  # SQLite's page cache: the memory a store may use, whatever it holds
_PRAGMAS = ("journal_mode = OFF", "synchronous = OFF", f"cache_size = -{CACHE_KIB}", "temp_store = FILE")

# Table names cannot be query parameters: every statement is built here, once, from COUNTED.
_SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS {name} (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID" for name in TABLES
]
_SCHEMA.append(
    "CREATE TABLE IF NOT EXISTS authors (user TEXT PRIMARY KEY, followers INTEGER, following INTEGER) WITHOUT ROWID"
)
_ADD = {
    kind: f"INSERT INTO {kind} (key, n) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET n = n + excluded.n"  # noqa: S608
    for kind in TABLES
}
# "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT.
_ABSORB = {
    kind: f"INSERT INTO main.{kind} (key, n) SELECT key, n FROM other.{kind} WHERE true "  # noqa: S608
    "ON CONFLICT (key) DO UPDATE SET n = n + excluded.n"
    for kind in COUNTED
}
_ROWS = {kind: f"SELECT key, n FROM {kind} ORDER BY n DESC, key" for kind in TABLES}  # noqa: S608
_ITEMS = {kind: f"SELECT key, n FROM {kind}" for kind in TABLES}  # noqa: S608
_DISTINCT = {kind: f"SELECT count(*) FROM {kind}" for kind in (*TABLES, "authors")}  # noqa: S608
_TOTAL = {kind: f"SELECT coalesce(sum(n), 0) FROM {kind}" for kind in TABLES}  # noqa: S608


class CountStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    @classmethod
    def create(cls, folder: Path) -> CountStore:
        """A new, empty store in `folder` (made if needed)."""
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="counts-", suffix=".sqlite3", dir=folder)
        os.close(fd)
        return cls(Path(name))

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            # A scratch file: nothing to recover after a crash (the pass starts again), so no journal.
            self._db = sqlite3.connect(self.path, isolation_level=None)
            for pragma in _PRAGMAS:
                self._db.execute(f"PRAGMA {pragma}")
            for statement in _SCHEMA:
                self._db.execute(statement)
        return self._db

    # --- adding --------------------------------------------------------------------------------

    def add_counts(self, kind: str, items: Iterable[tuple[str, int]]) -> None:
        """Add (key, count) pairs to the counts of `kind` (one of TABLES)."""
        with self._transaction():
            self.db.executemany(_statement(_ADD, kind), items)

    def add_authors(self, items: Iterable[tuple[str, int | None, int | None]]) -> None:
        """Authors' (user, followers, following) snapshots, later than any added before."""
        with self._transaction():
            self.db.executemany(
                "INSERT INTO authors (user, followers, following) VALUES (?, ?, ?) ON CONFLICT (user) "
                "DO UPDATE SET followers = excluded.followers, following = excluded.following",
                items,
            )

    def absorb(self, other: CountStore) -> None:
        """Add everything `other` holds (a later part of the collection)."""
        other.close()
        self.db.execute("ATTACH DATABASE ? AS other", (str(other.path),))
        try:
            with self._transaction():
                for statement in _ABSORB.values():
                    self.db.execute(statement)
                self.db.execute(
                    "INSERT INTO main.authors SELECT user, followers, following FROM other.authors WHERE true "
                    "ON CONFLICT (user) DO UPDATE SET followers = excluded.followers, following = excluded.following"
                )
        finally:
            self.db.execute("DETACH DATABASE other")

    # --- reading -------------------------------------------------------------------------------

    def count_rows(self, kind: str) -> Iterator[tuple[str, int]]:
        """(key, count) in the order of the count files: count, highest first, then key."""
        yield from self.db.execute(_statement(_ROWS, kind))

    def items(self, kind: str) -> Iterator[tuple[str, int]]:
        yield from self.db.execute(_statement(_ITEMS, kind))

    def distinct(self, kind: str) -> int:
        """How many keys of `kind` (one of TABLES, or "authors")."""
        return self.db.execute(_statement(_DISTINCT, kind)).fetchone()[0]

    def total(self, kind: str) -> int:
        """The sum of the counts of `kind`."""
        return self.db.execute(_statement(_TOTAL, kind)).fetchone()[0]

    def followers_rows(self) -> Iterator[tuple[str, int]]:
        yield from self.db.execute(
            "SELECT user, followers FROM authors WHERE followers IS NOT NULL ORDER BY followers DESC, user"
        )

    def ratio_rows(self) -> Iterator[tuple[str, int, int]]:
        """(user, followers, following) by followers / following, highest first, then user. Both
        are integers below 2**53, so SQLite's division of their doubles is Python's `/`."""
        yield from self.db.execute(
            "SELECT user, followers, following FROM authors WHERE followers IS NOT NULL AND following != 0 "
            "ORDER BY CAST(followers AS REAL) / following DESC, user"
        )

    # --- life ----------------------------------------------------------------------------------

    def _transaction(self):
        return _Transaction(self.db)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getstate__(self) -> dict:
        self.close()  # everything is in the file: the receiver opens it again
        return {"path": self.path, "_db": None}


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _statement(statements: dict[str, str], kind: str) -> str:
    try:
        return statements[kind]
    except KeyError:
        raise ValueError(f"Unknown count {kind!r}: one of {', '.join(statements)}.") from None
