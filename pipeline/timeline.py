"""Posts over time: which bucket (minute ... year) a series gets, and series on one time grid.

Framework-free: the summary pass writes posts-over-time.csv with it, and the web pages use it
for any other series (Compare overlays several searches on one axis with `common_grid`).

A bucket is chosen from the series' span so that a chart has at most MAX_BARS bars (and, for a
span long enough, at least about MAX_BARS / 10): the finest of BUCKETS that fits. Every time is
UTC; a bucket starts at a round time (a minute, a ten-minute mark, an hour, midnight, a Monday's
midnight, the first of a month, the first of January). A series is complete: the empty buckets
between the first and the last are there, with 0.

Counting at the finest resolution costs memory that grows with the span, so the pass keeps its
counts as text keys (a prefix of the ISO 8601 time, one of KEY_LEVELS long) and rolls
them up to a coarser level once there are more than TIMELINE_KEYS of them (`roll_up`). That stays
exact: more than TIMELINE_KEYS distinct keys at one level means more than MAX_BARS bars at that
level and at every finer bucket (and at a week, for days), so the bucket chosen for the whole
collection is never finer than the level the counts were rolled up to.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

MINUTE, TEN_MINUTES, HOUR, DAY, WEEK, MONTH, YEAR = "minute", "10 minutes", "hour", "day", "week", "month", "year"
BUCKETS = (MINUTE, TEN_MINUTES, HOUR, DAY, WEEK, MONTH, YEAR)  # finest first
MAX_BARS = 200
_FIXED = {
    MINUTE: timedelta(minutes=1),
    TEN_MINUTES: timedelta(minutes=10),
    HOUR: timedelta(hours=1),
    DAY: timedelta(days=1),
    WEEK: timedelta(weeks=1),
}

# Count keys: the first N characters of a canonical time (YYYY-MM-DDTHH:MM:SS+00:00), finest first.
# 15 characters is the ten-minute mark ("2023-01-01T10:4" holds 10:40 to 10:49).
KEY_LEVELS = (16, 15, 13, 10, 7, 4)
KEY_BUCKETS = {16: MINUTE, 15: TEN_MINUTES, 13: HOUR, 10: DAY, 7: MONTH, 4: YEAR}
_BUCKET_LEVELS = {bucket: level for level, bucket in KEY_BUCKETS.items()}
# Distinct keys held at one level before they are rolled up to the next (see the module's text:
# at least 7 * MAX_BARS, so that days roll up to months only when weeks would be too many bars).
TIMELINE_KEYS = 10_000
_PAD = "0000-01-01T00:00"

CSV_HEADER = ("bucket_start", "count")


def key_start(key: str) -> datetime:
    """The UTC start of the bucket a count key stands for."""
    return datetime.fromisoformat(key + _PAD[len(key) :]).replace(tzinfo=UTC)


def roll_up(counts: Counter, level: int, *, bound: int | None = None) -> tuple[Counter, int]:
    """`counts` (keys `level` long) at the coarsest level needed to hold at most `bound` keys
    (TIMELINE_KEYS when None); the same Counter when nothing changes. Years are never rolled up."""
    bound = TIMELINE_KEYS if bound is None else bound
    while len(counts) > bound and level != KEY_LEVELS[-1]:
        counts, level = at_level(counts, level, KEY_LEVELS[KEY_LEVELS.index(level) + 1])
    return counts, level


def at_level(counts: Counter, level: int, coarser: int) -> tuple[Counter, int]:
    """`counts` with keys cut to `coarser` characters (no change when it is not coarser)."""
    if coarser >= level:
        return counts, level
    rolled: Counter = Counter()
    for key, count in counts.items():
        rolled[key[:coarser]] += count
    return rolled, coarser


# --- Buckets -------------------------------------------------------------------------------------


def floor(moment: datetime, bucket: str) -> datetime:
    """The start of the bucket that holds `moment` (made UTC; a naive time is taken as UTC)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    moment = moment.replace(second=0, microsecond=0)
    if bucket == MINUTE:
        return moment
    if bucket == TEN_MINUTES:
        return moment.replace(minute=moment.minute - moment.minute % 10)
    moment = moment.replace(minute=0)
    if bucket == HOUR:
        return moment
    moment = moment.replace(hour=0)
    if bucket == DAY:
        return moment
    if bucket == WEEK:  # ISO weeks: Monday to Sunday
        return moment - timedelta(days=moment.weekday())
    if bucket == MONTH:
        return moment.replace(day=1)
    if bucket == YEAR:
        return moment.replace(month=1, day=1)
    raise ValueError(f"Unknown bucket {bucket!r}: one of {', '.join(BUCKETS)}.")


def following(start: datetime, bucket: str) -> datetime:
    """The start of the bucket after the one starting at `start`."""
    fixed = _FIXED.get(bucket)
    if fixed is not None:
        return start + fixed
    if bucket == MONTH:
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    if bucket == YEAR:
        return start.replace(year=start.year + 1)
    raise ValueError(f"Unknown bucket {bucket!r}: one of {', '.join(BUCKETS)}.")


def bars(first: datetime, last: datetime, bucket: str) -> int:
    """How many buckets a complete series from `first` to `last` has."""
    start, end = floor(first, bucket), floor(last, bucket)
    fixed = _FIXED.get(bucket)
    if fixed is not None:
        return (end - start) // fixed + 1
    if bucket == MONTH:
        return (end.year - start.year) * 12 + end.month - start.month + 1
    return end.year - start.year + 1


