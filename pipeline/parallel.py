"""The summarise pass on several cores: the raw file cut into byte ranges, one process each.

A big raw file is cut at line boundaries into one range per process. Each process reads its
range exactly as the serial pass reads the whole file (pipeline.formats.iter_posts and
collection, pipeline.summarise.SummaryPass) and returns what it counted. The parent merges the
ranges in file order, which is collection order, so the files are the very files one pass
writes:

- listing files (tweets.csv, tweet-ids.txt, the edge lists): the first range appends to the
  final files after their headers, the others write parts that are appended in range order;
- counts, authors' snapshots (a later range wins), retweet maxima, the timeline: Tally.merge;
- the sample: Sample.merge (the sample does not depend on where the file was cut);
- the import report: counts add up; problems are numbered within their range, then renumbered
  once the line counts of the ranges before are known, so they name the same lines.

Two rules reach across ranges, and are put right after the fact:
- a post whose id was already seen in an earlier range is a duplicate (the first occurrence is
  kept): the ids each range saw (pipeline.idset.SeenIds, spilled to disk beyond a fixed number)
  are compared, and a range holding such ids is read again with them counted as seen;
- a limit (search.count) is the first N posts of the collection: each range stops after N, the
  range in which the N-th post falls is read again to stop exactly there, later ones are dropped.
Both are rare; a re-read costs one range's time, never a wrong file.

Workers are forked and never touch the database (the caller closes its connections first). The
parent reports progress (lines read and posts kept by all ranges together) and, when that
report raises (a cancelled search), stops the workers and leaves nothing behind.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import wait
from pathlib import Path
from typing import IO

from .contract import HASHTAG_EDGES, LISTING_FILES, MENTION_EDGES, SPILL_FOLDER, TWEET_IDS, TWEETS_CSV
from .formats.reading import GZIP_MAGIC, CollectionFilter, SourceMap, collection, iter_posts, no_valid_post
from .formats.report import ImportReport
from .idset import SeenIds, remove_spill_folder
from .outputs import OutputSet, new_temp_path
from .summarise import Sample, SummaryPass, Tally, open_listing_files, write_summary_files

# Below this size one process reads the file: starting workers would cost more than it saves.
# No range is smaller than half of it either.
DEFAULT_MIN_BYTES = 20 * 1024 * 1024
# Each process holds the ids of its range and a Python of its own: a big machine's CPUs are not
# all taken by one search unless DNFLOW_SUMMARISE_PROCESSES says so.
MAX_DEFAULT_PROCESSES = 8
# How often the parent reports progress (and so notices a cancel) while workers run.
POLL_SECONDS = 0.25
_SCAN = 1024 * 1024
_WRITE_BUFFER = 1024 * 1024

ProgressCallback = Callable[[int, int], None]  # (lines read, posts kept) over all ranges
Part = tuple[Path, int, int]  # a byte range [start, end) of one raw file


def default_processes() -> int:
    """One process per CPU this process may run on, at most MAX_DEFAULT_PROCESSES."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_PROCESSES))


