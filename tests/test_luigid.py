"""Searches scheduled by Luigi's central scheduler, a real `luigid` (DNFLOW_LUIGI_SCHEDULER_URL).

Each test starts its own luigid on a free port, with its own state file and log folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import django_rq
import luigi.configuration
import pytest
from django.conf import settings
from django.test import override_settings
from rq.job import Job

from pipeline import runner
from pipeline.contract import RAW_POSTS, TWEET_IDS
from pipeline.runner import TAKEN_BY_ANOTHER_WORKER
from pipeline.tasks import claim_of, final_task
from searches import services
from searches.execute import execute_run
from searches.models import SearchRun, Status, TaskEvent

from .worker_helpers import (
    COMPARED_OUTPUTS,
    PROJECT_DIR,
    REAL_ARCHIVE,
    big_archive,
    is_done,
    newest_run,
    task_events,
    worker_database_url,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LUIGID = Path(sys.executable).with_name("luigid")
FAMILIES = ("CollectPosts", "SummarisePosts", "BuildNetworks", "FetchPhotos", "MatchPhotos", "PackageOutputs")


class Luigid:
    """A luigid process of one test, and its JSON API."""

    def __init__(self, url: str, proc: subprocess.Popen, log_dir: Path) -> None:
        self.url = url
        self.proc = proc
        self.log_dir = log_dir

    def api(self, method: str, **data) -> dict:
        with urllib.request.urlopen(f"{self.url}/api/{method}?data={quote(json.dumps(data))}", timeout=10) as answer:
            return json.load(answer)["response"]

    def tasks(self, status: str) -> dict[str, dict]:
        return self.api("task_list", status=status, limit=False)

    def log(self) -> str:
        path = self.log_dir / "luigi-server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_luigid(tmp_path: Path, **scheduler: str) -> Iterator[Luigid]:
    """`luigid` on 127.0.0.1 and a free port; `scheduler` is its luigi.cfg [scheduler] section."""
    folder = tmp_path / "luigid"
    (folder / "logs").mkdir(parents=True)  # luigid in the foreground does not make it
    config = folder / "luigi.cfg"
    config.write_text("[scheduler]\n" + "".join(f"{name} = {value}\n" for name, value in scheduler.items()))
    port = free_port()
    command = [
        str(LUIGID),
        "--address=127.0.0.1",
        f"--port={port}",
        f"--state-path={folder / 'state.pickle'}",
        f"--logdir={folder / 'logs'}",
    ]
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(config)}
    proc = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Luigid(f"http://127.0.0.1:{port}", proc, folder / "logs")
    try:
        began = time.monotonic()
        while True:
            try:
                server.api("is_paused")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() - began > 20:
                    raise AssertionError(f"luigid did not start on port {port}:\n{server.log()}") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()


@pytest.fixture
def luigid(tmp_path) -> Iterator[Luigid]:
    with running_luigid(tmp_path) as server:
        yield server


def claim_tasks(tasks: dict[str, dict], run: SearchRun, claim: str) -> dict[str, dict]:
    """The tasks of one claim of a run in a luigid task list, by family."""
    mine = [
        task
        for task in tasks.values()
        if task["params"].get("run_id") == str(run.pk) and task["params"].get("claim") == claim
    ]
    by_family = {task["name"]: task for task in mine}
    assert len(by_family) == len(mine), mine
    return by_family


def run_in_this_process(**fields) -> SearchRun:
    """The same search run with Luigi's local scheduler in this process: what luigid runs must match."""
    search = services.create_search(**fields)
    with override_settings(DNFLOW_LUIGI_SCHEDULER_URL=""):
        run = execute_run(search.latest_run_id)
    assert run.status == Status.FINISHED, run.error
    return run


def assert_same_outputs(run: SearchRun, local: SearchRun) -> None:
    for name in COMPARED_OUTPUTS:
        assert (run.folder_path / name).read_bytes() == (local.folder_path / name).read_bytes(), name
    assert len((run.folder_path / TWEET_IDS).read_text().splitlines()) == run.num_posts > 1


