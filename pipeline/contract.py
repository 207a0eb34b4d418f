"""The folder of a run: every file dnflow writes there, who may see it, and what is packaged.

This is the one place that names the files of ../shared/spec/outputs.md (and the few that
dnflow adds). The workflow writes them, the web pages and the API read them, the package picks
them; each of those asks this module, so a file's name, its visibility and whether it travels
in the package are decided once.

Access:
- PUBLIC: anyone who may see the search (everyone, once its owner publishes it): counts, edge
  lists, ids, the summary, the photos and the package. The platform's terms allow sharing ids
  and aggregates, not posts.
- PRIVATE: the owner and staff only, because these hold the posts' text.
- INTERNAL: bookkeeping of the workflow; never served (it may name server paths).

A file that is not listed here is never served and never packaged: the default is closed.

Temporaries: every output is written under a hidden temporary name and renamed into place
(pipeline.outputs), the package is built in a hidden working folder, and the summary pass spills
to a hidden folder. `remove_temporaries` removes what a run that was killed, cancelled or failed
left of these; nothing a person collected is a temporary (a live collection in progress,
LIVE_PARTIAL, is kept so that it can resume).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path


class Access(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    INTERNAL = "internal"


@dataclass(frozen=True)
class RunFile:
    name: str  # relative to the run's folder, "/"-separated
    access: Access
    packaged: bool
    description: str  # one line on what the file holds, for people (the files list, the bag)


# --- The names ---------------------------------------------------------------------------------

RAW_POSTS = "tweets.jsonl"
LIVE_PARTIAL = "tweets.jsonl.part"  # a live collection in progress; renamed to RAW_POSTS when done
LIVE_STATE = "collect-state.json"
SOURCES = "sources.json"

# A collection that looks posts up by id (pipeline.ids, pipeline.hydrate). Its pages go to
# LIVE_PARTIAL, then RAW_POSTS, as a search's do.
IDS_GIVEN = "ids-given"  # the dataset as uploaded: text, CSV, gzip or a package zip (told by content)
IDS_REQUESTED = "ids-requested.txt"  # its usable ids, each once, in first-seen order: what is looked up
LOOKUP_STATE = "lookup-state.json"
MISSING_IDS = "missing-ids.csv"

# Rechecks of a finished collection: which of its posts X still gives. One dated file per recheck,
# in RECHECKS_FOLDER, named by recheck_names() from the UTC time it started.
RECHECKS_FOLDER = "rechecks"
RECHECK_STAMP = "%Y%m%dT%H%M%SZ"  # 20260105T101500Z
RECHECK_AVAILABILITY = "rechecks/availability-{stamp}.csv"
RECHECK_PARTIAL = "rechecks/availability-{stamp}.csv.part"  # the recheck in progress
RECHECK_STATE = "rechecks/availability-{stamp}.state.json"
RECHECK_NAME = re.compile(r"^rechecks/availability-(\d{8}T\d{6}Z)\.csv$")
RECHECK_STATE_NAME = re.compile(r"^rechecks/availability-(\d{8}T\d{6}Z)\.state\.json$")

# A purge (a run of its own) removes from every run's files the posts a recheck found gone. Its
# folder keeps the record: which posts, X's reason and when (ids only), and what changed where.
# Each folder it changed also says so in its SOURCES (pipeline.purge).
PURGE_RECORD = "purged-posts.csv"
PURGE_REPORT = "purge.json"

TWEETS_CSV = "tweets.csv"
TWEET_IDS = "tweet-ids.txt"
HASHTAG_EDGES = "edgelist-hashtags.csv"
MENTION_EDGES = "edgelist-mentions.csv"

COUNT_HASHTAGS = "count-hashtags.csv"
COUNT_MENTIONS = "count-mentions.csv"
COUNT_URLS = "count-urls.csv"
COUNT_DOMAINS = "count-domains.csv"
COUNT_MEDIA = "count-media.csv"
COUNT_FOLLOWERS = "count-followers.csv"
FOLLOW_RATIO = "follow-ratio.csv"
RETWEETS = "retweets.csv"
COUNT_AUTHORS = "count-authors.csv"
POSTS_OVER_TIME = "posts-over-time.csv"
RETWEETED_POSTS = "retweeted-posts.csv"
SAMPLE = "sample.csv"
# What the summary pass found (counts of distinct keys, the time span, the import report): the
# final task reads it to write SUMMARY.
SUMMARISED = "summarised.json"
SUMMARY = "summary.json"

MENTIONS_GEXF = "mentions.gexf"
MENTIONS_GRAPHML = "mentions.graphml"
HASHTAGS_GEXF = "hashtags.gexf"
HASHTAGS_GRAPHML = "hashtags.graphml"
NETWORKS_VIEW = "networks.json"

MEDIA_FOLDER = "media"
PHOTOS_RECORD = "media/photos.json"
PHOTO_CHECKSUMS = "media/checksums.md5"
PHOTO_FAILURES = "media/failures.csv"
MEDIA_GRAPH = "media-graph.json"

# Downloaded photos: a plain file name with an image extension (never .svg or .html, which a
# browser would run as a page on our origin).
PHOTO_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.(?:jpe?g|png|gif|webp)$", re.IGNORECASE)

# The files listing every post, in the order the summary pass puts them in place.
LISTING_FILES = (TWEETS_CSV, TWEET_IDS, HASHTAG_EDGES, MENTION_EDGES)
# The count files, in the order a person reads them (and the order they are put in place).
COUNT_FILES = (
    COUNT_HASHTAGS,
    COUNT_MENTIONS,
    COUNT_URLS,
    COUNT_DOMAINS,
    COUNT_MEDIA,
    COUNT_FOLLOWERS,
    FOLLOW_RATIO,
    RETWEETS,
)
# The files the summary pass writes beyond the spec's (beside LISTING_FILES, COUNT_FILES and the
# sample): posts per author, the series over time, the most retweeted posts with their text.
ADDED_PASS_FILES = (COUNT_AUTHORS, POSTS_OVER_TIME, RETWEETED_POSTS)
# The networks (pipeline.networks), written after the summary pass; NETWORKS_VIEW is put in place last.
NETWORK_FILES = (MENTIONS_GEXF, MENTIONS_GRAPHML, HASHTAGS_GEXF, HASHTAGS_GRAPHML, NETWORKS_VIEW)
# The files of the summary pass that hold no post text (counts, edge lists, ids): what any other
# way of counting the same collection must reproduce line for line (the benchmark, the tests).
TEXT_FREE_FILES = (*COUNT_FILES, HASHTAG_EDGES, MENTION_EDGES, TWEET_IDS)

# Said of each file whose cells hold posts' text (pipeline.outputs.neutralise is the rule).
SPREADSHEET_GUARD = (
    " A text that begins with =, +, -, @ (a reply's \"@name ...\"), a tab or a carriage return has an added ' "
    "first, so that a spreadsheet shows it rather than runs it: drop that ' for the text as posted."
)
FILES: tuple[RunFile, ...] = (
    RunFile(SUMMARY, Access.PUBLIC, True, "What was asked and found: the query, dates, counts, import problems."),
    RunFile(COUNT_HASHTAGS, Access.PUBLIC, True, "Every hashtag, lower-cased, with how often it was used."),
    RunFile(COUNT_MENTIONS, Access.PUBLIC, True, "Every mentioned account, lower-cased, with how often."),
    RunFile(COUNT_URLS, Access.PUBLIC, True, "Every link as posted (expanded, not unshortened), with how often."),
    RunFile(COUNT_DOMAINS, Access.PUBLIC, True, "The web sites those links point to, with how often."),
    RunFile(COUNT_MEDIA, Access.PUBLIC, True, "Every photo's address and file name, with how often it was posted."),
    RunFile(COUNT_FOLLOWERS, Access.PUBLIC, True, "Each author's followers, from their latest post."),
    RunFile(COUNT_AUTHORS, Access.PUBLIC, True, "Each author with how many of the collected posts are theirs."),
    RunFile(FOLLOW_RATIO, Access.PUBLIC, True, "Each author's followers divided by the accounts they follow."),
    RunFile(RETWEETS, Access.PUBLIC, True, "The 100 most retweeted posts: their ids and retweet counts."),
    RunFile(POSTS_OVER_TIME, Access.PUBLIC, True, "Posts per minute, hour, day... (UTC), every bucket of the span."),
    RunFile(HASHTAG_EDGES, Access.PUBLIC, True, "One row per hashtag use: the author and the hashtag."),
    RunFile(MENTION_EDGES, Access.PUBLIC, True, "One row per mention: the author and the account mentioned."),
    RunFile(TWEET_IDS, Access.PUBLIC, True, "The id of every collected post, one a line: what may be shared."),
    RunFile(MISSING_IDS, Access.PUBLIC, True, "Each id looked up that X did not give, and X's reason: ids only."),
    RunFile(MENTIONS_GEXF, Access.PUBLIC, True, "Who mentions whom, weighted, for Gephi (GEXF; the heaviest edges)."),
    RunFile(MENTIONS_GRAPHML, Access.PUBLIC, True, "The same mention network as GraphML."),
    RunFile(
        HASHTAGS_GEXF, Access.PUBLIC, True, "Who uses which hashtag, weighted, for Gephi (GEXF; the heaviest edges)."
    ),
    RunFile(HASHTAGS_GRAPHML, Access.PUBLIC, True, "The same hashtag network as GraphML."),
    RunFile(
        NETWORKS_VIEW, Access.PUBLIC, True, "The best-connected accounts and hashtags of both networks, for the page."
    ),
    RunFile(MEDIA_GRAPH, Access.PUBLIC, True, "Groups of downloaded photos that look alike."),
    RunFile(PHOTOS_RECORD, Access.PUBLIC, True, "What the photo step did: how many photos, fetched and failed."),
    RunFile(PHOTO_CHECKSUMS, Access.PUBLIC, True, "The MD5 checksum of every downloaded photo (md5sum -c)."),
    RunFile(PHOTO_FAILURES, Access.PUBLIC, True, "Each photo that could not be downloaded, and why."),
    RunFile(
        SOURCES,
        Access.INTERNAL,
        True,
        "Each imported file: its name, size, SHA-256 and lines; the raw copy's own size and SHA-256; any purge of it.",
    ),
    RunFile(
        TWEETS_CSV, Access.PRIVATE, False, "Every collected post as a table, with its full text." + SPREADSHEET_GUARD
    ),
    RunFile(
        RETWEETED_POSTS,
        Access.PRIVATE,
        False,
        "The most retweeted posts' time, author and full text." + SPREADSHEET_GUARD,
    ),
    RunFile(
        SAMPLE, Access.PRIVATE, False, "A reproducible random sample of the posts, with their text." + SPREADSHEET_GUARD
    ),
    RunFile(RAW_POSTS, Access.PRIVATE, False, "The posts exactly as the API or the archive gave them."),
    RunFile(LIVE_PARTIAL, Access.INTERNAL, False, "A live collection in progress."),
    RunFile(LIVE_STATE, Access.INTERNAL, False, "Where a live collection stands, to resume it."),
    RunFile(SUMMARISED, Access.INTERNAL, False, "What the summary pass found, for the final step."),
    # Private: an uploaded dataset may carry more than ids (other columns: text, user names), and
    # it is the owner's file, not the run's result; what of it may be shared is in TWEET_IDS and
    # MISSING_IDS.
    RunFile(IDS_GIVEN, Access.PRIVATE, False, "The id dataset as it was uploaded."),
    # Internal: the lookup's work list (its position is in LOOKUP_STATE); everything in it is
    # public already as TWEET_IDS plus MISSING_IDS.
    RunFile(IDS_REQUESTED, Access.INTERNAL, False, "The usable ids of the dataset, each once: what is looked up."),
    RunFile(LOOKUP_STATE, Access.INTERNAL, False, "Where a lookup by id stands, to resume it."),
    RunFile(
        PURGE_RECORD, Access.PUBLIC, False, "Each post a purge removed because X no longer gave it: id, reason, when."
    ),
    # Internal: it names the folders (server paths) and the upload it removed.
    RunFile(PURGE_REPORT, Access.INTERNAL, False, "What a purge changed in which run's files, and how many posts."),
)
# A recheck's result (ids, availability, X's reason, when: no post text): public and packaged like
# MISSING_IDS. Its partial file and state are internal, like a live collection's.
RECHECK_FILE = RunFile(
    RECHECK_AVAILABILITY, Access.PUBLIC, True, "Which collected posts X still gave when rechecked, and why not."
)
BY_NAME = {file.name: file for file in FILES}


def recheck_names(started: datetime) -> tuple[str, str, str]:
    """(availability csv, its partial file, its state) of a recheck started at `started` (UTC),
    relative to the run's folder."""
    stamp = started.astimezone(UTC).strftime(RECHECK_STAMP)
    return (
        RECHECK_AVAILABILITY.format(stamp=stamp),
        RECHECK_PARTIAL.format(stamp=stamp),
        RECHECK_STATE.format(stamp=stamp),
    )


