"""Reading a finished run's files (../shared/spec/outputs.md) for the web pages and the API.

Nothing here writes: the folder belongs to the workflow. Which file may go to whom is the folder
contract's decision (pipeline.contract); this module only applies it. Every reader tolerates a missing or
damaged file (an old collection, a failed photo step) by returning nothing, so a page shows
what exists instead of crashing. Large files are streamed, never loaded whole.
"""

from __future__ import annotations

import csv
import heapq
import json
import logging
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

from django.conf import settings

from pipeline import contract, timeline
from pipeline.outputs import unneutralise
from pipeline.photos import failures_of, photo_files
from pipeline.times import parse_iso

log = logging.getLogger("dnflow.run_files")

# Anyone who may see the search may download these: counts, ids, the summary, the photos' records.
PUBLIC_FILES = contract.names_with(contract.Access.PUBLIC)
# These carry the posts' text: the platform's terms allow sharing ids, not posts, so only the
# search's owner and staff get them.
PRIVATE_FILES = contract.names_with(contract.Access.PRIVATE)


@dataclass(frozen=True)
class CountKind:
    file: str
    key_column: str
    value_column: str
    label: str
    sorted_by_value: bool = True  # count files are sorted by the spec; the user tables may not be

    @property
    def in_a_sentence(self) -> str:
        """The label inside a sentence: lower-cased, but for an initialism ("Top URLs", not "urls")."""
        return self.label if self.label[:2].isupper() else self.label.lower()


COUNT_KINDS: dict[str, CountKind] = {
    "hashtags": CountKind(contract.COUNT_HASHTAGS, "hashtag", "count", "Hashtags"),
    "mentions": CountKind(contract.COUNT_MENTIONS, "screen_name", "count", "Mentions"),
    "urls": CountKind(contract.COUNT_URLS, "url", "count", "URLs"),
    "domains": CountKind(contract.COUNT_DOMAINS, "domain", "count", "Domains"),
    "media": CountKind(contract.COUNT_MEDIA, "url", "count", "Photos"),
    "followers": CountKind(contract.COUNT_FOLLOWERS, "user", "followers", "Followers", sorted_by_value=False),
    "ratio": CountKind(contract.FOLLOW_RATIO, "user", "ratio", "Follow ratio", sorted_by_value=False),
}


@dataclass(frozen=True)
class Count:
    key: str
    value: float
    row: dict = field(default_factory=dict, compare=False)

    @property
    def is_whole(self) -> bool:
        return float(self.value).is_integer()


def _number(text: str | None) -> float | None:
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if value == value else None  # NaN is not a count


