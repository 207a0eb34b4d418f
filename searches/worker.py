"""The rq worker that `manage.py rqworker` runs: short heartbeats, a reconcile sweep, safe forks,
and a job timeout that is decisive for a running run.

A search whose work horse outlives even the timeout (a stuck interpreter) is ended by rq's worker
60 s later and then recovered by the reconcile sweep, which gives the same reason. What keeps each
run honest while it runs: searches.watchdog. What happens when a worker dies: searches.reconcile.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty
from rq.worker import Worker

from .reconcile import reconcile
from .watchdog import active_watchdog


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
        super().fork_work_horse(job, queue)
