"""The summary pass is exact in memory that does not grow with the collection.

pipeline.idset.SeenIds keeps a bounded set of ids in memory and spills the rest to sorted runs
on disk, behind a Bloom filter; the pass keeps only the candidates for retweets.csv; distinct
hashtags, mentions, URLs, photos and authors beyond a bound go to a SQLite CountStore. These
tests shrink the bounds to a handful, so that every spill, merge, filter lookup, cut and store
happens on small archives, and check the answers against plain sets and dicts, and the files
against a pass with the default bounds. Archives are SYNTHETIC (pipeline.sample's generator)
with hand-placed duplicates.
"""

from __future__ import annotations

import pickle
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import idset, tally, timeline
from pipeline.idset import SPILL_FOLDER, SeenIds, id_key
from pipeline.tally import Tally, prune_retweets

from .formats_helpers import import_files, v1_tweet, write_jsonl
from .test_parallel_summarise import assert_same_files, imported, in_ranges, serial, troubled_archive

QUICK = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Ids as archives hold them: X's numbers, and what a hand-edited or foreign file may hold instead.
ID_TEXTS = st.one_of(
    st.integers(min_value=0, max_value=60).map(str),  # small numbers: many repeats
    st.integers(min_value=10**17, max_value=10**17 + 40).map(str),
    st.sampled_from(["012", "12", "0", "00", "١٢", "9223372036854775807", "9223372036854775808", "abc", "-5", ""]),
)


@QUICK
@given(ids=st.lists(ID_TEXTS, max_size=300), memory_ids=st.integers(min_value=1, max_value=9))
def test_seen_ids_answer_as_a_set_of_the_texts_would(tmp_path, ids, memory_ids):
    seen = SeenIds(tmp_path, memory_ids=memory_ids)
    plain: set[str] = set()
    try:
        for post_id in ids:
            assert seen.add(post_id) == (post_id not in plain), post_id
            plain.add(post_id)
            assert len(seen._recent) < memory_ids, "the set in memory never reaches its bound"
        assert all(post_id in seen for post_id in plain)
        assert sorted(map(str, seen)) == sorted(map(str, map(id_key, plain)))
    finally:
        seen.close()
    assert not (tmp_path / SPILL_FOLDER).exists(), "close() leaves nothing on disk"


def test_ids_that_read_as_the_same_number_are_different_posts(tmp_path):
    seen = SeenIds(tmp_path, memory_ids=2)
    for post_id in ["12", "012", "١٢", "+12", "12 "]:
        assert seen.add(post_id), f"{post_id!r} is a post of its own"
    assert not seen.add("012") and not seen.add("12")
    seen.close()


def test_an_archive_keeps_posts_whose_ids_differ_only_in_a_leading_zero(tmp_path):
    archive = write_jsonl(
        tmp_path / "ids.jsonl",
        [v1_tweet("12", "twelve"), v1_tweet("012", "zero twelve"), v1_tweet("12", "twelve again")],
    )
    posts, report = import_files([archive], tmp_path / "raw" / "tweets.jsonl")
    assert [(post.id, post.text) for post in posts] == [("12", "twelve"), ("012", "zero twelve")]
    assert report.duplicates == 1


def test_a_duplicate_after_many_spills_is_found_through_the_filter_and_the_runs(tmp_path):
    base = 1_700_000_000_000_000_000
    seen = SeenIds(tmp_path, memory_ids=1000)
    for number in range(50_000):
        assert seen.add(str(base + number * 7))
    # 50 runs of 1,000 were written; runs of equal size are merged, binary-counter style: 32+16+2.
    assert [run.length for run in seen._runs] == [32_000, 16_000, 2_000]
    assert not seen.add(str(base)) and not seen.add(str(base + 49_999 * 7))
    # Ids never added: the filter says no for nearly all, and a "maybe" is checked in the runs.
    assert sum(seen.add(str(base + number * 7 + 3)) for number in range(20_000)) == 20_000
    seen.close()


