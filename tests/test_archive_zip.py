"""ZIP files: the archive X lets a person download, or a zipped folder of JSON lines, imported as
the folder they unpack to, from the command line and the web form alike (the form takes one file,
and X's archive comes as one ZIP). Only what the import reads is unpacked, and nothing stays.

The Twitter archives here are SYNTHETIC (formats_helpers' tweets.js items); the zipped JSON lines
are the real recorded fixtures.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from pipeline.formats import ArchiveError, check_archive_start, copy_archive
from searches.models import Search

from .formats_helpers import import_files, tweets_js_item, v1_tweet, write_jsonl


def ytd(part: str, items: list) -> str:
    return f"window.YTD.{part} = " + json.dumps(items)


def twitter_archive_zip(path: Path) -> Path:
    """A ZIP shaped like X's "download your archive": data/tweets.js and a part, account.js, the
    owner's likes and messages, media and the HTML viewer, all under one top folder."""
    top = "twitter-2023-01-31-abc/"
    members = {
        "Your archive.html": "<html></html>",
        "data/tweets-part1.js": ytd("tweets.part1", [tweets_js_item("42", "second")]),
        "data/tweets.js": ytd("tweets.part0", [tweets_js_item("41", "first")]),
        "data/account.js": ytd("account.part0", [{"account": {"username": "owner_name"}}]),
        "data/like.js": ytd("like.part0", [{"like": {"tweetId": "9", "fullText": "liked"}}]),
        "data/direct-messages.js": ytd("direct_messages.part0", []),
        "data/tweets_media/41-photo.jpg": b"\xff\xd8\xff" + b"\x00" * 64,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(top + name, data)
    return path


def test_x_s_archive_as_it_comes_is_read_as_its_folder_would_be(tmp_path):
    zipped = twitter_archive_zip(tmp_path / "twitter-2023-01-31-abc.zip")
    raw = tmp_path / "search" / "tweets.jsonl"

    posts, report = import_files([zipped], raw)

    assert [(p.id, p.user) for p in posts] == [("41", "owner_name"), ("42", "owner_name")]
    sources = json.loads(raw.with_name("sources.json").read_text())
    inside = "twitter-2023-01-31-abc.zip/twitter-2023-01-31-abc/data"
    assert [entry["name"] for entry in sources["files"]] == [f"{inside}/tweets.js", f"{inside}/tweets-part1.js"]
    # The owner's likes, messages and media are left out, said so, and never unpacked.
    assert f"{inside}/like.js" in sources["skipped"] and f"{inside}/tweets_media/41-photo.jpg" in sources["skipped"]
    assert f"{inside}/account.js" not in sources["skipped"]  # read: it names the author
    # The ZIP as the person holds it, to check it against the record.
    whole = {
        "name": zipped.name,
        "size": zipped.stat().st_size,
        "sha256": hashlib.sha256(zipped.read_bytes()).hexdigest(),
    }
    assert sources["zips"] == [whole]
    assert sorted(p.name for p in raw.parent.iterdir()) == ["sources.json", "tweets.jsonl"]
    assert report.authorless == 0


def test_a_zip_of_json_lines_gives_what_the_files_give(tmp_path, real_data):
    names = ["v1-streaming-lines.jsonl", "twarc2-flat.jsonl"]
    zipped = tmp_path / "collection.zip"
    with zipfile.ZipFile(zipped, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.write(real_data / name, f"collection/{name}")
        archive.writestr("collection/README.txt", "Collected with twarc2.\n")
        archive.writestr("__MACOSX/collection/._twarc2-flat.jsonl", b"\x00\x05\x16\x07")

    check_archive_start(zipped)  # the form's check, as the import, leaves the README out
    from_zip, _ = import_files([zipped], tmp_path / "a" / "tweets.jsonl")
    from_files, _ = import_files([real_data / name for name in sorted(names)], tmp_path / "b" / "tweets.jsonl")

    assert [p.id for p in from_zip] == [p.id for p in from_files] and len(from_zip) == 171
    assert (tmp_path / "a" / "tweets.jsonl").read_bytes() == (tmp_path / "b" / "tweets.jsonl").read_bytes()


@pytest.mark.parametrize(
    "case, says",
    [
        ("nothing to import", "The ZIP file photos.zip holds no archive file (found: a.jpg)"),
        ("damaged", "photos.zip is a damaged or incomplete ZIP file"),
        ("password-protected", "photos.zip is password-protected: unzip it with its password"),
        ("too big", "photos.zip is too big to import: the files to read in it hold 3.2 KiB, more than the limit"),
    ],
)
def test_a_zip_that_cannot_be_imported_is_refused_from_its_start_in_words(case, says, tmp_path):
    zipped = tmp_path / "photos.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        if case == "nothing to import":
            archive.writestr("a.jpg", b"\xff\xd8\xff")
        else:
            archive.writestr("a.jsonl", json.dumps(v1_tweet("1", "x" * 3000)) + "\n")
    data = zipped.read_bytes()
    if case == "damaged":
        zipped.write_bytes(data[: len(data) // 2])
    if case == "password-protected":
        # zipfile cannot encrypt: set the "encrypted" flag of the member, in both of its headers.
        local, central = data.index(b"PK\x03\x04"), data.index(b"PK\x01\x02")
        patched = bytearray(data)
        patched[local + 6] |= 1
        patched[central + 8] |= 1
        zipped.write_bytes(bytes(patched))
    options = {"max_bytes": 1000} if case == "too big" else {}

    if case != "too big":  # the limit is the import's (DNFLOW_MAX_ARCHIVE_BYTES), not the form's check
        with pytest.raises(ArchiveError) as early:
            check_archive_start(zipped)
        assert says in str(early.value)
    with pytest.raises(ArchiveError) as late:
        copy_archive([zipped], tmp_path / "out" / "tweets.jsonl", **options)

    assert says in str(late.value)
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # nothing unpacked stays


def test_a_member_that_would_land_outside_its_folder_is_not_unpacked(tmp_path):
    zipped = tmp_path / "sneaky.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("../escaped.jsonl", json.dumps(v1_tweet("1", "out")) + "\n")
        archive.writestr("/abs.jsonl", json.dumps(v1_tweet("2", "abs")) + "\n")
        archive.writestr("ok/inside.jsonl", json.dumps(v1_tweet("3", "in")) + "\n")

    posts, _ = import_files([zipped], tmp_path / "search" / "tweets.jsonl")

    assert [p.id for p in posts] == ["3"]
    assert not (tmp_path / "escaped.jsonl").exists() and not (tmp_path / "search" / "escaped.jsonl").exists()
    # Left out, and said so.
    skipped = json.loads((tmp_path / "search" / "sources.json").read_text())["skipped"]
    assert skipped[:2] == [
        "sneaky.zip/../escaped.jsonl (outside the ZIP's folder: not unpacked)",
        "sneaky.zip//abs.jsonl (outside the ZIP's folder: not unpacked)",
    ]


def test_an_empty_zip_and_one_damaged_past_its_start_are_refused_in_words(tmp_path, real_data):
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    for check in (check_archive_start, lambda path: copy_archive([path], tmp_path / "out" / "tweets.jsonl")):
        with pytest.raises(ArchiveError, match="empty.zip is an empty ZIP file: it holds no file"):
            check(empty)

    # Damage inside a member's compressed data: said in words, whether found early or while unpacking.
    damaged = tmp_path / "collection.zip"
    with zipfile.ZipFile(damaged, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(real_data / "v2-pages-twarc-network.jsonl", "collection/pages.jsonl")
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64  # an invalid deflate block: zlib's error, not a CRC's
    damaged.write_bytes(bytes(data))
    for check in (check_archive_start, lambda path: copy_archive([path], tmp_path / "out2" / "tweets.jsonl")):
        with pytest.raises(
            ArchiveError, match=r"collection.zip is damaged \(collection/pages.jsonl: .*download or copy"
        ):
            check(damaged)
    assert list((tmp_path / "out2").iterdir()) == []


@pytest.mark.django_db
def test_x_s_archive_zip_uploaded_on_the_form_starts_a_search(owner_client, empty_queue, tmp_path):
    zipped = twitter_archive_zip(tmp_path / "twitter-archive.zip")
    upload = SimpleUploadedFile("twitter-archive.zip", zipped.read_bytes())

    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": upload})

    search = Search.objects.get()
    assert response.status_code == 302 and response["Location"] == search.get_absolute_url()
    assert Path(search.archive_path).name == "twitter-archive.zip"

    broken = SimpleUploadedFile("broken.zip", zipped.read_bytes()[:200])
    refused = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": broken})
    assert "broken.zip is a damaged or incomplete ZIP file" in refused.content.decode()
    assert Search.objects.count() == 1


def test_a_file_that_is_not_a_zip_is_not_taken_for_one(tmp_path):
    archive = write_jsonl(tmp_path / "lines.zip.jsonl", [v1_tweet("5", "plain")])
    assert [p.id for p in import_files([archive], tmp_path / "s" / "tweets.jsonl")[0]] == ["5"]
