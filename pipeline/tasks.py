"""The Luigi tasks of a run: collect, summarise, networks, fetch photos, match photos, package.

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

    CollectPosts  -> SummarisePosts -> BuildNetworks, FetchPhotos -> MatchPhotos -> PackageOutputs
    (or CheckAvailability, for a recheck)

A run that builds on earlier ones (a refresh adds the posts newer than the last collection; a
recheck looks the collection up again) summarises the raw posts of every run it builds on with its
own, each post once, less the posts the newest recheck found gone: the earlier runs' files are its
inputs too (EarlierOutput, never made again here).

PackageOutputs writes summary.json after the package: a folder with a summary.json is finished.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from functools import cached_property
from pathlib import Path

import luigi
from django.conf import settings
from django.db import connections
from django.utils import timezone

from searches.models import RunKind, SearchRun, Source, Status

from . import events
from .collecting import collect_from_x, copy_posts, link_earlier_photos, look_up_ids, recheck_collection
from .contract import (
    COUNT_MEDIA,
    LOOKUP_STATE,
    MEDIA_FOLDER,
    MEDIA_GRAPH,
    NETWORK_FILES,
    PHOTO_CHECKSUMS,
    PHOTO_FAILURES,
    PHOTOS_RECORD,
    PURGE_RECORD,
    RAW_POSTS,
    SOURCES,
    SUMMARISED,
    SUMMARY,
    TWEET_IDS,
)
from .describe import bag_info, pass_facts, summary_document
from .formats import ImportReport, iter_collection
from .hydrate import RecheckPaths, lookup_outcome, read_availability, recheck_paths
from .networks import write_networks
from .outputs import OutputSet, write_json
from .package import build_package, package_path
from .parallel import default_processes, plan_parts, summarise_parts
from .photos import PhotoResult, fetch_photos, keep_only_photos, match_photos, read_media_counts
from .purge import (
    counted_in_collection,
    posts_purged_within_limit,
    purge_folder,
    purge_notes,
    read_record,
    record_time,
)
from .query import compile_query
from .sample import local_photo_path
from .summarise import PASS_OUTPUTS, sample_seed, summarise_posts
from .words import counted


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
        # Weights the progress bar as for a run whose first step asks X (ids and rechecks too: looked at
        # as a file's copy, their paid lookups sat at 2-8% for most of the run); read once per task.
        return self.load_run().reads_from_x

    def progress(self) -> events.Progress:
        return events.Progress(self)


events.register(RunTask)


class CollectPosts(RunTask):
    """The raw posts, exactly as the archive or the API gave them: tweets.jsonl."""

    def output(self):
        return self.target(RAW_POSTS)

    def run(self):
        run = self.load_run()
        search = run.search
        folder = self.folder_path
        folder.mkdir(parents=True, exist_ok=True)
        progress = self.progress()
        source = Source(search.source)
        if run.builds_on_id is not None:
            link_earlier_photos(run.builds_on.folder_path, folder)
        if source.is_live:
            self.outcome = collect_from_x(search, folder, progress, since_id=run.since_id)
        elif source == Source.IDS:
            self.outcome = look_up_ids(Path(search.archive_path), folder, progress)
        else:
            self.outcome = copy_posts(search.archive_path if source == Source.ARCHIVE else "", folder, progress)


class CheckAvailability(RunTask):
    """A recheck: which posts of the collection X still gives, and why not (a dated availability file)."""

    def requires(self):
        run = self.load_run()
        # The recheck the collection's results leave posts out for: its gone posts are looked up again.
        earlier = run.builds_on.newest_recheck()
        return {"checked_before": _availability_input(earlier)} if earlier is not None else {}

    def output(self):
        return self.target(self.paths().availability.relative_to(self.folder_path).as_posix())

    def paths(self) -> RecheckPaths:
        # Named by the run's creation, which a resume keeps: a killed recheck resumes its own file.
        return recheck_paths(self.folder_path, started=self.load_run().created)

    def run(self):
        run = self.load_run()
        folder = self.folder_path
        folder.mkdir(parents=True, exist_ok=True)
        link_earlier_photos(run.builds_on.folder_path, folder)
        checked_before = self.input().get("checked_before")
        self.outcome = recheck_collection(
            run.builds_on.folder_path,
            Path(checked_before.path) if checked_before is not None else None,
            folder,
            self.paths(),
            self.progress(),
            purged=purged_ids(run),
        )


class EarlierOutput(luigi.ExternalTask):
    """A file an earlier run of the search made: an input here, never made again (nothing collects
    twice; if it is gone, the workflow says a file it needs is missing)."""

    path = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(self.path)


def _raw_posts_of(earlier: SearchRun) -> EarlierOutput:
    return EarlierOutput(path=str(earlier.folder_path / RAW_POSTS))


def _availability_input(recheck_run: SearchRun) -> EarlierOutput:
    return EarlierOutput(path=str(recheck_run.availability_file))


class SummarisePosts(RunTask):
    """The one pass over the collection: every count file, list and table, and the pass's facts."""

    def requires(self):
        run = self.load_run()
        chain = run.chain()
        posts = [
            self.same_run(CollectPosts) if earlier.pk == run.pk else _raw_posts_of(earlier)
            for earlier in chain
            if earlier.collects_posts
        ]
        recheck = run.newest_recheck()
        if recheck is None:
            return {"posts": posts}
        if recheck.pk == run.pk:
            return {"posts": posts, "checked": self.same_run(CheckAvailability)}
        return {"posts": posts, "checked": _availability_input(recheck)}

    def output(self):
        return {name: self.target(name) for name in PASS_OUTPUTS}

    def run(self):
        run = self.load_run()
        search = run.search
        folder = self.folder_path
        inputs = self.input()
        if run.kind == RunKind.COLLECT and Source(search.source) in (Source.ARCHIVE, Source.SAMPLE):
            # Here, not in CollectPosts: its file is complete once copied, and a kill between the
            # copy and the purge must not leave the purged posts in (this runs again until it finishes).
            purges = finished_purges(run)
            if purges:
                # Forced: the step's start was just written, and this would wait for the throttle.
                self.progress().update(0.0, step_text="Leaving out again the posts a purge removed", force=True)
            left_out = reapply_purges(run, folder, purges)
            if left_out:
                self.progress().note(left_out)
        raws = [Path(target.path) for target in inputs["posts"]]
        limits = [collection_limit(search, raw) for raw in raws]
        checked = inputs.get("checked")
        # The posts purged before the recheck were not looked up (recheck_collection): counted beside
        # its figures, or "492 of 492 still there" would read as nothing gone.
        purged = purged_ids(run) if checked is not None else frozenset()
        availability = read_availability(Path(checked.path), among=purged) if checked is not None else None
        not_checked = len(purged) - availability.listed_among if availability is not None else 0
        gone = availability.gone if availability is not None else frozenset()
        report = ImportReport()
        matching = collection_query(search)
        compile_query(matching["term"])  # a malformed term fails here, before anything is read
        total_lines = sum(_raw_lines(raw) for raw in raws)
        progress = self.progress()

        def on_progress(lines_read: int, num_posts: int) -> None:
            fraction = lines_read / total_lines if total_lines else 0.0
            progress.update(fraction, step_text=f"Counting: {num_posts:,} posts so far", num_posts=num_posts)

        query = {**matching, "unavailable": gone, "report": report}
        writing = {
            "sample_size": settings.DNFLOW_SAMPLE_SIZE,
            "seed": sample_seed(search.pk, settings.DNFLOW_SAMPLE_SIZE),
            "make_facts": lambda facts: pass_facts(
                facts,
                report,
                sample_size=settings.DNFLOW_SAMPLE_SIZE,
                summarised_at=timezone.now(),
                availability=availability,
                purged_not_checked=not_checked,
            ),
        }
        parts = _parallel_parts(raws, limits)
        if parts:
            # The workers are forked: none may share this process's database connections.
            _close_database_connections()
            limit = dict(zip(raws, limits, strict=True))
            facts = summarise_parts(parts, folder, limit=limit, on_progress=on_progress, **query, **writing)
        else:
            posts = iter_collection(raws, limit=limits, **query)
            facts = summarise_posts(
                posts, folder, on_progress=lambda num_posts: on_progress(report.lines_read, num_posts), **writing
            )
        # Shown while the last steps run; the run's final count is taken from summary.json when it
        # finishes, so a database that fails just now (a progress report logs it) loses nothing.
        progress.update(
            1.0, step_text=f"Counted: {facts['num_tweets']:,} posts", num_posts=facts["num_tweets"], force=True
        )
        if report.bad_lines or report.duplicates or report.not_posts or report.unavailable or report.authorless:
            progress.note(f"Import: {report.summary()}")
        if availability is not None and run.kind == RunKind.COLLECT and report.unavailable:
            progress.note(_left_out_for_an_earlier_recheck(run, availability, report.unavailable))
        how = f", {len(parts)} processes" if parts else ""
        self.outcome = f"{counted(facts['num_tweets'], 'post')} summarised ({report.summary()}{how})"


def _left_out_for_an_earlier_recheck(run: SearchRun, availability, left_out: int) -> str:
    """A new collection of an archive leaves out what the search's newest recheck before it found
    gone (SearchRun.newest_recheck): said, since nothing else in the run asked X."""
    which = _time_of_run(availability.checked_at, run.newest_recheck().number)
    return (
        f"Left out {counted(left_out, 'post')} that the recheck of {which} found no longer on X: the archive "
        f"still holds {'it' if left_out == 1 else 'them'}, these results do not. Recheck to look them up again."
    )


def _time_of_run(iso_utc: str, number: int) -> str:
    """A recheck or a purge as a step's note names it: "2026-12-05 20:04 UTC (run 2)", or "run 2"."""
    return f"{iso_utc[:16].replace('T', ' ')} UTC (run {number})" if iso_utc else f"run {number}"


def purged_ids(run: SearchRun) -> frozenset[str]:
    """The posts the search's purges finished before `run` removed."""
    return frozenset(post_id for _, record in finished_purges(run) for post_id in read_record(record))


def finished_purges(run: SearchRun) -> list[tuple[SearchRun, Path]]:
    """The search's purges finished before `run`, oldest first, each with its record of the posts."""
    purges = run.search.runs.filter(kind=RunKind.PURGE, status=Status.FINISHED, number__lt=run.number)
    return [(purge, purge.folder_path / PURGE_RECORD) for purge in purges.order_by("number")]


