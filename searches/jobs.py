"""The rq job that runs a search, and the queue operations around it: enqueue, cancel, reconcile.

The job takes the search id and nothing else: rq keeps job arguments in Redis, and secrets
(the bearer token) must never travel there; the worker reads them from its own settings.

One run per search:
- `enqueue` holds a per-search Redis lock, leaves alone a search whose recorded job is still live, and
  writes the new job id on the search before the job reaches Redis; so the web, the admin, the CLI and
  the reconcile sweep can all ask for a search to be queued and it still gets one job.
- `claim` moves a queued search to running in one conditional UPDATE that only the recorded job can
  win: two workers never run one search. The claim time (`started`) identifies the run from then on.
- Cancel wins: `cancel` marks the search cancelled in the database first (a worker that picks its job
  up later cannot claim it), then takes the job off the queue or stops it with rq's stop-job command;
  `finish` only updates the run it belongs to while it is still running, so it never overwrites
  "cancelled". A cancelled run never completes the workflow, so its folder lacks the final outputs.

Heartbeats, the job timeout and what happens when a worker dies: see searches/worker.py.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import close_old_connections, connection
from django.utils import timezone

from .models import EventKind, Search, Status, TaskEvent

log = logging.getLogger("dnflow.jobs")

NOT_QUEUED_STEP = (
    "Saved, waiting for the job queue: Redis could not be reached. "
    "It is queued automatically when Redis is back (manage.py reconcile_searches)."
)
# rq statuses of a job that will still run (a started one only while its worker lives).
_WAITING_STATUSES = ("queued", "deferred", "scheduled")
_LOST_COUNT_TTL = 7 * 24 * 3600


def timeout_reason(seconds: int) -> str:
    return (
        f"The search took longer than the job timeout ({seconds} s, setting DNFLOW_JOB_TIMEOUT) and was stopped. "
        "Raise DNFLOW_JOB_TIMEOUT or narrow the search, then run it again: completed steps are kept."
    )


def _job_timeout() -> int:
    return settings.DNFLOW_JOB_TIMEOUT if settings.DNFLOW_JOB_TIMEOUT > 0 else -1  # rq: -1 = no limit


# --- Queueing ------------------------------------------------------------------------------------


def enqueue(search_id: int, *, step: str = "Waiting for a worker") -> str | None:
    """Hand a queued search to the workers; returns its live job id, or None if it is not on the queue.

    If Redis is unreachable the search stays saved and queued, its `step` says so, and the reconcile
    sweep queues it later.
    """
    from redis.exceptions import LockError, RedisError

    try:
        conn = django_rq.get_connection("default")
        with conn.lock(f"dnflow:enqueue:{search_id}", timeout=30, blocking_timeout=10):
            return _enqueue_locked(conn, search_id, step)
    except LockError:
        log.warning("search #%s: another process holds its enqueue lock; leaving it to that one", search_id)
        return Search.objects.filter(pk=search_id).values_list("rq_job_id", flat=True).first() or None
    except RedisError as exc:
        log.warning("search #%s saved but not queued: Redis unreachable (%s)", search_id, exc)
        Search.objects.filter(pk=search_id, status=Status.QUEUED).update(step=NOT_QUEUED_STEP)
        return None


def _enqueue_locked(conn, search_id: int, step: str) -> str | None:
    from rq import Callback

    search = Search.objects.filter(pk=search_id).only("status", "rq_job_id").first()
    if search is None or search.status != Status.QUEUED:
        return None
    if search.rq_job_id and job_is_live(conn, search.rq_job_id):
        return search.rq_job_id
    job_id = f"search-{search_id}-{timezone.now():%Y%m%d%H%M%S%f}"
    # Recorded before the job exists, so the job's claim (which accepts only the recorded job) cannot
    # run ahead of this write.
    if not Search.objects.filter(pk=search_id, status=Status.QUEUED).update(rq_job_id=job_id, step=step):
        return None
    try:
        django_rq.get_queue("default", connection=conn).enqueue(
            run_search_job,
            search_id,
            job_id=job_id,
            job_timeout=_job_timeout(),
            description=f"dnflow search #{search_id}",
            on_failure=Callback(job_failed),
        )
    except Exception:
        Search.objects.filter(pk=search_id, rq_job_id=job_id).update(rq_job_id="")
        raise
    return job_id


def fetch_job(conn, job_id: str):
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    if not job_id:
        return None
    try:
        return Job.fetch(job_id, connection=conn)
    except NoSuchJobError:
        return None


def job_is_live(conn, job_id: str) -> bool:
    """True if the job waits on a queue, or runs on a worker that is still alive."""
    job = fetch_job(conn, job_id)
    if job is None:
        return False
    if job.get_status() in _WAITING_STATUSES:
        return True
    return _is_executing(conn, job) and worker_is_alive(conn, job.worker_name)


def worker_is_alive(conn, worker_name: str | None) -> bool:
    """An rq worker is alive while its key exists, its heartbeat is fresh and, on this host, its pid runs."""
    from rq.utils import now
    from rq.worker import Worker

    from .worker import alive_ttl

    if not worker_name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + worker_name, connection=conn)
    if worker is None:
        return False
    if worker.hostname == socket.gethostname() and worker.pid and not _pid_running(worker.pid):
        return False
    if worker.last_heartbeat is not None:
        last = worker.last_heartbeat
        if last.tzinfo is None:
            last = last.replace(tzinfo=now().tzinfo)
        # A DnflowWorker beats every DNFLOW_WORKER_HEARTBEAT seconds, busy or idle-but-waking.
        if now() - last > timedelta(seconds=alive_ttl() + max(settings.DNFLOW_RECONCILE_INTERVAL, 5) + 15):
            return False
    return True


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- The job -------------------------------------------------------------------------------------


def run_search_job(search_id: int) -> str:
    """rq entry point: claim the search, run its workflow in-process, record the outcome."""
    from rq import get_current_job

    close_old_connections()
    job = get_current_job()
    search = run_search(
        search_id,
        job_id=job.id if job else None,
        timeout=job.timeout if job else None,
        stop_when_taken=job is not None,
    )
    return search.status


def claim(search_id: int, job_id: str | None = None) -> datetime | None:
    """Move a queued search to running in one conditional UPDATE; returns the claim time, or None.

    Two workers never both win; with job_id, only the job recorded on the search can win.
    """
    now = timezone.now()
    rows = Search.objects.filter(pk=search_id, status=Status.QUEUED)
    if job_id:
        rows = rows.filter(rq_job_id=job_id)
    if rows.update(status=Status.RUNNING, started=now, finished=None, step="Starting", error=""):
        return now
    return None


def run_search(
    search_id: int, *, job_id: str | None = None, timeout: int | None = None, stop_when_taken: bool = False
) -> Search:
    """Claim and run a search in this process; returns it in its final state.

    stop_when_taken (rq work horses): end the process as soon as the search is cancelled or recovered
    elsewhere. The CLI leaves it off: a cancelled CLI run completes, but its status stays cancelled.
    """
    from rq.timeouts import JobTimeoutException

    from pipeline.runner import run_workflow

    from .worker import SearchWatchdog

    started = claim(search_id, job_id)
    if started is None:
        search = Search.objects.get(pk=search_id)
        log.info("search #%s not claimed: it is %s", search_id, search.status)
        return search
    search = Search.objects.get(pk=search_id)
    if not search.folder:
        search.folder = search.new_folder_name()
        search.save(update_fields=["folder"])
    watchdog = SearchWatchdog(search_id, started, enforce=stop_when_taken)
    watchdog.start()
    try:
        result = run_workflow(search)
        ok, error = result.ok, result.error
    except JobTimeoutException:  # a plain rq worker's alarm that escaped Luigi
        watchdog.stop()
        record_timeout(search_id, timeout or 0, started=started)
        raise
    except Exception as exc:  # the reason must reach the person, whatever broke
        log.exception("search #%s crashed", search_id)
        ok, error = False, f"Unexpected error: {exc}"
    finally:
        watchdog.stop()
    if not ok and timeout and timeout > 0 and timezone.now() - started >= timedelta(seconds=timeout):
        # A plain rq worker's alarm that Luigi caught and turned into a failed task.
        error = timeout_reason(timeout)
    try:
        finish(search_id, ok=ok, error=error, started=started)
    except DatabaseError as exc:
        # The connection dropped during the run (a database restart): record the outcome on a new one,
        # or the search would stay "running" until the reconcile sweep took it for a dead worker's.
        log.warning("search #%s: database connection lost (%s); recording the outcome on a new one", search_id, exc)
        if not connection.in_atomic_block:
            connection.close()
        finish(search_id, ok=ok, error=error, started=started)
    return Search.objects.get(pk=search_id)


def finish(search_id: int, *, ok: bool, error: str = "", started: datetime | None = None) -> None:
    """Record the outcome of the run that began at `started`, unless it was cancelled or taken over."""
    fields = {"finished": timezone.now(), "rate_limited_until": None}
    if ok:
        fields.update(status=Status.FINISHED, progress=100.0, step="Finished", error="")
    else:
        fields.update(status=Status.FAILED, step="Failed", error=error or "The workflow failed.")
    rows = Search.objects.filter(pk=search_id, status=Status.RUNNING)
    if started is not None:
        rows = rows.filter(started=started)
    rows.update(**fields)


def record_timeout(search_id: int, seconds: int, *, started: datetime | None = None, job_id: str = "") -> bool:
    """End a search as failed because its job outlived the job timeout; True if it was still unfinished.

    A queued search counts too: the alarm can fire before the job claimed it (then job_id names the job).
    """
    rows = Search.objects.filter(pk=search_id, status__in=[Status.QUEUED, Status.RUNNING])
    if started is not None:
        rows = rows.filter(started=started)
    if job_id:
        rows = rows.filter(rq_job_id=job_id)
    return bool(
        rows.update(
            status=Status.FAILED,
            step="Failed",
            error=timeout_reason(seconds),
            finished=timezone.now(),
            rate_limited_until=None,
        )
    )


def job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """rq's on_failure callback: in the work horse when the job raised, or when rq found it abandoned."""
    from rq.exceptions import AbandonedJobError
    from rq.timeouts import JobTimeoutException

    close_old_connections()
    search_id = job.args[0]
    if issubclass(exc_type, JobTimeoutException):
        record_timeout(search_id, job.timeout, job_id=job.id)
    elif issubclass(exc_type, AbandonedJobError):
        search = Search.objects.filter(pk=search_id, status=Status.RUNNING, rq_job_id=job.id).first()
        if search is not None:
            recover_lost(connection, search, job)
    else:
        unfinished = [Status.QUEUED, Status.RUNNING]
        Search.objects.filter(pk=search_id, status__in=unfinished, rq_job_id=job.id).update(
            status=Status.FAILED,
            step="Failed",
            error=f"Unexpected error: {exc_value}",
            finished=timezone.now(),
            rate_limited_until=None,
        )