def is_recheck(relative: str) -> bool:
    """Whether this path (relative to the run's folder) is a finished recheck's availability file."""
    return bool(RECHECK_NAME.match(relative))


def names_with(access: Access) -> tuple[str, ...]:
    """The listed files with this access, in the order people read them."""
    return tuple(file.name for file in FILES if file.access == access)


def is_photo(relative: str) -> bool:
    folder, _, name = relative.partition("/")
    return folder == MEDIA_FOLDER and bool(PHOTO_NAME.match(name))


PHOTO_FILE = RunFile(f"{MEDIA_FOLDER}/*", Access.PUBLIC, True, "A downloaded photo (see media/photos.json).")
# Written into the package only (never the run's folder): what each packaged file holds.
DATA_DICTIONARY = "data-dictionary.csv"


def run_file(relative: str) -> RunFile | None:
    """The contract's entry for the file at this path (relative to the run's folder): a listed
    file, a recheck's result, or a photo; None for anything else (never served, never packaged)."""
    known = BY_NAME.get(relative)
    if known is not None:
        return known
    if is_recheck(relative):
        return RECHECK_FILE
    if is_photo(relative):
        return PHOTO_FILE
    return None


def is_packaged(relative: str) -> bool:
    """Whether the file at this path (relative to the run's folder) goes into the package."""
    entry = run_file(relative)
    return entry is not None and entry.packaged


