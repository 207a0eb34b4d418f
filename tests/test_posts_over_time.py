"""posts-over-time.csv and pipeline.timeline: a bucket that follows the span, a complete series,
counts that stay exact when rolled up to bound memory, and several series on one grid.

The collections are SYNTHETIC (made up here, or pipeline.sample's generator) and the real fixture
v2-pages-twarc-network.jsonl (test data only).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import summarise, timeline
from pipeline.contract import POSTS_OVER_TIME
from pipeline.records import Post
from pipeline.runner import build_workflow
from pipeline.summarise import Sample, SummaryPass
from pipeline.tally import Tally
from pipeline.timeline import (
    DAY,
    HOUR,
    MINUTE,
    MONTH,
    TEN_MINUTES,
    WEEK,
    YEAR,
    Series,
    choose_bucket,
    common_grid,
    read_series,
    series,
)

from .pipeline_helpers import WRITERS, Spec, archive_search, read_rows, v1_tweet
from .test_parallel_summarise import imported, in_ranges, serial, troubled_archive

T0 = datetime(2023, 5, 17, 13, 7, 42, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("span", "bucket"),
    [
        (timedelta(0), MINUTE),
        (timedelta(minutes=12), MINUTE),
        (timedelta(minutes=150), MINUTE),
        (timedelta(hours=5), TEN_MINUTES),
        (timedelta(hours=30), TEN_MINUTES),
        (timedelta(days=3), HOUR),
        (timedelta(days=60), DAY),
        (timedelta(days=700), WEEK),
        (timedelta(days=3650), MONTH),
        (timedelta(days=365 * 40), YEAR),
    ],
)
def test_the_bucket_follows_the_span_so_a_chart_has_at_most_200_bars(span, bucket):
    assert choose_bucket(T0, T0 + span) == bucket
    assert timeline.bars(T0, T0 + span, bucket) <= timeline.MAX_BARS or bucket == YEAR
    if span >= timedelta(minutes=12):
        assert timeline.bars(T0, T0 + span, bucket) >= 12  # a chart, not a couple of bars


def test_a_series_is_complete_with_empty_buckets_as_zero_and_round_starts():
    counts = {T0: 2, T0 + timedelta(days=2, hours=3): 1, T0 + timedelta(days=2, hours=3, minutes=5): 4}
    one = series(counts)
    assert one.bucket == HOUR
    assert one.points[0] == (datetime(2023, 5, 17, 13, tzinfo=UTC), 2)
    assert one.points[-1] == (datetime(2023, 5, 19, 16, tzinfo=UTC), 5)
    assert len(one.points) == 52 and one.total == 7
    assert all(b - a == timedelta(hours=1) for (a, _), (b, _) in zip(one.points, one.points[1:], strict=False))


def test_weeks_start_on_monday_and_months_roll_over_the_year():
    assert timeline.floor(T0, WEEK) == datetime(2023, 5, 15, tzinfo=UTC)
    assert timeline.following(datetime(2023, 12, 1, tzinfo=UTC), MONTH) == datetime(2024, 1, 1, tzinfo=UTC)
    assert timeline.floor(T0, TEN_MINUTES) == datetime(2023, 5, 17, 13, 0, tzinfo=UTC)
    assert timeline.floor(T0 + timedelta(minutes=5), TEN_MINUTES) == datetime(2023, 5, 17, 13, 10, tzinfo=UTC)
    assert timeline.key_start("2023-05-17T13:1") == datetime(2023, 5, 17, 13, 10, tzinfo=UTC)
    assert timeline.key_start("2023-05") == datetime(2023, 5, 1, tzinfo=UTC)


def test_rolling_up_never_goes_coarser_than_the_bucket_the_span_calls_for():
    # More than TIMELINE_KEYS keys at a level means more than MAX_BARS bars at it (and at weeks,
    # for days): the rule that keeps the rolled-up counts exact.
    assert timeline.TIMELINE_KEYS >= 7 * timeline.MAX_BARS


MOMENTS = st.integers(min_value=0, max_value=3 * 365 * 24 * 60).map(lambda minutes: T0 + timedelta(minutes=minutes))
SPANS = st.sampled_from([30, 400, 5000, 100_000, 3 * 365 * 24 * 60])


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=150),
    span=SPANS,
    seconds=st.lists(st.integers(0, 59), min_size=1, max_size=150),
    cuts=st.lists(st.integers(0, 150), max_size=3),
    max_bars=st.integers(2, 6),
)
def test_counts_rolled_up_in_parts_give_the_series_of_every_time(offsets, span, seconds, cuts, max_bars):
    """The pass counts minutes and rolls them up past a bound; ranges merge. With tiny bounds the
    file must still be the complete series of the times themselves, in the bucket their span
    calls for."""
    times = [
        T0 + timedelta(minutes=offset * span // 1000, seconds=s)
        for offset, s in zip(offsets, seconds * 150, strict=False)
    ]
    original_bars, original_keys = timeline.MAX_BARS, timeline.TIMELINE_KEYS
    timeline.MAX_BARS, timeline.TIMELINE_KEYS = max_bars, 7 * max_bars
    try:
        expected = series(Counter(times))
        bounds = sorted({0, len(times), *(min(cut, len(times)) for cut in cuts)})
        merged = Tally()
        for start, end in zip(bounds, bounds[1:], strict=False):
            part = Tally()
            for moment in times[start:end]:
                part.merge_times(Counter([moment.isoformat()[:16]]), 16)
            merged.merge(part)
        assert len(merged.times) <= timeline.TIMELINE_KEYS
        assert merged.over_time() == expected
    finally:
        timeline.MAX_BARS, timeline.TIMELINE_KEYS = original_bars, original_keys


def test_memory_for_a_collection_spanning_years_stays_bounded():
    """A post every 3 minutes for 3 years: a million minutes, held as at most TIMELINE_KEYS keys."""
    pass_ = SummaryPass(io.BytesIO(), io.BytesIO(), io.BytesIO(), io.BytesIO(), Sample(0, "x"))
    start = datetime(2020, 1, 1, tzinfo=UTC)
    posts = (Post(str(n), created_at=(start + timedelta(minutes=3 * n)).isoformat()) for n in range(3 * 175_200))
    pass_.add_all(posts)
    tally = pass_.tally()
    assert len(tally.times) <= timeline.TIMELINE_KEYS and tally.time_level == 10  # days
    over = tally.over_time()
    assert over.bucket == WEEK and over.total == 3 * 175_200 and 150 <= len(over.points) <= 200


def test_common_grid_puts_series_of_different_buckets_on_one_axis_with_shares():
    minutes = series({T0: 3, T0 + timedelta(minutes=40): 1})
    hours = series({T0 + timedelta(hours=5): 10, T0 + timedelta(hours=9): 30}, bucket=HOUR)
    assert (minutes.bucket, hours.bucket) == (MINUTE, HOUR)
    grid = common_grid({"small": minutes, "large": hours, "empty": Series(DAY, ())})
    assert grid.bucket == HOUR and grid.exact
    assert grid.starts[0] == datetime(2023, 5, 17, 13, tzinfo=UTC) and len(grid.starts) == 10
    assert grid.counts["small"][:2] == (4, 0) and grid.counts["large"][5] == 10 and sum(grid.counts["large"]) == 40
    assert grid.shares["large"][-1] == 0.75 and grid.shares["small"][0] == 1.0
    assert grid.counts["empty"] == (0,) * 10 and sum(grid.shares["empty"]) == 0

    weeks = series({T0: 1, T0 + timedelta(days=600): 1})
    months = series({T0: 1, T0 + timedelta(days=3000): 1})
    assert (weeks.bucket, months.bucket) == (WEEK, MONTH)
    mixed = common_grid({"weeks": weeks, "months": months})
    assert mixed.bucket == MONTH and not mixed.exact  # weeks straddle months


def test_a_series_file_reads_back_with_its_bucket(tmp_path):
    one = series({T0: 2, T0 + timedelta(hours=20): 5})
    path = tmp_path / POSTS_OVER_TIME
    path.write_text(
        "bucket_start,count\r\n" + "".join(f"{start},{count}\r\n" for start, count in timeline.csv_rows(one))
    )
    assert read_series(path) == one
    assert read_series(tmp_path / "missing.csv") is None


# --- The file the pass writes ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source_format", ["v1", "v2", "twarc2"])
def test_the_workflow_writes_a_complete_hourly_series_for_two_days(tmp_path, settings, source_format):
    settings.DNFLOW_FETCH_PHOTOS = False
    search = archive_search(WRITERS[source_format](tmp_path / "archive.jsonl"))
    assert build_workflow(search).ok
    rows = read_rows(search.folder_path / POSTS_OVER_TIME)
    # 2023-01-01 10:00 to 2023-01-03 00:00: 39 hours (hand-counted), posts at 10, 11, 33, 36, 38.
    assert rows[0] == ["bucket_start", "count"]
    assert len(rows) == 1 + 39
    assert rows[1] == ["2023-01-01T10:00:00+00:00", "1"] and rows[-1] == ["2023-01-03T00:00:00+00:00", "1"]
    assert [row[0][11:13] for row in rows[1:] if row[1] == "1"] == ["10", "11", "09", "12", "00"]
    assert sum(int(row[1]) for row in rows[1:]) == 5
    summary = json.loads((search.folder_path / "summary.json").read_text())
    assert len(summary["timeline"]) == 5  # summary.json keeps its hours with posts, as before


@pytest.mark.django_db(transaction=True)
def test_a_twelve_minute_collection_gets_minute_buckets(tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = False
    lines = []
    for n in range(40):
        when = (datetime(2024, 3, 1, 9, 58) + timedelta(seconds=18 * n)).isoformat()
        lines.append(json.dumps(v1_tweet(Spec(str(9000 + n), "alice", 1, 1, when, f"post {n}"))))
    archive = tmp_path / "twelve-minutes.jsonl"
    archive.write_text("\n".join(lines) + "\n")
    search = archive_search(archive)
    assert build_workflow(search).ok
    rows = read_rows(search.folder_path / POSTS_OVER_TIME)[1:]
    # 09:58:00 to 10:09:42: the minutes 09:58 to 10:09, twelve bars, 10/3 posts a minute.
    assert [row[0] for row in rows][:3] == [
        "2024-03-01T09:58:00+00:00",
        "2024-03-01T09:59:00+00:00",
        "2024-03-01T10:00:00+00:00",
    ]
    assert len(rows) == 12 and sum(int(count) for _, count in rows) == 40


def test_the_real_fixture_spans_half_an_hour_in_minutes(tmp_path, real_data):
    raw = imported(tmp_path, real_data / "v2-pages-twarc-network.jsonl")
    serial(raw, tmp_path / "out")
    over = read_series(tmp_path / "out" / POSTS_OVER_TIME)
    assert over.bucket == MINUTE and over.total == 500
    assert over.points[0][0] == datetime(2021, 6, 26, 19, 22, tzinfo=UTC)
    assert 20 <= len(over.points) <= 200


@pytest.mark.parametrize("processes", [2, 3])
def test_ranges_with_tiny_timeline_bounds_write_the_file_of_one_pass(tmp_path, monkeypatch, processes):
    """About 2.5 hours of SYNTHETIC posts; with at most 4 bars and 28 keys, every range rolls its
    minutes up, and so does the merge."""
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    monkeypatch.setattr(timeline, "MAX_BARS", 4)
    serial(raw, tmp_path / "serial")
    monkeypatch.setattr(timeline, "TIMELINE_KEYS", 28)
    monkeypatch.setattr(summarise, "BATCH_POSTS", 10)
    in_ranges(raw, tmp_path / "parallel", processes)
    expected = (tmp_path / "serial" / POSTS_OVER_TIME).read_bytes()
    assert (tmp_path / "parallel" / POSTS_OVER_TIME).read_bytes() == expected
    assert read_series(tmp_path / "serial" / POSTS_OVER_TIME).bucket == HOUR