# --- Cancel --------------------------------------------------------------------------------------


def cancel(search: Search) -> None:
    """Take a queued search off the queue or stop a running one; it ends as cancelled."""
    from redis.exceptions import RedisError
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation

    # The database first: from here on no worker can claim the search, and a running work horse's
    # watchdog stops it even if rq's stop message never reaches its worker.
    Search.objects.filter(pk=search.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.CANCELLED,
        step="Cancelled",
        finished=timezone.now(),
        rate_limited_until=None,
    )
    job_id = Search.objects.filter(pk=search.pk).values_list("rq_job_id", flat=True).first() or search.rq_job_id
    if not job_id:
        return
    try:
        conn = django_rq.get_connection("default")
        job = fetch_job(conn, job_id)
        if job is None:
            return
        status = job.get_status()
        if status == "started":
            send_stop_job_command(conn, job.id)
        elif status in _WAITING_STATUSES:
            job.cancel()
    except InvalidJobOperation:
        pass
    except RedisError as exc:
        log.warning("search #%s: could not reach Redis to stop its job (%s)", search.pk, exc)


# --- Reconcile -----------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    queued: list[int] = field(default_factory=list)  # queued searches that had no live job
    requeued: list[int] = field(default_factory=list)  # running searches whose worker died: queued again
    failed: list[int] = field(default_factory=list)  # running searches ended as failed
    skipped: bool = False  # another process was sweeping at the same time

    @property
    def changed(self) -> bool:
        return bool(self.queued or self.requeued or self.failed)

    def __str__(self) -> str:
        if self.skipped:
            return "another process is reconciling right now; nothing done here"
        parts = []
        for label, ids in (
            ("queued", self.queued),
            ("queued again after their worker stopped", self.requeued),
            ("marked failed", self.failed),
        ):
            if ids:
                parts.append(f"{label}: " + ", ".join(f"#{pk}" for pk in ids))
        return "; ".join(parts) or "nothing to do: every unfinished search has a live job"