def plan_ranges(raw_path: Path, *, processes: int, min_bytes: int = DEFAULT_MIN_BYTES) -> list[tuple[int, int]] | None:
    """Byte ranges [start, end) of `raw_path`, each starting at a line, for a parallel pass; None
    when one process should read the file: it is smaller than `min_bytes`, gzipped, one process is
    asked for, this process may not have children (a daemonic one), or an input's posts need the
    account its lines came from (Twitter's tweets.js), which only a whole-file reading knows."""
    raw_path = Path(raw_path)
    if processes < 2 or multiprocessing.current_process().daemon:
        return None
    try:
        size = raw_path.stat().st_size
        if size < min_bytes:
            return None
        processes = min(processes, max(1, size // max(min_bytes // 2, 1)))
        with raw_path.open("rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                return None
            cuts = [0]
            for index in range(1, processes):
                cut = _line_start_at_or_after(handle, max(size * index // processes, cuts[-1]), size)
                if cuts[-1] < cut < size:
                    cuts.append(cut)
    except OSError:
        return None
    cuts.append(size)
    if len(cuts) < 3 or SourceMap(raw_path).has_owners:
        return None
    return list(zip(cuts, cuts[1:], strict=False))


def plan_parts(raw_paths: Sequence[Path], *, processes: int, min_bytes: int = DEFAULT_MIN_BYTES) -> list[Part] | None:
    """Ranges over several raw files read as one collection, in order: each file cut as
    plan_ranges cuts one, with the processes shared by size; a file too small to cut is one range.
    None when one process should read them all (together smaller than `min_bytes`, or one of them
    cannot be cut: gzipped, or from Twitter's tweets.js)."""
    paths = [Path(p) for p in raw_paths]
    if len(paths) == 1:
        ranges = plan_ranges(paths[0], processes=processes, min_bytes=min_bytes)
        return None if ranges is None else [(paths[0], start, end) for start, end in ranges]
    try:
        sizes = [path.stat().st_size for path in paths]
    except OSError:
        return None
    total = sum(sizes)
    if processes < 2 or total < min_bytes or multiprocessing.current_process().daemon:
        return None
    parts: list[Part] = []
    for path, size in zip(paths, sizes, strict=True):
        share = max(1, round(processes * size / total)) if total else 1
        with path.open("rb") as handle:
            if handle.read(2) == GZIP_MAGIC or SourceMap(path).has_owners:
                return None
        ranges = plan_ranges(path, processes=share, min_bytes=min(min_bytes, size)) if share > 1 else None
        parts += [(path, start, end) for start, end in (ranges or [(0, size)]) if end > start]
    return parts if len(parts) > 1 else None


def _line_start_at_or_after(handle: IO[bytes], position: int, size: int) -> int:
    if position <= 0:
        return 0
    handle.seek(position - 1)
    while True:
        chunk = handle.read(_SCAN)
        if not chunk:
            return size
        found = chunk.find(b"\n")
        if found >= 0:
            return handle.tell() - len(chunk) + found + 1


@dataclass
class RangeJob:
    """One range of the raw file and what its process needs to read it (picklable)."""

    index: int
    raw_path: Path
    start: int
    end: int
    term: str
    lang: str
    start_time: datetime | None
    end_time: datetime | None
    limit: int | None
    sample_size: int
    seed: str
    unavailable: frozenset[str]
    files: dict[str, Path]  # LISTING_FILES name -> the file this range's rows are appended to
    spill_into: Path  # the folder whose .spill/ holds what outgrew memory (pipeline.idset, pipeline.countstore)
    exclude: SeenIds | None = None  # ids seen in earlier ranges: duplicates here


@dataclass
class RangeResult:
    job: RangeJob
    report: ImportReport
    tally: Tally
    sample: list  # Sample.kept, positions counted from the range's first post
    kept: int  # posts of the collection found in this range
    seen: SeenIds  # every id read (and job.exclude); pickles to a bounded size


def read_range(job: RangeJob, on_batch: Callable[[ImportReport, int], None] | None = None) -> RangeResult:
    """Read one range as the serial pass reads the file; `on_batch(report, posts kept)` now and then."""
    from .query import compile_query

    report = ImportReport()
    keep = CollectionFilter(compile_query(job.term), job.lang, job.start_time, job.end_time, job.unavailable)
    seen = job.exclude if job.exclude is not None else SeenIds(job.spill_into)
    sample = Sample(job.sample_size, job.seed)
    # Problems are numbered within the range and named after the raw file; the parent renames them.
    lines = SourceMap(job.raw_path, recorded=False)
    handles = {name: open(job.files[name], "ab", buffering=_WRITE_BUFFER) for name in LISTING_FILES}  # noqa: SIM115
    posts = iter_posts(job.raw_path, report, start=job.start, end=job.end, sources=lines)
    try:
        summary_pass = SummaryPass(
            handles[TWEETS_CSV],
            handles[TWEET_IDS],
            handles[HASHTAG_EDGES],
            handles[MENTION_EDGES],
            sample,
            spill_into=job.spill_into / SPILL_FOLDER,
        )
        found = collection(posts, keep, limit=job.limit, seen=seen, report=report)
        summary_pass.add_all(found, None if on_batch is None else lambda kept: on_batch(report, kept))
    finally:
        posts.close()  # a limit may stop it early: closing records report.last_line
        for handle in handles.values():
            handle.close()
    return RangeResult(job, report, summary_pass.tally(), sample.kept, summary_pass.count, seen)


def _worker(job: RangeJob, sender, progress, slot: int, parent: int) -> None:
    """A forked process's whole life: read the range, send the result (or the error) back."""
    # Short-lived, and the pass makes no reference cycles: the cyclic collector would only cost time.
    gc.disable()

    def on_batch(report: ImportReport, kept: int) -> None:
        progress[2 * slot] = report.lines_read
        progress[2 * slot + 1] = kept
        if os.getppid() != parent:  # the parent was killed: nobody will read what this makes
            os._exit(1)

    try:
        result = read_range(job, on_batch)
        sender.send((True, result))
    except BaseException as error:  # noqa: BLE001 -- every failure goes back to the parent
        try:
            sender.send((False, error))
        except Exception:  # an exception that cannot be pickled: its text is enough
            sender.send((False, RuntimeError(f"{type(error).__name__}: {error}")))
    finally:
        sender.close()


def _run(jobs: list[RangeJob], on_progress: ProgressCallback | None, done: tuple[int, int]) -> list[RangeResult]:
    """Run each job in its own forked process; results in job order. `done`: (lines, posts) of
    ranges finished earlier, added to what the progress says."""
    context = multiprocessing.get_context("fork")
    progress = context.Array("q", 2 * len(jobs), lock=False)
    running: dict = {}
    results: dict[int, RangeResult] = {}
    try:
        for slot, job in enumerate(jobs):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_worker, args=(job, sender, progress, slot, os.getpid()), name=f"dnflow-range-{job.index}"
            )
            process.daemon = True
            process.start()
            sender.close()
            running[receiver] = (slot, process)
        while running:
            for receiver in wait(list(running), timeout=POLL_SECONDS):
                slot, process = running.pop(receiver)
                try:
                    ok, payload = receiver.recv()
                except EOFError:
                    process.join()
                    raise RuntimeError(
                        f"The process counting part {jobs[slot].index + 1} of the posts stopped unexpectedly "
                        f"(exit code {process.exitcode}), perhaps out of memory."
                    ) from None
                finally:
                    receiver.close()
                process.join()
                if not ok:
                    raise payload
                results[slot] = payload
            if on_progress is not None:
                lines = done[0] + sum(progress[0::2])
                posts = done[1] + sum(progress[1::2])
                on_progress(lines, posts)
    finally:
        for receiver, (_slot, process) in running.items():
            process.kill()
            process.join()
            receiver.close()
    return [results[slot] for slot in range(len(jobs))]


def summarise_ranges(raw_path: Path, folder: Path, ranges: list[tuple[int, int]], **options) -> dict:
    """summarise_parts over byte ranges of one raw file (from plan_ranges)."""
    return summarise_parts([(Path(raw_path), start, end) for start, end in ranges], folder, **options)


def summarise_parts(
    parts: list[Part],
    folder: Path,
    *,
    term: str,
    lang: str,
    start: datetime | None,
    end: datetime | None,
    limit: int | None | Mapping[Path, int | None],
    report: ImportReport,
    sample_size: int,
    seed: str,
    make_facts: Callable[[dict], dict],
    unavailable: Collection[str] = frozenset(),
    on_progress: ProgressCallback | None = None,
) -> dict:
    """The summarise pass over `parts` (from plan_parts or plan_ranges), one process each: the same
    files in `folder`, the same facts and the same `report` as summarise_posts over iter_collection
    of the same raw files. `limit`: one for all, or each raw file's own (a mapping)."""
    limits = dict(limit) if isinstance(limit, Mapping) else {path: limit for path, _, _ in parts}
    if all(each is not None and each <= 0 for each in limits.values()):
        raise ValueError("A limit of 0 reads nothing: use the serial pass.")
    unavailable = frozenset(unavailable)
    temporaries: list[Path] = []
    remove_spill_folder(folder)  # left by a run that was killed

    def part_files() -> dict[str, Path]:
        files = {}
        for name in LISTING_FILES:
            fd, path = new_temp_path(folder / name)
            os.close(fd)
            temporaries.append(path)
            files[name] = path
        return files

    try:
        with OutputSet() as out:
            finals = open_listing_files(out, folder)
            for handle in finals.values():
                handle.flush()  # the header, before the first range appends its rows
            try:
                jobs = [
                    RangeJob(
                        index=index,
                        raw_path=raw_path,
                        start=range_start,
                        end=range_end,
                        unavailable=unavailable,
                        term=term,
                        lang=lang,
                        start_time=start,
                        end_time=end,
                        limit=limits[raw_path],
                        sample_size=sample_size,
                        seed=seed,
                        files={name: out.temp_path(h) for name, h in finals.items()} if index == 0 else part_files(),
                        spill_into=folder,
                    )
                    for index, (raw_path, range_start, range_end) in enumerate(parts)
                ]
                chosen = _settle(_run(jobs, on_progress, (0, 0)), limits, part_files, on_progress, folder)
                for name, handle in finals.items():
                    handle.seek(0, os.SEEK_END)  # after what the first range appended
                    for result in chosen[1:]:
                        _append(handle, result.job.files[name])
            finally:
                for path in temporaries:
                    path.unlink(missing_ok=True)
            tally, sample = _merge(chosen, report, sample_size, seed, folder / SPILL_FOLDER)
            try:
                if report.posts_seen == 0:
                    raise no_valid_post(parts[0][0], report)
                done = None if on_progress is None else (lambda posts: on_progress(report.lines_read, posts))
                return write_summary_files(out, folder, tally, sample, make_facts, done)
            finally:
                if tally.store is not None:
                    tally.store.close()
    finally:
        remove_spill_folder(folder)  # the ids and counts that outgrew memory


def _settle(
    results: list[RangeResult],
    limits: Mapping[Path, int | None],
    part_files: Callable[[], dict[str, Path]],
    on_progress: ProgressCallback | None,
    spill_into: Path,
) -> list[RangeResult]:
    """The ranges that make the collection, in order, each read again where a rule reaching
    across ranges (duplicates, a file's limit) changed what it holds."""
    chosen: list[RangeResult] = []
    counted: dict[Path, int] = {}  # each file's posts of the collection so far, left out ones too
    for result in results:
        path = result.job.raw_path
        limit = limits[path]
        so_far = counted.get(path, 0)
        remaining = None if limit is None else limit - so_far
        if remaining is not None and remaining <= 0:
            continue  # this file's collection is complete: its later ranges are not part of it
        # A range whose first reading stopped at its limit has not seen all its ids: any of the rest
        # may have come earlier too, so its second reading excludes every earlier id, not only the
        # ids the two readings share.
        read_whole = result.job.limit is None or _counted(result) < result.job.limit
        again = _seen_before(result.seen, [r.seen for r in chosen], spill_into)
        stops_exactly = remaining is None or _counted(result) < remaining or result.job.limit == remaining
        if again is not None or not stops_exactly:
            assert result.job.index > 0, "the first range is never read again"
            for file in result.job.files.values():
                file.unlink(missing_ok=True)
            if read_whole:
                exclude = again if again is not None else SeenIds(spill_into)
            else:
                if again is not None:
                    again.close()
                exclude = _every_id(chosen, spill_into)
            job = replace(result.job, exclude=exclude, limit=remaining, files=part_files())
            done = (sum(r.report.lines_read for r in chosen), sum(r.kept for r in chosen))
            result = _run([job], on_progress, done)[0]
        chosen.append(result)
        counted[path] = so_far + _counted(result)
    return chosen


def _counted(result: RangeResult) -> int:
    """The range's posts of the collection: those kept, and those a recheck found gone."""
    return result.kept + result.report.unavailable


def _every_id(results: list[RangeResult], spill_into: Path) -> SeenIds:
    """Every id the ranges read, as one set."""
    every = SeenIds(spill_into)
    for result in results:
        for key in result.seen:
            every.add_key(key)
    return every


def _seen_before(seen: SeenIds, earlier: list[SeenIds], spill_into: Path) -> SeenIds | None:
    """The ids of `seen` that one of `earlier` holds too, or None when there are none."""
    again = None
    for before in earlier:
        for key in seen.common(before):
            if again is None:
                again = SeenIds(spill_into)
            again.add_key(key)
    return again


def _merge(
    chosen: list[RangeResult], report: ImportReport, sample_size: int, seed: str, spill_into: Path
) -> tuple[Tally, Sample]:
    """The ranges' tallies, samples and reports as one; problems renumbered in their whole file."""
    tally = Tally()
    sample = Sample(sample_size, seed)
    line_offset = 0
    posts_before = 0
    sources = None
    for result in chosen:
        if sources is None or sources.raw_path != result.job.raw_path:
            sources, line_offset = SourceMap(result.job.raw_path), 0  # the next raw file's lines
        tally.merge(result.tally, spill_into)
        sample.merge(result.sample, posts_before)
        posts_before += result.kept
        part = result.report
        for _raw_name, line, reason in part.problems:
            name, at, note = sources.where(line_offset + line)
            report.add_problem(name, at, reason + note)
        report.bad_lines += part.bad_lines - len(part.problems)  # counted in the range, not stored
        report.lines_read += part.lines_read
        report.posts_seen += part.posts_seen
        report.duplicates += part.duplicates
        report.not_posts += part.not_posts
        report.authorless += part.authorless
        report.unnamed_tweets_js = report.unnamed_tweets_js or part.unnamed_tweets_js
        report.unavailable += part.unavailable
        line_offset += part.last_line
    report.last_line = line_offset
    return tally, sample


def _append(handle: IO[bytes], part: Path) -> None:
    """Append the file `part` to `handle` (in the kernel where it can: no copy through Python)."""
    handle.flush()
    target = handle.fileno()
    with part.open("rb") as source:
        left = os.fstat(source.fileno()).st_size
        try:
            while left > 0:
                copied = os.copy_file_range(source.fileno(), target, left)
                if copied == 0:
                    break
                left -= copied
        except (AttributeError, OSError):
            pass  # no copy_file_range here (another OS, another filesystem): copy the rest below
        while chunk := source.read(_SCAN):
            view = memoryview(chunk)
            while view:
                view = view[os.write(target, view) :]
