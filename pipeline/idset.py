"""The ids of the posts read so far, to drop duplicates exactly, in memory that does not grow
with the size of the collection.

A set of a million Python ints takes about 60 MiB, and a search's collection has no upper size.
SeenIds keeps at most `memory_ids` ids in a set. When the set is full its ids are sorted and
written to a run file (8 bytes each, unsigned) in a spill folder, and added to a Bloom filter of fixed
size. An id was seen when it is in the set, or when the filter says it may have been spilled
and a binary search of the runs finds it. For a new id the filter almost always says no, so
the runs are only read for real duplicates and rare false positives: a "maybe" is always
checked, which is what makes the answer exact. Runs of the same size are merged (binary-counter
style, in chunks), so there are never more than about log2(N / memory_ids) of them to search.

Ids that are not plain decimal numbers that fit in 64 bits stay in memory as text: X's ids are
always numbers, so that set stays empty for real archives.

Memory, whatever N: the set (about 4 MiB at the default size), the filter (8 MiB, once the first
run is written) and the pages of the runs that lookups touch. Disk: 8 bytes per distinct id, in
`<folder>/.spill/`, removed by close().
"""

from __future__ import annotations

import array
import contextlib
import mmap
import os
import tempfile
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from .contract import SPILL_FOLDER

MEMORY_IDS = 1 << 15
BLOOM_BITS = 1 << 26  # 8 MiB; with two probes about 1 in 4,500 new ids is looked up at 500,000 spilled ids
_MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15  # an odd 64-bit constant: the product scatters ids that differ a little
_SHIFT = 64 - BLOOM_BITS.bit_length() + 1  # the top bits of the product: the first probe
_LOW = BLOOM_BITS - 1  # the low bits of the product folded with its middle ones: the second
_CHUNK = 1 << 15  # ids read at a time when runs are merged or listed


def id_key(post_id: str) -> int | str:
    """How an id is kept: a number when its text is the number's own (ASCII digits, no leading
    zero: "012" and "12" are different ids) and fits in 64 bits, else the text itself."""
    if post_id.isdigit() and post_id.isascii() and len(post_id) < 20 and (post_id[0] != "0" or post_id == "0"):
        return int(post_id)
    return post_id


def _probes(key: int) -> tuple[int, int]:
    """The two bits of the Bloom filter that stand for `key` (SeenIds.add computes them inline)."""
    mixed = (key * _MIX) & _MASK64
    return mixed >> _SHIFT, (mixed ^ (mixed >> 29)) & _LOW