def reconcile(search_ids: list[int] | None = None, *, wait: bool = True) -> ReconcileReport:
    """Queue queued searches that have no live job; recover running searches whose process is gone.

    Raises redis.exceptions.RedisError when Redis cannot be reached. With wait=False, a sweep already
    running elsewhere makes this one a no-op (the periodic sweep of each worker).
    """
    conn = django_rq.get_connection("default")
    report = ReconcileReport()
    lock = conn.lock("dnflow:reconcile", timeout=120, blocking_timeout=30)
    if not lock.acquire(blocking=wait):
        report.skipped = True
        return report
    try:
        rows = Search.objects.unfinished().order_by("created", "pk")
        if search_ids is not None:
            rows = rows.filter(pk__in=search_ids)
        for search in rows:
            if search.status == Status.RUNNING:
                _reconcile_running(conn, search, report)
            elif not job_is_live(conn, search.rq_job_id) and enqueue(search.pk):
                report.queued.append(search.pk)
    finally:
        try:
            lock.release()
        except Exception:  # expired: nothing to release
            log.debug("reconcile lock already gone", exc_info=True)
    return report


def _reconcile_running(conn, search: Search, report: ReconcileReport) -> None:
    from .worker import alive_key, alive_ttl

    if conn.exists(alive_key(search.pk)):
        return  # its process beats: it runs
    if search.started and timezone.now() - search.started < timedelta(seconds=alive_ttl()):
        return  # just claimed
    job = fetch_job(conn, search.rq_job_id)
    if job is not None and _is_executing(conn, job) and worker_is_alive(conn, job.worker_name):
        return  # rq sees it run on a live worker; rq's own timeout still applies
    outcome = recover_lost(conn, search, job)
    if outcome == Status.QUEUED:
        report.requeued.append(search.pk)
    elif outcome == Status.FAILED:
        report.failed.append(search.pk)


