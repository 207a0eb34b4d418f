"""Archives in every common format import into the same normalised posts, and bad input is
refused with a message naming the file, never half-written."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import zipfile

import orjson
import pytest

from pipeline.formats import ArchiveError, ImportReport, copy_archive, iter_collection, iter_posts, reading
from pipeline.formats.start import check_archive_start, check_archive_upload
from pipeline.query import QueryError
from tests.formats_helpers import (
    gzipped,
    import_files,
    posts_of,
    tweets_js_item,
    v1_tweet,
    v2_page,
    write_jsonl,
    write_tweets_js,
)


def counted_fields(post) -> tuple:
    """What the count files are made of, per post."""
    return (
        post.id,
        post.user,
        post.followers,
        post.following,
        tuple(post.hashtags),
        tuple(post.mentions),
        tuple(post.urls),
        tuple(post.photos),
    )


# --- The real recorded fixtures ------------------------------------------------------------------


def test_twarc2_flat_and_v2_pages_give_identical_posts(real_data):
    flat = posts_of(real_data / "twarc2-flat.jsonl")
    pages = posts_of(real_data / "v2-pages-noflat.jsonl")

    assert len(flat) == len(pages) == 100
    assert {counted_fields(p) for p in flat} == {counted_fields(p) for p in pages}
    assert [(p.id, p.text, p.retweeted_id, p.in_reply_to_user, p.created_at) for p in flat] == [
        (p.id, p.text, p.retweeted_id, p.in_reply_to_user, p.created_at) for p in pages
    ]
    # The comparison is not vacuous: the fixture has all of these.
    assert sum(bool(p.hashtags) for p in pages) > 0 and sum(bool(p.mentions) for p in pages) > 50
    assert sum(bool(p.urls) for p in pages) > 5 and all(p.followers is not None for p in pages)


def test_v2_lookups_in_includes_and_own_media_links(real_data):
    by_id = {p.id: p for p in posts_of(real_data / "v2-pages-noflat.jsonl")}

    retweet = by_id["1380242611781386245"]
    assert (retweet.user, retweet.followers, retweet.following) == ("Alexandravm12", 58, 49)
    assert retweet.retweeted_id == "1380175475545362437"
    # The page truncates the retweet's text with "…"; the original in includes.tweets is whole.
    assert retweet.text.startswith("RT @williamserafino: De manera simultánea")
    assert retweet.text.endswith("La pandilla del Partido Demócrata hace sentir su regreso.")
    assert retweet.created_at == "2021-04-08T19:34:16+00:00"

    photo_post = by_id["1380242345652785166"]
    assert photo_post.photos == ["https://pbs.twimg.com/media/EyebGPCXIAMP9xj.jpg"]
    assert photo_post.urls == []  # its only URL entity is its own .../photo/1 link

    gif_post = by_id["1380242549785366530"]
    assert gif_post.photos == [] and gif_post.has_media  # an animated GIF is media but not a photo
    assert gif_post.urls == [] and gif_post.mentions == ["1nonblonde2"]


def test_v1_streaming_entities_come_from_extended_tweet(real_data):
    lines = (real_data / "v1-streaming-lines.jsonl").read_bytes().splitlines()
    raw = next(json.loads(line) for line in lines if b'"id_str": "972473004721627137"' in line)
    assert raw["entities"]["hashtags"] == []  # the trap: the short entities miss them

    post = next(p for p in posts_of(real_data / "v1-streaming-lines.jsonl") if p.id == "972473004721627137")

    assert post.hashtags == ["GunControlNow", "NeverAgain", "NoNRA", "VoteThemOut", "BlueWave"]
    assert post.mentions == ["resisterhood", "TheLastPersont2"]
    assert post.urls == []  # not the "twitter.com/i/web/status/..." link of the truncated text
    assert post.text.endswith("#BlueWave") and "#GunControlNow" in post.text
    assert (post.user, post.followers, post.following) == ("ffemt210", 147, 103)
    assert post.created_at == "2018-03-10T14:03:26+00:00"  # from "Sat Mar 10 14:03:26 +0000 2018"
    assert post.in_reply_to_user == "resisterhood" and post.in_reply_to_id == "972350166505226241"


def test_v1_stream_with_a_repeated_post_keeps_it_once(real_data):
    report = ImportReport()
    posts = list(iter_collection(real_data / "v1-streaming-lines.jsonl", report=report))

    assert len(posts) == 71 and report.posts_seen == 72 and report.duplicates == 1
    assert len({p.id for p in posts}) == 71
    assert "ignored 1 duplicate post" in report.summary()


def test_broken_last_line_of_a_stream_is_skipped_and_named(real_data, tmp_path):
    source = real_data / "v2-stream-broken-last-line.jsonl"
    raw = tmp_path / "search" / "tweets.jsonl"

    posts, report = import_files([source], raw)

    assert len(posts) == 7 and report.bad_lines == 1
    assert report.problems == [("v2-stream-broken-last-line.jsonl", 8, "truncated JSON")]
    assert "skipped 1 malformed line: v2-stream-broken-last-line.jsonl line 8: truncated JSON" in report.summary()
    # Copied byte for byte; only the missing final newline is added.
    assert raw.read_bytes() == source.read_bytes() + b"\n"
    photo_post = next(p for p in posts if p.id == "1377650090978992134")
    assert photo_post.quoted_id == "1377640162566496258" and photo_post.has_media
    # Its .../photo/1 link is its own media, not a URL; the quoted post's link is one.
    assert photo_post.urls == ["https://twitter.com/Manie_DS/status/1377640162566496258"]


def test_a_line_cut_inside_a_text_is_called_truncated_not_a_control_character(real_data, tmp_path):
    """What the tester found (`head -c 20000` of a real stream): the cut line was reported as
    "invalid JSON (unexpected control character in string ...)", sending people after a character
    that is not there; it is the line's own break, met inside the text the cut left open."""
    whole = (real_data / "v1-streaming-lines.jsonl").read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(whole[:20000])
    lines = whole[:20000].split(b"\n")
    assert len(lines) == 5 and b'"' in lines[-1]  # four whole lines, the fifth cut inside a string
    with pytest.raises(orjson.JSONDecodeError, match="control character"):
        orjson.loads(lines[-1] + b"\n")

    posts, report = import_files([cut], tmp_path / "search" / "tweets.jsonl")

    assert len(posts) == 4
    assert report.problems == [("cut.jsonl", 5, "truncated JSON")]