@QUICK
@given(
    first=st.lists(ID_TEXTS, max_size=120),
    second=st.lists(ID_TEXTS, max_size=120),
    memory_ids=st.integers(min_value=1, max_value=6),
)
def test_a_range_s_ids_travel_and_meet_another_s(tmp_path, first, second, memory_ids):
    """The parallel pass sends each range's SeenIds to the parent (pickled, without its filter),
    which finds the ids two ranges share; a re-read range gets such a SeenIds to go on with."""
    one, two = SeenIds(tmp_path, memory_ids=memory_ids), SeenIds(tmp_path, memory_ids=memory_ids)
    for post_id in first:
        one.add(post_id)
    for post_id in second:
        two.add(post_id)
    # Pickled as multiprocessing sends a range's result: our own bytes, never outside input.
    sent_one = pickle.loads(pickle.dumps(one))  # noqa: S301
    sent_two = pickle.loads(pickle.dumps(two))  # noqa: S301
    shared = list(sent_two.common(sent_one))
    assert sorted(map(str, shared)) == sorted(str(id_key(post_id)) for post_id in set(first) & set(second))
    for post_id in set(first) | {"777", "0777", "x"}:
        assert (post_id in sent_one) == (post_id in first), post_id
        assert sent_one.add(post_id) == (post_id not in first), post_id
    for seen in (sent_one, sent_two, two, one):
        seen.close()
    idset.remove_spill_folder(tmp_path)
    assert not (tmp_path / SPILL_FOLDER).exists()


@pytest.fixture
def tiny_bounds(monkeypatch):
    """Every SeenIds spills after 7 ids, retweets are cut back after 3 originals, distinct
    hashtags, mentions, URLs, photos and authors go to a CountStore past 5, and the minutes of
    the timeline are rolled up past 28 (for charts of at most 4 bars; forked range processes
    inherit this)."""
    monkeypatch.setattr(idset, "MEMORY_IDS", 7)
    monkeypatch.setattr(tally, "RETWEET_CANDIDATES", 3)
    monkeypatch.setattr(tally, "MEMORY_KEYS", 5)
    monkeypatch.setattr(timeline, "MAX_BARS", 4)
    monkeypatch.setattr(timeline, "TIMELINE_KEYS", 28)


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_tiny_bounds_write_the_very_files_of_the_default_ones(tmp_path, tiny_bounds, monkeypatch, processes):
    raw = imported(tmp_path, troubled_archive(tmp_path / "troubled.jsonl"))
    with monkeypatch.context() as default:
        default.setattr(idset, "MEMORY_IDS", 1 << 16)
        default.setattr(tally, "RETWEET_CANDIDATES", 10_000)
        default.setattr(tally, "MEMORY_KEYS", 50_000)
        default.setattr(timeline, "TIMELINE_KEYS", 10_000)  # MAX_BARS stays 4: the same chart
        expected_facts, expected_report = serial(raw, tmp_path / "expected")

    if processes == 1:
        facts, report = serial(raw, tmp_path / "bounded")
    else:
        facts, report = in_ranges(raw, tmp_path / "bounded", processes)

    assert_same_files(tmp_path / "expected", tmp_path / "bounded")
    assert (facts, report) == (expected_facts, expected_report)
    assert report.duplicates == 3 and facts["num_tweets"] == 300
    assert (tmp_path / "expected" / "retweets.csv").read_text().count("\n") > 5, "retweets.csv is not trivial"
    assert not (raw.parent / SPILL_FOLDER).exists() and not (tmp_path / "bounded" / SPILL_FOLDER).exists()