def _is_executing(conn, job) -> bool:
    """rq's view: the job is started and in its queue's StartedJobRegistry (left when it ends or is abandoned)."""
    from rq.registry import StartedJobRegistry

    return job.get_status() == "started" and job.id in StartedJobRegistry(job.origin, connection=conn)


def _what_rq_saw(job) -> str:
    if job is None:
        return "its job is gone from Redis"
    if job.get_status() == "failed":
        try:
            result = job.latest_result()
            lines = [line for line in (result.exc_string or "").splitlines() if line.strip()] if result else []
            if lines:
                return f"rq: {lines[-1].strip().rstrip(';')}"
        except Exception:
            log.debug("could not read job %s's result", job.id, exc_info=True)
        return "its job failed without recording an outcome"
    return "its worker process is gone"


def recover_lost(conn, search: Search, job) -> str | None:
    """A running search lost its process: queue it again to resume, or end it as failed (see worker.py).

    Returns the new status, or None if the search had changed meanwhile.
    """
    timeout = job.timeout if job is not None else None
    started = search.started
    ran = (timezone.now() - started).total_seconds() if started else 0
    rows = Search.objects.filter(pk=search.pk, status=Status.RUNNING, started=started)
    if timeout and timeout > 0 and ran >= timeout:
        return Status.FAILED if record_timeout(search.pk, timeout, started=started) else None
    why = _what_rq_saw(job)
    lost_key = f"dnflow:search:{search.pk}:lost-count"
    times = conn.incr(lost_key)
    conn.expire(lost_key, _LOST_COUNT_TTL)
    if times > settings.DNFLOW_LOST_SEARCH_RETRIES:
        error = (
            f"The worker running this search stopped unexpectedly {times} times in a row ({why}): "
            "killed, crashed or out of memory. Run it again to resume from the completed steps."
        )
        updated = rows.update(
            status=Status.FAILED, step="Failed", error=error, finished=timezone.now(), rate_limited_until=None
        )
        return Status.FAILED if updated else None
    step = "Queued again: its worker stopped. Completed steps are kept."
    if not rows.update(
        status=Status.QUEUED,
        step=step,
        rq_job_id="",
        started=None,
        finished=None,
        rate_limited_until=None,
    ):
        return None
    log.warning("search #%s lost its worker (%s): queued again to resume", search.pk, why)
    TaskEvent.objects.create(
        search_id=search.pk,
        task_family="Worker",
        event=EventKind.NOTE,
        message=f"The worker running this search stopped ({why}). Queued again to resume: completed steps are kept.",
    )
    enqueue(search.pk, step=step)
    return Status.QUEUED


def forget_lost_count(search_id: int) -> None:
    """A person ran the search again: it gets its full allowance of recoveries back."""
    try:
        django_rq.get_connection("default").delete(f"dnflow:search:{search_id}:lost-count")
    except Exception:  # Redis down: the count expires by itself
        log.debug("could not reset the lost count of search #%s", search_id, exc_info=True)
