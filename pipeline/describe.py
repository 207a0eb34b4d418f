"""What a run's summary.json and its package's bag-info.txt say about it.

The summary pass writes what it found (contract.SUMMARISED); the final step adds what was asked,
what the photo steps did and the package, and writes summary.json last. `search` and `run` are
the Django rows, read for their attributes only.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dnflow_site
from searches.choices import Source

from .contract import package_name
from .formats import ImportReport
from .hydrate import Availability, HydrateResult

# Facts of the pass that summary.json puts after what was asked, not among the counts.
PLACED_LATER = ("timeline", "import", "summarised_at", "availability")
# Problems (bad lines) listed one by one in summary.json; the rest are counted.
LISTED_PROBLEMS = 100


def archive_name(archive_path: str) -> str:
    """The archive as the person named it. Several files given to `run_search --archive` are linked,
    in order, into one folder of uploads/ named by a random hex string: their own names, then."""
    path = Path(archive_path)
    if path.is_dir():
        links = sorted(path.iterdir())
        if links and all(link.is_symlink() for link in links):
            return " + ".join(link.resolve().name for link in links)
    return path.name


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def import_report_document(report: ImportReport) -> dict:
    return {
        "summary": report.summary(),
        "lines_read": report.lines_read,
        "posts_seen": report.posts_seen,
        "duplicates": report.duplicates,
        "bad_lines": report.bad_lines,
        "not_posts": report.not_posts,
        "authorless": report.authorless,
        "problems": [
            {"file": name, "line": line, "reason": reason} for name, line, reason in report.problems[:LISTED_PROBLEMS]
        ],
    }


def pass_facts(
    facts: dict,
    report: ImportReport,
    *,
    sample_size: int,
    summarised_at: datetime,
    availability: Availability | None = None,
    purged_not_checked: int = 0,
) -> dict:
    """What the summary pass found, for the final step (contract.SUMMARISED); with the newest
    recheck of the collection, what it found, how many posts were left out for it, and how many
    posts purged before it were not looked up again."""
    document = {
        **facts,
        "sample_size": sample_size,
        "summarised_at": summarised_at.isoformat(),
        "import": import_report_document(report),
    }
    if availability is not None:
        document["availability"] = {
            "checked_at": availability.checked_at,
            "checked": availability.checked,
            "available": availability.available,
            "unavailable_by_reason": availability.unavailable_by_reason,
            "left_out": report.unavailable,
            **({"purged_not_checked": purged_not_checked} if purged_not_checked else {}),
        }
    return document


def summary_document(
    search,
    run,
    facts: dict,
    photos: dict,
    groups: list,
    *,
    finished: datetime,
    synthetic: bool,
    lookup: HydrateResult | None = None,
) -> dict:
    """summary.json: what was asked, what the pass found, what the photo steps did, the package;
    for ids looked up, how many were asked for, found and missing (by X's reason)."""
    document = {
        "id": search.pk,
        "run": run.number,
        "term": search.term,
        "source": search.source,
        "status": "finished",
        "started": iso(run.started),
        "finished": finished.isoformat(),
        **{
            key: value
            for key, value in facts.items()
            if key not in ("timeline", "import", "summarised_at", "availability")
        },
        "count_requested": search.count,
        "lang": search.lang,
        "start_time": iso(search.start_time),
        "end_time": iso(search.end_time),
        "archive": archive_name(search.archive_path) if search.archive_path else "",
        "synthetic": synthetic,
        "folder": run.folder,
        "dnflow_version": dnflow_site.__version__,
        "summarised_at": facts.get("summarised_at"),
        "import": facts.get("import", {}),
        **({"availability": facts["availability"]} if "availability" in facts else {}),
        "timeline": facts.get("timeline", []),
        "photos_fetched": photos.get("fetched", 0),
        "photos_failed": photos.get("failed", 0),
        "photo_groups": len(groups),
        "package": package_name(run.folder),
    }
    if lookup is not None:
        document.update(
            ids_requested=lookup.ids_requested,
            ids_found=lookup.ids_found,
            ids_missing_by_reason=lookup.ids_missing_by_reason,
        )
    return document


def bag_info(search, run, summary: dict) -> dict[str, object]:
    """The fields of the package's bag-info.txt beyond what BagIt writes itself."""
    if search.source == Source.IDS:  # a dataset of ids looked up: no query, and no archive of posts either
        described = f"the posts of the id dataset {Path(search.archive_path).name} found on X"
    else:
        described = f"the query {search.term}" if search.term else "a whole archive"
    info = {
        "Source-Organization": "dnflow",
        "External-Description": f"dnflow search #{search.pk}, run {run.number}: post ids and summaries of {described}",
        "External-Identifier": run.folder,
        "Dnflow-Query": search.term,
        "Dnflow-Source": search.get_source_display(),
        "Dnflow-Archive": summary.get("archive", ""),
        "Dnflow-Language": search.lang,
        "Dnflow-Start-Time": iso(search.start_time),
        "Dnflow-End-Time": iso(search.end_time),
        "Dnflow-Run": run.number,
        "Dnflow-Started": summary.get("started"),
        "Dnflow-Finished": summary["finished"],
        "Dnflow-First-Post": summary.get("first_tweet_at"),
        "Dnflow-Last-Post": summary.get("last_tweet_at"),
        "Dnflow-Posts": summary.get("num_tweets"),
        "Dnflow-Users": summary.get("unique_users"),
        "Dnflow-Hashtags": summary.get("unique_hashtags"),
        # Downloaded, not found in the posts: 0 when photos are not fetched (DNFLOW_FETCH_PHOTOS=0).
        "Dnflow-Photos-Downloaded": summary.get("photos_fetched", 0),
        "Dnflow-Version": dnflow_site.__version__,
    }
    if summary.get("synthetic"):
        info["Dnflow-Note"] = "SYNTHETIC DATA: the bundled sample, not real posts."
    return info
