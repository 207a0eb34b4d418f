"""What keeps a running run honest: its heartbeat, its watchdog, and its job timeout.

Each running run has exactly one process behind it: an rq work horse, or `manage.py run_search`.
While it runs, a watchdog thread in that process
- writes a heartbeat key in Redis (`dnflow:run:<id>:alive`, gone after three missed beats of
  DNFLOW_WORKER_HEARTBEAT seconds): the reconcile sweep (searches.reconcile) tells a live run from
  one whose process died by this key, within seconds, without waiting for rq's own abandoned-job
  cleanup (which needs a minute or more);
- in an rq work horse, ends the process as soon as the run is no longer its own: cancelled (the
  backstop for rq's stop-job command, whose message a busy worker could miss), or recovered and
  claimed anew elsewhere. A stopped run never goes on writing outputs;
- in an rq work horse, ends the process when its worker died (the horse's parent is no longer the
  worker that forked it): nobody would record the horse's end, and its run is then recovered by
  another worker's sweep like any lost run. A thread that compares os.getppid() with the worker's
  pid was chosen over Linux's PR_SET_PDEATHSIG: it ends the horse's whole process group (Luigi's
  and the summary's processes too, which a signal to the horse alone would leave running), needs
  no ctypes, and costs at most one beat of delay. The worker passes its pid in the environment
  before the fork, so a worker that dies before the thread starts is noticed too.

Job timeout: rq's alarm fires in the work horse after DNFLOW_JOB_TIMEOUT seconds. Raising an
exception there is not enough, because Luigi catches every exception a task raises and would carry
on with the other tasks; so the worker's death penalty (searches.worker) calls `time_out`, which
records the failure with its reason and ends the work horse (and any Luigi task processes) at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from .choices import Status
from .models import SearchRun

log = logging.getLogger("dnflow.watchdog")

# The one running run of this process, for the timeout handler; None between runs.
_active: RunWatchdog | None = None

# Set by searches.worker before it forks a work horse: the pid the horse's parent must have.
WORKER_PID_ENV = "DNFLOW_WORKER_PID"


def alive_key(run_id: int) -> str:
    return f"dnflow:run:{run_id}:alive"


def alive_ttl() -> int:
    """Seconds a heartbeat stays valid: three beats, so one slow beat is not taken for a death."""
    return max(3, 3 * settings.DNFLOW_WORKER_HEARTBEAT)


def job_timeout() -> int:
    """The rq job timeout of a run, from DNFLOW_JOB_TIMEOUT (rq's -1: no limit)."""
    return settings.DNFLOW_JOB_TIMEOUT if settings.DNFLOW_JOB_TIMEOUT > 0 else -1


def timeout_reason(seconds: int) -> str:
    return (
        f"The search took longer than the job timeout ({seconds} s, setting DNFLOW_JOB_TIMEOUT) and was stopped. "
        "Raise DNFLOW_JOB_TIMEOUT or narrow the search, then run it again: completed steps are kept."
    )


def redis_connection(*, connect_timeout: float = 3, timeout: float = 5):
    """A client for heartbeats with short timeouts: an unreachable Redis must never hold up a run."""
    from redis import Redis

    return Redis.from_url(
        settings.RQ_QUEUES["default"]["URL"], socket_connect_timeout=connect_timeout, socket_timeout=timeout
    )


def heartbeat_missing(run: SearchRun) -> bool:
    """True when a run that has been running for more than a heartbeat's life has none: the process
    behind it stopped (its worker killed, its machine gone) and no sweep has put it back yet. False
    when it beats, when it only just started, and when Redis cannot say (a page must not wait on it)."""
    if run.status != Status.RUNNING or run.started is None:
        return False
    if (timezone.now() - run.started).total_seconds() < alive_ttl():
        return False
    try:
        with redis_connection(connect_timeout=0.3, timeout=0.3) as client:  # a page polled every 2 s
            return not client.exists(alive_key(run.pk))
    except Exception:  # noqa: BLE001 -- Redis down or slow: the page says nothing rather than a guess
        return False


def no_worker_running(run: SearchRun) -> bool:
    """True when a queued run waits and no rq worker is there to take it: nothing will happen until
    a person starts one (`make run` starts none). False when one is registered (a worker killed
    without a word stays registered a while: then the page says nothing rather than a guess), and
    when Redis cannot say."""
    if run.status != Status.QUEUED:
        return False
    try:
        from rq import Worker

        with redis_connection(connect_timeout=0.3, timeout=0.3) as client:
            return Worker.count(connection=client) == 0
    except Exception:  # noqa: BLE001 -- Redis down or slow: the page says nothing rather than a guess
        return False


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


def active_watchdog() -> RunWatchdog | None:
    return _active


class RunWatchdog:
    """A thread beside a running run: heartbeat in Redis, and (in a work horse) stop when taken away."""

    def __init__(self, run: SearchRun, *, enforce: bool) -> None:
        self.run = run
        self.enforce = enforce
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"dnflow-watchdog-{run.pk}", daemon=True)
        self._redis = None
        self._warned = False
        # Only an rq work horse (it leads its own process group) has a worker to outlive.
        in_horse = enforce and os.getpgrp() == os.getpid()
        self._worker_pid = int(os.environ.get(WORKER_PID_ENV) or 0) if in_horse else 0

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
            self._redis_connection().delete(alive_key(self.run.pk))
        except Exception:  # the key expires by itself
            log.debug("%s: could not remove its heartbeat key", self.run, exc_info=True)

    def beat(self) -> None:
        try:
            self._redis_connection().set(alive_key(self.run.pk), str(os.getpid()), ex=alive_ttl())
            self._warned = False
        except Exception as exc:  # the run goes on; reconcile cannot run without Redis either
            if not self._warned:
                # Expected for a CLI run without Redis (`make demo`); worth a warning in a worker.
                level = logging.WARNING if self.enforce else logging.DEBUG
                log.log(level, "%s: heartbeat not written, Redis unreachable (%s)", self.run, exc)
                self._warned = True

    def _redis_connection(self):
        if self._redis is None:
            self._redis = redis_connection()
        return self._redis

    def _watch(self) -> None:
        try:
            self._end_if_orphaned()
            self.beat()
            while not self._stop.wait(settings.DNFLOW_WORKER_HEARTBEAT):
                self._end_if_orphaned()
                self.beat()
                if self.enforce and self._taken_away():
                    end_this_process()
        finally:
            connections.close_all()

    def _end_if_orphaned(self) -> None:
        """A work horse whose worker died ends itself: no one would record its outcome or stop it."""
        if not self._worker_pid or os.getppid() == self._worker_pid:
            return
        log.warning("%s: its worker (pid %s) is gone: stopping its work horse", self.run, self._worker_pid)
        try:  # the sweep need not wait for the heartbeat to expire
            self._redis_connection().delete(alive_key(self.run.pk))
        except Exception:
            log.debug("%s: could not remove its heartbeat key", self.run, exc_info=True)
        end_this_process()

    def _taken_away(self) -> bool:
        """True when the database says this run is over: cancelled, or recovered and claimed anew.

        Only positive evidence counts: a row this thread cannot see (deleted, or not yet committed)
        is no reason to stop.
        """
        try:
            close_old_connections()
            row = SearchRun.objects.filter(pk=self.run.pk).values("status", "started").first()
        except Exception:
            log.warning("%s: could not read its state", self.run, exc_info=True)
            return False
        if row is None or self._stop.is_set():
            return False
        if row["status"] != Status.RUNNING or row["started"] != self.run.started:
            log.warning("%s is %s now (not this claim): stopping its work horse", self.run, row["status"])
            return True
        return False

    def time_out(self, seconds: int) -> None:
        """The job timeout fired: record why (from a fresh thread and connection), then end the process."""
        self._stop.set()

        def record() -> None:
            try:
                self.run.this_claim().fail(timeout_reason(seconds))
            except Exception:
                log.exception("%s: could not record its timeout; reconcile will", self.run)
            finally:
                connections.close_all()

        recorder = threading.Thread(target=record, name="dnflow-timeout", daemon=True)
        recorder.start()
        recorder.join(timeout=25)
        log.warning("%s took longer than its job timeout (%s s): stopping it", self.run, seconds)
        end_this_process()
