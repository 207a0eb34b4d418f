"""retweeted-posts.csv: the time, author and full text of each post of retweets.csv, in its order,
from the original itself or the copy a retweet embeds; exact in bounded memory and across ranges.

Hand-made collection of tests/pipeline_helpers.py (SYNTHETIC) in three formats, the real
fixtures (test data only), and generated events checked against a plain reading of the rule.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline import summarise, tally
from pipeline.contract import BY_NAME, RETWEETED_POSTS, RETWEETS, Access
from pipeline.records import Post
from pipeline.runner import build_workflow
from pipeline.summarise import Sample, SummaryPass
from pipeline.tally import Tally

from .pipeline_helpers import T1, T3, WRITERS, archive_search, read_rows
from .test_parallel_summarise import imported, serial


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source_format", ["v1", "v2", "twarc2"])
def test_each_retweeted_post_has_its_time_author_and_full_text(tmp_path, settings, source_format):
    settings.DNFLOW_FETCH_PHOTOS = False
    search = archive_search(WRITERS[source_format](tmp_path / "archive.jsonl"))
    assert build_workflow(search).ok
    folder = search.folder_path
    assert [row[0] for row in read_rows(folder / RETWEETS)] == ["tweet_id", "999", "1001", "1003"]
    assert read_rows(folder / RETWEETED_POSTS) == [
        ["tweet_id", "created_at", "user", "text"],
        # dave's 999 is not in the collection: the copy Bob's retweet 1005 embeds.
        ["999", "2022-12-31T08:00:00+00:00", "dave", "old news"],
        # 1001's highest count (6) is on Bob's retweet 1002: its copy, whole (v2 cut the retweet's text).
        ["1001", "2023-01-01T10:00:00+00:00", "alice", T1],
        ["1003", "2023-01-02T09:00:00+00:00", "carol", T3],
    ]


def test_the_post_text_file_is_private_and_not_packaged():
    assert BY_NAME[RETWEETED_POSTS].access == Access.PRIVATE and not BY_NAME[RETWEETED_POSTS].packaged


def test_the_top_retweeted_post_of_the_real_fixture_has_its_text_and_author(tmp_path, real_data):
    raw = imported(tmp_path, real_data / "v2-pages-twarc-network.jsonl")
    serial(raw, tmp_path / "out")
    ids = read_rows(tmp_path / "out" / RETWEETS)[1:]
    rows = read_rows(tmp_path / "out" / RETWEETED_POSTS)[1:]
    assert [row[0] for row in rows] == [row[0] for row in ids] and len(rows) == 100
    top = rows[0]
    assert top[:3] == ["1268422690336935943", "2020-06-04T06:01:50+00:00", "BTS_twt"]
    assert top[3].startswith("우리는 인종차별에 반대합니다.") and "#BlackLivesMatter" in top[3]
    assert not top[3].startswith("RT @") and not top[3].endswith("…")
    # Most of the hundred are found (the rest were deleted or suspended: missing from includes).
    assert sum(1 for row in rows if row[2] and row[3]) >= 90


def test_flat_and_paged_forms_of_the_same_posts_give_the_same_file(tmp_path, real_data):
    for name in ("twarc2-flat.jsonl", "v2-pages-noflat.jsonl"):
        serial(imported(tmp_path / name, real_data / name), tmp_path / name / "out")
    flat, paged = (tmp_path / name / "out" / RETWEETED_POSTS for name in ("twarc2-flat.jsonl", "v2-pages-noflat.jsonl"))
    assert flat.read_bytes() == paged.read_bytes()
    assert len(read_rows(flat)) > 10


# --- Exact in bounded memory -------------------------------------------------------------------

EVENTS = st.lists(
    st.tuples(
        st.integers(1, 12),  # the original
        st.integers(0, 6),  # the retweet count the post carries
        st.sampled_from(["own", "copy", "copy", "no copy"]),  # the original itself, or a retweet
        st.integers(0, 3),  # which snapshot of the original a retweet embeds
    ),
    max_size=80,
)


def _posts(events) -> list[Post]:
    posts, seen_own = [], set()
    for number, (original, count, kind, snapshot) in enumerate(events):
        if kind == "own":
            if original in seen_own:  # the collection holds a post once
                continue
            seen_own.add(original)
            posts.append(
                Post(str(original), created_at="2023-01-01T00:00:00+00:00", user="o", text="own", retweet_count=count)
            )
        else:
            copy = kind == "copy"
            posts.append(
                Post(
                    str(1000 + number),
                    retweet_count=count,
                    retweeted_id=str(original),
                    retweeted_created_at=f"2023-01-01T00:00:0{snapshot}+00:00" if copy else "",
                    retweeted_user=f"user{snapshot}" if copy else "",
                    retweeted_text=f"=text {snapshot}" if copy else "",
                )
            )
    return posts


def _expected(posts: list[Post]) -> list[tuple[str, str, str, str]]:
    """The rule, read plainly: the copy of the first post carrying the highest count, the
    original itself if it is one of them."""
    highest: dict[str, int] = {}
    for post in posts:
        if post.retweet_count:
            original = post.original_id
            highest[original] = max(highest.get(original, 0), post.retweet_count)
    rows = []
    for original, _count in Tally(retweets=highest).top_retweets():
        carriers = [p for p in posts if p.original_id == original and p.retweet_count == highest[original]]
        own = [p for p in carriers if not p.retweeted_id]
        copies = [p for p in carriers if p.retweeted_id and p.retweeted_text]
        if own:
            rows.append((original, own[0].created_at, own[0].user, own[0].text))
        elif copies:
            rows.append((original, copies[0].retweeted_created_at, copies[0].retweeted_user, copies[0].retweeted_text))
        else:
            rows.append((original, "", "", ""))
    return rows


def _tally_of(posts: list[Post]) -> Tally:
    one = SummaryPass(io.BytesIO(), io.BytesIO(), io.BytesIO(), io.BytesIO(), Sample(0, "x"))
    one.add_all(posts)
    return one.tally()


@settings(max_examples=200, deadline=None)
@given(events=EVENTS, cuts=st.lists(st.integers(0, 80), max_size=5), candidates=st.integers(0, 8))
@example(events=[(1, 5, "copy", 0), (1, 5, "own", 0)], cuts=[1], candidates=0)  # the original, in a later range
@example(events=[(1, 5, "no copy", 0), (1, 5, "copy", 1), (1, 5, "copy", 2)], cuts=[1, 2], candidates=0)
def test_cut_candidates_and_ranges_keep_the_copies_exact(events, cuts, candidates):
    posts = _posts(events)
    saved = tally.RETWEET_CANDIDATES, tally.RETWEETS_TOP, summarise.BATCH_POSTS
    # A top of 5, candidates cut back after `candidates`, after every 3 posts.
    tally.RETWEET_CANDIDATES, tally.RETWEETS_TOP, summarise.BATCH_POSTS = candidates, 5, 3
    try:
        bounds = sorted({0, len(posts), *(min(cut, len(posts)) for cut in cuts)})
        merged = Tally()
        for start, end in zip(bounds, bounds[1:], strict=False):
            merged.merge(_tally_of(posts[start:end]))
        top = merged.top_retweets()
        assert merged.retweeted_posts(top) == _expected(posts)
        assert len(merged.originals) <= max(candidates, 5) + 1
    finally:
        tally.RETWEET_CANDIDATES, tally.RETWEETS_TOP, summarise.BATCH_POSTS = saved
