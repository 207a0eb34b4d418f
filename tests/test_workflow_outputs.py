"""Every output file of a search, checked against values worked out by hand, in each input format.

The collection (tests/pipeline_helpers.py) is five distinct posts plus a duplicate, written as
v1.1 lines, v2 response pages and twarc2 flattened lines; whatever the format, the files must say
the same. The expected rows below were counted by hand from the table in pipeline_helpers.
"""

from __future__ import annotations

import json

import pytest

import dnflow_site
from pipeline.runner import build_workflow
from pipeline.summarise import write_sample
from searches.models import EventKind

from .formats_helpers import tweets_js_item, write_tweets_js
from .pipeline_helpers import P1, P2, T1, T3, WRITERS, archive_search, read_rows

pytestmark = pytest.mark.django_db(transaction=True)

T4_NEUTRALISED = "'@carol =SUM(A1) agreed #energy"  # a spreadsheet must not run it

EXPECTED_COUNTS = {
    "count-hashtags.csv": [["hashtag", "count"], ["energy", "4"], ["climate", "2"]],
    # Bob is mentioned by 1001 and by its retweet 1002; the duplicate 1001 does not count.
    "count-mentions.csv": [["screen_name", "count"], ["bob", "2"], ["alice", "1"], ["carol", "1"], ["dave", "1"]],
    # Not lower-cased; ties by key: "http:" sorts before "https:". v2's own-media links are not URLs.
    "count-urls.csv": [
        ["url", "count"],
        ["https://Example.com/A", "2"],
        ["http://other.org/x", "1"],
        ["https://example.com:8080/b", "1"],
    ],
    "count-domains.csv": [["domain", "count"], ["example.com", "2"], ["example.com:8080", "1"], ["other.org", "1"]],
    # The retweet 1002 counts its original's photo; 1003's video thumbnail is not a photo.
    "count-media.csv": [["url", "file", "count"], [P1, "p1.jpg", "2"], [P2, "p2.png", "1"]],
    # Latest snapshots: alice 120 (1004, not the duplicate's 999), Bob 11 (1005).
    "count-followers.csv": [["user", "followers"], ["alice", "120"], ["Bob", "11"], ["carol", "3"]],
    # 120/40 and 3/7; Bob follows nobody and is left out.
    "follow-ratio.csv": [["user", "ratio"], ["alice", "3.0"], ["carol", "0.42857142857142855"]],
    # 999 (via 1005) and 1001 (via 1002, higher than its own 5) tie at 6: by id as a number.
    "retweets.csv": [["tweet_id", "count"], ["999", "6"], ["1001", "6"], ["1003", "2"]],
    "edgelist-hashtags.csv": [
        ["user", "hashtag"],
        ["alice", "climate"],
        ["alice", "energy"],
        ["Bob", "climate"],
        ["Bob", "energy"],
        ["carol", "energy"],
        ["alice", "energy"],
    ],
    "edgelist-mentions.csv": [
        ["from_user", "to_user"],
        ["alice", "Bob"],
        ["Bob", "alice"],
        ["Bob", "Bob"],
        ["alice", "carol"],
        ["Bob", "dave"],
    ],
}

TWEET_HEADER = [
    "id",
    "created_at",
    "user",
    "text",
    "lang",
    "retweet_count",
    "like_count",
    "reply_count",
    "quote_count",
    "is_retweet",
    "retweeted_id",
    "quoted_id",
    "in_reply_to_id",
    "hashtags",
    "mentions",
    "urls",
    "photos",
    "source_format",
]


def expected_tweets(source_format: str) -> list[list[str]]:
    f = source_format
    return [
        TWEET_HEADER,
        ["1001", "2023-01-01T10:00:00+00:00", "alice", T1, "en", "5", "2", "1", "1", "false", "", "", "",
         "Climate energy", "Bob", "https://Example.com/A", P1, f],
        ["1002", "2023-01-01T11:30:00+00:00", "Bob", "RT @alice: " + T1, "en", "6", "0", "0", "0", "true", "1001",
         "", "", "Climate energy", "alice Bob", "https://Example.com/A", P1, f],
        ["1003", "2023-01-02T09:00:00+00:00", "carol", T3, "en", "2", "3", "0", "0", "false", "", "1001", "",
         "ENERGY", "", "https://example.com:8080/b http://other.org/x", P2, f],
        ["1004", "2023-01-02T12:00:00+00:00", "alice", T4_NEUTRALISED, "en", "0", "1", "0", "0", "false", "", "",
         "1003", "energy", "carol", "", "", f],
        ["1005", "2023-01-03T00:00:00+00:00", "Bob", "RT @dave: old news", "en", "6", "0", "0", "0", "true", "999",
         "", "", "", "dave", "", "", f],
    ]  # fmt: skip


