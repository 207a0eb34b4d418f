"""The one pass over a collection that produces every count, list and table of a search.

The old prototype parsed the raw posts once per output (sixteen passes). Here the collection is
read once: each post updates a handful of counters and is streamed straight into the files that
list posts (tweets.csv, tweet-ids.txt, the edge lists). Memory is bounded whatever the collection:
past tally.MEMORY_KEYS distinct hashtags, users, URLs, ... the counters move to a SQLite file
(pipeline.countstore), and the ids kept to drop duplicates spill to disk too (pipeline.idset).
Rules: ../shared/spec/outputs.md.

Everything the pass keeps is mergeable, so that a big raw file can be read in byte ranges by
several processes (pipeline.parallel) and give the very files one pass gives: counters add up,
an author's snapshot from a later range wins, retweet counts take the maximum, the listing files
are written as parts and joined in range order, and the sample is the posts with the highest
keyed hash of their id (bottom-k sampling, mirrored), which does not depend on how the collection was cut.
"""

from __future__ import annotations

import csv
import hashlib
import json
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from . import timeline
from .contract import (
    ADDED_PASS_FILES,
    COUNT_AUTHORS,
    COUNT_DOMAINS,
    COUNT_FILES,
    COUNT_FOLLOWERS,
    COUNT_HASHTAGS,
    COUNT_MEDIA,
    COUNT_MENTIONS,
    COUNT_URLS,
    FOLLOW_RATIO,
    HASHTAG_EDGES,
    LISTING_FILES,
    MENTION_EDGES,
    POSTS_OVER_TIME,
    RETWEETED_POSTS,
    RETWEETS,
    SAMPLE,
    SPILL_FOLDER,
    SUMMARISED,
    SUMMARY,
    TWEET_IDS,
    TWEETS_CSV,
)
from .countstore import CountStore
from .idset import remove_spill_folder
from .outputs import FORMULA_STARTS, OutputSet, csv_records, neutralise
from .records import Post
from .tally import (
    Sample,
    Tally,
    by_count,
    canonical_time,
    copy_of,
    file_of,
    past_memory_bound,
    prune_retweets,
    sample_seed,
)

__all__ = ["PASS_OUTPUTS", "Sample", "Tally", "sample_seed", "summarise_posts", "write_sample"]

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
RETWEETED_POST_COLUMNS = ("tweet_id", "created_at", "user", "text")
HASHTAG_EDGE_COLUMNS = ("user", "hashtag")
MENTION_EDGE_COLUMNS = ("from_user", "to_user")
# The files the pass writes, in the order they are put in place; SUMMARISED (the marker) is last.
PASS_OUTPUTS = (*LISTING_FILES, *COUNT_FILES, *ADDED_PASS_FILES, SAMPLE, SUMMARISED)
# Rows are formatted and written in batches of this many posts (the csv module's writerows on a
# list, one encode and one write per batch), which is also how often progress is reported.
BATCH_POSTS = 1000
# The cheap per-cell form of neutralise(): every formula start is a single character.
_FORMULA_CHARS = frozenset(FORMULA_STARTS)


def csv_line(cells: Sequence[str]) -> bytes:
    """One CSV record as the csv module writes it (a file's header, say)."""
    return csv_records([cells]).encode("utf-8")


def _write_rows(handle: IO[bytes], rows: list) -> None:
    if rows:
        handle.write(csv_records(rows).encode("utf-8"))


