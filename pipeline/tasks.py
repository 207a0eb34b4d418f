"""The Luigi tasks of a search: collect, summarise, fetch photos, match photos, package.

Every task takes two parameters only, `search_id` and `folder`: Luigi writes parameters into task
ids and logs, so nothing secret (and nothing large) may be one. The rest (term, source, dates...)
is read from the database when a task runs. Outputs live in DNFLOW_DATA_DIR/<folder>/; a task is
complete when its outputs exist, and every output appears atomically (see pipeline.outputs), so
running a failed search again runs only what did not finish.

    CollectPosts -> SummarisePosts -> FetchPhotos -> MatchPhotos -> PackageOutputs
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from pathlib import Path

import luigi
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils import timezone

import dnflow_site
from searches.models import Search, Source

from . import events
from .contract import (
    COUNT_MEDIA,
    LIVE_PARTIAL,
    LIVE_STATE,
    MEDIA_FOLDER,
    MEDIA_GRAPH,
    PHOTO_CHECKSUMS,
    PHOTO_FAILURES,
    PHOTOS_RECORD,
    RAW_POSTS,
    SOURCES,
    SUMMARISED,
    SUMMARY,
    package_name,
)
from .formats import ArchiveError, ImportReport, copy_archive, iter_collection
from .formats.linking import LINKED
from .outputs import OutputSet, remove_stale_temps, write_json
from .package import build_package, package_path
from .parallel import default_processes, plan_ranges, summarise_ranges
from .photos import PhotoResult, fetch_photos, match_photos, read_media_counts
from .query import QueryError, compile_query
from .summarise import PASS_OUTPUTS, sample_seed, summarise_posts
from .xapi import XApiError, collect_live

# Problems (bad lines) listed one by one in summary.json; the rest are counted.
LISTED_PROBLEMS = 100
# Errors whose message is already written for the person who asked: shown as they are.
EXPLAINED_ERRORS = (ArchiveError, XApiError, QueryError, events.WorkflowCancelled)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class SearchTask(luigi.Task):
    """A step of one search's workflow. Its events go to the search's TaskEvents (pipeline.events)."""

    search_id = luigi.IntParameter()
    folder = luigi.Parameter()

    @property
    def folder_path(self) -> Path:
        return Path(settings.DNFLOW_DATA_DIR) / self.folder

    def target(self, name: str) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.folder_path / name))

    def load_search(self) -> Search:
        return Search.objects.get(pk=self.search_id)

    @cached_property
    def is_live(self) -> bool:
        # Weights the progress bar; read once per task instance, in the process that runs it.
        return Source(self.load_search().source).is_live

    def progress(self) -> events.Progress:
        return events.Progress(self)


events.register(SearchTask)


class CollectPosts(SearchTask):
    """The raw posts, exactly as the archive or the API gave them: tweets.jsonl."""

    def output(self):
        return self.target(RAW_POSTS)

    def run(self):
        search = self.load_search()
        folder = self.folder_path
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)
        progress = self.progress()
        source = Source(search.source)
        if source.is_live:
            result = collect_live(
                query=search.term,
                source=search.source,
                count=search.count,
                lang=search.lang,
                start_time=search.start_time,
                end_time=search.end_time,
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
            self.outcome = f"Collected {result.posts:,} posts in {result.pages:,} pages" + (
                " (resumed)" if result.resumed else ""
            )
            return
        if source == Source.SAMPLE:
            from .sample import ensure_sample

            paths = [ensure_sample()]
            progress.update(0.1, step_text="Copying the bundled synthetic sample")
        else:
            paths = [Path(search.archive_path)]
            progress.update(0.1, step_text=f"Copying the archive {Path(search.archive_path).name}")
        report = copy_archive(paths, folder / RAW_POSTS, link=_import_by_link())
        lines = sum(entry.get("lines", 0) for entry in report.sources)
        linked = all(entry.get("imported") == LINKED for entry in report.sources)
        self.outcome = f"{'Linked' if linked else 'Copied'} {len(report.sources):,} file(s), {lines:,} lines"


def _import_by_link() -> bool:
    """DNFLOW_ARCHIVE_IMPORT: "copy" (the default) or "link" (see pipeline.formats.linking)."""
    mode = (settings.DNFLOW_ARCHIVE_IMPORT or "copy").strip().lower()
    if mode not in ("copy", "link"):
        raise ImproperlyConfigured(
            f"DNFLOW_ARCHIVE_IMPORT={settings.DNFLOW_ARCHIVE_IMPORT!r} is not an import mode: use copy (the "
            "default, a byte-for-byte copy) or link (a hard link to the archive where possible)."
        )
    return mode == "link"


class SummarisePosts(SearchTask):
    """The one pass over the collection: every count file, list and table, and the pass's facts."""

    def requires(self):
        return CollectPosts(search_id=self.search_id, folder=self.folder)

    def output(self):
        return {name: self.target(name) for name in PASS_OUTPUTS}

    def run(self):
        search = self.load_search()
        folder = self.folder_path
        remove_stale_temps(folder)
        raw = Path(self.input().path)
        live = Source(search.source).is_live
        report = ImportReport()
        # A live search was matched by X already; our own matcher only searches archives.
        term = "" if live else search.term
        lang = "" if live else search.lang
        start = None if live else search.start_time
        end = None if live else search.end_time
        compile_query(term)  # a malformed term fails here, before anything is read
        total_lines = _raw_lines(folder)
        progress = self.progress()

        def on_progress(lines_read: int, num_posts: int) -> None:
            fraction = lines_read / total_lines if total_lines else 0.0
            progress.update(fraction, step_text=f"Counting: {num_posts:,} posts so far", num_posts=num_posts)

        options = {
            "sample_size": settings.DNFLOW_SAMPLE_SIZE,
            "seed": sample_seed(search.pk, settings.DNFLOW_SAMPLE_SIZE),
            "make_facts": lambda facts: pass_facts(facts, report),
        }
        ranges = _parallel_ranges(raw, search.count)
        if ranges:
            # The workers are forked: none may share this process's database connections.
            _close_database_connections()
            facts = summarise_ranges(
                raw,
                folder,
                ranges,
                term=term,
                lang=lang,
                start=start,
                end=end,
                limit=search.count,
                report=report,
                on_progress=on_progress,
                **options,
            )
        else:
            posts = iter_collection(raw, term=term, lang=lang, start=start, end=end, limit=search.count, report=report)
            facts = summarise_posts(
                posts, folder, on_progress=lambda num_posts: on_progress(report.lines_read, num_posts), **options
            )
        Search.objects.filter(pk=search.pk).update(num_posts=facts["num_tweets"])
        if report.bad_lines or report.duplicates or report.not_posts:
            progress.note(f"Import: {report.summary()}")
        how = f", {len(ranges)} processes" if ranges else ""
        self.outcome = f"{facts['num_tweets']:,} posts summarised ({report.summary()}{how})"


