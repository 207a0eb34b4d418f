"""A purge rewrites a run folder's raw posts whatever form their lines take, and its tables: the gone
posts (and the copies of them other posts carry) go, everything else stays, byte for byte where a
line or row held nothing of them; the reader then sees the same posts less the gone ones. On the
real recorded fixtures, and on hand-made lines for the formats they lack."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from pipeline.contract import RAW_POSTS, SOURCES, TWEETS_CSV
from pipeline.formats import ImportReport, iter_collection, iter_posts
from pipeline.purge import posts_purged_within_limit, purge_folder
from tests.formats_helpers import tweets_js_item, v1_tweet
from tests.purge_helpers import objects_in, post_objects

PURGE = {"record": "search-1-purge/purged-posts.csv", "purged_at": "2026-01-05T10:00:00Z"}


def raw_folder(tmp_path: Path, source: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copyfile(source, folder / RAW_POSTS)
    return folder


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def posts_by_id(raw: Path) -> dict:
    return {post.id: post for post in iter_posts(raw, ImportReport())}


def purge_and_check(folder: Path, gone: set[str]) -> tuple[list[bytes], list[bytes]]:
    """Purge, then what every format must give: same lines, the untouched ones byte for byte, no
    object of a gone post left, the reader's posts less the gone ones; returns (before, after)."""
    raw = folder / RAW_POSTS
    before, posts_before = lines_of(raw), posts_by_id(raw)
    assert gone & set(objects_in(raw)), "the test must purge something that is there"

    changes = purge_folder(folder, gone, purge=PURGE)

    after = lines_of(raw)
    assert len(after) == len(before)  # every other line keeps its number
    for old, new in zip(before, after, strict=True):
        if not gone & set(post_objects(_parsed(old), [])):
            assert new == old
    assert not gone & set(objects_in(raw))
    assert set(posts_by_id(raw)) == set(posts_before) - gone
    note = json.loads((folder / SOURCES).read_text())["purges"][0]["files"][RAW_POSTS]
    assert note["posts_removed"] == changes[RAW_POSTS].posts > 0
    assert note["sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest() and note["bytes"] == raw.stat().st_size
    return before, after


def _parsed(line: bytes):
    try:
        return json.loads(line)
    except ValueError:
        return None


def test_v2_pages_lose_the_gone_posts_from_data_and_includes_and_keep_the_rest(tmp_path, real_data):
    folder = raw_folder(tmp_path, real_data / "v2-pages-noflat.jsonl")
    page = json.loads((folder / RAW_POSTS).read_text())
    in_both = [t["id"] for t in page["includes"]["tweets"] if t["id"] in {p["id"] for p in page["data"]}]
    gone = {*in_both, page["data"][5]["id"]}
    assert len(in_both) == 2

    purge_and_check(folder, gone)

    after = json.loads((folder / RAW_POSTS).read_text())
    expected = json.loads(json.dumps(page))
    expected["data"] = [p for p in page["data"] if p["id"] not in gone]
    expected["includes"]["tweets"] = [t for t in page["includes"]["tweets"] if t["id"] not in gone]
    assert after == expected  # users, media, errors and meta as they were; the other posts untouched


def test_v2_stream_lines_of_gone_posts_are_left_empty_and_a_broken_line_stays(tmp_path, real_data):
    folder = raw_folder(tmp_path, real_data / "v2-stream-broken-last-line.jsonl")
    lines = lines_of(folder / RAW_POSTS)
    gone = {json.loads(lines[1])["data"]["id"], json.loads(lines[4])["data"]["id"]}

    before, after = purge_and_check(folder, gone)

    assert after[1].strip() == b"" and after[4].strip() == b""
    assert after[-1] == before[-1]  # the truncated last line: never a post, left as it was


def test_v1_posts_go_whole_and_the_quoted_copy_a_kept_post_carries_goes_too(tmp_path, real_data):
    folder = raw_folder(tmp_path, real_data / "v1-streaming-lines.jsonl")
    tweets = [json.loads(line) for line in lines_of(folder / RAW_POSTS)]
    quoting = next(t for t in tweets if "quoted_status" in t)
    others = [t["id_str"] for t in tweets if "quoted_status" not in t]
    gone = {others[0], others[3], quoting["quoted_status"]["id_str"]}
    kept_before = posts_by_id(folder / RAW_POSTS)[quoting["id_str"]]

    purge_and_check(folder, gone)

    kept = json.loads(lines_of(folder / RAW_POSTS)[tweets.index(quoting)])
    assert "quoted_status" not in kept
    assert kept == {key: value for key, value in quoting.items() if key != "quoted_status"}
    assert posts_by_id(folder / RAW_POSTS)[quoting["id_str"]] == kept_before  # its own fields, its quoted id


def test_twarc2_flattened_posts_lose_the_inlined_copy_and_keep_the_reference(tmp_path, real_data):
    folder = raw_folder(tmp_path, real_data / "twarc2-flat.jsonl")
    tweets = [json.loads(line) for line in lines_of(folder / RAW_POSTS)]
    ids = {t["id"] for t in tweets}
    referring = next(t for t in tweets if any(r["id"] in ids and len(r) > 2 for r in t.get("referenced_tweets", [])))
    referred = next(r["id"] for r in referring["referenced_tweets"] if r["id"] in ids)
    gone = {referred, next(t["id"] for t in tweets[10:] if t["id"] not in (referring["id"], referred))}

    purge_and_check(folder, gone)

    kept = json.loads(lines_of(folder / RAW_POSTS)[tweets.index(referring)])
    reference = next(r for r in kept["referenced_tweets"] if r["id"] == referred)
    assert set(reference) == {"type", "id"}


def test_tweets_js_items_v1_search_responses_and_arrays_on_one_line(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    lines = [
        tweets_js_item("11", "my first post"),
        tweets_js_item("12", "my second post"),
        {"statuses": [v1_tweet("21", "kept"), v1_tweet("22", "gone from the response")], "search_metadata": {}},
        [v1_tweet("31", "gone from the array"), v1_tweet("32", "kept in the array")],
        [v1_tweet("41", "the whole array is gone")],
    ]
    (folder / RAW_POSTS).write_text("".join(json.dumps(line) + "\n" for line in lines))

    purge_and_check(folder, {"12", "22", "31", "41"})

    after = lines_of(folder / RAW_POSTS)
    assert after[1] == b"\n" and after[4] == b"\n"
    assert [s["id_str"] for s in json.loads(after[2])["statuses"]] == ["21"]
    assert json.loads(after[2])["search_metadata"] == {}
    assert [t["id_str"] for t in json.loads(after[3])] == ["32"]


def test_a_table_loses_the_rows_of_gone_posts_and_keeps_every_other_row_byte_for_byte(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["id", "created_at", "user", "text"])
    rows = [
        ["101", "2021-06-26T19:00:00+00:00", "alice", 'a post\nover two lines, with "quotes"'],
        ["102", "2021-06-26T19:01:00+00:00", "'=bob", "gone"],
        ["103", "2021-06-26T19:02:00+00:00", "carol", "kept, with a comma"],
        ["104", "2021-06-26T19:03:00+00:00", "dave", "gone\r\ntoo"],
    ]
    writer.writerows(rows)
    (folder / TWEETS_CSV).write_bytes(text.getvalue().encode())

    changes = purge_folder(folder, {"102", "104"}, purge=PURGE)

    kept = io.StringIO(newline="")
    csv.writer(kept).writerows([["id", "created_at", "user", "text"], rows[0], rows[2]])
    assert (folder / TWEETS_CSV).read_bytes() == kept.getvalue().encode()
    assert changes[TWEETS_CSV].posts == 2


def test_a_second_purge_with_the_same_ids_changes_nothing(tmp_path, real_data):
    folder = raw_folder(tmp_path, real_data / "v2-pages-twarc-network.jsonl")
    gone = {json.loads(lines_of(folder / RAW_POSTS)[2])["data"][7]["id"]}
    assert purge_folder(folder, gone, purge=PURGE)
    files = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()}

    assert purge_folder(folder, gone, purge=PURGE) == {}
    assert purge_folder(folder, gone, purge={**PURGE, "record": "another/purged-posts.csv"}) == {}
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()} == files