@pytest.fixture
def no_photo_downloads(settings):
    # The fixture's photo hosts do not exist here; photo fetching has its own tests.
    settings.DNFLOW_FETCH_PHOTOS = False
    settings.DNFLOW_SAMPLE_SIZE = 10


@pytest.mark.parametrize("source_format", ["v1", "v2", "twarc2"])
def test_every_output_matches_hand_counted_values(source_format, tmp_path, no_photo_downloads):
    archive = WRITERS[source_format](tmp_path / f"archive-{source_format}.jsonl")
    search = archive_search(archive)

    result = build_workflow(search)

    assert result.ok, result.error
    folder = search.folder_path
    for name, rows in EXPECTED_COUNTS.items():
        assert read_rows(folder / name) == rows, name
    assert (folder / "tweet-ids.txt").read_text(encoding="utf-8") == "1001\n1002\n1003\n1004\n1005\n"
    tweets = expected_tweets(source_format)
    assert read_rows(folder / "tweets.csv") == tweets
    # A sample of 10 from 5 posts is all of them, in collection order.
    assert read_rows(folder / "sample.csv") == tweets

    raw_csv = (folder / "tweets.csv").read_bytes()
    assert raw_csv.startswith(b"id,created_at,user,text,")
    assert b'"#ENERGY news\nhttps://t.co/b and https://t.co/c"' in raw_csv  # one quoted record, RFC 4180
    assert raw_csv.count(b"\r\n") == 6  # csv's default line ends: header + 5 records

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert {k: summary[k] for k in ("id", "term", "source", "status", "num_tweets")} == {
        "id": search.search_id,
        "term": "",
        "source": "archive",
        "status": "finished",
        "num_tweets": 5,
    }
    assert summary["first_tweet_at"] == "2023-01-01T10:00:00+00:00"
    assert summary["last_tweet_at"] == "2023-01-03T00:00:00+00:00"
    assert (summary["unique_hashtags"], summary["unique_mentions"], summary["unique_urls"]) == (2, 4, 3)
    assert summary["unique_users"] == 3
    assert summary["dnflow_version"] == dnflow_site.__version__
    assert summary["started"] and summary["finished"]
    assert summary["import"]["duplicates"] == 1
    assert summary["timeline"] == [
        {"time": "2023-01-01T10:00:00+00:00", "count": 1},
        {"time": "2023-01-01T11:00:00+00:00", "count": 1},
        {"time": "2023-01-02T09:00:00+00:00", "count": 1},
        {"time": "2023-01-02T12:00:00+00:00", "count": 1},
        {"time": "2023-01-03T00:00:00+00:00", "count": 1},
    ]
    assert json.loads((folder / "media-graph.json").read_text()) == []
    assert (folder / f"{folder.name}.zip").is_file()
    search.refresh_from_db()
    assert search.num_posts == 5


def test_summary_reports_bad_lines_with_their_line_numbers(tmp_path, no_photo_downloads):
    archive = WRITERS["v1"](tmp_path / "with-bad-line.jsonl", with_bad_line=True)
    search = archive_search(archive)

    assert build_workflow(search).ok

    report = json.loads((search.folder_path / "summary.json").read_text())["import"]
    assert report["bad_lines"] == 1
    assert report["lines_read"] == 7
    assert [(p["file"], p["line"]) for p in report["problems"]] == [("with-bad-line.jsonl", 4)]
    assert "with-bad-line.jsonl line 4" in report["summary"]