def _parallel_ranges(raw: Path, limit: int | None) -> list[tuple[int, int]] | None:
    """The byte ranges to summarise in parallel, or None for one pass (see pipeline.parallel)."""
    if limit is not None and limit <= 0:
        return None
    processes = settings.DNFLOW_SUMMARISE_PROCESSES or default_processes()
    return plan_ranges(raw, processes=processes, min_bytes=settings.DNFLOW_SUMMARISE_PARALLEL_BYTES)


def _close_database_connections() -> None:
    # Inside a transaction (a test's) a connection cannot be closed; the workers never use it.
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _raw_lines(folder: Path) -> int:
    """How many lines the raw file has, for the progress bar: from sources.json, else counted
    (newlines only, nothing parsed)."""
    try:
        sources = json.loads((folder / SOURCES).read_text(encoding="utf-8"))
        return sum(int(entry.get("lines", 0)) for entry in sources.get("files", []))
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    count = 0
    try:
        with (folder / RAW_POSTS).open("rb") as raw:
            for chunk in iter(lambda: raw.read(1024 * 1024), b""):
                count += chunk.count(b"\n")
    except OSError:
        return 0
    return count


def import_report_document(report: ImportReport) -> dict:
    return {
        "summary": report.summary(),
        "lines_read": report.lines_read,
        "posts_seen": report.posts_seen,
        "duplicates": report.duplicates,
        "bad_lines": report.bad_lines,
        "not_posts": report.not_posts,
        "problems": [
            {"file": name, "line": line, "reason": reason} for name, line, reason in report.problems[:LISTED_PROBLEMS]
        ],
    }