def _csv_rows(path: Path) -> Iterator[dict]:
    """Rows of a CSV output, or nothing if it is missing or unreadable."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            yield from csv.DictReader(handle)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        log.warning("cannot read %s: %s", path, exc)


def _counts(folder: Path, kind: CountKind) -> Iterator[Count]:
    for row in _csv_rows(folder / kind.file):
        key, value = row.get(kind.key_column), _number(row.get(kind.value_column))
        if key is not None and value is not None:
            # The key as posted (a hashtag "-x"), not as guarded for spreadsheets ("'-x").
            yield Count(unneutralise(key), value, row)


def read_counts(folder: Path | None, kind: str, limit: int) -> list[Count]:
    """The top `limit` rows of a count file, highest first, ties by key."""
    if folder is None or kind not in COUNT_KINDS:
        return []
    spec = COUNT_KINDS[kind]
    rows = _counts(folder, spec)
    if spec.sorted_by_value:
        return list(islice(rows, limit))
    return heapq.nsmallest(limit, rows, key=lambda c: (-c.value, c.key))


def all_counts(folder: Path | None, kind: str) -> dict[str, float]:
    """Every key of a count file with its value, for comparing searches."""
    if folder is None or kind not in COUNT_KINDS:
        return {}
    return {c.key: c.value for c in _counts(folder, COUNT_KINDS[kind])}


def read_summary(folder: Path | None) -> dict:
    if folder is None:
        return {}
    try:
        data = json.loads((folder / contract.SUMMARY).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}  # a run that has not finished, or one that writes none (a purge)
    except (OSError, ValueError) as exc:
        log.warning("%s is not readable: %s", folder / contract.SUMMARY, exc)
        return {}
    return data if isinstance(data, dict) else {}


def read_purge_report(folder: Path) -> dict:
    """What a purge run did (contract.PURGE_REPORT): how many posts, and what became of the upload."""
    try:
        report = json.loads((folder / contract.PURGE_REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.info("no readable purge report in %s: %s", folder, exc)
        report = {}
    if not isinstance(report, dict):
        report = {}
    if not isinstance(report.get("upload"), dict):
        report["upload"] = {}
    return report


# --- Posts over time -----------------------------------------------------------------------


def posts_over_time(folder: Path | None, summary: dict) -> timeline.Series | None:
    """The run's posts-over-time.csv; for a run made before that file existed, the hours its
    summary.json lists, bucketed the same way."""
    if folder is None:
        return None
    found = timeline.read_series(folder / contract.POSTS_OVER_TIME)
    if found is not None and found.points:
        return found
    hours = _hourly_from_summary(summary)
    return timeline.series(hours, finest=timeline.HOUR) if hours else None


def _hourly_from_summary(summary: dict) -> Counter | None:
    """A `timeline` in summary.json, if the workflow wrote one: a list of {time, count} or [time, count]."""
    raw = summary.get("timeline")
    if isinstance(raw, dict):
        raw = list(raw.items())
    if not isinstance(raw, list) or not raw:
        return None
    hours: Counter = Counter()
    for item in raw:
        if isinstance(item, dict):
            when = next((item[k] for k in ("time", "start", "bucket", "date", "period") if k in item), None)
            count = item.get("count")
        elif isinstance(item, list | tuple) and len(item) == 2:
            when, count = item
        else:
            return None
        moment = parse_iso(when) if isinstance(when, str) else None
        if moment is None or not isinstance(count, int):
            return None
        hours[moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)] += count
    return hours


# --- Posts, photos and files -----------------------------------------------------------------


@dataclass
class TopRetweet:
    tweet_id: str
    count: int
    user: str = ""  # the original's author, when the archive held the original (or a copy of it)
    created_at: datetime | None = None
    text: str = ""  # only for the owner and staff: the posts' text is not for everyone

    @property
    def known(self) -> bool:
        return bool(self.user or self.created_at)


def top_retweets(folder: Path | None, limit: int, *, with_text: bool) -> list[TopRetweet]:
    """The most retweeted originals, with their author, time and (with_text) text from
    retweeted-posts.csv, which the summary pass fills from the original or a copy a retweet holds.
    The cells are read through unneutralise: the page shows what was posted, not the spreadsheet
    guard."""
    if folder is None:
        return []
    top = [TopRetweet(c.key, int(c.value)) for c in islice(_retweet_counts(folder), limit)]
    wanted = {t.tweet_id: t for t in top}
    for row in islice(_csv_rows(folder / contract.RETWEETED_POSTS), limit):
        found = wanted.get(row.get("tweet_id") or "")
        if found is not None:
            found.user = unneutralise(row.get("user") or "")
            found.created_at = parse_iso(row.get("created_at"))
            found.text = unneutralise(row.get("text") or "") if with_text else ""
    return top


def _retweet_counts(folder: Path) -> Iterator[Count]:
    for row in _csv_rows(folder / contract.RETWEETS):
        value = _number(row.get("count"))
        if row.get("tweet_id") and value is not None:
            yield Count(row["tweet_id"], value)


@dataclass
class Photo:
    file: str  # in media/, as served (not count-media.csv's column: see pipeline.photos.photo_files)
    url: str
    count: int
    downloaded: bool


def common_photos(folder: Path | None, limit: int) -> list[Photo]:
    if folder is None:
        return []
    files = photo_files(folder)
    photos = []
    for c in read_counts(folder, "media", limit):
        name = files.get(c.key, "")
        ok = bool(name) and (folder / contract.MEDIA_FOLDER / name).is_file()
        photos.append(
            Photo(file=name or unneutralise(c.row.get("file") or ""), url=c.key, count=int(c.value), downloaded=ok)
        )
    return photos


def photo_failures(folder: Path | None) -> list[tuple[str, int]]:
    """Why photos were not downloaded, in words, most common first."""
    return failures_of(folder) if folder is not None else []


def photo_groups(folder: Path | None, max_groups: int, max_per_group: int) -> list[list[str]]:
    """Groups of photos that look alike (media-graph.json), largest first; only downloaded files."""
    if folder is None:
        return []
    try:
        groups = json.loads((folder / contract.MEDIA_GRAPH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(groups, list):
        return []
    media = folder / contract.MEDIA_FOLDER
    usable = []
    for group in groups:
        if not isinstance(group, list):
            continue
        names = [n for n in group if isinstance(n, str) and contract.PHOTO_NAME.match(n) and (media / n).is_file()]
        if len(names) > 1:
            usable.append(names)
    usable.sort(key=len, reverse=True)
    return [names[:max_per_group] for names in usable[:max_groups]]


@dataclass
class OutputFile:
    name: str
    size: int
    public: bool
    holds: str = ""  # what the file holds, in the contract's words


def package_path(folder: Path | None) -> Path | None:
    """The run's BagIt package, if it has been written."""
    if folder is None:
        return None
    package = folder / contract.package_name(folder.name)
    return package if package.is_file() else None