def reapply_purges(run: SearchRun, folder: Path, purges: list[tuple[SearchRun, Path]]) -> str:
    """A new copy of an archive the search's posts were purged from holds those posts again (the
    file on the server, or the sample, is never changed): purge it of them as each purge did the
    earlier runs, each recorded in the folder's SOURCES. Returns what it left out, in words ("": none).

    Done again after a kill, it changes nothing it changed already (pipeline.purge)."""
    search = run.search
    said = []
    for purge_run, record in purges:
        ids = frozenset(read_record(record))
        if not ids:
            continue
        purge = {
            "record": f"{purge_run.folder}/{PURGE_RECORD}",
            "purged_at": record_time(record),
            "why": "This copy of the archive held again posts that an earlier purge of the search removed (the "
            "archive itself is never changed): they were removed from it the same way, so its size and checksum "
            "are the ones below, not the archive's.",
        }
        purge_folder(folder, ids, purge=purge, within_limit=purged_within_limit(search, ids, purge["record"]))
        note = next((n for n in purge_notes(folder) if n.get("record") == purge["record"]), {})
        removed = ((note.get("files") or {}).get(RAW_POSTS) or {}).get("posts_removed", 0)
        if removed:
            when = _time_of_run(purge["purged_at"], purge_run.number)
            # A post may be in the archive many times (a stream's repeats): copies, not posts.
            copies = f"{removed:,} cop{'y' if removed == 1 else 'ies'} in the archive"
            said.append(f"the {counted(len(ids), 'post')} that the purge of {when} removed ({copies})")
    if not said:
        return ""
    return (
        f"Left out again {' and '.join(said)}: X no longer gave them. The archive still holds them; this "
        "run's copy does not."
    )


