"""The BagIt package: a zip that unzips to a bag bagit validates, without the raw posts."""

from __future__ import annotations

import csv
import json
import re
import zipfile

import bagit
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

import dnflow_site
from pipeline.package import build_package
from pipeline.runner import build_workflow
from searches.models import Search

from .pipeline_helpers import WRITERS, archive_search


def unzip(package, dest):
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        archive.extractall(dest)
    return names


@pytest.mark.django_db(transaction=True)
def test_package_of_a_search_is_a_valid_bag_without_raw_posts(tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = False
    search = archive_search(WRITERS["v1"](tmp_path / "climate.jsonl"), term="#energy")
    assert build_workflow(search).ok
    folder = search.folder_path
    package = folder / f"{folder.name}.zip"

    names = unzip(package, tmp_path / "unzipped")

    bag = bagit.Bag(str(tmp_path / "unzipped" / folder.name))
    bag.validate()  # raises if any checksum, the Payload-Oxum or a required file is wrong
    assert bag.version_info == (1, 0), "an RFC 8493 bag, as the outputs promise"
    payload = sorted(bag.payload_files())
    for name in ("summary.json", "tweet-ids.txt", "count-hashtags.csv", "media-graph.json"):
        assert f"data/{name}" in payload
    assert "data/sources.json" in payload
    assert not any("tweets.jsonl" in name for name in names)  # the raw posts stay out
    # So do the files carrying the posts' text: a published package goes to anyone.
    assert not any(name.endswith(("/tweets.csv", "/sample.csv")) for name in names)
    assert not any(name.endswith(".zip") for name in names)
    info = bag.info
    assert info["Dnflow-Query"] == "#energy"
    assert info["Dnflow-Source"] == "Archive file"
    assert info["Dnflow-Posts"] == "4"  # 1001, 1002, 1003 and 1004 have #energy
    assert info["Dnflow-Photos-Downloaded"] == "0"  # photos are not fetched here
    assert info["Dnflow-Version"] == dnflow_site.__version__
    assert info["Dnflow-First-Post"] == "2023-01-01T10:00:00+00:00"
    # Beside the outputs, what each holds: the same words as the page's list of files.
    with (tmp_path / "unzipped" / folder.name / "data" / "data-dictionary.csv").open(newline="") as handle:
        dictionary = {row["file"]: row for row in csv.DictReader(handle)}
    assert dictionary["tweet-ids.txt"]["holds"].startswith("The id of every collected post")
    assert dictionary["count-hashtags.csv"]["columns"] == "hashtag count"
    assert set(dictionary) == {name.removeprefix("data/") for name in payload} - {"data-dictionary.csv"}
    # summary.json, written after the zip, is the bag's own and says the search finished.
    bagged = (tmp_path / "unzipped" / folder.name / "data" / "summary.json").read_bytes()
    assert (folder / "summary.json").read_bytes() == bagged
    assert json.loads(bagged)["status"] == "finished"
    assert json.loads(bagged)["package"] == package.name
    # The working folder is gone; only the finished zip remains.
    assert not any(p.name.startswith(".") for p in folder.iterdir())


def test_a_changed_file_fails_validation(tmp_path):
    folder = tmp_path / "search-1-x"
    (folder / "media").mkdir(parents=True)
    (folder / "tweet-ids.txt").write_text("1\n")
    (folder / "media" / "p.jpg").write_bytes(b"\xff\xd8photo")
    unzip(build_package(folder, {"Dnflow-Query": "x"}, {"num_tweets": 1}), tmp_path / "out")
    bag_dir = tmp_path / "out" / folder.name
    bagit.Bag(str(bag_dir)).validate()

    (bag_dir / "data" / "tweet-ids.txt").write_text("2\n")

    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag_dir)).validate()


def test_live_collection_files_and_temporaries_stay_out(tmp_path):
    folder = tmp_path / "search-2-x"
    folder.mkdir()
    for name in ("tweets.jsonl", "tweets.jsonl.part", "collect-state.json", ".summary.json.abc.tmp", "notes.txt"):
        (folder / name).write_text("raw\n")
    (folder / "tweet-ids.txt").write_text("1\n")
    # A query with a line break must not break bag-info.txt's one-field-per-line format.
    names = unzip(build_package(folder, {"Dnflow-Query": "climate\nOR weather"}, {"num_tweets": 1}), tmp_path / "out")

    # Only the files the folder contract packages: not a file someone dropped in the folder either.
    assert sorted(n.split("/", 1)[1] for n in names if "/data/" in n) == [
        "data/data-dictionary.csv",
        "data/summary.json",
        "data/tweet-ids.txt",
    ]
    bag = bagit.Bag(str(tmp_path / "out" / folder.name))
    bag.validate()
    assert bag.info["Dnflow-Query"] == "climate OR weather"


@pytest.mark.django_db(transaction=True)
def test_a_new_sample_makes_the_package_again_so_that_it_says_what_the_folder_says(tmp_path, settings, client):
    """What the tester found: after "Draw a new sample" the folder's summary.json said the new size
    and the package's the old one (the bag was not made again), and the form still offered the old."""
    settings.DNFLOW_FETCH_PHOTOS = False
    settings.DNFLOW_SAMPLE_SIZE = 3
    run = archive_search(WRITERS["v1"](tmp_path / "climate.jsonl"))
    assert build_workflow(run).ok
    run.runs().finish()
    search = Search.objects.with_runs().get(pk=run.search_id)
    owner = get_user_model().objects.create_user("archivist", password="x")
    Search.objects.filter(pk=search.pk).update(owner=owner)
    client.force_login(owner)

    client.post(reverse("search_sample", args=[search.pk]), {"size": 5})

    folder = run.folder_path
    unzip(folder / f"{folder.name}.zip", tmp_path / "unzipped")
    bag = bagit.Bag(str(tmp_path / "unzipped" / folder.name))
    bag.validate()
    bagged = (tmp_path / "unzipped" / folder.name / "data" / "summary.json").read_bytes()
    assert json.loads(bagged)["sample_size"] == 5
    assert (folder / "summary.json").read_bytes() == bagged
    page = client.get(search.get_absolute_url()).content.decode()
    assert re.search(r'<input[^>]*name="size"[^>]*value="5"', page), "the form offers the size drawn last"