def test_a_line_cut_just_after_a_backslash_is_truncated_and_a_bad_escape_is_not(real_data, tmp_path):
    """The check found a cut that fell just after a backslash (an escaped quote, or \\n, in a
    text) still called "invalid escaped character": the line break read as the escape."""
    [first, *_] = (real_data / "v1-streaming-lines.jsonl").read_bytes().split(b"\n")
    backslash = first.index(b"\\")
    assert backslash > 0
    archive = tmp_path / "cut.jsonl"
    archive.write_bytes(first + b"\n" + first[: backslash + 1] + b"\n" + first.replace(b"\\", b"\\q", 1) + b"\n")

    posts, report = import_files([archive], tmp_path / "search" / "tweets.jsonl")

    assert len(posts) == 1
    [(_, cut_line, cut), (_, bad_line, bad)] = report.problems
    assert (cut_line, cut) == (2, "truncated JSON")
    assert bad_line == 3 and bad.startswith("invalid JSON (invalid escaped character in string")


def test_twarc2_s_empty_last_page_is_a_page_not_a_broken_post(real_data, tmp_path):
    # twarc2 writes the search's last, empty page with its own "__twarc" mark, as every page.
    real = real_data / "v2-pages-twarc-network.jsonl"
    first_page = orjson.loads(real.read_bytes().split(b"\n", 1)[0])
    empty = {"meta": {"result_count": 0}, "__twarc": first_page["__twarc"]}
    archive = tmp_path / "with-empty-page.jsonl"
    archive.write_bytes(real.read_bytes() + orjson.dumps(empty) + b"\n")

    posts, report = import_files([archive], tmp_path / "s" / "tweets.jsonl")

    assert len(posts) == 500
    assert (report.bad_lines, report.not_posts, report.problems) == (0, 0, [])


def test_large_v2_pages_resolve_every_author(real_data):
    posts = posts_of(real_data / "v2-pages-twarc-network.jsonl")

    assert len(posts) == 500 and all(p.user for p in posts)
    retweets = [p for p in posts if p.retweeted_id]
    assert len(retweets) > 200
    assert sum(p.text.endswith("…") for p in retweets) < len(retweets) / 10  # originals found in includes


# --- Hand-made files in every container format ----------------------------------------------------