def test_nothing_is_written_when_the_ids_are_only_named_by_other_posts(tmp_path, real_data):
    folder = raw_folder(tmp_path, real_data / "v2-pages-twarc-network.jsonl")
    before = (folder / RAW_POSTS).read_bytes()
    pages = [json.loads(line) for line in before.splitlines()]
    # A post that others reply to or retweet, but that was never collected itself.
    data = {p["id"] for page in pages for p in page["data"]}
    references = [r["id"] for page in pages for p in page["data"] for r in p.get("referenced_tweets", [])]
    named = next(post_id for post_id in references if post_id not in data)
    pages_holding = [page for page in pages if named in {t["id"] for t in page["includes"].get("tweets", [])}]
    assert named.encode() in before and pages_holding

    changes = purge_folder(folder, {named}, purge=PURGE)

    # Its copy in includes.tweets goes (it is its text); the posts that name it keep their lines.
    assert changes[RAW_POSTS].posts == 0 and changes[RAW_POSTS].copies == len(pages_holding)
    assert set(posts_by_id(folder / RAW_POSTS)) == data


@pytest.mark.parametrize("limit", [None, 300])
def test_the_posts_a_purge_removes_within_the_limit_are_counted_so_the_collection_stays_the_same(
    tmp_path, real_data, limit
):
    folder = raw_folder(tmp_path, real_data / "v2-pages-twarc-network.jsonl")
    raw = folder / RAW_POSTS
    collection = [post.id for post in iter_collection(raw, limit=limit, report=ImportReport())]
    gone = set(collection[10:17]) | set(collection[-3:])

    def within_limit(path: Path) -> int:
        return sum(1 for post in iter_collection(path, limit=limit, report=ImportReport()) if post.id in gone)

    purge_folder(folder, gone, purge=PURGE, within_limit=within_limit if limit else None)

    left = None if limit is None else limit - posts_purged_within_limit(folder)
    again = [post.id for post in iter_collection(raw, limit=left, report=ImportReport())]
    assert again == [post_id for post_id in collection if post_id not in gone]
