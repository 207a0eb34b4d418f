"""The summarise pass in byte ranges, one process each (pipeline.parallel), writes the very files
one pass writes: byte for byte, with duplicates across ranges, bad lines in any range, a limit
that cuts anywhere, a search term, and a sample that does not depend on how the file was cut.

The archives are SYNTHETIC (pipeline.sample's generator) with hand-placed trouble; the serial
pass is the reference, and the parallel path is forced on these small files.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
from pathlib import Path

import orjson
import pytest

from pipeline import parallel
from pipeline.formats import ArchiveError, ImportReport, copy_archive, iter_collection
from pipeline.outputs import csv_records
from pipeline.parallel import plan_ranges, summarise_ranges
from pipeline.runner import build_workflow
from pipeline.sample.generator import generate_posts
from pipeline.summarise import PASS_OUTPUTS, summarise_posts, write_sample

from .pipeline_helpers import archive_search, read_rows

SEED = "dnflow-sample:test:5"


def _lines(posts: int, *, seed: int = 7) -> list[bytes]:
    return [orjson.dumps(post) for post in generate_posts(posts, seed=seed, fmt="v1")]


def troubled_archive(path: Path, posts: int = 300) -> Path:
    """SYNTHETIC v1.1 lines with what crosses range boundaries: duplicates of early posts (with
    another snapshot and text) late in the file, bad lines early and late, a blank line, a notice."""
    lines = _lines(posts)
    early = orjson.loads(lines[3])
    early["user"]["followers_count"] += 1000
    early["full_text"] = "A later copy of an early post: the first occurrence must win."
    late_duplicate = orjson.dumps(early)
    second = orjson.loads(lines[5])
    second["retweet_count"] = 99_999  # would top retweets.csv, were it not a duplicate
    lines.insert(10, b"this line is not JSON")
    lines.insert(len(lines) // 2 + 5, late_duplicate)
    lines.insert(len(lines) * 2 // 3, b'{"id_str": "1", "truncated')
    lines.insert(len(lines) * 2 // 3 + 3, b"")
    lines.insert(len(lines) * 2 // 3 + 4, b'{"delete": {"status": {"id": 1, "id_str": "1"}}}')
    lines.insert(len(lines) - 4, orjson.dumps(second))
    lines.insert(len(lines) - 2, late_duplicate)  # a duplicate within the last range too
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def imported(tmp_path: Path, *archives: Path) -> Path:
    """The raw file (and sources.json) a search would get from these archives."""
    raw = tmp_path / "raw" / "tweets.jsonl"
    copy_archive(list(archives), raw)
    return raw


def _document(report: ImportReport):
    def make(facts: dict) -> dict:
        problems = [list(p) for p in report.problems]
        return {"facts": facts, "summary": report.summary(), "problems": problems, "lines_read": report.lines_read}

    return make


def serial(raw: Path, out: Path, **query) -> tuple[dict, ImportReport]:
    report = ImportReport()
    posts = iter_collection(raw, report=report, **query)
    facts = summarise_posts(posts, out, sample_size=5, seed=SEED, make_facts=_document(report))
    return facts, report


def in_ranges(raw: Path, out: Path, processes: int, *, term: str = "", limit: int | None = None):
    ranges = plan_ranges(raw, processes=processes, min_bytes=0)
    assert ranges is not None and len(ranges) == processes
    report = ImportReport()
    facts = summarise_ranges(
        raw,
        out,
        ranges,
        term=term,
        lang="",
        start=None,
        end=None,
        limit=limit,
        report=report,
        sample_size=5,
        seed=SEED,
        make_facts=_document(report),
    )
    return facts, report


def assert_same_files(expected: Path, actual: Path) -> None:
    for name in PASS_OUTPUTS:
        assert (actual / name).read_bytes() == (expected / name).read_bytes(), name
    leftovers = sorted(p.name for p in actual.iterdir() if p.name.startswith("."))
    assert leftovers == [], "no temporary parts are left behind"


@pytest.mark.parametrize("processes", [2, 3, 5])
def test_ranges_write_the_same_files_as_one_pass(tmp_path, processes):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    facts, report = serial(raw, tmp_path / "serial")
    parallel_facts, parallel_report = in_ranges(raw, tmp_path / "parallel", processes)

    assert_same_files(tmp_path / "serial", tmp_path / "parallel")
    assert parallel_facts == facts
    assert parallel_report == report
    # What the archive holds, counted by hand from troubled_archive: 300 posts, 3 duplicates,
    # 2 bad lines (found on their own lines), 1 notice.
    assert (report.posts_seen, report.duplicates, report.bad_lines, report.not_posts) == (303, 3, 2, 1)
    assert [line for _name, line, _reason in report.problems] == [11, _line_of(raw, b'{"id_str": "1", "trunc')]
    assert facts["num_tweets"] == 300


def _line_of(raw: Path, start: bytes) -> int:
    return next(n for n, line in enumerate(raw.read_bytes().split(b"\n"), 1) if line.startswith(start))


def test_the_first_occurrence_of_a_post_wins_across_ranges(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    in_ranges(raw, tmp_path / "out", 2)
    tweets = read_rows(tmp_path / "out" / "tweets.csv")
    ids = [row[0] for row in tweets[1:]]
    assert len(ids) == len(set(ids)) == 300
    assert not any(row[3].startswith("A later copy") for row in tweets)
    assert "99999" not in (tmp_path / "out" / "retweets.csv").read_text()


@pytest.mark.parametrize("limit", [1, 140, 151, 299, 300, 301, 10_000])
def test_a_limit_takes_the_first_posts_of_the_collection_wherever_it_cuts(tmp_path, limit):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    facts, report = serial(raw, tmp_path / "serial", limit=limit)
    parallel_facts, parallel_report = in_ranges(raw, tmp_path / "parallel", 3, limit=limit)
    assert_same_files(tmp_path / "serial", tmp_path / "parallel")
    assert (parallel_facts, parallel_report) == (facts, report)
    assert facts["num_tweets"] == min(limit, 300)


def test_a_term_filters_the_same_posts_and_duplicates_of_filtered_posts_stay_out(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    facts, report = serial(raw, tmp_path / "serial", term="-is:retweet")
    parallel_facts, parallel_report = in_ranges(raw, tmp_path / "parallel", 2, term="-is:retweet")
    assert_same_files(tmp_path / "serial", tmp_path / "parallel")
    assert (parallel_facts, parallel_report) == (facts, report)
    assert 0 < facts["num_tweets"] < 300


def test_problems_name_the_archive_file_and_its_own_line(tmp_path):
    first = tmp_path / "first.jsonl"
    first.write_bytes(b"\n".join(_lines(150, seed=1)) + b"\n")
    second = troubled_archive(tmp_path / "second.jsonl", posts=150)
    raw = imported(tmp_path, first, second)
    _facts, report = serial(raw, tmp_path / "serial")
    _facts, parallel_report = in_ranges(raw, tmp_path / "parallel", 3)
    assert parallel_report.problems == report.problems
    assert [(name, line) for name, line, _ in report.problems] == [
        ("second.jsonl", 11),
        ("second.jsonl", _line_of(second, b'{"id_str": "1", "trunc')),
    ]
    assert_same_files(tmp_path / "serial", tmp_path / "parallel")


def test_a_file_without_posts_fails_the_same_way(tmp_path):
    raw = tmp_path / "raw" / "tweets.jsonl"
    raw.parent.mkdir()
    raw.write_bytes(b'{"delete": {"status": {"id": 1}}}\n' * 50 + b"not json\n" * 50)
    with pytest.raises(ArchiveError) as one_pass:
        serial(raw, tmp_path / "serial")
    with pytest.raises(ArchiveError) as ranges:
        in_ranges(raw, tmp_path / "parallel", 2)
    assert str(ranges.value) == str(one_pass.value)
    assert "holds no valid post" in str(ranges.value)
    assert not (tmp_path / "parallel").exists() or not any((tmp_path / "parallel").iterdir())


def test_progress_adds_up_the_ranges_and_ends_at_the_whole(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    calls: list[tuple[int, int]] = []
    report = ImportReport()
    facts = summarise_ranges(
        raw, tmp_path / "out", plan_ranges(raw, processes=2, min_bytes=0), term="", lang="", start=None, end=None,
        limit=None, report=report, sample_size=5, seed=SEED, make_facts=lambda facts: facts,
        on_progress=lambda lines, posts: calls.append((lines, posts)),
    )  # fmt: skip
    assert len(calls) >= 2
    assert calls[-1] == (report.lines_read, facts["num_tweets"]) == (303 + 3, 300)


def test_a_cancel_while_ranges_run_leaves_nothing_and_no_process(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl", posts=3000))
    out = tmp_path / "out"
    ranges = plan_ranges(raw, processes=2, min_bytes=0)

    class Cancelled(Exception):
        pass

    def cancel(lines: int, posts: int) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        summarise_ranges(
            raw, out, ranges, term="", lang="", start=None, end=None, limit=None, report=ImportReport(),
            sample_size=5, seed=SEED, make_facts=lambda facts: facts, on_progress=cancel,
        )  # fmt: skip
    assert not out.exists() or list(out.iterdir()) == []
    assert multiprocessing.active_children() == []


def test_a_range_process_that_dies_is_an_error_not_a_hang(tmp_path, monkeypatch):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    monkeypatch.setattr(parallel, "read_range", lambda job, on_batch=None: os._exit(3))  # the forked child
    with pytest.raises(RuntimeError, match=r"stopped unexpectedly \(exit code 3\)"):
        in_ranges(raw, tmp_path / "out", 2)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_ranges_start_at_lines_and_cover_the_file(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    data = raw.read_bytes()
    ranges = plan_ranges(raw, processes=4, min_bytes=0)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(end == next_start for (_, end), (next_start, _) in zip(ranges, ranges[1:], strict=False))
    assert all(data[start - 1 : start] == b"\n" for start, _ in ranges[1:])


def test_no_range_is_smaller_than_half_the_parallel_threshold(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    size = raw.stat().st_size
    ranges = plan_ranges(raw, processes=64, min_bytes=size // 2)
    assert len(ranges) == 4
    assert all(end - start >= size // 4 - 10_000 for start, end in ranges)  # give or take a line


def test_small_gzipped_or_single_process_files_take_one_pass(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    assert plan_ranges(raw, processes=2, min_bytes=raw.stat().st_size + 1) is None
    assert plan_ranges(raw, processes=1, min_bytes=0) is None
    gzipped = tmp_path / "gz" / "tweets.jsonl"
    gzipped.parent.mkdir()
    import gzip

    gzipped.write_bytes(gzip.compress(raw.read_bytes()))
    assert plan_ranges(gzipped, processes=2, min_bytes=0) is None


def test_csv_records_are_what_the_csv_module_writes():
    cells = ["", "plain", "a,b", 'say "hi"', "line\nbreak", "cr\rhere", "\r\n", "x\x00y", "'=1", " space ", "é😀"]
    rows = [[a, b] for a in cells for b in cells] + [[a, b, c] for a in cells[:6] for b in cells[:6] for c in cells]
    expected = io.StringIO()
    csv.writer(expected).writerows(rows)
    assert csv_records(rows) == expected.getvalue()


# --- The whole workflow ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_workflow_in_ranges_writes_what_one_pass_writes(tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = False
    settings.DNFLOW_SAMPLE_SIZE = 7
    search = archive_search(troubled_archive(tmp_path / "troubled.jsonl"))
    settings.DNFLOW_SUMMARISE_PROCESSES = 1
    assert build_workflow(search).ok
    folder = search.folder_path
    one_pass = {name: (folder / name).read_bytes() for name in PASS_OUTPUTS}

    # The same search summarised again, in three ranges this time (and every step after it).
    for name in [*PASS_OUTPUTS, "summary.json", "media/photos.json", "media-graph.json", f"{folder.name}.zip"]:
        (folder / name).unlink()
    settings.DNFLOW_SUMMARISE_PROCESSES = 3
    settings.DNFLOW_SUMMARISE_PARALLEL_BYTES = 0
    assert build_workflow(search).ok

    outcome = search.events.filter(task_family="SummarisePosts", event="success").last().message
    assert outcome.endswith(", 3 processes)")
    for name in PASS_OUTPUTS:
        if name != "summarised.json":
            assert (folder / name).read_bytes() == one_pass[name], name
    facts, expected = (json.loads(x) for x in ((folder / "summarised.json").read_bytes(), one_pass["summarised.json"]))
    facts.pop("summarised_at"), expected.pop("summarised_at")
    assert facts == expected
    assert facts["import"]["duplicates"] == 3 and facts["import"]["bad_lines"] == 2

    # The sample redrawn from tweets.csv is the one the ranges drew.
    sample = (folder / "sample.csv").read_bytes()
    write_sample(search.folder_path, 7, search_id=search.search_id)
    assert (folder / "sample.csv").read_bytes() == sample
    assert len(read_rows(folder / "sample.csv")) == 8


def test_several_raw_files_read_as_one_collection_give_the_files_of_their_concatenation(tmp_path):
    """A search's earlier collections and the posts a later one added: each post once, whichever
    file holds it first, in one pass or in ranges across the files."""
    whole = troubled_archive(tmp_path / "whole.jsonl", posts=600)
    lines = whole.read_bytes().splitlines(keepends=True)
    cuts = [0, len(lines) // 3, len(lines) * 2 // 3, len(lines)]
    raws = []
    for number, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        piece = tmp_path / f"piece{number}.jsonl"
        piece.write_bytes(b"".join(lines[a:b]))
        raw = tmp_path / f"run{number}" / "tweets.jsonl"
        copy_archive([piece], raw)
        raws.append(raw)
    expected, expected_report = serial(imported(tmp_path, whole), tmp_path / "one")

    report = ImportReport()
    posts = iter_collection(raws, report=report)
    facts = summarise_posts(posts, tmp_path / "serial", sample_size=5, seed=SEED, make_facts=lambda f: f)
    parts = parallel.plan_parts(raws, processes=6, min_bytes=0)
    # Every file read, some of them cut in ranges: duplicates and problems cross both kinds of edge.
    assert parts is not None and {path for path, _, _ in parts} == set(raws) and len(parts) > len(raws)
    ranged_report = ImportReport()
    ranged = parallel.summarise_parts(
        parts, tmp_path / "ranges", term="", lang="", start=None, end=None, limit=None, report=ranged_report,
        sample_size=5, seed=SEED, make_facts=lambda f: f,
    )  # fmt: skip

    for out, found, found_report in (
        (tmp_path / "serial", facts, report),
        (tmp_path / "ranges", ranged, ranged_report),
    ):
        for name in PASS_OUTPUTS:
            if name != "summarised.json":
                assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), (out, name)
        assert found["num_tweets"] == expected["num_tweets"] == 600
        assert (found_report.duplicates, found_report.bad_lines) == (
            expected_report.duplicates,
            expected_report.bad_lines,
        )
        # Each bad line is named by the file it came from and its line there.
        named = {(name, line) for name, line, _ in found_report.problems}
        assert ("piece0.jsonl", 11) in named and len(named) == expected_report.bad_lines
        sizes = {f"piece{n}.jsonl": b - a for n, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False))}
        assert all(name in sizes and 1 <= line <= sizes[name] for name, line in named), named


def test_posts_a_recheck_found_gone_are_left_out_in_one_pass_and_in_ranges(tmp_path):
    raw = imported(tmp_path, troubled_archive(tmp_path / "t.jsonl"))
    ids = [post.id for post in iter_collection(raw, report=ImportReport())]
    gone = frozenset(ids[::7])
    report = ImportReport()
    summarise_posts(iter_collection(raw, report=report, unavailable=gone), tmp_path / "serial", sample_size=5,
                    seed=SEED, make_facts=lambda f: f)  # fmt: skip
    ranged_report = ImportReport()
    parallel.summarise_parts(
        parallel.plan_parts([raw], processes=3, min_bytes=0), tmp_path / "ranges", term="", lang="", start=None,
        end=None, limit=None, report=ranged_report, sample_size=5, seed=SEED, make_facts=lambda f: f,
        unavailable=gone,
    )  # fmt: skip
    for out in (tmp_path / "serial", tmp_path / "ranges"):
        kept = (out / "tweet-ids.txt").read_text().split()
        assert kept == [i for i in ids if i not in gone]
    assert report.unavailable == ranged_report.unavailable == len(gone)
    assert "left out" in report.summary() and "no longer gives" in report.summary()


def test_each_raw_file_keeps_its_own_limit_in_one_pass_and_in_ranges(tmp_path):
    """A refresh collects up to the search's count again: each collection's limit is its own."""
    raws = []
    for number in range(3):
        raw = tmp_path / f"run{number}" / "tweets.jsonl"
        copy_archive([troubled_archive(tmp_path / f"piece{number}.jsonl", posts=200)], raw)
        raws.append(raw)
    limits = [120, None, 35]  # the same synthetic posts in each file: later files add what is new
    report = ImportReport()
    posts = iter_collection(raws, report=report, limit=limits)
    summarise_posts(posts, tmp_path / "serial", sample_size=5, seed=SEED, make_facts=lambda f: f)
    ranged_report = ImportReport()
    parallel.summarise_parts(
        parallel.plan_parts(raws, processes=6, min_bytes=0), tmp_path / "ranges", term="", lang="", start=None,
        end=None, limit=dict(zip(raws, limits, strict=True)), report=ranged_report, sample_size=5, seed=SEED,
        make_facts=lambda f: f,
    )  # fmt: skip
    serial_ids = (tmp_path / "serial" / "tweet-ids.txt").read_text().split()
    assert len(serial_ids) == 200  # 120 from the first, the other 80 from the second, none new in the third
    for name in PASS_OUTPUTS:
        if name != "summarised.json":
            assert (tmp_path / "ranges" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name
    assert ranged_report.duplicates == report.duplicates
