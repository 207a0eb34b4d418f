"""The one pass over a collection that produces every count, list and table of a search.

The old prototype parsed the raw posts once per output (sixteen passes). Here the collection is
read once: each post updates a handful of counters and is streamed straight into the files that
list posts (tweets.csv, tweet-ids.txt, the edge lists), so memory grows with the number of
distinct hashtags, users, URLs, ... but never with the number of posts. The sample is drawn with
reservoir sampling (constant memory). Rules: ../shared/spec/outputs.md.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from .outputs import OutputSet, neutralise, write_csv
from .records import Post

TWEET_COLUMNS = (
    "id",
    "created_at",
    "user",
    "text",
    "lang",
    "retweet_count",
    "like_count",
    "reply_count",
    "quote_count",
    "is_retweet",
    "retweeted_id",
    "quoted_id",
    "in_reply_to_id",
    "hashtags",
    "mentions",
    "urls",
    "photos",
    "source_format",
)
# Columns that come from the posts' authors and may hold anything: neutralised for spreadsheets.
TWEET_TEXT_COLUMNS = ("user", "text", "lang", "hashtags", "mentions", "urls", "photos", "source_format")
RETWEETS_TOP = 100
# The files the pass writes, in the order they are put in place; summary.json (the marker) is last.
SUMMARY_FILES = (
    "tweets.csv",
    "tweet-ids.txt",
    "edgelist-hashtags.csv",
    "edgelist-mentions.csv",
    "count-hashtags.csv",
    "count-mentions.csv",
    "count-urls.csv",
    "count-domains.csv",
    "count-media.csv",
    "count-followers.csv",
    "follow-ratio.csv",
    "retweets.csv",
    "sample.csv",
    "summary.json",
)


def tweet_row(post: Post) -> list[str]:
    return [
        post.id,
        post.created_at,
        post.user,
        post.text,
        post.lang,
        str(post.retweet_count),
        str(post.like_count),
        str(post.reply_count),
        str(post.quote_count),
        "true" if post.is_retweet else "false",
        post.retweeted_id,
        post.quoted_id,
        post.in_reply_to_id,
        " ".join(post.hashtags),
        " ".join(post.mentions),
        " ".join(post.urls),
        " ".join(post.photos),
        post.source_format,
    ]


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


class Reservoir:
    """A uniform random sample of a stream, in constant memory (Algorithm R), reproducibly seeded."""

    def __init__(self, size: int, seed: str) -> None:
        self.size = max(0, size)
        self._rng = random.Random(seed)
        self._seen = 0
        self._items: list[tuple[int, Sequence[str]]] = []

    def add(self, row: Sequence[str]) -> None:
        index = self._seen
        self._seen += 1
        if len(self._items) < self.size:
            self._items.append((index, row))
            return
        slot = self._rng.randrange(index + 1)
        if slot < self.size:
            self._items[slot] = (index, row)

    def rows(self) -> list[Sequence[str]]:
        """The sample in collection order, which reads more naturally than draw order."""
        return [row for _, row in sorted(self._items, key=lambda item: item[0])]


def sample_seed(search_id: int, size: int) -> str:
    return f"dnflow-sample:{search_id}:{size}"


@dataclass
class Tally:
    """Everything counted over the collection."""

    num_tweets: int = 0
    num_retweets: int = 0
    hashtags: Counter = field(default_factory=Counter)
    mentions: Counter = field(default_factory=Counter)
    urls: Counter = field(default_factory=Counter)
    domains: Counter = field(default_factory=Counter)
    media: Counter = field(default_factory=Counter)
    # author -> (followers, following) from their latest post; a later post replaces it.
    authors: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    # original id -> the highest retweet count seen on a post with that original
    retweets: dict[str, int] = field(default_factory=dict)
    hours: Counter = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, post: Post) -> None:
        self.num_tweets += 1
        if post.is_retweet:
            self.num_retweets += 1
        for tag in post.hashtags:
            self.hashtags[tag.lower()] += 1
        for name in post.mentions:
            self.mentions[name.lower()] += 1
        for url in post.urls:
            self.urls[url] += 1
            domain = domain_of(url)
            if domain:
                self.domains[domain] += 1
        for photo in post.photos:
            self.media[photo] += 1
        if post.user:
            # A later post overwrites an earlier one: the value is the latest snapshot, as the spec asks.
            self.authors[post.user] = (post.followers, post.following)
        if post.retweet_count > 0:
            original = post.original_id
            if post.retweet_count > self.retweets.get(original, 0):
                self.retweets[original] = post.retweet_count
        moment = _parse_time(post.created_at)
        if moment is not None:
            moment = moment.astimezone(UTC)
            self.hours[moment.replace(minute=0, second=0, microsecond=0)] += 1
            if self.first is None or moment < self.first:
                self.first = moment
            if self.last is None or moment > self.last:
                self.last = moment

    def followers_rows(self) -> list[tuple[str, int]]:
        known = {user: snap[0] for user, snap in self.authors.items() if snap[0] is not None}
        return by_count(known)

    def ratio_rows(self) -> list[tuple[str, str]]:
        ratios = {
            user: followers / following
            for user, (followers, following) in self.authors.items()
            if followers is not None and following
        }
        ordered = sorted(ratios.items(), key=lambda item: (-item[1], item[0]))
        return [(user, format_ratio(*self.authors[user])) for user, _ in ordered]

    def top_retweets(self) -> list[tuple[str, int]]:
        ordered = sorted(self.retweets.items(), key=lambda item: (-item[1], _tweet_id_key(item[0])))
        return ordered[:RETWEETS_TOP]

    def facts(self) -> dict:
        """The numbers summary.json reports."""
        return {
            "num_tweets": self.num_tweets,
            "num_retweets": self.num_retweets,
            "first_tweet_at": self.first.isoformat() if self.first else None,
            "last_tweet_at": self.last.isoformat() if self.last else None,
            "unique_hashtags": len(self.hashtags),
            "unique_mentions": len(self.mentions),
            "unique_urls": len(self.urls),
            "unique_domains": len(self.domains),
            "unique_photos": len(self.media),
            "unique_users": len(self.authors),
            "timeline": [{"time": hour.isoformat(), "count": n} for hour, n in sorted(self.hours.items())],
        }


def summarise_posts(
    posts: Iterable[Post],
    folder: Path,
    *,
    sample_size: int,
    seed: str,
    make_summary: Callable[[dict], dict],
    on_progress: Callable[[int], None] | None = None,
    progress_every: int = 250,
) -> dict:
    """Read the collection once and write every file of SUMMARY_FILES into `folder`.

    `make_summary(facts)` returns the content of summary.json; it is called after the last post,
    so it may read an import report the iteration filled in. Returns the facts.
    """
    tally = Tally()
    sample = Reservoir(sample_size, seed)
    with OutputSet() as out:
        tweets = out.csv(folder / "tweets.csv", TWEET_COLUMNS, TWEET_TEXT_COLUMNS)
        ids = out.text(folder / "tweet-ids.txt")
        hashtag_edges = out.csv(folder / "edgelist-hashtags.csv", ("user", "hashtag"), ("user", "hashtag"))
        mention_edges = out.csv(folder / "edgelist-mentions.csv", ("from_user", "to_user"), ("from_user", "to_user"))
        for post in posts:
            tally.add(post)
            row = tweet_row(post)
            tweets.writerow(row)
            # The sample keeps the cells as tweets.csv has them, so write_sample() redraws it exactly.
            sample.add(_as_written(row))
            ids.write(post.id + "\n")
            for tag in post.hashtags:
                hashtag_edges.writerow((post.user, tag.lower()))
            for name in post.mentions:
                mention_edges.writerow((post.user, name))
            if on_progress is not None and tally.num_tweets % progress_every == 0:
                on_progress(tally.num_tweets)

        out.csv(folder / "count-hashtags.csv", ("hashtag", "count"), ("hashtag",)).writerows(by_count(tally.hashtags))
        out.csv(folder / "count-mentions.csv", ("screen_name", "count"), ("screen_name",)).writerows(
            by_count(tally.mentions)
        )
        out.csv(folder / "count-urls.csv", ("url", "count"), ("url",)).writerows(by_count(tally.urls))
        out.csv(folder / "count-domains.csv", ("domain", "count"), ("domain",)).writerows(by_count(tally.domains))
        out.csv(folder / "count-media.csv", ("url", "file", "count"), ("url", "file")).writerows(
            (url, file_of(url), n) for url, n in by_count(tally.media)
        )
        out.csv(folder / "count-followers.csv", ("user", "followers"), ("user",)).writerows(tally.followers_rows())
        out.csv(folder / "follow-ratio.csv", ("user", "ratio"), ("user",)).writerows(tally.ratio_rows())
        out.csv(folder / "retweets.csv", ("tweet_id", "count")).writerows(tally.top_retweets())
        out.csv(folder / "sample.csv", TWEET_COLUMNS, TWEET_TEXT_COLUMNS).writerows(sample.rows())
        facts = tally.facts()
        if on_progress is not None:
            on_progress(tally.num_tweets)
        out.json(folder / "summary.json", make_summary(facts))
    return facts


_TEXT_INDEXES = frozenset(TWEET_COLUMNS.index(name) for name in TWEET_TEXT_COLUMNS)


def _as_written(row: Sequence[str]) -> list[str]:
    return [neutralise(cell) if i in _TEXT_INDEXES else cell for i, cell in enumerate(row)]


def write_sample(search, size: int) -> Path:
    """Draw sample.csv again at another size, from tweets.csv (the raw posts are not parsed again).

    The same search and size always give the same rows, the same rows the workflow's pass drew.
    """
    if size < 1:
        raise ValueError(f"A sample needs at least 1 post (got {size}).")
    folder = search.output_dir
    if folder is None or not (folder / "tweets.csv").is_file():
        raise FileNotFoundError("This search has no tweets.csv to sample from: run it first.")
    reservoir = Reservoir(size, sample_seed(search.pk, size))
    with (folder / "tweets.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header[: len(TWEET_COLUMNS)]) != TWEET_COLUMNS:
            raise ValueError(
                "tweets.csv does not have the columns this version of dnflow writes: run the search again."
            )
        for row in reader:
            reservoir.add(row)
    # The cells are already neutralised (neutralising is idempotent), so they are written unchanged.
    write_csv(folder / "sample.csv", header, reservoir.rows(), TWEET_TEXT_COLUMNS)
    return folder / "sample.csv"
