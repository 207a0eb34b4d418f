"""DNFLOW_ARCHIVE_IMPORT=link (opt-in): a plain JSONL archive is hard-linked instead of copied,
with the same sources.json facts and the same outputs; everything a link cannot reproduce byte
for byte is copied as before, and what a copy refuses is refused the same way.

The archives are SYNTHETIC (pipeline.sample's generator).
"""

from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import orjson
import pytest

from pipeline.formats import ArchiveError, copy_archive
from pipeline.formats.linking import LINKED
from pipeline.runner import build_workflow
from pipeline.sample.generator import generate_posts
from pipeline.summarise import PASS_OUTPUTS

from .pipeline_helpers import archive_search


def synthetic_jsonl(path: Path, posts: int = 50) -> Path:
    path.write_bytes(b"".join(orjson.dumps(post) + b"\n" for post in generate_posts(posts, seed=3, fmt="v1")))
    return path


def sources(raw: Path) -> list[dict]:
    return json.loads(raw.with_name("sources.json").read_text())["files"]


def test_a_plain_jsonl_archive_is_linked_with_the_facts_a_copy_records(tmp_path):
    archive = synthetic_jsonl(tmp_path / "archive.jsonl")
    copied = tmp_path / "copied" / "tweets.jsonl"
    linked = tmp_path / "linked" / "tweets.jsonl"
    copy_archive([archive], copied)
    copy_archive([archive], linked, link=True)

    assert os.stat(linked).st_ino == os.stat(archive).st_ino  # the same file, not a copy
    assert os.stat(copied).st_ino != os.stat(archive).st_ino
    assert linked.read_bytes() == copied.read_bytes()
    (entry,) = sources(linked)
    assert entry.pop("imported") == LINKED
    assert [entry] == sources(copied)
    assert entry["lines"] == 50 and entry["format"] == "JSONL (v1.1 tweet)"
    assert sorted(p.name for p in linked.parent.iterdir()) == ["sources.json", "tweets.jsonl"]


def _gzipped(tmp_path: Path) -> Path:
    path = tmp_path / "archive.jsonl.gz"
    path.write_bytes(gzip.compress(synthetic_jsonl(tmp_path / "plain.jsonl").read_bytes()))
    return path


def _without_final_newline(tmp_path: Path) -> Path:
    path = synthetic_jsonl(tmp_path / "archive.jsonl")
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    return path


def _with_bom(tmp_path: Path) -> Path:
    path = synthetic_jsonl(tmp_path / "archive.jsonl")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    return path


@pytest.mark.parametrize("make", [_gzipped, _without_final_newline, _with_bom])
def test_what_a_link_cannot_reproduce_is_copied(tmp_path, make):
    archive = make(tmp_path)
    linked = tmp_path / "linked" / "tweets.jsonl"
    copied = tmp_path / "copied" / "tweets.jsonl"
    copy_archive([archive], linked, link=True)
    copy_archive([archive], copied)
    assert os.stat(linked).st_ino != os.stat(archive).st_ino
    assert linked.read_bytes() == copied.read_bytes()
    assert sources(linked) == sources(copied)


def test_two_files_or_another_filesystem_are_copied(tmp_path, monkeypatch):
    first = synthetic_jsonl(tmp_path / "first.jsonl")
    second = synthetic_jsonl(tmp_path / "second.jsonl", posts=10)
    both = tmp_path / "both" / "tweets.jsonl"
    copy_archive([first, second], both, link=True)
    assert [e.get("imported") for e in sources(both)] == [None, None]

    def cross_device(source, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    elsewhere = tmp_path / "elsewhere" / "tweets.jsonl"
    copy_archive([first], elsewhere, link=True)
    assert os.stat(elsewhere).st_ino != os.stat(first).st_ino
    assert elsewhere.read_bytes() == first.read_bytes()


def test_an_archive_that_is_not_utf8_is_refused_and_not_linked(tmp_path):
    archive = synthetic_jsonl(tmp_path / "latin1.jsonl", posts=1)
    original = archive.read_bytes() + '{"id_str": "2", "full_text": "caf\u00e9"}\n'.encode("latin-1") * 2
    archive.write_bytes(original)
    dest = tmp_path / "out" / "tweets.jsonl"
    with pytest.raises(ArchiveError, match=r"latin1.jsonl is not valid UTF-8 text \(line 2\)"):
        copy_archive([archive], dest, link=True)
    assert list(dest.parent.iterdir()) == []
    assert archive.read_bytes() == original and os.stat(archive).st_nlink == 1


def test_one_line_that_is_not_utf8_is_linked_as_a_copy_would_keep_it(tmp_path):
    archive = synthetic_jsonl(tmp_path / "mostly.jsonl")
    archive.write_bytes(archive.read_bytes() + '{"id_str": "2", "full_text": "caf\u00e9"}\n'.encode("latin-1"))
    dest = tmp_path / "out" / "tweets.jsonl"
    report = copy_archive([archive], dest, link=True)
    assert report.sources[0]["imported"] == LINKED and os.path.samefile(archive, dest)


@pytest.mark.django_db(transaction=True)
def test_a_linked_search_writes_what_a_copied_one_writes(tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = False
    archive = synthetic_jsonl(tmp_path / "archive.jsonl", posts=200)
    copied = archive_search(archive)
    assert build_workflow(copied).ok
    settings.DNFLOW_ARCHIVE_IMPORT = "link"
    linked = archive_search(archive)
    assert build_workflow(linked).ok

    assert os.stat(linked.folder_path / "tweets.jsonl").st_ino == os.stat(archive).st_ino
    outcome = linked.events.filter(task_family="CollectPosts", event="success").get().message
    assert outcome == "Linked 1 file, 200 lines"
    for name in PASS_OUTPUTS:
        if name not in ("sample.csv", "summarised.json"):  # the sample is drawn per search
            assert (linked.folder_path / name).read_bytes() == (copied.folder_path / name).read_bytes(), name


@pytest.mark.django_db(transaction=True)
def test_an_unknown_import_mode_fails_the_search_with_the_setting_named(tmp_path, settings):
    settings.DNFLOW_ARCHIVE_IMPORT = "symlink"
    search = archive_search(synthetic_jsonl(tmp_path / "archive.jsonl"))
    result = build_workflow(search)
    assert not result.ok
    assert "DNFLOW_ARCHIVE_IMPORT='symlink' is not an import mode" in result.error


def test_a_linked_archive_is_read_for_its_checksum_with_the_bar_moving(tmp_path):
    archive = synthetic_jsonl(tmp_path / "archive.jsonl")
    seen: list[tuple[int, int]] = []

    copy_archive([archive], tmp_path / "linked" / "tweets.jsonl", link=True, on_read=lambda *read: seen.append(read))

    assert sources(tmp_path / "linked" / "tweets.jsonl")[0]["imported"] == LINKED
    assert seen and seen[-1] == (archive.stat().st_size, archive.stat().st_size)
