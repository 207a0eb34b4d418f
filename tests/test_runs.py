"""Every collection of a search is its own run: a newer run that is queued, running, cancelled or
failed never hides the earlier results, and a run that is killed or stopped leaves nothing
half-done behind once the search runs again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from pipeline.contract import temporaries
from searches import services
from searches.models import Search, SearchRun, Source, Status

from .conftest import TEST_REDIS_URL
from .worker_helpers import PROJECT_DIR, big_archive, redis_for_tests, worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


def finished_search(owner, term: str) -> Search:
    search = services.create_search(owner=owner, term=term, source=Source.SAMPLE, enqueue=False)
    assert services.execute_search(search).status == Status.FINISHED
    return Search.objects.with_runs().get(pk=search.pk)


def test_a_cancelled_new_collection_leaves_the_published_results_in_place(owner, client, empty_queue):
    search = finished_search(owner, "climate")
    other = finished_search(owner, "flood")
    services.publish_search(search)
    services.publish_search(other)
    first = search.results_run
    counts_before = (first.folder_path / "count-hashtags.csv").read_bytes()

    services.collect_again(search)
    services.cancel_search(Search.objects.get(pk=search.pk))

    search = Search.objects.with_runs().get(pk=search.pk)
    assert (search.latest_run.number, search.status) == (2, Status.CANCELLED)
    assert search.results_run == first
    # Anyone still gets the earlier collection's results, everywhere they look.
    summary = client.get(reverse("search_summary", args=[search.pk]))
    assert summary.status_code == 200
    page = summary.content.decode()
    assert "The newest collection was cancelled; these results are from run 1" in page
    assert 'id="chart-hashtags"' in page
    detail = client.get(reverse("api_search_detail", args=[search.pk])).json()
    assert detail["status"] == "cancelled"
    assert detail["counts"]["num_tweets"] == first.num_posts > 0
    assert detail["results_run"]["number"] == 1 and detail["latest_run"]["number"] == 2
    assert {f["name"] for f in detail["files"]} >= {"count-hashtags.csv", "tweet-ids.txt", f"{first.folder}.zip"}
    counts = client.get(reverse("api_search_counts", args=[search.pk, "hashtags"]))
    assert counts.status_code == 200 and counts.json()["counts"]
    download = client.get(reverse("search_file", args=[search.pk, "count-hashtags.csv"]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == counts_before
    compare = client.get(reverse("compare"), {"ids": f"{search.pk},{other.pk}"}).content.decode()
    assert 'id="compare-hashtags"' in compare and "Pick between 2" not in compare
    feed = client.get(reverse("feed")).content.decode()
    assert f"/searches/{search.pk}/" in feed and f"{first.num_posts:,} posts" in feed

    # The owner's page lists both runs, newest first, each with its own steps.
    owner_client = Client()
    owner_client.force_login(owner)
    page = owner_client.get(search.get_absolute_url()).content.decode()
    assert 'Status <span class="meta">· run 2</span>' in page
    assert '<details class="run" id="run-1"' in page
    assert page.count("<caption>Steps of run 1") == 1
    assert page.index('id="status"') < page.index('id="run-1"')
    assert page.count('<span class="badge badge-cancelled">') == 1


def test_a_new_collection_that_finishes_becomes_the_results(owner, client, empty_queue):
    search = finished_search(owner, "climate")
    first = search.results_run
    services.publish_search(search)
    run = services.collect_again(search, enqueue=False)

    # While it is queued the earlier results are shown, with a line that says so.
    page = client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "A new collection is queued; these results are from run 1" in page
    assert services.execute_search(Search.objects.get(pk=search.pk)) == run

    search = Search.objects.with_runs().get(pk=search.pk)
    assert search.results_run == run and run.folder != first.folder
    assert first.folder_path.is_dir()  # the earlier collection is kept
    page = client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "these results are from" not in page
    # Deleting the search deletes every run and every folder.
    services.delete_search(search)
    assert not SearchRun.objects.filter(pk__in=[first.pk, run.pk]).exists()
    assert not first.folder_path.exists() and not run.folder_path.exists()


# --- a run killed half-way leaves nothing behind ---------------------------------------------------


def _cli(data_dir: Path, archive: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": TEST_REDIS_URL,
        "DNFLOW_DATA_DIR": str(data_dir),
        "DNFLOW_FETCH_PHOTOS": "0",
        "DNFLOW_WORKER_HEARTBEAT": "1",
        "X_BEARER_TOKEN": "",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_search", "--archive", str(archive)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its forked workers too
    )


def _summary_never_without_its_zip(folder: Path) -> None:
    summary = folder / "summary.json"
    if summary.exists():
        try:
            status = json.loads(summary.read_text())["status"]
        except (OSError, ValueError):
            pytest.fail("summary.json appeared half-written")
        assert status == "finished"
        assert (folder / f"{folder.name}.zip").is_file(), "summary.json says finished without its package"


def _kill_when(data_dir: Path, archive: Path, moment) -> SearchRun:
    """Start `run_search` and SIGKILL it (and its forked processes) as soon as moment(folder) holds."""
    proc = _cli(data_dir, archive)
    deadline = time.monotonic() + 120
    run = None
    try:
        while time.monotonic() < deadline:
            run = run or SearchRun.objects.order_by("-pk").first()
            if run is not None:
                _summary_never_without_its_zip(run.folder_path)
                if moment(run.folder_path):
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
                    return SearchRun.objects.get(pk=run.pk)
            assert proc.poll() is None, "the run ended before the moment came"
            time.sleep(0.002)
        raise AssertionError("the moment never came")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _counting(folder: Path) -> bool:
    return any(folder.glob(".tweets.csv.*.tmp"))  # the summary pass is writing its tables


def _packaging(folder: Path) -> bool:
    return any(folder.glob(".package-*"))  # the bag is being built


@pytest.mark.worker
@pytest.mark.parametrize("moment", [_counting, _packaging], ids=["during counting", "during packaging"])
def test_a_run_killed_half_way_leaves_no_temporaries_once_it_has_run_again(moment, data_dir, settings):
    settings.DNFLOW_WORKER_HEARTBEAT = 1
    archive = big_archive(300)  # 150,000 posts: seconds of counting, a package of megabytes
    with redis_for_tests(settings):
        killed = _kill_when(data_dir, archive, moment)

        left = temporaries(killed.folder_path)
        assert left, "the kill left nothing to clean up: the test proves nothing"
        assert killed.status == Status.RUNNING  # nobody lived to record anything
        _summary_never_without_its_zip(killed.folder_path)

        # Its heartbeat stops; the reconcile sweep queues the run again and it resumes.
        deadline = time.monotonic() + 30
        while not services.reconcile_searches().requeued:
            assert time.monotonic() < deadline, "the lost run was never recovered"
            time.sleep(0.5)
        run = services.execute_search(killed.search)

    assert (run.pk, run.status) == (killed.pk, Status.FINISHED), run.error
    assert temporaries(run.folder_path) == []
    assert not [p for p in run.folder_path.rglob("*") if p.name.startswith(".")]
    _summary_never_without_its_zip(run.folder_path)
    summary = json.loads((run.folder_path / "summary.json").read_text())
    assert summary["num_tweets"] == 150_000
    with zipfile.ZipFile(run.folder_path / f"{run.folder}.zip") as package:
        assert package.testzip() is None