def pass_facts(facts: dict, report: ImportReport) -> dict:
    """What the summary pass found, for the final step's summary.json (contract.SUMMARISED)."""
    return {
        **facts,
        "sample_size": settings.DNFLOW_SAMPLE_SIZE,
        "summarised_at": timezone.now().isoformat(),
        "import": import_report_document(report),
    }


def summary_document(search: Search, facts: dict, photos: dict, groups: list, finished: datetime) -> dict:
    """summary.json: what was asked, what the pass found, what the photo steps did, the package."""
    return {
        "id": search.pk,
        "term": search.term,
        "source": search.source,
        "status": "finished",
        "started": _iso(search.started),
        "finished": finished.isoformat(),
        **{key: value for key, value in facts.items() if key not in ("timeline", "import", "summarised_at")},
        "count_requested": search.count,
        "lang": search.lang,
        "start_time": _iso(search.start_time),
        "end_time": _iso(search.end_time),
        "archive": Path(search.archive_path).name if search.archive_path else "",
        "synthetic": search.source == Source.SAMPLE,
        "folder": search.folder,
        "dnflow_version": dnflow_site.__version__,
        "summarised_at": facts.get("summarised_at"),
        "import": facts.get("import", {}),
        "timeline": facts.get("timeline", []),
        "photos_fetched": photos.get("fetched", 0),
        "photos_failed": photos.get("failed", 0),
        "photo_groups": len(groups),
        "package": package_name(search.folder),
    }


class FetchPhotos(SearchTask):
    """The most shared photos, downloaded into media/ (failures recorded, never fatal)."""

    def requires(self):
        return SummarisePosts(search_id=self.search_id, folder=self.folder)

    def output(self):
        return self.target(PHOTOS_RECORD)

    def run(self):
        folder = self.folder_path
        media = folder / MEDIA_FOLDER
        media.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(media)
        photos = read_media_counts(Path(self.input()[COUNT_MEDIA].path))
        if not settings.DNFLOW_FETCH_PHOTOS:
            write_json(folder / PHOTOS_RECORD, {"enabled": False, "photos": len(photos), "fetched": 0, "failed": 0})
            self.outcome = "Photo downloads are switched off (DNFLOW_FETCH_PHOTOS)"
            return
        from .sample import local_photo_path

        progress = self.progress()
        results = fetch_photos(
            photos,
            media,
            max_photos=settings.DNFLOW_MAX_PHOTOS,
            max_bytes=settings.DNFLOW_PHOTO_MAX_BYTES,
            local_path=local_photo_path,
            private_addresses=settings.DNFLOW_PHOTO_PRIVATE_ADDRESSES,
            on_progress=lambda done, total: progress.update(
                done / total, step_text=f"Fetching photos ({done:,} of {total:,})"
            ),
        )
        fetched = [r for r in results if r.ok]
        failed = [r for r in results if not r.ok]
        _write_photo_records(folder, photos, fetched, failed)
        self.outcome = f"{len(fetched):,} photos fetched, {len(failed):,} failed" + (
            f", {len(photos) - len(results):,} beyond the limit of {settings.DNFLOW_MAX_PHOTOS:,}"
            if len(photos) > len(results)
            else ""
        )