def test_json_array_of_v1_tweets(tmp_path):
    archive = tmp_path / "export.json"
    tweets = [v1_tweet("11", "first #One"), v1_tweet("12", "second", user="bob")]
    archive.write_text(json.dumps(tweets, indent=2))
    raw = tmp_path / "s" / "tweets.jsonl"

    posts, _ = import_files([archive], raw)

    assert [(p.id, p.user, p.created_at) for p in posts] == [
        ("11", "alice", "2018-10-10T20:19:24+00:00"),
        ("12", "bob", "2018-10-10T20:19:24+00:00"),
    ]
    # One element per line, content unchanged.
    assert [json.loads(line) for line in raw.read_text().splitlines()] == tweets


def test_v1_search_response(tmp_path):
    archive = tmp_path / "search.json"
    response = {"statuses": [v1_tweet("21", "a"), v1_tweet("22", "b")], "search_metadata": {"count": 2}}
    archive.write_text(json.dumps(response, indent=2))

    posts, report = import_files([archive], tmp_path / "tweets.jsonl")

    assert [p.id for p in posts] == ["21", "22"]
    assert report.sources[0]["format"] == "v1.1 search response"


def test_v1_retweet_takes_text_and_photos_of_the_original(tmp_path):
    photo = {"type": "photo", "media_url_https": "https://pbs.twimg.com/media/orig.jpg"}
    original = v1_tweet("30", "The whole original text, longer than a retweet keeps", user="carol")
    original["extended_entities"] = {"media": [photo, {"type": "video", "media_url_https": "https://v/x.jpg"}]}
    retweet = v1_tweet("31", "RT @carol: The whole original te…", retweeted_status=original)
    archive = write_jsonl(tmp_path / "rt.jsonl", [retweet])

    (post,) = import_files([archive], tmp_path / "tweets.jsonl")[0]

    assert post.retweeted_id == "30" and post.is_retweet
    assert post.text == "RT @carol: The whole original text, longer than a retweet keeps"
    assert post.photos == ["https://pbs.twimg.com/media/orig.jpg"] and post.has_media


def test_pretty_printed_v2_page_stays_one_page(tmp_path):
    archive = tmp_path / "page.json"
    archive.write_text(json.dumps(v2_page(), indent=2))
    raw = tmp_path / "tweets.jsonl"

    posts, report = import_files([archive], raw)

    assert raw.read_text().count("\n") == 1 and json.loads(raw.read_text()) == v2_page()
    photo, retweet = posts
    assert (photo.id, photo.user, photo.followers, photo.photos, photo.urls) == (
        "201",
        "ann",
        100,
        ["https://pbs.twimg.com/media/one.jpg"],
        [],
    )
    assert retweet.text == "RT @ann: A long original text that the API cut short in the retweet #whole"
    assert retweet.photos == ["https://pbs.twimg.com/media/two.jpg"]
    assert (retweet.user, retweet.following, retweet.retweet_count) == ("ben", 0, 9)
    assert report.sources[0]["format"] == "JSON document (v2 response page)"


def test_twitter_archive_folder_reads_tweets_js_and_its_owner(tmp_path):
    folder = tmp_path / "twitter-2023-01-31"
    write_tweets_js(folder / "data" / "tweets.js", [tweets_js_item("41", "hello", retweets="3")])
    write_tweets_js(folder / "data" / "tweets-part1.js", [tweets_js_item("42", "RT @x: hi")], "tweets.part1")
    write_tweets_js(folder / "data" / "account.js", [{"account": {"username": "owner_name"}}], "account")
    write_tweets_js(folder / "data" / "like.js", [{"like": {"tweetId": "999", "fullText": "liked"}}], "like")

    posts, report = import_files([folder], tmp_path / "s" / "tweets.jsonl")

    # In the archive's order, tweets.js (part 0) first; likes are not the owner's posts.
    assert [p.id for p in posts] == ["41", "42"]
    first = next(p for p in posts if p.id == "41")
    assert (first.user, first.retweet_count, first.like_count, first.hashtags) == ("owner_name", 3, 4, ["Archive"])
    assert first.source_format == "tweets.js" and first.created_at == "2023-01-31T12:00:00+00:00"
    assert [s["name"] for s in report.sources] == [
        "twitter-2023-01-31/data/tweets.js",
        "twitter-2023-01-31/data/tweets-part1.js",
    ]