def test_sample_is_reproducible_and_redrawn_from_tweets_csv(tmp_path, settings, no_photo_downloads):
    settings.DNFLOW_SAMPLE_SIZE = 3
    search = archive_search(WRITERS["twarc2"](tmp_path / "a.jsonl"))
    assert build_workflow(search).ok
    folder = search.folder_path
    first = (folder / "sample.csv").read_bytes()
    tweets = read_rows(folder / "tweets.csv")
    sample = read_rows(folder / "sample.csv")
    assert sample[0] == tweets[0]
    assert len(sample) == 4 and len({row[0] for row in sample[1:]}) == 3
    # Drawn rows, unchanged and in collection order.
    assert [row for row in tweets[1:] if row in sample[1:]] == sample[1:]

    # Redrawn from tweets.csv alone (the raw posts are gone): the same rows for the same size.
    (folder / "tweets.jsonl").unlink()
    summary_before = json.loads((folder / "summary.json").read_text())
    write_sample(search.folder_path, 2, search_id=search.search_id)
    assert len(read_rows(folder / "sample.csv")) == 3
    # The summaries say the size the sample now has, and nothing else of them changes.
    for name in ("summary.json", "summarised.json"):
        assert json.loads((folder / name).read_text())["sample_size"] == 2
    assert json.loads((folder / "summary.json").read_text()) == summary_before | {"sample_size": 2}
    write_sample(search.folder_path, 3, search_id=search.search_id)
    assert (folder / "sample.csv").read_bytes() == first
    assert json.loads((folder / "summary.json").read_text()) == summary_before


COMPARED = [
    "count-hashtags.csv",
    "count-mentions.csv",
    "count-urls.csv",
    "count-domains.csv",
    "count-media.csv",
    "count-followers.csv",
    "edgelist-hashtags.csv",
    "edgelist-mentions.csv",
    "retweets.csv",
    "follow-ratio.csv",
    "tweet-ids.txt",
]


def test_real_flat_and_page_fixtures_give_byte_identical_files(real_data, no_photo_downloads):
    flat = archive_search(real_data / "twarc2-flat.jsonl")
    pages = archive_search(real_data / "v2-pages-noflat.jsonl")

    assert build_workflow(flat).ok
    assert build_workflow(pages).ok

    for name in COMPARED:
        assert (flat.folder_path / name).read_bytes() == (pages.folder_path / name).read_bytes(), name
    assert len((flat.folder_path / "tweet-ids.txt").read_text().split()) == 100
    assert len(read_rows(flat.folder_path / "count-hashtags.csv")) > 1


def test_a_search_that_fails_after_the_summary_has_no_summary_json(tmp_path, no_photo_downloads):
    search = archive_search(WRITERS["v1"](tmp_path / "posts.jsonl"))
    # A file where the photos' folder must go: the step after the summary fails.
    search.folder_path.mkdir(parents=True)
    (search.folder_path / "media").write_text("not a folder")

    assert not build_workflow(search).ok

    # summary.json is the last file of a run, written after the package: a run that stopped
    # before then has none, so nothing claims a finished search. The pass's own facts are kept.
    assert not (search.folder_path / "summary.json").exists()
    facts = json.loads((search.folder_path / "summarised.json").read_text())
    assert facts["num_tweets"] == 5


@pytest.mark.django_db(transaction=True)
def test_tweets_js_without_its_account_is_counted_but_names_no_author_and_says_why(tmp_path, settings):
    """Twitter's archive names its owner only in data/account.js: a tweets.js imported alone has
    posts without their author. They are counted; no network gets a nameless node; the import says
    why and what to do."""
    settings.DNFLOW_FETCH_PHOTOS = False
    mentioning = tweets_js_item("44", "@friend hello #Archive")
    mentioning["tweet"]["entities"]["user_mentions"] = [{"screen_name": "friend", "indices": ["0", "7"]}]
    archive = write_tweets_js(tmp_path / "tweets.js", [tweets_js_item("43", "#Archive solo"), mentioning])
    run = archive_search(archive)

    assert build_workflow(run).ok
    folder = run.folder_path
    assert read_rows(folder / "count-hashtags.csv")[1:] == [["archive", "2"]]
    assert read_rows(folder / "count-mentions.csv")[1:] == [["friend", "1"]]
    assert read_rows(folder / "edgelist-hashtags.csv")[1:] == []
    assert read_rows(folder / "edgelist-mentions.csv")[1:] == []
    view = json.loads((folder / "networks.json").read_text())
    assert all(node["label"] for network in view.values() for node in network["nodes"])
    imported = json.loads((folder / "summary.json").read_text())["import"]
    assert imported["authorless"] == 2
    assert (
        "2 posts without the author's name (tweets.js names none: Twitter's archive names its owner in "
        "data/account.js; import the archive's folder, or tweets.js and account.js together, to credit them)"
    ) in imported["summary"]
    note = run.events.get(event=EventKind.NOTE, task_family="SummarisePosts")
    assert "tweets.js names none" in note.message