class _Batch:
    """What the pass collected from the last few posts, written and counted together."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []  # tweets.csv
        self.ids: list[str] = []
        self.tag_edges: list[tuple[str, str]] = []
        self.mention_edges: list[tuple[str, str]] = []
        self.tags: list[str] = []  # occurrences, as given
        self.names: list[str] = []
        self.urls: list[str] = []
        self.photos: list[str] = []
        self.times: list[str] = []  # created_at, canonical
        self.users: list[str] = []  # each post's author


class SummaryPass:
    """Reads posts once: rows into the listing files, counts into a Tally, candidates into a Sample.

    The files are binary handles positioned where the rows go (after a header, or at the start
    of a part). `add_all` may be called more than once; `tally()` and `sample` give the result.
    """

    def __init__(
        self,
        tweets: IO[bytes],
        ids: IO[bytes],
        hashtag_edges: IO[bytes],
        mention_edges: IO[bytes],
        sample: Sample,
        *,
        spill_into: Path | None = None,
    ) -> None:
        self._tweets = tweets
        self._ids = ids
        self._hashtag_edges = hashtag_edges
        self._mention_edges = mention_edges
        self.sample = sample
        self.count = 0  # posts read so far: the next post's position
        self.num_retweets = 0
        self._hashtags: Counter = Counter()  # as given: lower-cased once per distinct tag at the end
        self._mentions: Counter = Counter()
        self._urls: Counter = Counter()
        self._media: Counter = Counter()
        self._posters: Counter = Counter()  # posts per author
        self._authors: dict[str, tuple[int | None, int | None]] = {}
        self._retweets: dict[str, int] = {}
        self._originals: dict[str, tuple[bool, str, str, str]] = {}  # see Tally.originals
        self._times: Counter = Counter()  # see Tally.times
        self._time_level = timeline.KEY_LEVELS[0]
        self._first: str | None = None
        self._last: str | None = None
        # Cells that repeat across posts, neutralised (and lower-cased) once each.
        self._tag_cells: dict[str, str] = {}
        self._name_cells: dict[str, str] = {}
        self._batch = _Batch()
        # Where the distinct keys go once there are more than MEMORY_KEYS (None: they stay in memory).
        self._spill_into = spill_into
        self._store: CountStore | None = None

    def add_all(self, posts: Iterable[Post], on_batch: Callable[[int], None] | None = None) -> None:
        """Read `posts`; `on_batch(posts read)` after every BATCH_POSTS posts."""
        # The hot loop of the whole workflow: everything it touches is a local name, and what can
        # wait for the end of a batch (formatting rows, counting, the timeline) is done there, in
        # C, on whole lists (see _flush).
        formula = _FORMULA_CHARS
        tag_cells, name_cells = self._tag_cells, self._name_cells
        authors, retweets, originals = self._authors, self._retweets, self._originals
        sample = self.sample
        sha256, key_prefix, offer, floor = hashlib.sha256, sample.prefix, sample.offer, sample.floor()
        batch = self._batch
        add_row, add_id, add_time, add_user = (
            batch.rows.append,
            batch.ids.append,
            batch.times.append,
            batch.users.append,
        )
        add_tag_edge, add_mention_edge = batch.tag_edges.append, batch.mention_edges.append
        tags, names, urls, photos = batch.tags, batch.names, batch.urls, batch.photos
        position, num_retweets = self.count, self.num_retweets
        join = " ".join
        batch_end = position + BATCH_POSTS
        last_source = source_cell = None

        for post in posts:
            post_id = post.id
            user = post.user
            user_cell = "'" + user if user and user[0] in formula else user
            text = post.text
            if text and text[0] in formula:
                text = "'" + text
            lang = post.lang
            if lang and lang[0] in formula:
                lang = "'" + lang
            retweeted_id = post.retweeted_id
            post_tags = post.hashtags
            post_names = post.mentions
            post_urls = post.urls
            post_photos = post.photos
            # Most posts have no hashtag, photo, ...: an empty list is no call at all.
            tags_cell = join(post_tags) if post_tags else ""
            if tags_cell and tags_cell[0] in formula:
                tags_cell = "'" + tags_cell
            names_cell = join(post_names) if post_names else ""
            if names_cell and names_cell[0] in formula:
                names_cell = "'" + names_cell
            urls_cell = join(post_urls) if post_urls else ""
            if urls_cell and urls_cell[0] in formula:
                urls_cell = "'" + urls_cell
            photos_cell = join(post_photos) if post_photos else ""
            if photos_cell and photos_cell[0] in formula:
                photos_cell = "'" + photos_cell
            source = post.source_format
            if source is not last_source:  # the same object post after post ("v1", ...)
                last_source = source
                source_cell = "'" + source if source and source[0] in formula else source
            retweet_count = post.retweet_count
            created_at = post.created_at
            row = [
                post_id,
                created_at,
                user_cell,
                text,
                lang,
                str(retweet_count),
                str(post.like_count),
                str(post.reply_count),
                str(post.quote_count),
                "true" if retweeted_id else "false",
                retweeted_id,
                post.quoted_id,
                post.in_reply_to_id,
                tags_cell,
                names_cell,
                urls_cell,
                photos_cell,
                source_cell,
            ]
            add_row(row)
            add_id(post_id)
            key = sha256(key_prefix + post_id.encode()).digest()
            if key > floor:
                offer(key, position, row)
                floor = sample.floor()
            position += 1

            if retweeted_id:
                num_retweets += 1
            if post_tags:
                tags += post_tags
                # An edge starts at the post's author: a post whose author has no name has none.
                for tag in post_tags if user else ():
                    cell = tag_cells.get(tag)
                    if cell is None:
                        cell = tag_cells[tag] = neutralise(tag.lower())
                    add_tag_edge((user_cell, cell))
            if post_names:
                names += post_names
                for name in post_names if user else ():
                    cell = name_cells.get(name)
                    if cell is None:
                        cell = name_cells[name] = neutralise(name)
                    add_mention_edge((user_cell, cell))
            if post_urls:
                urls += post_urls
            if post_photos:
                photos += post_photos
            if user:
                # A later post overwrites an earlier one: the value is the latest snapshot, as the spec asks.
                authors[user] = (post.followers, post.following)
                add_user(user)
            if retweet_count > 0:
                # retweets.csv's count, and the copy of the original retweeted-posts.csv shows: the
                # first carrying the highest count, the original itself before a copy (see record_original).
                original = retweeted_id or post_id
                # A tuple of three strings, not the post: up to RETWEET_CANDIDATES of them are held.
                highest = retweets.get(original, 0)
                if retweet_count > highest:
                    retweets[original] = retweet_count
                    if not retweeted_id:
                        originals[original] = (True, created_at, user, post.text)
                    elif post.retweeted_text or post.retweeted_user:
                        originals[original] = (
                            False,
                            post.retweeted_created_at,
                            post.retweeted_user,
                            post.retweeted_text,
                        )
                    else:
                        originals.pop(original, None)
                elif retweet_count == highest and (
                    # the original itself (once in the collection) wins over a copy; a copy fills a gap
                    not retweeted_id or (original not in originals and (post.retweeted_text or post.retweeted_user))
                ):
                    originals[original] = copy_of(post)  # rare: a second post carrying the same highest count
            if created_at:
                if len(created_at) == 25 and created_at[10] == "T" and created_at.endswith("+00:00"):
                    add_time(created_at)
                else:
                    moment = canonical_time(created_at)
                    if moment is not None:
                        add_time(moment)

            if position >= batch_end:
                self.count, self.num_retweets = position, num_retweets
                self._flush()
                batch_end = position + BATCH_POSTS
                if on_batch is not None:
                    on_batch(position)
        self.count, self.num_retweets = position, num_retweets
        self._flush()

    def _flush(self) -> None:
        """Write and count what the batch holds, and empty it (its lists are reused)."""
        batch = self._batch
        _write_rows(self._tweets, batch.rows)
        if batch.ids:
            self._ids.write(("\n".join(batch.ids) + "\n").encode("utf-8"))
        _write_rows(self._hashtag_edges, batch.tag_edges)
        _write_rows(self._mention_edges, batch.mention_edges)
        self._hashtags.update(batch.tags)
        self._mentions.update(batch.names)
        self._urls.update(batch.urls)
        self._media.update(batch.photos)
        self._posters.update(batch.users)
        prune_retweets(self._retweets, self._originals)
        if self._spill_into is not None and past_memory_bound(self._keys_in_memory()):
            self._spill()
        times = batch.times
        if times:
            # Canonical times (see canonical_time) sort as text in time order, and their first
            # characters are the minute, the hour, the day, ... they fall in.
            self._times.update(map(operator.itemgetter(slice(0, self._time_level)), times))
            self._times, self._time_level = timeline.roll_up(self._times, self._time_level)
            earliest, latest = min(times), max(times)
            if self._first is None or earliest < self._first:
                self._first = earliest
            if self._last is None or latest > self._last:
                self._last = latest
        for items in batch.__dict__.values():
            items.clear()

    def _keys_in_memory(self) -> int:
        held = (self._hashtags, self._mentions, self._urls, self._media, self._posters, self._authors)
        return sum(map(len, held))

    def _spill(self) -> None:
        """Move the distinct keys counted so far to the CountStore; the dicts (which add_all holds
        as local names) are emptied in place."""
        part = self.tally()
        part.spill(self._spill_into)
        self._store = part.store
        for held in (self._hashtags, self._mentions, self._urls, self._media, self._posters, self._authors):
            held.clear()
        self._tag_cells.clear()
        self._name_cells.clear()

    def tally(self) -> Tally:
        """What was counted so far."""
        hashtags: Counter = Counter()
        for tag, count in self._hashtags.items():
            hashtags[tag.lower()] += count
        mentions: Counter = Counter()
        for name, count in self._mentions.items():
            mentions[name.lower()] += count
        return Tally(
            num_tweets=self.count,
            num_retweets=self.num_retweets,
            hashtags=hashtags,
            mentions=mentions,
            urls=Counter(self._urls),
            media=Counter(self._media),
            posters=Counter(self._posters),
            authors=dict(self._authors),
            retweets=dict(self._retweets),
            originals=dict(self._originals),
            times=Counter(self._times),
            time_level=self._time_level,
            first=self._first,
            last=self._last,
            store=self._store,
        )


def open_listing_files(out: OutputSet, folder: Path) -> dict[str, IO[bytes]]:
    """The listing files of LISTING_FILES, opened in `out` (binary), each with its header written."""
    files = {name: out.open(folder / name, "wb") for name in LISTING_FILES}
    files[TWEETS_CSV].write(csv_line(TWEET_COLUMNS))
    files[HASHTAG_EDGES].write(csv_line(HASHTAG_EDGE_COLUMNS))
    files[MENTION_EDGES].write(csv_line(MENTION_EDGE_COLUMNS))
    return files


def write_summary_files(
    out: OutputSet,
    folder: Path,
    tally: Tally,
    sample: Sample,
    make_facts: Callable[[dict], dict],
    on_done: Callable[[int], None] | None = None,
) -> dict:
    """The count files, the sample and (last) the facts of the pass, from a finished tally; returns the facts."""
    domains = tally.domains()
    out.csv(folder / COUNT_HASHTAGS, ("hashtag", "count"), ("hashtag",)).writerows(tally.count_rows("hashtags"))
    out.csv(folder / COUNT_MENTIONS, ("screen_name", "count"), ("screen_name",)).writerows(tally.count_rows("mentions"))
    out.csv(folder / COUNT_URLS, ("url", "count"), ("url",)).writerows(tally.count_rows("urls"))
    out.csv(folder / COUNT_DOMAINS, ("domain", "count"), ("domain",)).writerows(by_count(domains))
    out.csv(folder / COUNT_MEDIA, ("url", "file", "count"), ("url", "file")).writerows(
        (url, file_of(url), n) for url, n in tally.count_rows("media")
    )
    out.csv(folder / COUNT_FOLLOWERS, ("user", "followers"), ("user",)).writerows(tally.followers_rows())
    out.csv(folder / FOLLOW_RATIO, ("user", "ratio"), ("user",)).writerows(tally.ratio_rows())
    out.csv(folder / COUNT_AUTHORS, ("user", "posts"), ("user",)).writerows(tally.count_rows("posters"))
    top_retweets = tally.top_retweets()
    out.csv(folder / RETWEETS, ("tweet_id", "count")).writerows(top_retweets)
    out.csv(folder / POSTS_OVER_TIME, timeline.CSV_HEADER).writerows(timeline.csv_rows(tally.over_time()))
    out.csv(folder / RETWEETED_POSTS, RETWEETED_POST_COLUMNS, ("user", "text")).writerows(
        tally.retweeted_posts(top_retweets)
    )
    # The sample's cells are as tweets.csv has them (neutralised already), so write_sample() can
    # redraw it from tweets.csv exactly.
    out.csv(folder / SAMPLE, TWEET_COLUMNS, TWEET_TEXT_COLUMNS).writerows(sample.rows())
    facts = tally.facts(domains)
    if on_done is not None:
        on_done(tally.num_tweets)
    out.json(folder / SUMMARISED, make_facts(facts))
    return facts


def summarise_posts(
    posts: Iterable[Post],
    folder: Path,
    *,
    sample_size: int,
    seed: str,
    make_facts: Callable[[dict], dict],
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Read the collection once and write every file of PASS_OUTPUTS into `folder`.

    `make_facts(facts)` returns the content of the pass's facts file (contract.SUMMARISED); it is
    called after the last post, so it may read an import report the iteration filled in. Returns the facts.
    """
    sample = Sample(sample_size, seed)
    try:
        with OutputSet() as out:
            files = open_listing_files(out, folder)
            summary_pass = SummaryPass(
                files[TWEETS_CSV],
                files[TWEET_IDS],
                files[HASHTAG_EDGES],
                files[MENTION_EDGES],
                sample,
                spill_into=folder / SPILL_FOLDER,
            )
            summary_pass.add_all(posts, on_progress)
            tally = summary_pass.tally()
            try:
                return write_summary_files(out, folder, tally, sample, make_facts, on_progress)
            finally:
                if tally.store is not None:
                    tally.store.close()
    finally:
        remove_spill_folder(folder)