def choose_bucket(first: datetime, last: datetime, *, finest: str = MINUTE, max_bars: int | None = None) -> str:
    """The finest bucket, no finer than `finest`, with at most `max_bars` (MAX_BARS) bars from
    `first` to `last`; years when none fits."""
    max_bars = MAX_BARS if max_bars is None else max_bars
    for bucket in BUCKETS[BUCKETS.index(finest) :]:
        if bars(first, last, bucket) <= max_bars:
            return bucket
    return YEAR


def coarsest(buckets: Iterable[str]) -> str:
    return max(buckets, key=BUCKETS.index, default=MINUTE)


# --- Series --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A complete series: one count per bucket, from the first bucket with posts to the last."""

    bucket: str
    points: tuple[tuple[datetime, int], ...]

    @property
    def total(self) -> int:
        return sum(count for _, count in self.points)

    @property
    def peak(self) -> int:
        return max((count for _, count in self.points), default=0)


def series(counts: Mapping[datetime, int], *, bucket: str | None = None, finest: str = MINUTE) -> Series:
    """Counts by moment (any moments; each is put in its bucket) as a complete series. Without
    `bucket` it is chosen from the span, no finer than `finest` (the resolution the counts have)."""
    moments = [moment for moment, count in counts.items() if count]
    if not moments:
        return Series(bucket or finest, ())
    first, last = min(moments), max(moments)
    bucket = bucket or choose_bucket(first, last, finest=finest)
    totals: Counter = Counter()
    for moment, count in counts.items():
        totals[floor(moment, bucket)] += count
    points = []
    start, end = floor(first, bucket), floor(last, bucket)
    while start <= end:
        points.append((start, totals.get(start, 0)))
        start = following(start, bucket)
    return Series(bucket, tuple(points))


def series_from_keys(counts: Mapping[str, int], level: int) -> Series:
    """The series of the pass's count keys (see KEY_LEVELS), in the bucket its span calls for.

    The keys are cut to the bucket as text first (weeks: to days), so that only a few hundred
    of them become datetimes, however many there are."""
    counts = Counter({key: count for key, count in counts.items() if count})
    if not counts:
        return Series(KEY_BUCKETS[level], ())
    bucket = choose_bucket(key_start(min(counts)), key_start(max(counts)), finest=KEY_BUCKETS[level])
    counts, level = at_level(counts, level, _BUCKET_LEVELS.get(bucket, 10))
    return series({key_start(key): count for key, count in counts.items()}, bucket=bucket)


def iso(moment: datetime) -> str:
    """A bucket start as written in the files: ISO 8601, UTC, to the second."""
    return moment.astimezone(UTC).isoformat()


def csv_rows(one: Series) -> list[tuple[str, int]]:
    return [(iso(start), count) for start, count in one.points]


def infer_bucket(starts: list[datetime]) -> str:
    """The bucket of a complete series read back from a file (its rows do not say it)."""
    if len(starts) < 2:
        return MINUTE  # one bucket: any will do, and the finest lets others decide
    step = starts[1] - starts[0]
    for bucket, size in _FIXED.items():
        if step == size and all(floor(start, bucket) == start for start in starts[:2]):
            return bucket
    return YEAR if step >= timedelta(days=365) else MONTH


def read_series(path: Path) -> Series | None:
    """posts-over-time.csv (or any `bucket_start,count` file) as a Series; None if unreadable."""
    points = []
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                start = datetime.fromisoformat(row["bucket_start"]).astimezone(UTC)
                points.append((start, int(row["count"])))
    except (OSError, KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error):
        return None
    return Series(infer_bucket([start for start, _ in points]), tuple(points))


# --- Several series on one axis ------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """Several series on one bucket grid: `counts[name][i]` posts in the bucket starting at
    `starts[i]`, and `shares[name][i]` that count as a fraction of the series' total (0 to 1),
    so that searches of very different sizes can be compared by shape.

    `exact` is False when a weekly series was put on a monthly grid: a week that straddles two
    months is counted in the month it starts in (weeks do not divide months)."""

    bucket: str
    starts: tuple[datetime, ...]
    counts: dict[str, tuple[int, ...]]
    shares: dict[str, tuple[float, ...]]
    exact: bool = True


def common_grid(named: Mapping[str, Series], *, max_bars: int | None = None) -> Grid:
    """The series of `named` re-bucketed onto one grid: a bucket no finer than the coarsest of
    theirs, chosen from the span of all of them together (at most `max_bars` bars)."""
    present = {name: one for name, one in named.items() if one.points}
    if not present:
        return Grid(coarsest(one.bucket for one in named.values()), (), {name: () for name in named}, {})
    finest = coarsest(one.bucket for one in present.values())
    first = min(one.points[0][0] for one in present.values())
    last = max(one.points[-1][0] for one in present.values())
    bucket = choose_bucket(first, last, finest=finest, max_bars=max_bars)
    starts = []
    start, end = floor(first, bucket), floor(last, bucket)
    while start <= end:
        starts.append(start)
        start = following(start, bucket)
    index = {start: i for i, start in enumerate(starts)}
    counts: dict[str, tuple[int, ...]] = {}
    shares: dict[str, tuple[float, ...]] = {}
    for name, one in named.items():
        values = [0] * len(starts)
        for start, count in one.points:
            values[index[floor(start, bucket)]] += count
        total = sum(values)
        counts[name] = tuple(values)
        shares[name] = tuple(value / total if total else 0.0 for value in values)
    exact = not (bucket in (MONTH, YEAR) and any(one.bucket == WEEK for one in present.values()))
    return Grid(bucket, tuple(starts), counts, shares, exact)
