"""What keeps a running search honest, and the rq worker class that runs searches.

Each running search has exactly one process behind it: an rq work horse, or `manage.py run_search`.
While it runs, a watchdog thread in that process
- writes a heartbeat key in Redis (`dnflow:search:<id>:alive`, gone after three missed beats of
  DNFLOW_WORKER_HEARTBEAT seconds): the reconcile sweep (jobs.reconcile) tells a live run from one whose
  process died by this key, within seconds, without waiting for rq's own abandoned-job cleanup (which
  needs a minute or more);
- in an rq work horse, ends the process as soon as the search is no longer its run: cancelled (the
  backstop for rq's stop-job command, whose message a busy worker could miss), or recovered and queued
  again elsewhere. A stopped run never goes on writing outputs.

Job timeout: rq's alarm fires in the work horse after DNFLOW_JOB_TIMEOUT seconds. Raising an exception
there is not enough, because Luigi catches every exception a task raises and would carry on with the
other tasks; so SearchDeathPenalty records the failure with its reason on the search and ends the work
horse (and any Luigi task processes) at once. A search that outlives even that (a plain rq worker, a
stuck interpreter) is ended by rq's worker 60 s later and then recovered by the reconcile sweep, which
gives the same reason.

Worker death (SIGKILL, out of memory, a lost machine): the search's heartbeat stops, the sweep (run by
every DnflowWorker every DNFLOW_RECONCILE_INTERVAL seconds, at worker start, by `manage.py
reconcile_searches` and from the admin) sees it running without a live process and QUEUES IT AGAIN,
keeping its folder: Luigi skips the tasks already complete, so the re-run resumes and ends with the same
outputs as an uninterrupted one. After DNFLOW_LOST_SEARCH_RETRIES such recoveries in a row the search
fails instead, with the reason, so a search that kills its worker every time cannot loop forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connections
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from rq.worker import Worker

log = logging.getLogger("dnflow.worker")

# The one running search of this process, for the timeout handler; None between runs.
_active: SearchWatchdog | None = None


def alive_key(search_id: int) -> str:
    return f"dnflow:search:{search_id}:alive"


def alive_ttl() -> int:
    """Seconds a heartbeat stays valid: three beats, so one slow beat is not taken for a death."""
    return max(3, 3 * settings.DNFLOW_WORKER_HEARTBEAT)


def redis_connection():
    """A client for heartbeats with short timeouts: an unreachable Redis must never hold up a run."""
    from redis import Redis

    return Redis.from_url(settings.RQ_QUEUES["default"]["URL"], socket_connect_timeout=3, socket_timeout=5)


def end_this_process() -> None:
    """Stop at once, Luigi task processes included: no cleanup code may write more outputs.

    An rq work horse leads its own process group (rq calls setpgrp), so killing the group kills it
    and any Luigi task processes it forked; anything else (a SimpleWorker, the CLI) only exits.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


