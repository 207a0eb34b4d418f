"""The rq worker that `manage.py rqworker` runs: short heartbeats, a reconcile sweep, safe forks,
a job timeout that is decisive for a running run, Redis outages ridden out, and a dead work
horse's run recovered at once.

Redis outages. rq's work loop quits on any Redis error outside its blocking dequeue (reading the
job's status when the work horse ends, setting the worker's state, the heartbeat after a job, the
suspension check), so a Redis restart at the wrong moment used to leave the queue unserved for
good. The worker's own Redis client therefore waits out an outage on every command, with backoff
(`UntilRedisAnswers`), wherever rq calls it: rq's code is not copied, and a later rq that talks to
Redis in a new place is covered too. A work horse inherits the client, so its end-of-job
bookkeeping waits for Redis as well; the run's outcome does not: it is in the database already.
Only the start is strict: a worker that cannot reach Redis at all says so and exits.

Lost work horses. When a work horse dies (SIGKILL, the OOM killer, the job timeout's last resort),
its worker knows at once: `monitor_work_horse` returns. A run still "running" under that job then
has no process any more, and is recovered there and then (searches.reconcile.recover_lost decides:
queued again to resume, or failed) instead of at the next reconcile sweep. A work horse whose
worker dies ends itself (searches.watchdog), and the sweep of another worker recovers its run; the
worker's scheduler process ends too (WorkerBoundScheduler).
What keeps each run honest while it runs: searches.watchdog. What happens when a worker dies:
searches.reconcile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal

from django.conf import settings
from django.db import close_old_connections, connections
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from rq.worker import Worker

from .models import SearchRun, Status
from .reconcile import reconcile, recover_lost
from .watchdog import WORKER_PID_ENV, active_watchdog, alive_key

log = logging.getLogger("dnflow.worker")


class UntilRedisAnswers(Retry):
    """redis-py's retry policy for a worker's own client: a command that cannot reach Redis is tried
    again, with backoff up to DNFLOW_REDIS_RETRY_CAP seconds, until Redis answers.

    OSError is among the errors retried because redis-py applies a connection's policy to opening
    its socket too, where a refused connection is a plain OSError: without it, a command that
    needs a new connection (every command once Redis has gone) would fail at once.
    """

    def __init__(self) -> None:
        backoff = ExponentialBackoff(cap=settings.DNFLOW_REDIS_RETRY_CAP, base=1)
        super().__init__(backoff, retries=-1, supported_errors=(RedisConnectionError, RedisTimeoutError, OSError))

    def call_with_retry(self, do, fail):
        failures = 0
        pid = os.getpid()  # the worker, or its work horse

        def failed(error: Exception) -> None:
            nonlocal failures
            failures += 1
            wait = self._backoff.compute(failures)
            log.warning("pid %d: Redis unreachable (%s): trying again in %.0f s (try %d)", pid, error, wait, failures)
            fail(error)

        result = super().call_with_retry(do, failed)
        if failures:
            log.warning("pid %d: Redis answers again after %d failed attempts", pid, failures)
        return result


class WorkerBoundScheduler(RQScheduler):
    """rq's scheduler process (it queues scheduled refreshes), ended when its worker dies.

    rq forks it from the worker and never looks back: a worker killed with SIGKILL left it running
    alone, holding the scheduler lock (so no other worker's scheduler could take over) and running
    the code of the day it started. Each turn of its loop it now checks that its parent is still
    the worker, and stops as rq stops it on SIGTERM, releasing the lock.
    """

    def start(self):
        self._worker_pid = os.getpid()  # before the fork: the pid the scheduler's parent must have
        return super().start()

    def heartbeat(self) -> None:
        if os.getppid() != self._worker_pid and not self._stop_requested:
            self.log.warning("Scheduler %s: its worker (pid %s) is gone: stopping", os.getpid(), self._worker_pid)
            self.request_stop()  # the next turn of the loop releases the lock and ends the process
        super().heartbeat()


class RunDeathPenalty(UnixSignalDeathPenalty):
    """rq's alarm-based timeout. Raising in the work horse is not enough (Luigi catches every
    exception a task raises and carries on), so the running run's watchdog records the timeout and
    ends the work horse at once."""

    def handle_death_penalty(self, signum, frame):
        watchdog = active_watchdog()
        # Callbacks run under this class too, with their own timeouts; only a running run is ours.
        if self._exception is JobTimeoutException and watchdog is not None:
            watchdog.time_out(self._timeout)
        super().handle_death_penalty(signum, frame)


class DnflowWorker(Worker):
    death_penalty_class = RunDeathPenalty

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.DNFLOW_WORKER_HEARTBEAT)
        kwargs.setdefault("maintenance_interval", settings.DNFLOW_RECONCILE_INTERVAL)
        # rq's constructor names the worker's client in Redis: an unreachable Redis fails it here, at start.
        super().__init__(*args, **kwargs)
        self.connection.set_retry(UntilRedisAnswers())
        self._last_horse_pid = 0
        # Imported once here, so each forked work horse starts with Luigi and the tasks loaded and the
        # job timeout is spent on the search, not on imports.
        import pipeline.runner  # noqa: F401

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker blocks on the queue; wake up often enough for the periodic sweep.
        return max(1, min(self.worker_ttl - 15, settings.DNFLOW_RECONCILE_INTERVAL))

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # rq 2.6's own, with WorkerBoundScheduler for RQScheduler (rq names the class in its body).
        self.scheduler = WorkerBoundScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                self.scheduler.enqueue_scheduled_jobs()
                self.scheduler.release_locks()
            else:
                self.scheduler.start()

    def heartbeat(self, timeout=None, pipeline=None) -> None:
        super().heartbeat(timeout, pipeline)
        # A Redis that restarted empty forgot this worker (the heartbeat just left a bare key): without
        # its registration `rq info` does not list it and the reconcile sweep cannot check its pid.
        if pipeline is None and not self.is_horse and not self.connection.hexists(self.key, "birth"):
            self.log.warning("Worker %s: Redis forgot this worker (restarted empty?); registering again", self.name)
            self.connection.delete(self.key)
            self.register_birth()

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()
        except RedisError:
            self.log.warning("Worker %s: rq maintenance skipped, Redis unreachable", self.name, exc_info=True)
        try:
            outcome = reconcile(wait=False)
            if outcome.changed:
                self.log.info("Worker %s: reconcile: %s", self.name, outcome)
        except Exception:  # a failed sweep must never take the worker down; the next one retries
            self.log.warning("Worker %s: reconcile sweep failed", self.name, exc_info=True)
        finally:
            # The work horse is forked from this process: it must not inherit a database socket.
            connections.close_all()

    def fork_work_horse(self, job, queue) -> None:
        connections.close_all()
        # The work horse's watchdog ends the horse when this process is no longer its parent.
        os.environ[WORKER_PID_ENV] = str(os.getpid())
        super().fork_work_horse(job, queue)
        self._last_horse_pid = self.horse_pid

    def monitor_work_horse(self, job, queue) -> None:
        super().monitor_work_horse(job, queue)
        self.settle_run(job)

    def settle_run(self, job) -> None:
        """The work horse is gone: leave its run in a state that needs no one else.

        A run still running under this job lost its process (killed, crashed, out of memory, or the
        job timeout's last resort): it is recovered now. A stopped run's temporaries are removed.
        Either way, first end whatever the horse forked (Luigi's and the summary's processes share
        its process group) so that nothing writes in the folder any more.

        Only on positive evidence that the run was this horse's: its heartbeat key names the horse
        (the key outlives its process by up to three beats). A run with the job's id may have been
        claimed by another process (a claim without a job id, as the command line makes), and a
        horse may die before its first beat: such runs are left to the reconcile sweep.
        """
        horse, self._last_horse_pid = self._last_horse_pid, 0
        try:
            close_old_connections()
            run = SearchRun.objects.filter(rq_job_id=job.id).first()
            if run is None or run.tidy or not horse:
                return  # finished, or tidied already: nothing was left behind
            if self.connection.get(alive_key(run.pk)) != str(horse).encode():
                return
            with contextlib.suppress(ProcessLookupError):  # nothing of the horse may be left
                os.killpg(horse, signal.SIGKILL)
            if run.status == Status.RUNNING:
                new_status = recover_lost(run, job, lost="worker's work horse")
                self.log.warning("Worker %s: the work horse of %s died; the run is now %s", self.name, run, new_status)
            else:
                run.tidy_up()
        except Exception:  # the reconcile sweep does the same later; the worker must go on serving the queue
            self.log.warning("Worker %s: could not settle the run of job %s", self.name, job.id, exc_info=True)
        finally:
            connections.close_all()

    def teardown(self) -> None:
        # Stopping must not wait for a Redis that is down: one try each, then go.
        self.connection.set_retry(Retry(ExponentialBackoff(), retries=0))
        try:
            super().teardown()
        except RedisError as exc:
            self.log.warning("Worker %s: could not record its death in Redis (%s)", self.name, exc)