def package_is_public(package: Path) -> bool:
    """A package may go to anyone only if it holds none of the files with the posts' text.

    The contract never packages them; this reads the zip's directory (no extraction) to be sure,
    and anything unreadable counts as private.
    """
    try:
        with zipfile.ZipFile(package) as archive:
            names = {Path(name).name for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return not names & {Path(name).name for name in PRIVATE_FILES}


PACKAGE_HOLDS = "Everything above that anyone may have, as a BagIt bag with checksums and a data dictionary."


def output_files(folder: Path | None, *, include_private: bool) -> list[OutputFile]:
    """The downloadable files that exist, in the contract's order (rechecks after them), the
    package last; each with what it holds."""
    if folder is None:
        return []
    names = list(PUBLIC_FILES + (PRIVATE_FILES if include_private else ()))
    rechecks = folder / contract.RECHECKS_FOLDER
    if rechecks.is_dir():
        names += sorted(
            relative
            for relative in (f"{contract.RECHECKS_FOLDER}/{path.name}" for path in rechecks.iterdir())
            if contract.is_recheck(relative)
        )
    files = []
    for name in names:
        path = folder / name
        if path.is_file():
            entry = contract.run_file(name)
            public = entry is not None and entry.access == contract.Access.PUBLIC
            files.append(OutputFile(name, path.stat().st_size, public, entry.description if entry else ""))
    package = package_path(folder)
    if package is not None:
        public = package_is_public(package)
        if public or include_private:
            files.append(OutputFile(package.name, package.stat().st_size, public, PACKAGE_HOLDS))
    return files


def _may_serve(folder: Path, relative: str, *, include_private: bool) -> bool:
    if relative == contract.package_name(folder.name):
        return include_private or package_is_public(folder / relative)
    entry = contract.run_file(relative)
    if entry is None or entry.access == contract.Access.INTERNAL:
        return False
    return entry.access == contract.Access.PUBLIC or include_private


def resolve_file(folder: Path | None, name: str, *, include_private: bool) -> Path | None:
    """The path of a run's file by its name, or None: only names the contract serves, no traversal.

    Whether a file may go to this person is decided on the file the name leads to once symlinks
    are resolved, not on the name: a link named like a photo that points at the posts' table is
    the posts' table.
    """
    if folder is None or not _may_serve(folder, name, include_private=include_private):
        return None
    path = folder / name
    if not path.is_file():
        return None
    real, own = path.resolve(), folder.resolve()
    if not real.is_relative_to(own) or not real.is_relative_to(Path(settings.DNFLOW_DATA_DIR).resolve()):
        return None
    if not _may_serve(folder, real.relative_to(own).as_posix(), include_private=include_private):
        return None
    return path