class SearchWatchdog:
    """A thread beside a running search: heartbeat in Redis, and (in a work horse) stop when taken away."""

    def __init__(self, search_id: int, started: datetime, *, enforce: bool) -> None:
        self.search_id = search_id
        self.started = started
        self.enforce = enforce
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dnflow-watchdog-{search_id}", daemon=True)
        self._redis = None
        self._warned = False

    def start(self) -> None:
        global _active
        _active = self
        # The first beat is the thread's: the claim is fresh, and reconcile gives a fresh claim a grace period.
        self._thread.start()

    def stop(self) -> None:
        """End the thread; called before the outcome is recorded, so a finished run is not 'taken away'."""
        global _active
        self._stop.set()
        self._thread.join(timeout=30)
        _active = None
        try:
            self._redis_connection().delete(alive_key(self.search_id))
        except Exception:  # the key expires by itself
            log.debug("search #%s: could not remove its heartbeat key", self.search_id, exc_info=True)

    def beat(self) -> None:
        try:
            self._redis_connection().set(alive_key(self.search_id), str(os.getpid()), ex=alive_ttl())
            self._warned = False
        except Exception as exc:  # the run goes on; reconcile cannot run without Redis either
            if not self._warned:
                # Expected for a CLI run without Redis (`make demo`); worth a warning in a worker.
                level = logging.WARNING if self.enforce else logging.DEBUG
                log.log(level, "search #%s: heartbeat not written, Redis unreachable (%s)", self.search_id, exc)
                self._warned = True

    def _redis_connection(self):
        if self._redis is None:
            self._redis = redis_connection()
        return self._redis

    def _run(self) -> None:
        try:
            self.beat()
            while not self._stop.wait(settings.DNFLOW_WORKER_HEARTBEAT):
                self.beat()
                if self.enforce and self._taken_away():
                    end_this_process()
        finally:
            connections.close_all()

    def _taken_away(self) -> bool:
        """True when the database says this run is over: cancelled, or recovered and claimed anew.

        Only positive evidence counts: a row this thread cannot see (deleted, or not yet committed)
        is no reason to stop.
        """
        from .models import Search, Status

        try:
            close_old_connections()
            row = Search.objects.filter(pk=self.search_id).values("status", "started").first()
        except Exception:
            log.warning("search #%s: could not read its state", self.search_id, exc_info=True)
            return False
        if row is None or self._stop.is_set():
            return False
        if row["status"] != Status.RUNNING or row["started"] != self.started:
            log.warning("search #%s is %s now (not this run): stopping its work horse", self.search_id, row["status"])
            return True
        return False

    def time_out(self, seconds: int) -> None:
        """The job timeout fired: record why (from a fresh thread and connection), then end the process."""
        from . import jobs

        self._stop.set()

        def record() -> None:
            try:
                jobs.record_timeout(self.search_id, seconds, started=self.started)
            except Exception:
                log.exception("search #%s: could not record its timeout; reconcile will", self.search_id)
            finally:
                connections.close_all()

        recorder = threading.Thread(target=record, name="dnflow-timeout", daemon=True)
        recorder.start()
        recorder.join(timeout=25)
        log.warning("search #%s took longer than its job timeout (%s s): stopping it", self.search_id, seconds)
        end_this_process()


class SearchDeathPenalty(UnixSignalDeathPenalty):
    """rq's alarm-based timeout, made decisive for a running search (see the module docstring)."""

    def handle_death_penalty(self, signum, frame):
        watchdog = _active
        # Callbacks run under this class too, with their own timeouts; only a running search is ours.
        if self._exception is JobTimeoutException and watchdog is not None:
            watchdog.time_out(self._timeout)
        super().handle_death_penalty(signum, frame)


class DnflowWorker(Worker):
    """The rq worker `manage.py rqworker` runs: short heartbeats, a reconcile sweep, safe forks."""

    death_penalty_class = SearchDeathPenalty

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.DNFLOW_WORKER_HEARTBEAT)
        kwargs.setdefault("maintenance_interval", settings.DNFLOW_RECONCILE_INTERVAL)
        super().__init__(*args, **kwargs)
        # Imported once here, so each forked work horse starts with Luigi and the tasks loaded and the
        # job timeout is spent on the search, not on imports.
        import pipeline.runner  # noqa: F401

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker blocks on the queue; wake up often enough for the periodic sweep.
        return max(1, min(self.worker_ttl - 15, settings.DNFLOW_RECONCILE_INTERVAL))

    def set_current_job_working_time(self, *args, **kwargs) -> None:
        # rq writes this while it watches the work horse. Redis restarting then must not end the worker
        # (rq quits on any error there), which would leave the queue unserved; the next tick writes again.
        try:
            super().set_current_job_working_time(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.log.warning("Worker %s: Redis unreachable while a job runs (%s); carrying on", self.name, exc)

    def maintain_heartbeats(self, job) -> None:
        try:
            super().maintain_heartbeats(job)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.log.warning("Worker %s: heartbeat not written, Redis unreachable (%s)", self.name, exc)

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except RedisError:
            self.log.warning("Worker %s: rq maintenance skipped, Redis unreachable", self.name, exc_info=True)
        from . import jobs

        try:
            report = jobs.reconcile(wait=False)
            if report.changed:
                self.log.info("Worker %s: reconcile: %s", self.name, report)
        except Exception:  # a failed sweep must never take the worker down; the next one retries
            self.log.warning("Worker %s: reconcile sweep failed", self.name, exc_info=True)
        finally:
            # The work horse is forked from this process: it must not inherit a database socket.
            connections.close_all()

    def fork_work_horse(self, job, queue) -> None:
        connections.close_all()
        super().fork_work_horse(job, queue)