def write_sample(folder: Path, size: int, *, search_id: int) -> Path:
    """Draw a run's sample again at another size, from its tweets.csv (the raw posts are not parsed
    again).

    The same search and size always give the same rows, the same rows the workflow's pass drew
    (see Sample).
    """
    if size < 1:
        raise ValueError(f"A sample needs at least 1 post (got {size}).")
    if not (folder / TWEETS_CSV).is_file():
        raise FileNotFoundError(f"This search has no {TWEETS_CSV} to sample from: run it first.")
    sample = Sample(size, sample_seed(search_id, size))
    with (folder / TWEETS_CSV).open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(header[: len(TWEET_COLUMNS)]) != TWEET_COLUMNS:
            raise ValueError(
                f"{TWEETS_CSV} does not have the columns this version of dnflow writes: run the search again."
            )
        for position, row in enumerate(reader):
            sample.offer(sample.key(row[0]), position, row)
    # The cells are already neutralised (neutralising is idempotent), so they are written unchanged.
    # The summaries that give the sample's size say the new one, put in place with the sample.
    with OutputSet() as out:
        out.csv(folder / SAMPLE, header, TWEET_TEXT_COLUMNS).writerows(sample.rows())
        for name in (SUMMARISED, SUMMARY):
            if (folder / name).is_file():
                document = json.loads((folder / name).read_text(encoding="utf-8"))
                out.json(folder / name, document | {"sample_size": size})
    return folder / SAMPLE
