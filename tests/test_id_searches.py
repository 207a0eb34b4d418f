"""Searches of tweet ids ("hydration") from the form and the command line, against the emulated X
API: damaged datasets are refused before anything is spent, the cost is said first, and the run's
summary says how many ids were asked for, found and missing, and why."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from searches import services
from searches.models import Search, Source, Status

from .web_helpers import field_errors
from .worker_helpers import PROJECT_DIR, worker_database_url

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


def dataset(x_api, tmp_path, *, gone: int = 3) -> tuple:
    """Ids of 40 recorded posts, some twice, the first `gone` deleted on X meanwhile."""
    posts = x_api.posts[:40]
    ids = [p["id"] for p in posts]
    x_api.delete_posts(*ids[:gone])
    path = tmp_path / "ids.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tweet_id", "note"])
        writer.writerows([[i, "shared by a colleague"] for i in ids + ids[:5]])
    return path, ids


def test_an_id_search_finds_what_x_still_has_and_says_what_is_missing(x_api, tmp_path, owner, client):
    path, ids = dataset(x_api, tmp_path)
    search = services.create_search(owner=owner, source=Source.IDS, archive_path=str(path), enqueue=False)

    run = services.execute_search(search)

    assert run.status == Status.FINISHED, run.error
    folder = run.folder_path
    assert (folder / "tweet-ids.txt").read_text().split() == ids[3:]
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["ids_requested"], summary["ids_found"]) == (40, 37)
    assert summary["ids_missing_by_reason"] == {"resource-not-found": 3}
    with (folder / "missing-ids.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [["tweet_id", "reason"], *[[i, "resource-not-found"] for i in ids[:3]]]
    assert len(x_api.lookup_requests()) == 1  # 40 distinct ids: one request, never the duplicates again
    # The package says what it is: the posts of an id dataset, not "a whole archive".
    with zipfile.ZipFile(folder / f"{folder.name}.zip") as package:
        info = package.read(f"{folder.name}/bag-info.txt").decode()
    assert f"post ids and summaries of the posts of the id dataset {path.name} found on X" in info
    # The page says it.
    client.force_login(owner)
    page = client.get(search.get_absolute_url()).content.decode()
    assert "40 ids looked up: 37 found, 3 missing" in page
    assert "resource-not-found" in page and "missing-ids.csv" in page


def test_a_damaged_id_file_is_refused_on_the_form_before_anything_is_spent(x_api, owner_client, empty_queue):
    upload = SimpleUploadedFile("ids.csv", b"tweet_id\n1.40888E+18\n1408876829491015681\n")

    response = owner_client.post(reverse("home"), {"source": "ids", "archive": upload})

    assert response.status_code == 200
    errors = field_errors(response.content.decode(), "archive")
    assert "scientific notation" in errors and "Export the ids again" in errors
    # First what happened to the file, then each problem in an item of its own.
    items = [item.strip() for item in re.findall(r"<p>(.*?)</p>", errors, re.S)]
    assert items[0] == "ids.csv was refused: nothing in it was looked up, and nothing was spent."
    assert items[1].startswith("ids.csv: 1 id in scientific notation (line 2: 1.40888E+18)")
    assert "left out" not in errors
    assert not Search.objects.exists() and empty_queue.count == 0
    assert x_api.requests == []


def test_the_form_names_every_kind_of_damage_in_a_refused_id_file(x_api, owner_client, empty_queue):
    upload = SimpleUploadedFile("ids.csv", b"tweet_id\n1.40888E+18\n1408876829491010000\n")

    response = owner_client.post(reverse("home"), {"source": "ids", "archive": upload})

    errors = field_errors(response.content.decode(), "archive")
    assert "line 2: 1.40888E+18" in errors  # in scientific notation
    assert "line 3: 1408876829491010000" in errors and "rounded" in errors  # zero-filled by the same spreadsheet
    assert not Search.objects.exists() and x_api.requests == []


def test_the_form_estimates_an_id_lookup_and_then_starts_it(x_api, tmp_path, owner_client, empty_queue):
    path, _ = dataset(x_api, tmp_path)
    form = {"source": "ids"}

    estimate = owner_client.post(
        reverse("estimate"), {**form, "archive": SimpleUploadedFile("ids.csv", path.read_bytes())}
    )
    assert "at most 40 posts to read in 1 request" in estimate.content.decode()
    assert "$0.20" in estimate.content.decode()  # 40 x $0.005
    assert x_api.requests == []  # an estimate spends nothing

    started = owner_client.post(reverse("home"), {**form, "archive": SimpleUploadedFile("ids.csv", path.read_bytes())})
    search = Search.objects.get()
    assert started.status_code == 302 and search.source == Source.IDS
    assert empty_queue.count == 1


def test_run_search_ids_prints_the_cost_first_and_the_folder_last(x_api, tmp_path, data_dir):
    path, _ = dataset(x_api, tmp_path, gone=0)
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DNFLOW_DATA_DIR": str(data_dir),
        "DNFLOW_FETCH_PHOTOS": "0",
        "X_BEARER_TOKEN": x_api.token,
        "DNFLOW_X_API_URL": x_api.url,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "run_search", "--ids", str(path)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "40 ids" in done.stderr and "at most $0.20" in done.stderr
    assert done.stderr.index("at most $0.20") < done.stderr.index("Search #")  # before it starts
    folder = done.stdout.strip().splitlines()[-1]
    assert json.loads((data_dir / folder.rsplit("/", 1)[-1] / "summary.json").read_text())["ids_found"] == 40

    damaged = tmp_path / "damaged.txt"
    damaged.write_text("1.40888E+18\n1.40888E+18\n")
    refused = subprocess.run(
        [sys.executable, "manage.py", "run_search", "--ids", str(damaged)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "scientific notation" in refused.stderr
    said = refused.stderr.strip().splitlines()
    assert said[0] == "damaged.txt holds no usable id: all 2 rows are damaged."
    assert said[1].startswith("damaged.txt: 2 ids in scientific notation (line 1: 1.40888E+18; line 2: ")
    assert "Traceback" not in refused.stderr