def test_searches_on_two_workers_through_luigid_match_local_runs_and_luigid_lists_their_tasks(
    workers, luigid, no_photo_downloads
):
    workers.start(2, DNFLOW_LUIGI_SCHEDULER_URL=luigid.url)
    asked = [
        {"source": "archive", "archive_path": str(REAL_ARCHIVE)},
        {"term": "climate", "source": "sample"},
        {"term": "#euro2020 OR #blm", "source": "archive", "archive_path": str(REAL_ARCHIVE)},
    ]
    searches = [services.create_search(**fields) for fields in asked]

    workers.wait_for(lambda: all(is_done(s.pk) for s in searches), timeout=120, what="three searches finish")

    done = luigid.tasks("DONE")
    for search, fields in zip(searches, asked, strict=True):
        run = newest_run(search)
        assert run.status == Status.FINISHED, (search.pk, run.error)
        started = task_events(search, "start")
        assert sorted(started) == sorted(FAMILIES) == sorted(task_events(search, "success"))
        assert not task_events(search, "failure")
        # luigid scheduled them: its task list has every step of this claim, done.
        tasks = claim_tasks(done, run, claim_of(run))
        assert sorted(tasks) == sorted(FAMILIES), sorted(tasks)
        assert all(task["params"]["folder"] == run.folder for task in tasks.values())
        # The run's events name the very tasks luigid knows.
        assert set(run.events.filter(event="start").values_list("task_id", flat=True)) == {
            task_id for task_id, task in done.items() if task["params"]["run_id"] == str(run.pk)
        }
        assert_same_outputs(run, run_in_this_process(**fields))
    assert not luigid.tasks("RUNNING") and not luigid.tasks("PENDING") and not luigid.tasks("FAILED")


# Two processes build the same claim of one run at the same moment. dnflow never does this (one
# claim, one process); the test checks what luigid itself guarantees.
BUILD_SCRIPT = """
import json, logging, os, sys, time
import django
django.setup()
logging.getLogger("luigi-interface").setLevel(logging.INFO)  # its summary names the other worker
from pipeline.runner import build_workflow
from searches.models import SearchRun
run = SearchRun.objects.select_related("search").get(pk=int(sys.argv[1]))
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.01)
result = build_workflow(run)
print(json.dumps({"ok": result.ok, "error": result.error}))
"""


