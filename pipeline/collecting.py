"""What the first step of a run does, by where its posts come from.

- A live search (and a refresh of one, with `since_id`) collects from the X API
  (pipeline.xapi.collect_live): every page stored as received, resumable.
- Tweet ids are looked up ("hydrated", pipeline.hydrate) once the dataset is read and checked.
- An archive or the bundled sample is copied (pipeline.formats.copy_archive).
- A recheck looks the collection's ids up again (pipeline.hydrate.recheck) and collects nothing.

Each writes the run's raw posts (contract.RAW_POSTS) last, under its final name only once complete,
except the recheck, whose result is its availability file. `progress` is the task's
pipeline.events.Progress.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .contract import (
    IDS_GIVEN,
    IDS_REQUESTED,
    LIVE_PARTIAL,
    LIVE_STATE,
    LOOKUP_STATE,
    MEDIA_FOLDER,
    MISSING_IDS,
    RAW_POSTS,
    TWEET_IDS,
    is_photo,
)
from .formats import copy_archive
from .formats.linking import LINKED
from .hydrate import RecheckPaths, hydrate, ids_among, read_availability, recheck
from .ids import IdFileError, read_ids
from .outputs import OutputSet
from .sample import ensure_sample
from .words import counted
from .xapi import collect_live
from .xapi_client import ApiConfig


def collect_from_x(search, folder: Path, progress, *, since_id: str = "") -> str:
    """A live search's posts (only those newer than since_id, for a refresh); returns the outcome."""
    result = collect_live(
        query=search.term,
        source=search.source,
        count=search.count,
        lang=search.lang,
        start_time=search.start_time,
        end_time=search.end_time,
        since_id=since_id or None,
        raw_path=folder / LIVE_PARTIAL,
        state_path=folder / LIVE_STATE,
        on_progress=lambda done, total: progress.update(
            done / total if total else 0.0,
            step_text=f"Collecting posts from X ({done:,} of {total:,})",
            num_posts=done,
        ),
        on_wait=progress.wait,
    )
    # The file appears under its final name only once the collection is done.
    (folder / LIVE_PARTIAL).replace(folder / RAW_POSTS)
    newer = " newer than the last collection" if since_id else ""
    if since_id and result.more_left:
        # X gives the newest first: what the count cut off lies between the last collection and these,
        # and the next refresh starts after the newest post, so it would never come unless said.
        progress.note(
            f"X had more new posts than this search's count of {search.count:,}: the {search.count:,} newest were "
            "collected, and the older new ones, posted between the last collection and these, were not. Later "
            "collections of new posts start after the newest post, so they will not fetch them either: to have "
            "them, start a new search for that period (From and Until), or raise the count next time."
        )
        newer += ", stopped at the count with more left on X (not collected: see the note)"
    return f"Collected {counted(result.posts, 'post')}{newer} in {counted(result.pages, 'page')}" + (
        " (resumed)" if result.resumed else ""
    )


def look_up_ids(dataset: Path, folder: Path, progress) -> str:
    """Hydrate an id dataset: its usable ids, each once, looked up 100 at a time (pipeline.hydrate)."""
    given, requested = folder / IDS_GIVEN, folder / IDS_REQUESTED
    if not requested.exists():
        # The dataset as given is kept beside what is made of it (private: it may carry more columns).
        with dataset.open("rb") as original, OutputSet() as out:
            shutil.copyfileobj(original, out.open(given, "wb"))
        report = read_ids(given, requested, name=dataset.name)
        if report.should_refuse:
            # Nothing was looked up; a run again must read (and refuse) the dataset again.
            requested.unlink(missing_ok=True)
            raise IdFileError("\n".join(report.refusal()), report)
        if report.duplicates or report.damaged_total or report.blank:
            progress.note(f"Ids: {report.summary()}")
    result = hydrate(
        ids_path=requested,
        raw_path=folder / LIVE_PARTIAL,
        state_path=folder / LOOKUP_STATE,
        missing_path=folder / MISSING_IDS,
        api=ApiConfig.from_django_settings(),
        on_progress=lambda done, total: progress.update(
            done / total if total else 0.0, step_text=f"Looking up ids on X ({done:,} of {total:,})"
        ),
        on_wait=progress.wait,
    )
    (folder / LIVE_PARTIAL).replace(folder / RAW_POSTS)
    return (
        f"Looked up {counted(result.ids_requested, 'id')}: {result.ids_found:,} found, {result.ids_missing:,} missing"
        + (" (resumed)" if result.resumed else "")
    )