def purged_within_limit(search, ids: frozenset[str], record: str) -> Callable[[Path], int]:
    """purge_folder's `within_limit` for the purge whose record is `record`: how many of its posts
    the collection takes from a raw file towards its limit (the limit less earlier purges')."""

    def within_limit(raw: Path) -> int:
        limit = collection_limit(search, raw, except_purge=record)
        return counted_in_collection(raw, ids, limit=limit, **collection_query(search))

    return within_limit


def collection_limit(search, raw: Path, *, except_purge: str = "") -> int | None:
    """The most posts the collection takes from this raw file: the search's count (each
    collection's own: a refresh collects up to it again; none for ids looked up), less the posts a
    purge removed from the file that counted towards it (see pipeline.purge)."""
    if search.count is None or Source(search.source) == Source.IDS:
        return None
    return search.count - posts_purged_within_limit(raw.parent, except_record=except_purge)


def collection_query(search) -> dict:
    """What the collection's posts must match, as iter_collection takes it. A live search was
    matched by X already; our own matcher only searches archives."""
    if Source(search.source).is_live:
        return {"term": "", "lang": "", "start": None, "end": None}
    return {"term": search.term, "lang": search.lang, "start": search.start_time, "end": search.end_time}


def _parallel_parts(raws: list[Path], limits: list[int | None]) -> list | None:
    """The byte ranges to summarise in parallel, or None for one pass (see pipeline.parallel)."""
    if any(limit is not None and limit <= 0 for limit in limits):
        return None
    processes = settings.DNFLOW_SUMMARISE_PROCESSES or default_processes()
    return plan_parts(raws, processes=processes, min_bytes=settings.DNFLOW_SUMMARISE_PARALLEL_BYTES)


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
        files = sources.get("files")
        if files:  # a live collection's SOURCES, if a purge made one, lists no file
            return sum(int(entry.get("lines", 0)) for entry in files)
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


class BuildNetworks(RunTask):
    """Who mentions whom and who uses which hashtag, as networks (GEXF, GraphML) and for the page."""

    # Before the photos, as events.STEPS orders the steps. Both need only the counts, and Luigi
    # otherwise took either first: the progress bar went back from 91% to 57% when it chose the photos.
    priority = 1

    def requires(self):
        return self.same_run(SummarisePosts)

    def output(self):
        return {name: self.target(name) for name in NETWORK_FILES}

    def run(self):
        self.progress().update(0.1, step_text="Building the mention and hashtag networks")
        built = write_networks(self.folder_path)
        self.outcome = "; ".join(network.describe() for network in built.values())


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
            keep_only_photos(media, set())
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
        # A run that builds on an earlier one started from all of its photos: those that none of
        # this run's posts has (the posts a recheck found gone had them) must not be served.
        keep_only_photos(media, {r.file for r in fetched})
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
            "networks": self.same_run(BuildNetworks),
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
        back = purged_posts_back(run, self.folder_path / TWEET_IDS)
        if back:
            summary["purged_back"] = back
        self.progress().update(0.2, step_text="Packaging a BagIt archive")
        package = build_package(self.folder_path, bag_info(search, run, summary), summary)
        self.outcome = f"{package.name} written"


def purged_posts_back(run: SearchRun, collected_ids: Path) -> int:
    """How many posts an earlier purge removed are in this run's results again: a collection from
    X gave them again (they are back on X). The page says so beside the purge, which said they
    were removed. Only read when the search was purged."""
    purged = purged_ids(run)
    if not purged or not collected_ids.is_file():
        return 0
    with collected_ids.open(encoding="ascii") as ids:
        return sum(1 for line in ids if line.rstrip("\n") in purged)


def _read_json(target: luigi.LocalTarget):
    with target.open("r") as handle:
        return json.load(handle)


def final_task(run: SearchRun) -> PackageOutputs:
    return PackageOutputs(run_id=run.pk, folder=run.folder, claim=claim_of(run))


def claim_of(run: SearchRun) -> str:
    """The run's claim as a task parameter: its claim time in UTC, or "" for a run never claimed."""
    return run.started.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f") if run.started else ""