def _write_photo_records(
    folder: Path, photos: list[tuple[str, str]], fetched: list[PhotoResult], failed: list[PhotoResult]
) -> None:
    with OutputSet() as out:
        checksums = out.text(folder / PHOTO_CHECKSUMS)
        for result in sorted(fetched, key=lambda r: r.file):
            checksums.write(f"{result.md5}  {result.file}\n")
        failures = out.csv(folder / PHOTO_FAILURES, ("url", "file", "reason"), ("url", "file", "reason"))
        failures.writerows((r.url, r.file, r.reason) for r in failed)
        out.json(
            folder / PHOTOS_RECORD,
            {
                "enabled": True,
                "photos": len(photos),
                "fetched": len(fetched),
                "failed": len(failed),
                "beyond_limit": len(photos) - len(fetched) - len(failed),
                "max_photos": settings.DNFLOW_MAX_PHOTOS,
                "max_bytes": settings.DNFLOW_PHOTO_MAX_BYTES,
                # Where a file name differs from the URL's last segment (see pipeline.photos).
                "files": {r.url: r.file for r in fetched},
            },
        )


class MatchPhotos(SearchTask):
    """media-graph.json: groups of downloaded photos that look alike."""

    def requires(self):
        return FetchPhotos(search_id=self.search_id, folder=self.folder)

    def output(self):
        return self.target(MEDIA_GRAPH)

    def run(self):
        media = self.folder_path / MEDIA_FOLDER
        with self.input().open("r") as handle:
            marker = json.load(handle)
        names = sorted(set(marker.get("files", {}).values()))
        progress = self.progress()
        progress.update(0.0, step_text=f"Matching {len(names):,} photos", force=True)
        groups, hashes = match_photos(media, names)
        write_json(self.folder_path / MEDIA_GRAPH, groups)
        self.outcome = f"{len(groups):,} groups of similar photos among {len(hashes):,}"


class PackageOutputs(SearchTask):
    """The BagIt package <folder>.zip (without the raw posts), then summary.json: the last file."""

    def requires(self):
        params = {"search_id": self.search_id, "folder": self.folder}
        return {"counts": SummarisePosts(**params), "photos": FetchPhotos(**params), "groups": MatchPhotos(**params)}

    def output(self):
        return {"package": luigi.LocalTarget(str(package_path(self.folder_path))), "summary": self.target(SUMMARY)}

    def run(self):
        search = self.load_search()
        folder = self.folder_path
        inputs = self.input()
        facts = _read_json(inputs["counts"][SUMMARISED])
        photos = _read_json(inputs["photos"])
        groups = _read_json(inputs["groups"])
        summary = summary_document(search, facts, photos, groups, finished=timezone.now())
        progress = self.progress()
        progress.update(0.2, step_text="Packaging a BagIt archive")
        bag_info = {
            "Source-Organization": "dnflow",
            "External-Description": f"dnflow search #{search.pk}: post ids and summaries of "
            + (f"the query {search.term}" if search.term else "a whole archive"),
            "External-Identifier": folder.name,
            "Dnflow-Query": search.term,
            "Dnflow-Source": search.get_source_display(),
            "Dnflow-Archive": summary.get("archive", ""),
            "Dnflow-Language": search.lang,
            "Dnflow-Start-Time": _iso(search.start_time),
            "Dnflow-End-Time": _iso(search.end_time),
            "Dnflow-Started": summary.get("started"),
            "Dnflow-Finished": summary["finished"],
            "Dnflow-First-Post": summary.get("first_tweet_at"),
            "Dnflow-Last-Post": summary.get("last_tweet_at"),
            "Dnflow-Posts": summary.get("num_tweets"),
            "Dnflow-Users": summary.get("unique_users"),
            "Dnflow-Hashtags": summary.get("unique_hashtags"),
            "Dnflow-Photos": photos.get("fetched", 0),
            "Dnflow-Version": dnflow_site.__version__,
        }
        if search.source == Source.SAMPLE:
            bag_info["Dnflow-Note"] = "SYNTHETIC DATA: the bundled sample, not real posts."
        build_package(folder, bag_info, summary)
        self.outcome = f"{package_path(folder).name} written"


def _read_json(target: luigi.LocalTarget):
    with target.open("r") as handle:
        return json.load(handle)


def final_task(search: Search) -> PackageOutputs:
    return PackageOutputs(search_id=search.pk, folder=search.folder)