def test_two_processes_building_the_same_run_through_luigid_run_each_task_once(luigid, tmp_path, empty_queue):
    search = services.create_search(source="archive", archive_path=str(big_archive()))
    run_id = search.latest_run_id
    assert SearchRun.objects.filter(pk=run_id).claim() is not None  # as a worker's work horse would
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "DNFLOW_DATA_DIR": str(settings.DNFLOW_DATA_DIR),
        "REDIS_URL": settings.RQ_QUEUES["default"]["URL"],
        "DNFLOW_LUIGI_SCHEDULER_URL": luigid.url,
        "DNFLOW_FETCH_PHOTOS": "0",
        "DJANGO_SETTINGS_MODULE": "dnflow_site.settings",
    }
    go = tmp_path / "go"
    builds = []
    for name in ("a", "b"):
        ready = tmp_path / f"ready-{name}"
        proc = subprocess.Popen(
            [sys.executable, "-c", BUILD_SCRIPT, str(run_id), str(ready), str(go)],
            cwd=PROJECT_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        builds.append((ready, proc))
    try:
        began = time.monotonic()
        while not all(ready.exists() for ready, _ in builds):
            assert all(proc.poll() is None for _, proc in builds), [proc.communicate() for _, proc in builds]
            assert time.monotonic() - began < 60, "the two processes did not start"
            time.sleep(0.05)
        go.touch()  # both build from here, within milliseconds
        outcomes = []
        for _, proc in builds:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
            outcomes.append((json.loads(out.strip().splitlines()[-1]), err))
    finally:
        for _, proc in builds:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    finished = [result for result, _ in outcomes if result["ok"]]
    left = [(result, log) for result, log in outcomes if not result["ok"]]
    assert len(finished) == 1 and len(left) == 1, outcomes
    # The other process ran nothing: luigid said another worker was running the steps.
    result, log = left[0]
    assert result["error"] == TAKEN_BY_ANOTHER_WORKER
    assert "were being run by another worker" in log, log

    # Each step started once and succeeded once, in one process or the other, and nothing failed.
    events = Counter(TaskEvent.objects.filter(run_id=run_id).values_list("task_family", "event"))
    for family in FAMILIES:
        assert events[(family, "start")] == 1, events
        assert events[(family, "success")] == 1, events
    assert not any(kind in ("failure", "retry") for _, kind in events), events
    run = SearchRun.objects.get(pk=run_id)
    assert final_task(run).complete()
    assert not [path.name for path in run.folder_path.rglob(".*")]  # no temporaries left by a second writer
    tasks = claim_tasks(luigid.tasks("DONE"), run, claim_of(run))
    assert sorted(tasks) == sorted(FAMILIES)


def test_a_killed_worker_is_not_waited_for_although_luigid_still_thinks_it_runs_the_task(
    workers, tmp_path, no_photo_downloads
):
    # luigid would take an hour to notice the dead worker: the run must not wait for it.
    with running_luigid(tmp_path, worker_disconnect_delay="3600", retry_delay="3600") as luigid:
        archive = str(big_archive())
        workers.start(2, DNFLOW_LUIGI_SCHEDULER_URL=luigid.url)
        search = services.create_search(source="archive", archive_path=archive)
        workers.wait_for(lambda: task_events(search, "start", "SummarisePosts"), timeout=60, what="the summary starts")
        first = newest_run(search)
        first_claim = claim_of(first)
        running_on = Job.fetch(first.rq_job_id, connection=django_rq.get_connection("default")).worker_name
        workers.by_name(running_on).kill_hard()

        workers.wait_for(lambda: is_done(search.pk), timeout=120, what="the re-run ends")
        run = newest_run(search)
        assert run.status == Status.FINISHED, run.error
        assert run.times_lost == 1 and run.folder == first.folder
        assert task_events(search, "start", "CollectPosts") == ["CollectPosts"]
        assert task_events(search, "start", "SummarisePosts") == ["SummarisePosts", "SummarisePosts"]

        # luigid still has the dead worker running the first claim's summary; the second claim's
        # steps are done, the collection among them (complete in the folder, not run again).
        still_running = claim_tasks(luigid.tasks("RUNNING"), run, first_claim)
        assert list(still_running) == ["SummarisePosts"]
        assert still_running["SummarisePosts"]["worker_running"]
        assert sorted(claim_tasks(luigid.tasks("DONE"), run, claim_of(run))) == sorted(FAMILIES)

    assert_same_outputs(run, run_in_this_process(source="archive", archive_path=archive))


def test_an_unreachable_scheduler_fails_the_run_within_seconds_naming_the_setting(settings, empty_queue):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings.DNFLOW_LUIGI_SCHEDULER_URL = url
    search = services.create_search(term="climate", source="sample")

    began = time.monotonic()
    run = execute_run(search.latest_run_id)
    took = time.monotonic() - began

    assert run.status == Status.FAILED
    assert run.error == (
        f"The Luigi scheduler at {url} (setting DNFLOW_LUIGI_SCHEDULER_URL) cannot be reached: connection refused. "
        "Start luigid there, or correct the setting (empty, each worker schedules its own runs), then run the "
        "search again: completed steps are kept."
    )
    # Three quick tries, two seconds apart, instead of Luigi's three attempts thirty seconds apart.
    assert took < 15, took
    assert not TaskEvent.objects.filter(run=run).exists()


def test_the_reason_never_shows_a_password_in_the_scheduler_url(monkeypatch):
    monkeypatch.setattr(runner, "CHECK_PAUSE", 0)
    port = free_port()

    problem = runner.scheduler_problem(f"http://dnflow:s3cret-word@127.0.0.1:{port}/")

    assert problem.startswith(f"The Luigi scheduler at http://127.0.0.1:{port}/ (setting DNFLOW_LUIGI_SCHEDULER_URL)")
    assert "s3cret" not in problem and "dnflow:" not in problem


def test_a_paused_scheduler_fails_the_run_saying_so(settings, luigid, empty_queue):
    luigid.api("pause")
    settings.DNFLOW_LUIGI_SCHEDULER_URL = luigid.url
    search = services.create_search(term="climate", source="sample")

    run = execute_run(search.latest_run_id)

    assert run.status == Status.FAILED
    assert f"The Luigi scheduler at {luigid.url} (setting DNFLOW_LUIGI_SCHEDULER_URL) is paused" in run.error
    assert "Unpause it" in run.error
    assert not TaskEvent.objects.filter(run=run).exists()


# Luigi warns about its own [core] rpc-* options (they are not parameters of its `core` class).
@pytest.mark.filterwarnings("ignore::luigi.task.UnconsumedParameterWarning")
def test_a_scheduler_that_stops_answering_mid_run_fails_the_run_in_plain_words(settings, luigid, no_photo_downloads):
    # Luigi's own retries (3 attempts, 30 s apart), shortened for the test.
    config = luigi.configuration.get_config()
    config.set("core", "rpc-retry-wait", "1")
    settings.DNFLOW_LUIGI_SCHEDULER_URL = luigid.url
    search = services.create_search(source="archive", archive_path=str(big_archive()))  # seconds of work after the copy
    folder = SearchRun.objects.get(pk=search.latest_run_id).folder_path

    def stop_luigid_once_posts_are_collected() -> None:
        began = time.monotonic()
        while not (folder / RAW_POSTS).exists() and time.monotonic() - began < 60:
            time.sleep(0.005)
        luigid.stop()

    stopper = threading.Thread(target=stop_luigid_once_posts_are_collected)
    stopper.start()
    try:
        run = execute_run(search.latest_run_id)
    finally:
        stopper.join()
        config.remove_option("core", "rpc-retry-wait")

    assert run.status == Status.FAILED
    assert run.error == (
        f"The Luigi scheduler at {luigid.url} (setting DNFLOW_LUIGI_SCHEDULER_URL) stopped answering during the run "
        "(connection refused). Check that luigid runs there, then run the search again: completed steps are kept."
    )
    assert (folder / RAW_POSTS).is_file() and not final_task(run).complete()
