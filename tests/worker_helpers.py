"""Real rq workers for tests: `manage.py rqworker` processes on the test database, Redis and data folder.

Every wait is bounded and every worker (and its work horse) is killed when the test ends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

from pipeline.contract import TEXT_FREE_FILES
from searches.models import Search, SearchRun, TaskEvent

from .conftest import TEST_REDIS_URL, empty_test_redis

PROJECT_DIR = Path(__file__).resolve().parent.parent
REAL_ARCHIVE = PROJECT_DIR.parent / "shared" / "data" / "real" / "v2-pages-twarc-network.jsonl"

# Short beats and sweeps, so a dead worker is noticed in seconds.
WORKER_SETTINGS = {
    "DNFLOW_WORKER_HEARTBEAT": "1",
    "DNFLOW_RECONCILE_INTERVAL": "2",
    # Photos would be fetched from the internet, which tests never reach.
    "DNFLOW_FETCH_PHOTOS": "0",
    "PYTHONUNBUFFERED": "1",
}


def worker_database_url() -> str:
    """A DATABASE_URL for worker processes that points at the test database this test uses."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"] == "django.db.backends.postgresql":
        credentials = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        at = f"{credentials}@" if credentials else ""
        return f"postgres://{at}{host}{port}/{quote(db['NAME'], safe='')}"
    # Only the two databases dnflow supports can be handed to a child process.
    raise RuntimeError(f"Tests run on SQLite or PostgreSQL, not {db['ENGINE']}: set DATABASE_URL to one of them.")


def manage(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """A real `manage.py` process on this test's database, test Redis and `data_dir`, without
    credentials or photo downloads (both can be given in `env`); what it printed and its exit code."""
    environment = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": TEST_REDIS_URL,
        "DNFLOW_DATA_DIR": str(data_dir),
        "DNFLOW_FETCH_PHOTOS": "0",
        "X_BEARER_TOKEN": "",
        **env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def descendants(pid: int) -> list[int]:
    """Child processes, recursively (Linux /proc): an rq worker's work horse and Luigi's processes."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                found.append(int(child))
                found.extend(descendants(int(child)))
    return found


class WorkerProcess:
    def __init__(self, name: str, proc: subprocess.Popen, log_path: Path) -> None:
        self.name = name
        self.proc = proc
        self.log_path = log_path

    def kill_hard(self) -> None:
        """SIGKILL the worker and its work horse at once, as a lost machine or the OOM killer would."""
        pids = [*descendants(self.proc.pid), self.proc.pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class WorkerPool:
    """Start workers; wait for things with the workers' logs in the failure message."""

    def __init__(self, log_dir: Path, redis_url: str) -> None:
        self.log_dir = log_dir
        self.redis_url = redis_url
        self.workers: list[WorkerProcess] = []

    def start(self, count: int = 1, **extra_env: str) -> list[WorkerProcess]:
        started = []
        for _ in range(count):
            name = f"test-worker-{len(self.workers) + 1}-{uuid.uuid4().hex[:6]}"
            env = {
                **os.environ,
                **WORKER_SETTINGS,
                "DATABASE_URL": worker_database_url(),
                "REDIS_URL": self.redis_url,
                "DNFLOW_DATA_DIR": str(settings.DNFLOW_DATA_DIR),
                **extra_env,
            }
            log_path = self.log_dir / f"{name}.log"
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "manage.py", "rqworker", "--name", name],
                    cwd=PROJECT_DIR,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            worker = WorkerProcess(name, proc, log_path)
            self.workers.append(worker)
            started.append(worker)
        return started

    def by_name(self, name: str) -> WorkerProcess:
        return next(w for w in self.workers if w.name == name)

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None or descendants(worker.proc.pid):
                worker.kill_hard()

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} (exit {w.proc.poll()}) ---\n{w.log()[-3000:]}" for w in self.workers)

    def wait_for(self, predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> float:
        """Poll predicate until true; returns the seconds it took, or fails with the workers' logs."""
        began = time.monotonic()
        while not predicate():
            if time.monotonic() - began > timeout:
                raise AssertionError(f"Not within {timeout} s: {what}\n{self.logs()}")
            time.sleep(interval)
        return time.monotonic() - began


@contextlib.contextmanager
def redis_for_tests(settings_fixture) -> Iterator[str]:
    """The tests' Redis db (see conftest), emptied before and after: workers started here use it."""
    settings_fixture.REDIS_URL = TEST_REDIS_URL
    settings_fixture.RQ_QUEUES = {"default": {"URL": TEST_REDIS_URL, "DEFAULT_TIMEOUT": settings.DNFLOW_JOB_TIMEOUT}}
    empty_test_redis()
    try:
        yield TEST_REDIS_URL
    finally:
        # A test may have pointed the queue at a dead Redis meanwhile.
        settings_fixture.RQ_QUEUES = {"default": {"URL": TEST_REDIS_URL}}
        empty_test_redis()


@contextlib.contextmanager
def worker_pool(settings_fixture, tmp_path: Path) -> Iterator[WorkerPool]:
    """Workers on the tests' Redis db; all of them (and their work horses) killed at the end."""
    with redis_for_tests(settings_fixture) as redis_url:
        log_dir = tmp_path / "worker-logs"
        log_dir.mkdir()
        pool = WorkerPool(log_dir, redis_url)
        try:
            yield pool
        finally:
            pool.kill_all()


_archives: dict[int, Path] = {}


def big_archive(copies: int = 100) -> Path:
    """The real 500-post v2 archive repeated `copies` times under new post ids: a run that takes seconds.

    Derived from a real fixture, so it lives in a temporary folder for this test process only.
    """
    if copies not in _archives:
        folder = Path(tempfile.mkdtemp(prefix="dnflow-test-archive-"))
        atexit.register(shutil.rmtree, folder, True)
        pages = [json.loads(line) for line in REAL_ARCHIVE.read_text(encoding="utf-8").splitlines() if line.strip()]
        path = folder / f"v2-pages-x{copies}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for copy in range(copies):
                for page in pages:
                    page = dict(page, data=[dict(post, id=f"{post['id']}{copy:04d}") for post in page["data"]])
                    out.write(json.dumps(page) + "\n")
        _archives[copies] = path
    return _archives[copies]


def newest_run(search) -> SearchRun:
    """The search's newest run, as the database has it now."""
    return SearchRun.objects.filter(search_id=search.pk).order_by("-number").first()


def is_done(search_id: int) -> bool:
    return Search.objects.get(pk=search_id).is_done


def task_events(search, event: str, family: str | None = None) -> list[str]:
    """The task families of one kind of event in the search's newest run."""
    rows = TaskEvent.objects.filter(run=search.latest_run_id, event=event)
    if family:
        rows = rows.filter(task_family=family)
    return list(rows.values_list("task_family", flat=True))


# What a worker's run and an in-process run of the same search must write alike.
COMPARED_OUTPUTS = (*TEXT_FREE_FILES, "tweets.csv")