class SeenIds:
    """A set of post ids with an exact answer and bounded memory (see the module's docstring).

    `add(post_id)` is the one call the reading pass makes. For the parallel pass (pipeline.parallel),
    a SeenIds pickles to its bounded parts (the set and the names of its runs), and common()
    finds the ids two ranges share.
    """

    def __init__(self, spill_into: Path, *, memory_ids: int | None = None) -> None:
        self.folder = Path(spill_into) / SPILL_FOLDER
        self.memory_ids = max(1, memory_ids or MEMORY_IDS)
        self._recent: set[int] = set()
        self._texts: set[str] = set()  # ids that are not 64-bit numbers (never X's): never spilled
        self._runs: list[_Run] = []
        self._bloom: bytearray | None = None
        self._owned: set[Path] = set()  # run files this object made (and so removes)

    # --- the reading pass --------------------------------------------------------------------

    def add(self, post_id: str) -> bool:
        """Remember `post_id`; False when it was seen before."""
        # Called once per post read: id_key, add_key and _probes are written out here for speed.
        if not (post_id.isdigit() and post_id.isascii() and len(post_id) < 20 and post_id[0] != "0"):
            return self.add_key(id_key(post_id))
        key = int(post_id)
        recent = self._recent
        if key in recent:
            return False
        bloom = self._bloom
        if bloom is None and self._runs:
            bloom = self._bloom_for_runs()
        if bloom is not None:
            mixed = (key * _MIX) & _MASK64
            bit = mixed >> _SHIFT
            if bloom[bit >> 3] & (1 << (bit & 7)):
                bit = (mixed ^ (mixed >> 29)) & _LOW
                if bloom[bit >> 3] & (1 << (bit & 7)) and self._in_runs(key):
                    return False
        recent.add(key)
        if len(recent) >= self.memory_ids:
            self._spill()
        return True

    def add_key(self, key: int | str) -> bool:
        """add() for an id already in the form id_key() gives (as iterating a SeenIds yields)."""
        if type(key) is not int:
            texts = self._texts
            if key in texts:
                return False
            texts.add(key)
            return True
        if self.contains_key(key):
            return False
        self._recent.add(key)
        if len(self._recent) >= self.memory_ids:
            self._spill()
        return True

    def __contains__(self, post_id: str) -> bool:
        return self.contains_key(id_key(post_id))

    def contains_key(self, key: int | str) -> bool:
        if type(key) is not int:
            return key in self._texts
        return key in self._recent or (bool(self._runs) and self._spilled(key))

    def _spilled(self, key: int) -> bool:
        bloom = self._bloom_for_runs()
        for bit in _probes(key):
            if not bloom[bit >> 3] & (1 << (bit & 7)):
                return False
        return self._in_runs(key)

    def _in_runs(self, key: int) -> bool:
        return any(run.holds(key) for run in self._runs)

    # --- spilling ----------------------------------------------------------------------------

    def _spill(self) -> None:
        numbers = sorted(self._recent)
        self._recent = set()
        self._add_to_bloom(numbers)
        run = self._new_run()
        with run.path.open("wb") as handle:
            array.array("Q", numbers).tofile(handle)
        run.length = len(numbers)
        self._runs.append(run)
        # Merge the two newest runs while they are the same size: at most log2(N / memory_ids) runs.
        while len(self._runs) >= 2 and self._runs[-2].length <= self._runs[-1].length:
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(self._merged(older, newer))

    def _add_to_bloom(self, numbers: Iterable[int]) -> None:
        if self._bloom is None:
            self._bloom = bytearray(BLOOM_BITS // 8)
        bloom = self._bloom
        for key in numbers:
            mixed = (key * _MIX) & _MASK64
            bit = mixed >> _SHIFT
            bloom[bit >> 3] |= 1 << (bit & 7)
            bit = (mixed ^ (mixed >> 29)) & _LOW
            bloom[bit >> 3] |= 1 << (bit & 7)

    def _new_run(self) -> _Run:
        self.folder.mkdir(exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="ids-", suffix=".run", dir=self.folder)
        os.close(fd)
        path = Path(name)
        self._owned.add(path)
        return _Run(path, 0)

    def _merged(self, older: _Run, newer: _Run) -> _Run:
        run = self._new_run()
        with run.path.open("wb") as handle:
            for chunk in _merge_sorted(older.chunks(), newer.chunks()):
                array.array("Q", chunk).tofile(handle)
                run.length += len(chunk)
        for old in (older, newer):
            old.close()
            if old.path in self._owned:  # a run that came from another process stays for its owner
                self._owned.discard(old.path)
                old.path.unlink(missing_ok=True)
        return run

    # --- between processes ---------------------------------------------------------------------

    def common(self, other: SeenIds) -> Iterator[int | str]:
        """The ids held by both (as id_key() gives them), found by walking their sorted parts side
        by side a chunk at a time: no lookups and no filter, so it costs two sequential reads."""
        yield from self._texts & other._texts
        for mine in self._sorted_parts():
            for theirs in other._sorted_parts():
                yield from _common_sorted(mine(), theirs())

    def _sorted_parts(self) -> list[Callable[[], Iterator[Sequence[int]]]]:
        """The numeric ids as disjoint sorted parts (the runs, and the set sorted), each read in chunks."""
        parts: list[Callable[[], Iterator[Sequence[int]]]] = [run.chunks for run in self._runs]
        if self._recent:
            numbers = sorted(self._recent)
            parts.append(lambda: (numbers[i : i + _CHUNK] for i in range(0, len(numbers), _CHUNK)))
        return parts

    def __iter__(self) -> Iterator[int | str]:
        """Every id held, as id_key() gives it, in no particular order."""
        yield from self._recent
        yield from self._texts
        for run in self._runs:
            for chunk in run.chunks():
                yield from chunk

    def __getstate__(self) -> dict:
        # What crosses between processes stays small: the filter is left behind and made again
        # from the runs by the process that needs it (see _bloom_for_runs).
        state = dict(self.__dict__)
        state["_runs"] = [(run.path, run.length) for run in self._runs]
        state["_bloom"] = None
        state["_owned"] = set()  # the sender keeps ownership: the folder is removed as a whole
        return state

    def __setstate__(self, state: dict) -> None:
        state["_runs"] = [_Run(path, length) for path, length in state["_runs"]]
        self.__dict__.update(state)

    def _bloom_for_runs(self) -> bytearray | None:
        """The filter, made again from the runs when this object arrived from another process."""
        if self._bloom is None and self._runs:
            for run in self._runs:
                for chunk in run.chunks():
                    self._add_to_bloom(chunk)
        return self._bloom

    def close(self) -> None:
        """Remove the run files this object wrote (and the spill folder, once it is empty)."""
        for run in self._runs:
            run.close()
        for path in self._owned:
            path.unlink(missing_ok=True)
        self._owned.clear()
        with contextlib.suppress(OSError):  # absent, or another SeenIds still has runs in it
            self.folder.rmdir()


def remove_spill_folder(folder: Path) -> None:
    """Remove `<folder>/.spill` and what it holds (and what a process that was killed left there)."""
    spill = Path(folder) / SPILL_FOLDER
    if spill.is_dir():
        for path in spill.iterdir():
            path.unlink(missing_ok=True)
        spill.rmdir()


class _Run:
    """A file of sorted 8-byte ids; mapped into memory when first searched."""

    __slots__ = ("path", "length", "_file", "_map", "_view")

    def __init__(self, path: Path, length: int) -> None:
        self.path = path
        self.length = length
        self._file = self._map = self._view = None

    def holds(self, key: int) -> bool:
        if self._view is None:
            self._file = self.path.open("rb")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._view = memoryview(self._map).cast("Q")
        view = self._view
        index = bisect_left(view, key)
        return index < self.length and view[index] == key

    def chunks(self) -> Iterator[array.array]:
        with self.path.open("rb") as handle:
            left = self.length
            while left:
                chunk = array.array("Q")
                chunk.fromfile(handle, min(_CHUNK, left))
                left -= len(chunk)
                yield chunk

    def close(self) -> None:
        if self._view is not None:
            self._view.release()
            self._map.close()
            self._file.close()
            self._file = self._map = self._view = None


def _common_sorted(first: Iterator[Sequence[int]], second: Iterator[Sequence[int]]) -> Iterator[int]:
    """The values in both of two sorted streams of chunks (each stream without repeats).

    A merge join over chunks: the current chunks are intersected, then the one that ends first
    is replaced by its stream's next, so every pair of chunks whose values overlap meets once.
    """
    left, right = next(first, None), next(second, None)
    left_set = None
    while left and right:
        if left_set is None:
            left_set = set(left)
        yield from left_set.intersection(right)
        if left[-1] <= right[-1]:
            left, left_set = next(first, None), None
        else:
            right = next(second, None)


def _merge_sorted(first: Iterator[array.array], second: Iterator[array.array]) -> Iterator[list[int]]:
    """Two sorted streams of chunks as one sorted stream of chunks, a chunk or two in memory.

    Each round takes from both buffers what is not above the smaller of their last values (so
    nothing that comes later can belong before it) and sorts that: two sorted runs side by side,
    which Python's sort merges in one pass.
    """
    left = list(next(first, ()))
    right = list(next(second, ()))
    while left and right:
        bound = min(left[-1], right[-1])
        cut_left = bisect_left(left, bound + 1)
        cut_right = bisect_left(right, bound + 1)
        merged = left[:cut_left] + right[:cut_right]
        merged.sort()
        yield merged
        left = left[cut_left:] or list(next(first, ()))
        right = right[cut_right:] or list(next(second, ()))
    for rest, stream in ((left, first), (right, second)):
        while rest:
            yield rest
            rest = list(next(stream, ()))
