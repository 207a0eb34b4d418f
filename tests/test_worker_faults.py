"""Workers under faults: Redis gone while a search ends or is cancelled, a work horse killed, a
worker killed under its work horse. Real `manage.py rqworker` processes, a real redis-server of
the test's own that is stopped and started, real signals.

The X API emulator is the slow part of each run: its page delay is the test's dial for how long a
search runs, so the faults land where the test says.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from rq.job import Job

from pipeline.contract import temporaries
from searches import services
from searches.models import SearchRun, Source, Status
from searches.watchdog import alive_key

from .hardening_helpers import private_redis
from .worker_helpers import WorkerPool, descendants, is_done, newest_run

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Longer than redis-py's own retries (3, with backoff up to 2 + 4 + 8 s): only riding the outage
# out explains a worker that is still there afterwards.
OUTAGE_SECONDS = 16
# Seconds the X emulator takes per page: a search of 500 posts (5 pages) takes 15 s unless the test
# sets the delay to 0 to let it end.
SLOW_PAGE = 3.0


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


@pytest.fixture
def own_redis(settings, tmp_path):
    """A redis-server of this test's own; the test's queue points at it."""
    with private_redis(tmp_path) as server:
        settings.REDIS_URL = server.url
        settings.RQ_QUEUES = {"default": {"URL": server.url, "DEFAULT_TIMEOUT": 600}}
        yield server


@pytest.fixture
def pool(own_redis, tmp_path):
    log_dir = tmp_path / "worker-logs"
    log_dir.mkdir()
    workers = WorkerPool(log_dir, own_redis.url)
    try:
        yield workers
    finally:
        workers.kill_all()


def live_search(count: int):
    return services.create_search(term="#kpop", source=Source.RECENT, count=count)


def start_workers(pool: WorkerPool, x_api, count: int = 1, **env: str):
    # Waits between tries to reach Redis of at most 2 s: an outage of OUTAGE_SECONDS is still many
    # failed tries, and the worker is back within seconds of Redis.
    env.setdefault("DNFLOW_REDIS_RETRY_CAP", "2")
    return pool.start(count, X_BEARER_TOKEN=x_api.token, DNFLOW_X_API_URL=x_api.url, **env)


def posts_so_far(search) -> int:
    return SearchRun.objects.get(pk=search.latest_run_id).num_posts or 0


def work_horse(worker) -> int | None:
    """The pid of the worker's work horse, or None while it has none: the child that leads its own
    process group (rq's setpgrp), not the scheduler's."""
    for pid in descendants(worker.proc.pid):
        stat = _stat(pid)
        if stat and stat[1] == worker.proc.pid and stat[2] == pid:
            return pid
    return None


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, process group) from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def assert_takes_the_next_search(pool: WorkerPool, worker) -> None:
    """The same worker process is still serving the queue: it runs a new search to the end."""
    after = services.create_search(term="rain", source=Source.SAMPLE)
    pool.wait_for(lambda: is_done(after.pk), timeout=60, what="a later search finishes", interval=0.3)
    run = newest_run(after)
    assert run.status == Status.FINISHED, run.error
    job = Job.fetch(run.rq_job_id, connection=_queue_connection())
    assert job.worker_name == worker.name
    assert worker.proc.poll() is None, pool.logs()
    assert "unhandled exception" not in worker.log()


def _queue_connection():
    import django_rq

    return django_rq.get_connection("default")


# --- Redis down when a search ends -----------------------------------------------------------------


def test_a_search_that_ends_while_redis_is_down_is_recorded_and_the_worker_carries_on(pool, own_redis, x_api):
    x_api.page_delay = SLOW_PAGE
    (worker,) = start_workers(pool, x_api)
    search = live_search(500)
    pool.wait_for(lambda: posts_so_far(search) >= 100, timeout=30, what="the search collects its first page")

    own_redis.stop()
    x_api.page_delay = 0.0  # the rest is quick: the search ends while Redis is down
    pool.wait_for(lambda: is_done(search.pk), timeout=60, what="the search ends during the outage", interval=0.3)
    time.sleep(OUTAGE_SECONDS)
    assert worker.proc.poll() is None, pool.logs()
    own_redis.start()  # back, and empty: Redis without persistence

    run = newest_run(search)
    assert run.status == Status.FINISHED, run.error
    assert run.num_posts == 500 and (run.folder_path / "summary.json").is_file()
    assert_takes_the_next_search(pool, worker)


def test_a_search_cancelled_while_redis_is_down_ends_cancelled_and_the_worker_carries_on(pool, own_redis, x_api):
    x_api.page_delay = SLOW_PAGE
    (worker,) = start_workers(pool, x_api)
    search = live_search(500)
    pool.wait_for(lambda: posts_so_far(search) >= 100, timeout=30, what="the search collects its first page")
    horse = work_horse(worker)
    assert horse is not None

    own_redis.stop()
    services.cancel_search(search)  # rq's stop message cannot be sent; the database says cancelled
    pool.wait_for(lambda: not alive(horse), timeout=15, what="the work horse stops")
    time.sleep(OUTAGE_SECONDS)
    assert worker.proc.poll() is None, pool.logs()
    own_redis.start()

    run = newest_run(search)
    assert run.status == Status.CANCELLED, run.error
    assert run.num_posts < 500 and not (run.folder_path / "summary.json").exists()
    assert_takes_the_next_search(pool, worker)
    # The worker that saw its horse go removed what the horse left half-written.
    assert not temporaries(run.folder_path)


# --- a work horse killed, a worker killed -----------------------------------------------------------


def test_a_killed_work_horse_s_search_is_queued_again_at_once_by_its_worker(pool, x_api):
    x_api.page_delay = SLOW_PAGE
    # No periodic sweep within the test: only the worker that saw its horse die can requeue the run.
    (worker,) = start_workers(pool, x_api, DNFLOW_RECONCILE_INTERVAL="600")
    search = live_search(500)
    pool.wait_for(lambda: posts_so_far(search) >= 100, timeout=30, what="the search collects its first page")
    first_job = newest_run(search).rq_job_id
    horse = work_horse(worker)
    assert horse is not None

    os.kill(horse, signal.SIGKILL)  # the OOM killer's way
    took = pool.wait_for(
        lambda: newest_run(search).events.filter(task_family="Worker", event="note").exists(),
        timeout=10,
        what="the run is queued again",
    )
    assert took < 10
    note = newest_run(search).events.get(task_family="Worker", event="note").message
    assert "signal 9" in note, note
    # Only the horse died: the note must not say the worker stopped, which still runs.
    assert "The worker's work horse running this search stopped" in note, note

    x_api.page_delay = 0.0
    pool.wait_for(lambda: is_done(search.pk), timeout=60, what="the run resumes and finishes", interval=0.3)
    run = newest_run(search)
    assert run.status == Status.FINISHED, run.error
    assert run.times_lost == 1 and run.rq_job_id != first_job and run.num_posts == 500
    assert worker.proc.poll() is None


def test_a_work_horse_whose_worker_is_killed_ends_and_another_worker_recovers_its_search(pool, x_api):
    x_api.page_delay = SLOW_PAGE
    (worker,) = start_workers(pool, x_api)  # alone: it runs the search, and rq's scheduler too
    search = live_search(500)
    pool.wait_for(lambda: posts_so_far(search) >= 100, timeout=30, what="the search collects its first page")
    (other,) = start_workers(pool, x_api)
    horse = work_horse(worker)
    family = descendants(worker.proc.pid)
    scheduler = [pid for pid in family if pid != horse and _stat(pid)[1] == worker.proc.pid]
    assert horse is not None and scheduler, family

    os.kill(worker.proc.pid, signal.SIGKILL)  # the worker only: its horse is left running alone
    worker.proc.wait(timeout=10)
    try:
        # Its run had 9 s or more to go: only its own watchdog explains a horse gone within 5 s.
        pool.wait_for(lambda: not alive(horse), timeout=5, what="the orphaned work horse ends")
        pool.wait_for(lambda: not any(alive(pid) for pid in family), timeout=5, what="its scheduler ends too")
    finally:  # orphans are no longer the pool's to kill
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    x_api.page_delay = 0.0
    pool.wait_for(lambda: is_done(search.pk), timeout=60, what="another worker finishes the search", interval=0.3)
    run = newest_run(search)
    assert run.status == Status.FINISHED, run.error
    assert run.times_lost == 1 and run.num_posts == 500
    assert Job.fetch(run.rq_job_id, connection=_queue_connection()).worker_name == other.name
    assert not any(alive(pid) for pid in family)


def test_a_run_another_process_claimed_is_left_to_it_when_its_job_finds_it_taken(pool, x_api):
    """The command line claims a run without a job id: a worker whose job then finds the run taken
    must not take its ended work horse for the run's lost process."""
    search = services.create_search(term="rain", source=Source.SAMPLE)  # queued, its job recorded
    run = newest_run(search)
    started = run.runs().claim()  # as the command line claims
    _queue_connection().set(alive_key(run.pk), str(os.getpid()), ex=60)  # and its process beats

    start_workers(pool, x_api)
    job = Job.fetch(run.rq_job_id, connection=_queue_connection())
    pool.wait_for(lambda: job.get_status() == "finished", timeout=30, what="the job finds the run taken")
    time.sleep(3)  # the worker settles the job's run right after its horse ends

    run = newest_run(search)
    assert (run.status, run.started, run.times_lost) == (Status.RUNNING, started, 0)
    assert not run.events.filter(task_family="Worker").exists()
