"""check_archive_start: the refusals an import would make, from the first bytes of a file or
folder alone, for the web form to show before anything is queued.

It must accept everything the import accepts (every real recorded fixture, in every container),
refuse with the very message the import would give, and read only the start of a file.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import threading

import orjson
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pipeline.formats import ArchiveError, check_archive_start, check_archive_upload, copy_archive
from pipeline.sample import generate_posts

from .formats_helpers import tweets_js_item, v1_tweet, v2_page, write_jsonl, write_tweets_js


def real_lines(real_data, name: str) -> list[dict]:
    documents = []
    for line in (real_data / name).read_bytes().splitlines():
        try:
            documents.append(json.loads(line))
        except ValueError:
            continue  # the stream fixture's deliberately broken last line
    return documents


def accepted_archives(real_data, folder) -> dict:
    """Every real fixture as it is, gzipped, and in each single-document container; the synthetic sample."""
    made = {path.name: path for path in sorted(real_data.glob("*.jsonl"))}
    v1 = real_lines(real_data, "v1-streaming-lines.jsonl")
    (folder / "array.json").write_text(json.dumps(v1, indent=2, ensure_ascii=False))
    (folder / "statuses.json").write_text(json.dumps({"statuses": v1, "search_metadata": {}}, indent=1))
    (folder / "page.json").write_text(json.dumps(real_lines(real_data, "v2-pages-noflat.jsonl")[0], indent=2))
    (folder / "flat-array.json").write_text(json.dumps(real_lines(real_data, "twarc2-flat.jsonl")))
    archive = folder / "twitter-archive"
    items = [{"tweet": {k: v for k, v in post.items() if k != "user"}} for post in v1]
    write_tweets_js(archive / "data" / "tweets.js", items)
    write_tweets_js(archive / "data" / "account.js", [{"account": {"username": "owner"}}], "account")
    sample = folder / "synthetic-sample.jsonl"
    sample.write_bytes(b"".join(orjson.dumps(post) + b"\n" for post in generate_posts(300, seed=1)))
    for name in ("array.json", "statuses.json", "page.json", "flat-array.json"):
        made[name] = folder / name
    made["tweets.js folder"] = archive
    made["tweets.js"] = archive / "data" / "tweets.js"
    made["synthetic sample"] = sample
    made["the real-data folder"] = real_data
    for name, path in list(made.items()):
        if path.is_file():
            packed = folder / f"{path.name}.gz"
            packed.write_bytes(gzip.compress(path.read_bytes()))
            made[f"{name}, gzipped"] = packed
    return made


def test_every_real_fixture_in_every_container_is_accepted(real_data, tmp_path):
    for name, path in accepted_archives(real_data, tmp_path).items():
        check_archive_start(path)  # raises for a refusal
        copy_archive([path], tmp_path / "copies" / name / "tweets.jsonl")  # and the import agrees


def _zip() -> bytes:
    return b"PK\x03\x04" + b"\x00" * 100


def _latin1() -> bytes:
    return b"".join(
        json.dumps(v1_tweet(str(n), f"caf\u00e9 {n}"), ensure_ascii=False).encode("latin-1") + b"\n" for n in range(5)
    )


def _truncated_gzip() -> bytes:
    whole = gzip.compress(b"".join(orjson.dumps(v1_tweet(str(n), "t " * 50)) + b"\n" for n in range(200)))
    return whole[: len(whole) // 2]


# name -> (file name, bytes, words of the refusal: the problem, then what to do)
BAD = {
    "binary": (
        "photo.jsonl",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        ("is a binary file", "choose"),
    ),
    "damaged zip": (
        "twitter-archive.zip",
        _zip(),
        ("is a damaged or incomplete ZIP file", "download or copy it again"),
    ),
    "utf-16": ("windows.json", json.dumps([v1_tweet("1", "a")]).encode("utf-16"), ("is UTF-16 text", "iconv")),
    "html": (
        "tweets.jsonl",
        b"<!DOCTYPE html>\n<html><head><title>Log in to X</title></head><body></body></html>\n",
        ("is a web page (HTML)", "Download the archive again"),
    ),
    "html in a gzip": ("tweets.jsonl.gz", gzip.compress(b"\n<html lang=en><body>Not found</body></html>"), ("HTML",)),
    "csv": ("tweets.csv", b"id,text\n1,hello\n", ("is not in a format dnflow reads", "dnflow imports JSONL")),
    "other JSON lines": (
        "package.jsonl",
        b'{"name": "left-pad"}\n{"version": "1.0"}\n',
        ("none of its first lines is an X/Twitter post", "dnflow imports"),
    ),
    "array of other things": ("list.json", b'[{"name": "a"}, {"name": "b"}]', ("not of X/Twitter posts", "dnflow")),
    "object of other things": (
        "config.json",
        json.dumps({"name": "left-pad", "version": "1.0"}, indent=2).encode(),
        ("is JSON, but not X/Twitter data", "dnflow imports"),
    ),
    "broken JSON": ("broken.json", b'{\n  "data": [\n', ("is not valid JSON or JSONL", "dnflow imports")),
    "empty": ("empty.jsonl", b"", ("is empty", "Choose the file")),
    "not UTF-8 at all": ("latin1.jsonl", _latin1(), ("is not valid UTF-8 text (line 1)", "iconv")),
    "truncated gzip": ("cut.jsonl.gz", _truncated_gzip(), ("is a truncated gzip file", "download it again")),
    "likes, not posts": (
        "like.js",
        b'window.YTD.like.part0 = [{"like": {"tweetId": "1", "fullText": "liked"}}]',
        ("holds no posts", "tweets.js"),
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_what_the_import_refuses_is_refused_from_its_start_with_the_same_message(case, tmp_path):
    name, data, says = BAD[case]
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(ArchiveError) as early:
        check_archive_start(path)
    with pytest.raises(ArchiveError) as late:
        copy_archive([path], tmp_path / "out" / "tweets.jsonl")

    assert str(early.value) == str(late.value)
    assert name in str(early.value)
    for words in says:
        assert words in str(early.value), str(early.value)


def test_a_folder_without_archives_and_a_missing_path_are_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("x")
    with pytest.raises(ArchiveError, match=r"holds no archive file \(found: todo.md\)"):
        check_archive_start(tmp_path / "notes")
    with pytest.raises(ArchiveError, match="No file or folder at"):
        check_archive_start(tmp_path / "nowhere.jsonl")


def test_a_bad_file_in_a_folder_is_named(tmp_path):
    folder = tmp_path / "collection"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [v1_tweet("1", "fine")])
    (folder / "b.json").write_bytes(_zip())
    with pytest.raises(ArchiveError, match="collection/b.json is a ZIP file"):
        check_archive_start(folder)


def test_only_the_start_is_read(tmp_path):
    """A 64 GiB file (sparse: no disk used) with valid posts at its start is accepted at once: the
    start is all there is to judge. A bad start behind a good one is the import's to find."""
    path = tmp_path / "huge.jsonl"
    write_jsonl(path, [v1_tweet(str(n), "x") for n in range(1, 50)] + [v2_page()])
    os.truncate(path, 64 * 1024**3)
    done = threading.Event()

    def check() -> None:
        check_archive_start(path)
        done.set()

    worker = threading.Thread(target=check, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert done.is_set(), "check_archive_start read far beyond the start"


def test_a_big_pretty_printed_document_is_judged_by_its_start(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(
        json.dumps([tweets_js_item(str(n), "x")["tweet"] | {"user": {}} for n in range(1, 60_000)], indent=2).encode()
    )
    assert path.stat().st_size > 8 * 1024 * 1024
    check_archive_start(path)
    bom = tmp_path / "bom.json"
    bom.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    check_archive_start(bom)


def test_leading_blank_lines_and_a_byte_order_mark_are_looked_past(tmp_path):
    blank = b"\n" * (3 * 1024 * 1024)
    for name, data in {
        "lines.jsonl": blank + orjson.dumps(v1_tweet("1", "a")) + b"\n",
        "array.json": codecs.BOM_UTF8 + blank + orjson.dumps([v1_tweet("2", "b")]),
    }.items():
        (tmp_path / name).write_bytes(data)
        check_archive_start(tmp_path / name)
    (tmp_path / "blank.jsonl").write_bytes(blank)
    with pytest.raises(ArchiveError, match="blank.jsonl is empty"):
        check_archive_start(tmp_path / "blank.jsonl")


@pytest.mark.parametrize("case", list(BAD))
def test_an_upload_without_a_path_is_judged_the_same(case, tmp_path):
    """Django keeps a small upload in memory: the form can hand over the open file."""
    name, data, _says = BAD[case]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ArchiveError) as by_path:
        check_archive_start(tmp_path / name)
    with pytest.raises(ArchiveError) as by_upload:
        check_archive_upload(SimpleUploadedFile(name, data), name)
    assert str(by_upload.value) == str(by_path.value)


def test_an_upload_of_a_real_fixture_is_accepted_and_left_readable(real_data):
    data = gzip.compress((real_data / "v2-pages-noflat.jsonl").read_bytes())
    upload = SimpleUploadedFile("pages.jsonl.gz", data)
    check_archive_upload(upload, "pages.jsonl.gz")
    assert upload.read() == data  # rewound, ready to be saved