def test_a_search_run_twice_over_its_own_ids_drops_the_second_copy_when_spilled(tmp_path, tiny_bounds):
    """An archive merged with itself (a common mistake): every post of the second copy is a
    duplicate, found in the runs on disk, in one pass and in ranges."""
    archive = troubled_archive(tmp_path / "troubled.jsonl", posts=200)
    raw = imported(tmp_path, archive, archive)
    facts, report = serial(raw, tmp_path / "serial")
    parallel_facts, parallel_report = in_ranges(raw, tmp_path / "parallel", 2)
    assert facts["num_tweets"] == parallel_facts["num_tweets"] == 200
    assert report.duplicates == parallel_report.duplicates == 3 + 203
    assert_same_files(tmp_path / "serial", tmp_path / "parallel")


def _true_top(events: list[tuple[str, int]]) -> list[tuple[str, int]]:
    highest: dict[str, int] = {}
    for original, count in events:
        highest[original] = max(count, highest.get(original, 0))
    return Tally(retweets={k: v for k, v in highest.items() if v > 0}).top_retweets()


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.sampled_from([str(n) for n in range(1, 400)] + ["9", "90", "x"]), st.integers(0, 30)),
        max_size=600,
    ),
    cuts=st.lists(st.integers(0, 600), max_size=4),
    candidates=st.integers(0, 150),
)
def test_cutting_retweets_back_keeps_retweets_csv_exact(events, cuts, candidates):
    """The pass keeps only the current top of retweets and cuts the rest; parts (ranges) are
    merged afterwards. The hundred rows must be those of keeping everything."""
    original_candidates = tally.RETWEET_CANDIDATES
    tally.RETWEET_CANDIDATES = candidates
    try:
        bounds = sorted({0, len(events), *(min(cut, len(events)) for cut in cuts)})
        merged = Tally()
        for start, end in zip(bounds, bounds[1:], strict=False):
            part: dict[str, int] = {}
            for original, count in events[start:end]:
                if count > part.get(original, 0):
                    part[original] = count
                    prune_retweets(part)
            merged.merge(Tally(retweets=part))
        assert merged.top_retweets() == _true_top(events)
    finally:
        tally.RETWEET_CANDIDATES = original_candidates


def test_retweet_candidates_stay_bounded_on_a_long_pass():
    rng = random.Random(5)
    part: dict[str, int] = {}
    for number in range(200_000):
        original = str(number)
        part[original] = rng.randint(1, 10_000)
        prune_retweets(part)
        assert len(part) <= tally.RETWEET_CANDIDATES + 1


KEYS = st.text(min_size=0, max_size=6)  # any text: case, accents, emoji, control characters
SNAPSHOTS = st.tuples(st.one_of(st.none(), st.integers(0, 10**9)), st.one_of(st.none(), st.integers(0, 10**6)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.dictionaries(st.sampled_from(tally.COUNTED), st.dictionaries(KEYS, st.integers(1, 5), max_size=12)),
    authors=st.dictionaries(KEYS, SNAPSHOTS, max_size=12),
    later_authors=st.dictionaries(KEYS, SNAPSHOTS, max_size=6),
)
def test_counts_read_back_from_disk_in_the_order_they_have_in_memory(tmp_path, counts, authors, later_authors):
    """Count files come from SQLite once the keys outgrow memory: its order (count, then key as
    UTF-8 bytes; followers / following as doubles) must be Python's, and a later snapshot wins."""

    def made() -> Tally:
        made = Tally(authors=dict(authors))
        for kind, values in counts.items():
            getattr(made, kind).update(values)
        return made

    in_memory, spilled = made(), made()
    spilled.spill(tmp_path / "spill")
    in_memory.authors.update(later_authors)
    spilled.authors.update(later_authors)  # newer than the store: read together, they must win
    try:
        for kind in tally.COUNTED:
            assert list(spilled.count_rows(kind)) == list(in_memory.count_rows(kind)), kind
        assert list(spilled.followers_rows()) == list(in_memory.followers_rows())
        assert list(spilled.ratio_rows()) == list(in_memory.ratio_rows())
        assert spilled.facts() == in_memory.facts()
    finally:
        spilled.store.close()