def test_tweets_js_alone_has_no_user(tmp_path):
    archive = write_tweets_js(tmp_path / "tweets.js", [tweets_js_item("43", "solo")])
    (post,) = import_files([archive], tmp_path / "s" / "tweets.jsonl")[0]
    assert post.id == "43" and post.user == "" and post.followers is None


def make_each_format(tmp_path):
    """name -> (file, the ids it holds)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    array = tmp_path / "array.json"
    array.write_text(json.dumps([v1_tweet("51", "a"), v1_tweet("52", "b")]))
    statuses = tmp_path / "statuses.json"
    statuses.write_text(json.dumps({"statuses": [v1_tweet("53", "c")]}, indent=1))
    page = tmp_path / "page.json"
    page.write_text(json.dumps(v2_page(), indent=2))
    tweets_js = write_tweets_js(tmp_path / "tweets.js", [tweets_js_item("54", "d"), tweets_js_item("55", "e")])
    jsonl = write_jsonl(tmp_path / "lines.jsonl", [v1_tweet("56", "f"), v2_page()])
    return {
        "array": (array, ["51", "52"]),
        "statuses": (statuses, ["53"]),
        "v2 page": (page, ["201", "202"]),
        "tweets.js": (tweets_js, ["54", "55"]),
        "jsonl": (jsonl, ["56", "201", "202"]),
    }


@pytest.mark.parametrize("kind", ["array", "statuses", "v2 page", "tweets.js", "jsonl"])
def test_gzip_of_each_format_is_detected_by_content(tmp_path, kind):
    path, ids = make_each_format(tmp_path / "in")[kind]
    packed = gzipped(path)
    raw = tmp_path / "tweets.jsonl"

    posts, report = import_files([packed], raw)

    assert [p.id for p in posts] == ids
    assert report.sources[0]["format"].startswith("gzip, ")
    assert report.sources[0]["sha256"] == hashlib.sha256(packed.read_bytes()).hexdigest()


def test_a_folder_of_mixed_files_and_its_provenance(tmp_path):
    made = make_each_format(tmp_path / "archive")
    (tmp_path / "archive" / "README.md").write_text("notes about this collection")
    (tmp_path / "archive" / "README.txt").write_text("Collected with twarc2 on 2023-01-31.\n")
    write_jsonl(tmp_path / "archive" / "saved-as.txt", [v1_tweet("57", "g")])  # JSON lines saved as .txt
    raw = tmp_path / "s" / "tweets.jsonl"

    posts, report = import_files([tmp_path / "archive"], raw)

    expected = {i for _, ids in made.values() for i in ids} | {"57"}
    assert {p.id for p in posts} == expected and report.duplicates == 2  # 201, 202 are in two files
    sources = json.loads(raw.with_name("sources.json").read_text())
    assert sources["skipped"] == ["archive/README.md", "archive/README.txt"]
    assert "README.md, archive/README.txt" in report.summary()
    for entry in sources["files"]:
        original = tmp_path / entry["name"]
        assert entry["size"] == original.stat().st_size
        assert entry["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert {e["format"] for e in sources["files"]} == {
        "JSON array of v1.1 tweets",
        "v1.1 search response",
        "JSON document (v2 response page)",
        "tweets.js (Twitter archive)",
        "JSONL (v1.1 tweet)",
    }


def test_the_raw_copy_kept_can_be_checked_against_sources_json_whatever_the_input(tmp_path, real_data):
    """What the tester found: a file without a last newline is kept with one added, a gzip kept
    decompressed, and sources.json had only the inputs' checksums, so the copy itself could not be
    checked. It now records the raw file's own size and SHA-256 too."""
    broken_end = real_data / "v2-stream-broken-last-line.jsonl"
    assert not broken_end.read_bytes().endswith(b"\n")
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (real_data / "twarc2-flat.jsonl").read_bytes())
    assert make_each_format(tmp_path / "folder")
    cases = {
        "byte for byte": [real_data / "v1-streaming-lines.jsonl"],
        "a missing last newline": [broken_end],
        "gzip": [gzipped(shutil.copyfile(real_data / "twarc2-flat.jsonl", tmp_path / "flat.jsonl"))],
        "a byte order mark": [with_bom],
        "a folder of every format": [tmp_path / "folder"],
    }
    for case, inputs in cases.items():
        raw = tmp_path / case / "tweets.jsonl"
        import_files(inputs, raw)
        sources = json.loads(raw.with_name("sources.json").read_text())
        assert sources["raw_size"] == raw.stat().st_size, case
        assert sources["raw_sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest(), case
        if case == "byte for byte":
            assert sources["raw_sha256"] == sources["files"][0]["sha256"]
        elif case != "a folder of every format":
            assert sources["raw_sha256"] != sources["files"][0]["sha256"], case


def test_a_file_of_a_folder_that_holds_no_posts_says_how_to_import_the_rest(tmp_path, real_data):
    """A collection's folder often holds a file of notes or settings in JSON: it stops the import
    (its posts might be in a format dnflow does not read), and the refusal says how to go on."""
    folder = tmp_path / "collection"
    folder.mkdir()
    shutil.copyfile(real_data / "v1-streaming-lines.jsonl", folder / "posts.jsonl")
    (folder / "settings.json").write_text('{"collected_by": "twarc", "query": "x"}\n')

    with pytest.raises(ArchiveError) as refused:
        import_files([folder], tmp_path / "s" / "tweets.jsonl")

    said = str(refused.value)
    assert said.startswith("collection/settings.json is JSON lines, but none of its first lines is an X/Twitter post")
    assert said.endswith("take it out of the folder or the ZIP and import again: nothing was imported.")
    assert not (tmp_path / "s" / "tweets.jsonl").exists()
    with pytest.raises(ArchiveError) as alone:
        import_files([folder / "settings.json"], tmp_path / "t" / "tweets.jsonl")
    assert "take it out of the folder" not in str(alone.value)  # a file given alone is simply refused
    # The same before anything is copied: on the command line (the folder) and on the form (a ZIP).
    with pytest.raises(ArchiveError, match="take it out of the folder or the ZIP and import again"):
        check_archive_start(folder)
    packed = tmp_path / "collection.zip"
    with zipfile.ZipFile(packed, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
    with packed.open("rb") as upload, pytest.raises(ArchiveError) as zipped:
        check_archive_upload(upload, packed.name)
    assert str(zipped.value).endswith(
        "If collection.zip/settings.json is not meant to be imported (notes, settings), "
        "take it out of the folder or the ZIP and import again: nothing was imported."
    )


def test_duplicates_across_two_files_keep_the_first(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", [v1_tweet("61", "kept"), v1_tweet("62", "x")])
    second = write_jsonl(tmp_path / "b.jsonl", [v1_tweet("61", "dropped"), v1_tweet("63", "y")])

    posts, report = import_files([first, second], tmp_path / "s" / "tweets.jsonl")

    assert [(p.id, p.text) for p in posts] == [("61", "kept"), ("62", "x"), ("63", "y")]
    assert report.duplicates == 1


def test_mixed_line_kinds_in_one_raw_file(tmp_path):
    when = "2023-01-31T12:00:00.000Z"
    flat = {
        "id": "71",
        "text": "flat",
        "created_at": when,
        "author": {"username": "zed", "public_metrics": {"followers_count": 1}},
    }
    stream = {
        "data": {"id": "72", "text": "streamed", "created_at": when, "author_id": "u9"},
        "includes": {"users": []},
    }
    stream["matching_rules"] = [{"id": "1", "tag": None}]
    raw = write_jsonl(
        tmp_path / "tweets.jsonl",
        [v1_tweet("70", "v1"), flat, stream, tweets_js_item("73", "own"), {"delete": {"status": {"id_str": "5"}}}],
    )
    report = ImportReport()

    posts = list(iter_posts(raw, report))

    assert [(p.id, p.source_format) for p in posts] == [
        ("70", "v1"),
        ("71", "twarc2"),
        ("72", "v2"),
        ("73", "tweets.js"),
    ]
    assert posts[1].user == "zed" and posts[1].followers == 1
    assert report.not_posts == 1 and report.bad_lines == 0


def test_filters_by_term_language_and_time(tmp_path):
    tweets = [
        v1_tweet("81", "climate news", created_at="Mon Jan 02 10:00:00 +0000 2023"),
        v1_tweet("82", "climate nouvelles", lang="fr", created_at="Tue Jan 03 10:00:00 +0000 2023"),
        v1_tweet("83", "sports", created_at="Tue Jan 03 11:00:00 +0000 2023"),
        v1_tweet("84", "climate later", created_at="Fri Jan 06 10:00:00 +0000 2023"),
    ]
    raw = write_jsonl(tmp_path / "tweets.jsonl", tweets)
    from datetime import UTC, datetime

    def ids(**filters):
        return [p.id for p in iter_collection(raw, report=ImportReport(), **filters)]

    assert ids(term="climate") == ["81", "82", "84"]
    assert ids(term="climate", lang="FR") == ["82"]
    start, end = datetime(2023, 1, 3, tzinfo=UTC), datetime(2023, 1, 6, 10, tzinfo=UTC)
    assert ids(start=start, end=end) == ["82", "83"]  # the end is exclusive, as in the X API
    assert ids(term="climate", limit=2) == ["81", "82"]


def test_gzipped_raw_file_is_read(tmp_path):
    raw = tmp_path / "tweets.jsonl.gz"
    raw.write_bytes(gzip.compress(orjson.dumps(v1_tweet("91", "zipped")) + b"\n"))
    assert [p.id for p in posts_of(raw)] == ["91"]


def test_an_overlong_line_is_skipped_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_LINE_BYTES", 2000)
    huge = v1_tweet("101", "x" * 5000)
    raw = write_jsonl(tmp_path / "tweets.jsonl", [v1_tweet("100", "small"), huge, v1_tweet("102", "small")])
    report = ImportReport()

    posts = list(iter_posts(raw, report))

    assert [p.id for p in posts] == ["100", "102"]
    ((name, line, reason),) = report.problems
    assert (name, line) == ("tweets.jsonl", 2) and "over the 2,000-byte limit" in reason


def test_problems_are_capped_but_counted(tmp_path):
    raw = tmp_path / "tweets.jsonl"
    raw.write_text(orjson.dumps(v1_tweet("1", "ok")).decode() + "\n" + "{broken\n" * 1500)
    report = ImportReport()
    assert len(list(iter_posts(raw, report))) == 1
    assert report.bad_lines == 1500 and len(report.problems) == 1000
    assert "and 1,497 more" in report.summary()


# --- Refusals -------------------------------------------------------------------------------------


def refused(tmp_path, path, *more) -> str:
    dest = tmp_path / "out" / "tweets.jsonl"
    with pytest.raises(ArchiveError) as caught:
        copy_archive([path, *more], dest)
    assert not dest.exists(), "a refused archive must not leave a raw file that looks complete"
    leftovers = list(dest.parent.iterdir()) if dest.parent.exists() else []
    assert leftovers == [], "no temporary files are left behind"
    return str(caught.value)


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert "empty.jsonl is empty" in refused(tmp_path, path)


def test_whitespace_only_and_empty_gzip_are_empty(tmp_path):
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n")
    assert "blank.jsonl is empty" in refused(tmp_path, blank)
    nothing = tmp_path / "nothing.gz"
    nothing.write_bytes(gzip.compress(b""))
    assert "nothing.gz is empty" in refused(tmp_path, nothing)


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "photo.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    message = refused(tmp_path, path)
    assert "photo.jsonl is a binary file" in message


def test_a_damaged_zip_file_says_so(tmp_path):
    path = tmp_path / "twitter-archive.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert "twitter-archive.zip is a damaged or incomplete ZIP file" in refused(tmp_path, path)


def test_a_file_that_is_not_utf8_at_all_is_refused_with_its_first_bad_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    good = orjson.dumps(v1_tweet("1", "fine")) + b"\n"
    latin1 = [
        json.dumps(v1_tweet(str(n), f"caf\u00e9 {n}"), ensure_ascii=False).encode("latin-1") + b"\n" for n in (2, 3)
    ]
    path.write_bytes(good + b"".join(latin1))  # most of its lines are not UTF-8
    message = refused(tmp_path, path)
    assert "latin1.jsonl is not valid UTF-8 text (line 2)" in message and "iconv" in message


def test_a_line_that_is_not_utf8_is_copied_as_it_is_and_skipped_by_its_number(tmp_path):
    """One Latin-1 byte at line 99,991 of 100,000, and a last line cut inside a 4-byte character."""
    lines = [orjson.dumps(v1_tweet(str(n), f"caf\u00e9 {n}")) + b"\n" for n in range(1, 100_000)]
    lines[99_990] = lines[99_990].replace("\u00e9".encode(), b"\xe9")
    last = orjson.dumps(v1_tweet("100000", "emoji \U0001f600"))
    data = b"".join(lines) + last[: last.index("\U0001f600".encode()) + 2]
    archive = tmp_path / "stream.jsonl"
    archive.write_bytes(data)
    raw = tmp_path / "s" / "tweets.jsonl"

    posts, report = import_files([archive], raw)

    assert raw.read_bytes() == data + b"\n"  # the archival original, byte for byte (a final newline added)
    assert len(posts) == 99_998 and report.bad_lines == 2
    assert report.problems == [
        ("stream.jsonl", 99_991, "not valid UTF-8 text"),
        ("stream.jsonl", 100_000, "not valid UTF-8 text"),
    ]
    assert "stream.jsonl line 99991: not valid UTF-8 text" in report.summary()


def test_a_line_without_an_author_or_a_time_is_not_a_post(tmp_path):
    when = "2023-01-31T12:00:00.000Z"
    no_user = v1_tweet("4", "a v1.1 post whose user was cut out")
    del no_user["user"]
    page = v2_page()
    del page["data"][1]["created_at"]
    raw = write_jsonl(
        tmp_path / "tweets.jsonl",
        [
            v1_tweet("1", "a post"),
            {"id": 5, "text": "no user"},
            {"id": "6", "text": "v2, no time", "author_id": "9"},
            no_user,
            {"id": "7", "text": "twarc2 flat, no author", "created_at": when, "__twarc": {"version": "2"}},
            page,
            {"id": "8", "text": "v2 with its author's id", "author_id": "9", "created_at": when},
        ],
    )
    report = ImportReport()

    posts = list(iter_posts(raw, report))

    assert [p.id for p in posts] == ["1", "201", "8"]
    assert report.problems == [
        ("tweets.jsonl", 2, "not a post: no author and no time"),
        ("tweets.jsonl", 3, "not a post: no time"),
        ("tweets.jsonl", 4, "not a post: no author"),
        ("tweets.jsonl", 5, "not a post: no author"),
        ("tweets.jsonl", 6, "not a post: no time"),
    ]
    assert report.bad_lines == 5 and report.posts_seen == 3


def test_tweets_js_posts_need_no_user_object_their_author_is_the_archive_owner(tmp_path):
    """Not from account.js alone: a tweets.js imported without it still gives its posts."""
    bare = tweets_js_item("44", "an older archive's item, not wrapped")["tweet"]
    archive = write_tweets_js(tmp_path / "tweet.js", [tweets_js_item("43", "solo"), bare], "tweet.part0")
    posts, report = import_files([archive], tmp_path / "s" / "tweets.jsonl")
    assert [p.id for p in posts] == ["43", "44"] and report.bad_lines == 0


def test_utf16_is_refused_with_how_to_convert(tmp_path):
    path = tmp_path / "windows.json"
    path.write_text(json.dumps([v1_tweet("1", "a")]), encoding="utf-16")
    assert "windows.json is UTF-16 text" in refused(tmp_path, path)


def test_truncated_gzip_is_refused(tmp_path):
    whole = gzip.compress(b"".join(orjson.dumps(v1_tweet(str(i), "t " * 50)) + b"\n" for i in range(200)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    assert "cut.jsonl.gz is a truncated gzip file" in refused(tmp_path, path)


def test_unknown_formats_are_refused(tmp_path):
    csv = tmp_path / "tweets.csv"
    csv.write_text("id,text\n1,hello\n")
    message = refused(tmp_path, csv)
    assert "tweets.csv is not in a format dnflow reads" in message and "tweets.js" in message

    other_json = write_jsonl(tmp_path / "package.jsonl", [{"name": "left-pad"}, {"version": "1.0"}])
    assert "package.jsonl is JSON lines, but none of its first lines" in refused(tmp_path, other_json)

    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "data": [\n')
    assert "broken.json is not valid JSON or JSONL" in refused(tmp_path, broken)


def test_a_bad_second_file_leaves_the_previous_raw_file_untouched(tmp_path):
    dest = tmp_path / "out" / "tweets.jsonl"
    dest.parent.mkdir()
    dest.write_text("earlier import\n")
    good = write_jsonl(tmp_path / "good.jsonl", [v1_tweet("1", "a")])
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"")

    with pytest.raises(ArchiveError, match="bad.jsonl is empty"):
        copy_archive([good, bad], dest)

    assert dest.read_text() == "earlier import\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tweets.jsonl"]  # no temporary files left


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(ArchiveError, match="No file or folder at"):
        copy_archive([tmp_path / "nowhere.jsonl"], tmp_path / "tweets.jsonl")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("x")
    with pytest.raises(ArchiveError, match=r"holds no archive file \(found: todo.md\)"):
        copy_archive([tmp_path / "notes"], tmp_path / "tweets.jsonl")


def test_a_raw_file_without_one_valid_post_fails_clearly(tmp_path):
    raw = tmp_path / "tweets.jsonl"
    raw.write_text('{"delete": {"status": {"id_str": "1"}}}\n{"data": [{"id": "2", "text": \n')
    report = ImportReport()

    with pytest.raises(ArchiveError) as caught:
        list(iter_collection(raw, term="anything", report=report))

    message = str(caught.value)
    assert "tweets.jsonl holds no valid post" in message and "line 2: truncated JSON" in message


def test_an_archive_without_one_valid_post_is_named_as_the_person_named_it(tmp_path):
    archive = tmp_path / "my-export.jsonl"  # posts without a time: recognised, but none usable
    archive.write_text('{"id_str": "3", "user": {"screen_name": "u3"}, "text": "hi"}\n' * 2)

    with pytest.raises(ArchiveError) as caught:
        import_files([archive], tmp_path / "s" / "tweets.jsonl")

    assert str(caught.value).startswith("my-export.jsonl holds no valid post (0 posts from 2 lines; skipped 2")


def test_no_match_is_not_an_error(tmp_path):
    raw = write_jsonl(tmp_path / "tweets.jsonl", [v1_tweet("1", "cats")])
    assert list(iter_collection(raw, term="dogs", report=ImportReport())) == []


def test_a_malformed_term_fails_before_anything_is_read(tmp_path):
    with pytest.raises(QueryError, match="not closed"):
        iter_collection(tmp_path / "not-there.jsonl", term="(climate", report=ImportReport())


def test_the_copy_says_how_far_it_has_read_and_a_stop_midway_leaves_nothing(tmp_path):
    # Two files, one gzipped: progress counts the bytes as stored, over both files.
    archive = tmp_path / "archive"
    archive.mkdir()
    plain = write_jsonl(archive / "a.jsonl", [v1_tweet(str(n), "x" * 2000) for n in range(1, 3000)])
    packed = archive / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes().replace(b'"id_str":"', b'"id_str":"9')))
    total = plain.stat().st_size + packed.stat().st_size
    seen: list[tuple[int, int]] = []

    copy_archive([archive], tmp_path / "s" / "tweets.jsonl", on_read=lambda done, of: seen.append((done, of)))

    assert len(seen) > 2, "a bar that moves, not one jump at the end"
    assert {of for _, of in seen} == {total}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1][0] == total

    # A search cancelled during the copy: the exception stops it and nothing looks imported.
    def cancelled(done: int, of: int) -> None:
        if done > of / 3:
            raise RuntimeError("cancelled")

    dest = tmp_path / "t" / "tweets.jsonl"
    with pytest.raises(RuntimeError, match="cancelled"):
        copy_archive([archive], dest, on_read=cancelled)
    assert list(dest.parent.iterdir()) == []


def test_two_documents_run_together_on_a_line_are_named_so_with_the_fix(real_data, tmp_path):
    # Two real files joined without a line break between them.
    first, second = real_data / "v1-streaming-lines.jsonl", real_data / "v2-pages-twarc-network.jsonl"
    archive = tmp_path / "joined.jsonl"
    archive.write_bytes(first.read_bytes().rstrip(b"\n") + second.read_bytes())
    lines_of_first = first.read_bytes().rstrip(b"\n").count(b"\n") + 1

    _, report = import_files([archive], tmp_path / "s" / "tweets.jsonl")

    (name, line, reason), *_ = report.problems
    assert (name, line) == ("joined.jsonl", lines_of_first)
    assert reason.startswith(
        "two JSON documents run together on one line, none of its posts read: put each on a line of its own"
    )


@pytest.mark.parametrize("size", [0, 1, 1000, 64 * 1024 - 1, 64 * 1024, 256 * 1024 + 7, 8 * 1024 * 1024])
def test_the_copys_line_count_is_every_newline_of_a_chunk(size):
    from pipeline.formats.checks import newlines

    # Newlines at irregular places, at both ends, and runs of them: as a real chunk cut anywhere.
    chunk = bytes((10 if (i * 7919) % 97 < 3 or i in (0, size - 1) else 65 + i % 26) for i in range(size))
    assert newlines(chunk) == chunk.count(b"\n")
    assert newlines(b"\n" * size) == size
    assert newlines(b"x" * size) == 0