def copy_posts(archive_path: str, folder: Path, progress) -> str:
    """An archive (or, with no path, the bundled sample) copied as the run's raw posts."""
    if archive_path:
        paths = [Path(archive_path)]
        doing = f"Copying the archive {Path(archive_path).name}"
    else:
        paths = [ensure_sample()]
        doing = "Copying the bundled synthetic sample"
    progress.update(0.0, step_text=doing)

    def on_read(done: int, total: int) -> None:
        # A big archive takes a while to copy (tens of GiB from a slow disk): the bar moves meanwhile.
        read = f"{readable_size(done)} of {readable_size(total)}"
        progress.update(done / total if total else 1.0, step_text=f"{doing} ({read})")

    report = copy_archive(
        paths,
        folder / RAW_POSTS,
        link=import_by_link(),
        max_bytes=settings.DNFLOW_MAX_ARCHIVE_BYTES,
        on_read=on_read,
    )
    lines = sum(entry.get("lines", 0) for entry in report.sources)
    linked = all(entry.get("imported") == LINKED for entry in report.sources)
    return f"{'Linked' if linked else 'Copied'} {counted(len(report.sources), 'file')}, {counted(lines, 'line')}"


def readable_size(size: int) -> str:
    """A size as a person follows it while it grows: "0.4 MiB", "312.5 MiB", "3.42 GiB", "12.4 GiB"."""
    if size < 2**30:
        return f"{size / 2**20:,.1f} MiB"
    gib = size / 2**30
    return f"{gib:,.2f} GiB" if gib < 10 else f"{gib:,.1f} GiB"


def import_by_link() -> bool:
    """DNFLOW_ARCHIVE_IMPORT: "copy" (the default) or "link" (see pipeline.formats.linking)."""
    mode = (settings.DNFLOW_ARCHIVE_IMPORT or "copy").strip().lower()
    if mode not in ("copy", "link"):
        raise ImproperlyConfigured(
            f"DNFLOW_ARCHIVE_IMPORT={settings.DNFLOW_ARCHIVE_IMPORT!r} is not an import mode: use copy (the "
            "default, a byte-for-byte copy) or link (a hard link to the archive where possible)."
        )
    return mode == "link"


def recheck_collection(
    earlier: Path,
    gone_before: Path | None,
    folder: Path,
    paths: RecheckPaths,
    progress,
    *,
    purged: frozenset[str] = frozenset(),
) -> str:
    """Look up again every id of the collection in `earlier` (and those an earlier recheck found
    gone, which may be back): the newest recheck speaks for every post ever collected. Of those
    found gone, not the ones a purge removed (`purged`): no copy holds them any more, so they cannot
    come back into the collection, and looking them up would be paid for nothing (and would call
    them available in a recheck of a collection without them). A purged post that a later
    collection from X holds again is in `earlier`'s ids, and is looked up as any other."""
    requested = folder / IDS_REQUESTED
    if not requested.exists():
        with OutputSet() as out:
            ids = out.open(requested, "wb")
            with (earlier / TWEET_IDS).open("rb") as collected:
                shutil.copyfileobj(collected, ids)
            if gone_before is not None:
                again = sorted(read_availability(gone_before).gone)
                ids.writelines(f"{post_id}\n".encode() for post_id in again if post_id not in purged)
    # Every purged post not asked for, however long ago it was purged (not only those the last
    # recheck found gone: an earlier purge's were not in it).
    left_out = len(purged) - ids_among(requested, purged)
    result = recheck(
        ids_path=requested,
        paths=paths,
        api=ApiConfig.from_django_settings(),
        on_progress=lambda done, total: progress.update(
            done / total if total else 0.0, step_text=f"Rechecking posts on X ({done:,} of {total:,})"
        ),
        on_wait=progress.wait,
    )
    gone = sum(result.unavailable_by_reason.values())
    not_asked = f"; {counted(left_out, 'purged post')} not looked up again" if left_out else ""
    return (
        f"Rechecked {counted(result.ids_checked, 'post')}: {result.available:,} still there, {gone:,} gone{not_asked}"
        + (" (resumed)" if result.resumed else "")
    )


def link_earlier_photos(earlier: Path, folder: Path) -> int:
    """Give a run that builds on an earlier one the photos that one downloaded (hard links, or
    copies across filesystems), so its photo step fetches only what is new. Returns how many."""
    source, media = earlier / MEDIA_FOLDER, folder / MEDIA_FOLDER
    if not source.is_dir():
        return 0
    media.mkdir(parents=True, exist_ok=True)
    linked = 0
    for photo in source.iterdir():
        target = media / photo.name
        if not is_photo(f"{MEDIA_FOLDER}/{photo.name}") or target.exists() or not photo.is_file():
            continue
        try:
            os.link(photo, target)
        except OSError:
            shutil.copy2(photo, target)
        linked += 1
    return linked
