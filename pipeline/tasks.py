"""The Luigi tasks of a run: collect, summarise, fetch photos, match photos, package.

Every task takes three parameters only, `run_id`, `folder` and `claim`: Luigi writes parameters
into task ids and logs, so nothing secret (and nothing large) may be one. The rest (term, source,
dates...) is read from the database when a task runs. Outputs live in DNFLOW_DATA_DIR/<folder>/
under the names pipeline.contract gives them; a task is complete when its outputs exist, every
output appears atomically (see pipeline.outputs), and each task reads what it needs through
`self.input()`, so running a run again runs only what did not finish.

`claim` is the claim time of the process that builds the workflow (the run's `started`), so each
claim has its own task ids. A central scheduler (luigid) believes that a SIGKILLed worker still
runs its task until its worker_disconnect_delay (and a prune) have passed, long after dnflow has
queued the run again; with the same task ids it would leave the new claim nothing to do.

    CollectPosts -> SummarisePosts -> FetchPhotos -> MatchPhotos -> PackageOutputs

PackageOutputs writes summary.json after the package: a folder with a summary.json is finished.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC
from functools import cached_property
from pathlib import Path

import luigi
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils import timezone

from searches.models import SearchRun, Source

from . import events
from .contract import (
    COUNT_MEDIA,
    IDS_GIVEN,
    IDS_REQUESTED,
    LIVE_PARTIAL,
    LIVE_STATE,
    LOOKUP_STATE,
    MEDIA_FOLDER,
    MEDIA_GRAPH,
    MISSING_IDS,
    PHOTO_CHECKSUMS,
    PHOTO_FAILURES,
    PHOTOS_RECORD,
    RAW_POSTS,
    SOURCES,
    SUMMARISED,
    SUMMARY,
)
from .describe import bag_info, pass_facts, summary_document
from .formats import ImportReport, copy_archive, iter_collection
from .formats.linking import LINKED
from .hydrate import hydrate, lookup_outcome
from .ids import IdFileError, read_ids
from .outputs import OutputSet, write_json
from .package import build_package, package_path
from .parallel import default_processes, plan_ranges, summarise_ranges
from .photos import PhotoResult, fetch_photos, match_photos, read_media_counts
from .query import compile_query
from .sample import ensure_sample, local_photo_path
from .summarise import PASS_OUTPUTS, sample_seed, summarise_posts
from .words import counted
from .xapi import collect_live
from .xapi_client import ApiConfig


class RunTask(luigi.Task):
    """A step of one run's workflow. Its events go to the run's TaskEvents (pipeline.events)."""

    run_id = luigi.IntParameter()
    folder = luigi.Parameter()
    claim = luigi.Parameter(default="")  # see the module's docstring

    @property
    def folder_path(self) -> Path:
        return Path(settings.DNFLOW_DATA_DIR) / self.folder

    def target(self, name: str) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.folder_path / name))

    def same_run(self, task_class: type[RunTask]) -> RunTask:
        return task_class(run_id=self.run_id, folder=self.folder, claim=self.claim)

    def load_run(self) -> SearchRun:
        return SearchRun.objects.select_related("search").get(pk=self.run_id)

    @cached_property
    def is_live(self) -> bool:
        # Weights the progress bar; read once per task instance, in the process that runs it.
        return Source(self.load_run().search.source).is_live

    def progress(self) -> events.Progress:
        return events.Progress(self)


events.register(RunTask)


class CollectPosts(RunTask):
    """The raw posts, exactly as the archive or the API gave them: tweets.jsonl."""

    def output(self):
        return self.target(RAW_POSTS)

    def run(self):
        search = self.load_run().search
        folder = self.folder_path
        folder.mkdir(parents=True, exist_ok=True)
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
            self.outcome = f"Collected {counted(result.posts, 'post')} in {counted(result.pages, 'page')}" + (
                " (resumed)" if result.resumed else ""
            )
            return
        if source == Source.IDS:
            self.outcome = _look_up_ids(Path(search.archive_path), folder, progress)
            return
        if source == Source.SAMPLE:
            paths = [ensure_sample()]
            progress.update(0.1, step_text="Copying the bundled synthetic sample")
        else:
            paths = [Path(search.archive_path)]
            progress.update(0.1, step_text=f"Copying the archive {Path(search.archive_path).name}")
        report = copy_archive(
            paths, folder / RAW_POSTS, link=_import_by_link(), max_bytes=settings.DNFLOW_MAX_ARCHIVE_BYTES
        )
        lines = sum(entry.get("lines", 0) for entry in report.sources)
        linked = all(entry.get("imported") == LINKED for entry in report.sources)
        self.outcome = (
            f"{'Linked' if linked else 'Copied'} {counted(len(report.sources), 'file')}, {counted(lines, 'line')}"
        )


def _look_up_ids(dataset: Path, folder: Path, progress: events.Progress) -> str:
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
            raise IdFileError(" ".join(report.problems()), report)
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
    return f"Looked up {result.ids_requested:,} ids: {result.ids_found:,} found, {result.ids_missing:,} missing" + (
        " (resumed)" if result.resumed else ""
    )


def _import_by_link() -> bool:
    """DNFLOW_ARCHIVE_IMPORT: "copy" (the default) or "link" (see pipeline.formats.linking)."""
    mode = (settings.DNFLOW_ARCHIVE_IMPORT or "copy").strip().lower()
    if mode not in ("copy", "link"):
        raise ImproperlyConfigured(
            f"DNFLOW_ARCHIVE_IMPORT={settings.DNFLOW_ARCHIVE_IMPORT!r} is not an import mode: use copy (the "
            "default, a byte-for-byte copy) or link (a hard link to the archive where possible)."
        )
    return mode == "link"


class SummarisePosts(RunTask):
    """The one pass over the collection: every count file, list and table, and the pass's facts."""

    def requires(self):
        return self.same_run(CollectPosts)

    def output(self):
        return {name: self.target(name) for name in PASS_OUTPUTS}

    def run(self):
        run = self.load_run()
        search = run.search
        folder = self.folder_path
        raw = Path(self.input().path)
        live = Source(search.source).is_live
        report = ImportReport()
        # A live search was matched by X already; our own matcher only searches archives.
        term = "" if live else search.term
        lang = "" if live else search.lang
        start = None if live else search.start_time
        end = None if live else search.end_time
        compile_query(term)  # a malformed term fails here, before anything is read
        total_lines = _raw_lines(raw)
        progress = self.progress()

        def on_progress(lines_read: int, num_posts: int) -> None:
            fraction = lines_read / total_lines if total_lines else 0.0
            progress.update(fraction, step_text=f"Counting: {num_posts:,} posts so far", num_posts=num_posts)

        options = {
            "sample_size": settings.DNFLOW_SAMPLE_SIZE,
            "seed": sample_seed(search.pk, settings.DNFLOW_SAMPLE_SIZE),
            "make_facts": lambda facts: pass_facts(
                facts, report, sample_size=settings.DNFLOW_SAMPLE_SIZE, summarised_at=timezone.now()
            ),
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
        run.runs().report_progress(num_posts=facts["num_tweets"])
        if report.bad_lines or report.duplicates or report.not_posts:
            progress.note(f"Import: {report.summary()}")
        how = f", {len(ranges)} processes" if ranges else ""
        self.outcome = f"{counted(facts['num_tweets'], 'post')} summarised ({report.summary()}{how})"


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


def _raw_lines(raw: Path) -> int:
    """How many lines the raw file has, for the progress bar: from sources.json, else counted
    (newlines only, nothing parsed)."""
    try:
        sources = json.loads(raw.with_name(SOURCES).read_text(encoding="utf-8"))
        return sum(int(entry.get("lines", 0)) for entry in sources.get("files", []))
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    count = 0
    try:
        with raw.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                count += chunk.count(b"\n")
    except OSError:
        return 0
    return count


class FetchPhotos(RunTask):
    """The most shared photos, downloaded into media/ (failures recorded, never fatal)."""

    def requires(self):
        return self.same_run(SummarisePosts)

    def output(self):
        return self.target(PHOTOS_RECORD)

    def run(self):
        folder = self.folder_path
        media = folder / MEDIA_FOLDER
        media.mkdir(parents=True, exist_ok=True)
        photos = read_media_counts(Path(self.input()[COUNT_MEDIA].path))
        if not settings.DNFLOW_FETCH_PHOTOS:
            write_json(folder / PHOTOS_RECORD, {"enabled": False, "photos": len(photos), "fetched": 0, "failed": 0})
            self.outcome = "Photo downloads are switched off (DNFLOW_FETCH_PHOTOS)"
            return
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


class MatchPhotos(RunTask):
    """media-graph.json: groups of downloaded photos that look alike."""

    def requires(self):
        return self.same_run(FetchPhotos)

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


class PackageOutputs(RunTask):
    """The BagIt package <folder>.zip (without the raw posts), then summary.json: the last file."""

    def requires(self):
        return {
            "counts": self.same_run(SummarisePosts),
            "photos": self.same_run(FetchPhotos),
            "groups": self.same_run(MatchPhotos),
        }

    def output(self):
        return {"package": luigi.LocalTarget(str(package_path(self.folder_path))), "summary": self.target(SUMMARY)}

    def run(self):
        run = self.load_run()
        search = run.search
        inputs = self.input()
        summary = summary_document(
            search,
            run,
            _read_json(inputs["counts"][SUMMARISED]),
            _read_json(inputs["photos"]),
            _read_json(inputs["groups"]),
            finished=timezone.now(),
            synthetic=search.source == Source.SAMPLE,
            lookup=lookup_outcome(self.folder_path / LOOKUP_STATE),
        )
        self.progress().update(0.2, step_text="Packaging a BagIt archive")
        package = build_package(self.folder_path, bag_info(search, run, summary), summary)
        self.outcome = f"{package.name} written"


def _read_json(target: luigi.LocalTarget):
    with target.open("r") as handle:
        return json.load(handle)


def final_task(run: SearchRun) -> PackageOutputs:
    return PackageOutputs(run_id=run.pk, folder=run.folder, claim=claim_of(run))


def claim_of(run: SearchRun) -> str:
    """The run's claim as a task parameter: its claim time in UTC, or "" for a run never claimed."""
    return run.started.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f") if run.started else ""
