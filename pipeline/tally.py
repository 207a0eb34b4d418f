"""What the summarise pass counts, in a form that merges: Tally (counts, authors' snapshots,
retweet maxima, the timeline) and Sample (the random sample), with the rules of each count file's
order. Rules: ../shared/spec/outputs.md; the pass itself: pipeline.summarise.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from . import timeline
from .countstore import COUNTED, CountStore

RETWEETS_TOP = 100
# Distinct hashtags, mentions, URLs, photos and authors (together) held in memory by a pass or a
# merge before they move to a CountStore on disk (about 15 MiB of dicts). Lower costs more
# SQLite work; on a million posts by 300,000 accounts, 50,000 was faster than 200,000.
MEMORY_KEYS = 50_000


def past_memory_bound(keys: int) -> bool:
    """Whether `keys` distinct keys should move to a CountStore (MEMORY_KEYS is read each time)."""
    return keys > MEMORY_KEYS


# Originals with a retweet count kept before the list is cut back to the current top: memory for
# retweets.csv stays flat however many posts were retweeted (see prune_retweets).
RETWEET_CANDIDATES = 10_000


def domain_of(url: str) -> str:
    """The lower-cased network location (port kept), or "" for a URL without one."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:  # e.g. an unbalanced "[" in a hand-edited archive
        return ""


def file_of(url: str) -> str:
    """The last path segment of a photo URL: the name its download gets."""
    try:
        path = urlsplit(url).path
    except ValueError:
        path = url
    return path.rstrip("/").rsplit("/", 1)[-1]


def _parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _tweet_id_key(tweet_id: str) -> tuple:
    # Ties in retweets.csv go by id as a number; a non-numeric id (never from X) sorts after.
    return (0, int(tweet_id), "") if tweet_id.isdigit() else (1, 0, tweet_id)


def by_count(counter: Counter | dict) -> list[tuple[str, int]]:
    """Highest count first, ties by key ascending: the order of every count file."""
    return sorted(counter.items(), key=lambda item: (-item[1], item[0]))


def format_ratio(followers: int, following: int) -> str:
    # repr of a float is the shortest text that reads back as the same number: exact, and at
    # least 4 significant digits whenever the ratio has them.
    return repr(followers / following)


def sample_seed(search_id: int, size: int) -> str:
    return f"dnflow-sample:{search_id}:{size}"


class Sample:
    """A uniform random sample of the collection that does not depend on the order it is read in.

    Every post gets a key, the SHA-256 of the seed and its id; the sample is the `size` posts
    with the highest keys (bottom-k sampling, mirrored). The same seed and posts always give the same
    sample, whether the posts come from one pass, from several byte ranges merged, or from
    tweets.csv again (write_sample). Memory: `size` rows.
    """

    def __init__(self, size: int, seed: str) -> None:
        self.size = max(0, size)
        self.prefix = f"{seed}:".encode()
        # (key, position, row), a min-heap: the lowest kept key is the first to go.
        self.kept: list[tuple[bytes, int, Sequence[str]]] = []

    def key(self, post_id: str) -> bytes:
        return hashlib.sha256(self.prefix + post_id.encode()).digest()

    def floor(self) -> bytes:
        """Keys at or below this cannot enter the sample (b"" while it is not full)."""
        if len(self.kept) < self.size or not self.size:
            return b"" if self.size else b"\xff" * 33
        return self.kept[0][0]

    def offer(self, key: bytes, position: int, row: Sequence[str]) -> None:
        """A post at `position` (its index in the collection, or in the part being read)."""
        if len(self.kept) < self.size:
            heapq.heappush(self.kept, (key, position, row))
        elif self.size and key > self.kept[0][0]:
            heapq.heapreplace(self.kept, (key, position, row))

    def merge(self, kept: Iterable[tuple[bytes, int, Sequence[str]]], offset: int) -> None:
        """Add what another part kept; its positions are shifted by `offset` (the posts before it)."""
        for key, position, row in kept:
            self.offer(key, position + offset, row)

    def rows(self) -> list[Sequence[str]]:
        """The sample in collection order, which reads more naturally than draw order."""
        return [row for _, _, row in sorted(self.kept, key=lambda item: item[1])]


@dataclass
class Tally:
    """Everything counted over the collection (or a part of it: tallies merge, see merge())."""

    num_tweets: int = 0
    num_retweets: int = 0
    hashtags: Counter = field(default_factory=Counter)  # lower-cased
    mentions: Counter = field(default_factory=Counter)  # lower-cased
    urls: Counter = field(default_factory=Counter)
    media: Counter = field(default_factory=Counter)
    posters: Counter = field(default_factory=Counter)  # author (as given) -> posts in the collection
    # author -> (followers, following) from their latest post; a later post replaces it.
    authors: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    # original id -> the highest retweet count seen on a post with that original (only the
    # candidates for retweets.csv: see prune_retweets)
    retweets: dict[str, int] = field(default_factory=dict)
    # original id -> (from the original itself?, created_at, user, text): the copy of the original
    # for retweeted-posts.csv, for the candidates above only (see record_original)
    originals: dict[str, tuple[bool, str, str, str]] = field(default_factory=dict)
    # The start of created_at (UTC) as text, `time_level` characters long (a minute, ten minutes,
    # an hour, ...: see pipeline.timeline) -> posts; rolled up past timeline.TIMELINE_KEYS keys.
    times: Counter = field(default_factory=Counter)
    time_level: int = timeline.KEY_LEVELS[0]
    first: str | None = None  # the earliest and latest created_at, ISO 8601 UTC
    last: str | None = None
    # The counts and snapshots that outgrew memory (see spill); read them with the methods below,
    # which take both places into account.
    store: CountStore | None = None

    def merge(self, later: Tally, spill_into: Path | None = None) -> None:
        """Add the tally of the part that follows this one in collection order. With `spill_into`,
        keys beyond MEMORY_KEYS move to a CountStore in that folder."""
        self.num_tweets += later.num_tweets
        self.num_retweets += later.num_retweets
        if later.store is not None:
            # Oldest first, so that a later author's snapshot wins: this tally, then what the
            # later part spilled, then (below) what it still held in memory.
            self.spill(later.store.path.parent)
            self.store.absorb(later.store)
        self.hashtags.update(later.hashtags)
        self.mentions.update(later.mentions)
        self.urls.update(later.urls)
        self.media.update(later.media)
        self.posters.update(later.posters)
        self.authors.update(later.authors)  # the later snapshot wins
        retweets, originals, later_originals = self.retweets, self.originals, later.originals
        for original, count in later.retweets.items():
            highest = retweets.get(original, 0)
            if count > highest:
                retweets[original] = count
                copy = later_originals.get(original)
                if copy is None:
                    originals.pop(original, None)
                else:
                    originals[original] = copy
            elif count == highest and original in later_originals:
                record_original(originals, original, later_originals[original])
        prune_retweets(retweets, originals)
        self.merge_times(later.times, later.time_level)
        if later.first is not None and (self.first is None or later.first < self.first):
            self.first = later.first
        if later.last is not None and (self.last is None or later.last > self.last):
            self.last = later.last
        if spill_into is not None and past_memory_bound(self.keys_in_memory()):
            self.spill(spill_into)

    def merge_times(self, times: Counter, level: int) -> None:
        """Add counts by time (keys `level` long), at the coarser of the two levels."""
        coarser = min(self.time_level, level)
        self.times, self.time_level = timeline.at_level(self.times, self.time_level, coarser)
        times, _ = timeline.at_level(times, level, coarser)
        self.times.update(times)
        self.times, self.time_level = timeline.roll_up(self.times, self.time_level)

    def keys_in_memory(self) -> int:
        return sum(len(getattr(self, kind)) for kind in COUNTED) + len(self.authors)

    def spill(self, folder: Path) -> None:
        """Move the counts and snapshots held in memory to the store (made in `folder` if there is
        none yet); the dicts are emptied in place."""
        if self.store is None:
            self.store = CountStore.create(folder)
        for kind in COUNTED:
            counter = getattr(self, kind)
            self.store.add_counts(kind, counter.items())
            counter.clear()
        self.store.add_authors((user, *snapshot) for user, snapshot in self.authors.items())
        self.authors.clear()

    def _settled_store(self) -> CountStore | None:
        """The store, once it holds everything (None when everything is in memory)."""
        if self.store is not None and self.keys_in_memory():
            self.spill(self.store.path.parent)
        return self.store

    def count_rows(self, kind: str) -> Iterable[tuple[str, int]]:
        """The rows of count-<kind>.csv (kind: one of COUNTED), in the file's order."""
        store = self._settled_store()
        return store.count_rows(kind) if store is not None else by_count(getattr(self, kind))

    def distinct(self, kind: str) -> int:
        """How many hashtags, mentions, urls, media or authors."""
        store = self._settled_store()
        return store.distinct(kind) if store is not None else len(getattr(self, kind))

    def domains(self) -> Counter:
        """Each counted URL's domain, as often as the URL was counted."""
        store = self._settled_store()
        domains: Counter = Counter()
        for url, count in store.items("urls") if store is not None else self.urls.items():
            domain = domain_of(url)
            if domain:
                domains[domain] += count
        return domains

    def followers_rows(self) -> Iterable[tuple[str, int]]:
        store = self._settled_store()
        if store is not None:
            return store.followers_rows()
        known = {user: snap[0] for user, snap in self.authors.items() if snap[0] is not None}
        return by_count(known)

    def ratio_rows(self) -> Iterable[tuple[str, str]]:
        store = self._settled_store()
        if store is not None:
            return ((user, format_ratio(followers, following)) for user, followers, following in store.ratio_rows())
        ratios = {
            user: followers / following
            for user, (followers, following) in self.authors.items()
            if followers is not None and following
        }
        ordered = sorted(ratios.items(), key=lambda item: (-item[1], item[0]))
        return [(user, format_ratio(*self.authors[user])) for user, _ in ordered]

    def top_retweets(self) -> list[tuple[str, int]]:
        return _top_originals(self.retweets)

    def retweeted_posts(self, top: list[tuple[str, int]]) -> list[tuple[str, str, str, str]]:
        """The rows of retweeted-posts.csv for the rows `top` of retweets.csv: (tweet_id,
        created_at, user, text), empty where no copy of the original was found."""
        rows = []
        for original, _count in top:
            copy = self.originals.get(original)
            rows.append((original, "", "", "") if copy is None else (original, *copy[1:]))
        return rows

    def facts(self, domains: Counter | None = None) -> dict:
        """The numbers summary.json reports."""
        domains = self.domains() if domains is None else domains
        return {
            "num_tweets": self.num_tweets,
            "num_retweets": self.num_retweets,
            "first_tweet_at": self.first,
            "last_tweet_at": self.last,
            "unique_hashtags": self.distinct("hashtags"),
            "unique_mentions": self.distinct("mentions"),
            "unique_urls": self.distinct("urls"),
            "unique_domains": len(domains),
            "unique_photos": self.distinct("media"),
            "unique_users": self.distinct("authors"),
            "timeline": self.hourly(),
        }

    def hourly(self) -> list[dict]:
        """summary.json's `timeline`: posts per hour, the hours with posts only (per day, month or
        year instead once the collection spans too many hours to keep them: see pipeline.timeline)."""
        hours, _ = timeline.at_level(self.times, self.time_level, 13)
        return [{"time": timeline.iso(timeline.key_start(key)), "count": n} for key, n in sorted(hours.items())]

    def over_time(self) -> timeline.Series:
        """posts-over-time.csv: a complete series in the bucket the collection's span calls for."""
        return timeline.series_from_keys(self.times, self.time_level)


def _retweet_order(item: tuple[str, int]) -> tuple:
    return (-item[1], _tweet_id_key(item[0]))


def _top_originals(retweets: dict[str, int]) -> list[tuple[str, int]]:
    """The rows of retweets.csv: the RETWEETS_TOP highest counts, ties by id as a number."""
    # Only originals counted at least as often as the RETWEETS_TOP-th highest count can be in the
    # top: a hundred thousand originals are not sorted to find a hundred.
    counts = heapq.nlargest(RETWEETS_TOP, retweets.values())
    floor = counts[-1] if len(counts) == RETWEETS_TOP else 0
    candidates = [item for item in retweets.items() if item[1] >= floor]
    return sorted(candidates, key=_retweet_order)[:RETWEETS_TOP]


def copy_of(post) -> tuple[bool, str, str, str]:
    """The copy of its original a post carries (itself, or the retweeted one): Tally.originals's form."""
    if post.retweeted_id:
        return (False, post.retweeted_created_at, post.retweeted_user, post.retweeted_text)
    return (True, post.created_at, post.user, post.text)


def record_original(originals: dict[str, tuple[bool, str, str, str]], original: str, copy: tuple) -> None:
    """Keep `copy` of `original` (a post carrying the same highest count as the kept one, later
    in the collection) if it is the original itself and the kept one is not, or nothing is kept.

    So the copy in retweeted-posts.csv is that of the first post, in collection order, carrying
    the original's highest retweet count (retweets.csv's count), the original itself if it is one
    of them. That is exact however the candidates are cut (prune_retweets) and wherever the
    collection is cut into ranges: every post carrying an original's highest count comes after the
    last time it can have been cut while it is among the final hundred.
    """
    kept = originals.get(original)
    if kept is None or (copy[0] and not kept[0]):
        originals[original] = copy


def prune_retweets(retweets: dict[str, int], originals: dict | None = None) -> None:
    """Cut `retweets` (original -> highest count so far) back to its current top once it holds
    more than RETWEET_CANDIDATES originals, and `originals` (their copies) with it. In place: the
    pass holds the dicts.

    retweets.csv stays exact. A count only ever rises, so the originals ranked above a dropped
    one stay above it; if the dropped one is met again with a higher count, that count is its
    highest so far and it comes back with it; if it is met again with a lower one, the hundred
    above it still outrank it. The same holds across the ranges of a parallel pass, whose
    tallies take the maximum.
    """
    if len(retweets) > RETWEET_CANDIDATES:
        top = _top_originals(retweets)
        retweets.clear()
        retweets.update(top)
        if originals is not None:
            kept = {original: originals[original] for original, _ in top if original in originals}
            originals.clear()
            originals.update(kept)


def canonical_time(value: str) -> str | None:
    """created_at as pipeline.formats writes it (YYYY-MM-DDTHH:MM:SS+00:00), or None if unreadable.

    The formats module always writes that form, so this is a length check; anything else is
    parsed, for records made elsewhere.
    """
    if len(value) == 25 and value[10] == "T" and value.endswith("+00:00"):
        return value
    moment = _parse_time(value)
    return None if moment is None else moment.astimezone(UTC).isoformat()