def package_name(folder_name: str) -> str:
    """The BagIt package of a run, inside its folder: `<folder>/<folder>.zip`."""
    return f"{folder_name}.zip"


# --- Temporaries -------------------------------------------------------------------------------

TEMP_PREFIX = "."  # a temporary is hidden: `.<final name>.<random>.tmp`
TEMP_SUFFIX = ".tmp"
PACKAGE_WORK_PREFIX = ".package-"  # the working folder the bag is built in
COPY_WORK_PREFIX = ".copy-"  # the working folder an archive is imported in
SPILL_FOLDER = ".spill"  # what the summary pass keeps on disk (ids, counts) while it runs


def temporaries(folder: Path) -> list[Path]:
    """What runs leave behind while they work, in this folder and its media folder."""
    if not folder.is_dir():
        return []
    found = []
    for place in (folder, folder / MEDIA_FOLDER):
        if place.is_dir():
            found += [path for path in place.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}") if not path.is_dir()]
    for prefix in (PACKAGE_WORK_PREFIX, COPY_WORK_PREFIX):
        found += [path for path in folder.glob(f"{prefix}*") if path.is_dir()]
    spill = folder / SPILL_FOLDER
    if spill.is_dir():
        found.append(spill)
    return sorted(found)


def remove_temporaries(folder: Path) -> list[Path]:
    """Remove what a killed, cancelled or failed run left behind; returns what was removed.

    Only call this when no process is writing in the folder: a live run's temporaries are its
    work in progress.
    """
    removed = temporaries(folder)
    for path in removed:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed
