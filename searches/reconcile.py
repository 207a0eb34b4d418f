"""The reconcile sweep: make the database and rq agree again.

- A queued run with no live job (Redis was down when it was saved, or its job vanished) is queued.
- A running run whose process died (SIGKILL, out of memory, a lost machine: its heartbeat stopped,
  see searches.watchdog) is QUEUED AGAIN, keeping its folder: Luigi skips the tasks already
  complete, so the re-run resumes and ends with the same outputs as an uninterrupted one. After
  DNFLOW_LOST_SEARCH_RETRIES such recoveries in a row it fails instead, with the reason, so a run
  that kills its worker every time cannot loop forever.
- A run that stopped without finishing (cancelled, failed, killed) and whose process is gone has
  the temporaries it left in its folder removed.
- A search whose next scheduled refresh has no job in Redis (restarted without persistence) gets
  it again; a slot missed meanwhile is run once (searches.schedule).

Run by every DnflowWorker at start and every DNFLOW_RECONCILE_INTERVAL seconds, by `manage.py
reconcile_searches`, and from the admin. A worker whose work horse dies does not wait for the sweep:
it recovers that run at once (searches.worker).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import django_rq
from django.conf import settings
from django.utils import timezone

from .choices import EventKind
from .models import SearchRun, Status, TaskEvent
from .queue import enqueue_run
from .rqstate import fetch_job, is_executing, job_is_live, what_rq_saw, worker_is_alive
from .schedule import reschedule_lost
from .watchdog import alive_key, alive_ttl, timeout_reason

log = logging.getLogger("dnflow.reconcile")


@dataclass
class ReconcileOutcome:
    queued: list[int] = field(default_factory=list)  # search ids of queued runs that had no live job
    requeued: list[int] = field(default_factory=list)  # ... of running runs whose worker died: queued again
    failed: list[int] = field(default_factory=list)  # ... of running runs ended as failed
    tidied: list[int] = field(default_factory=list)  # ... of stopped runs whose temporaries were removed
    rescheduled: list[int] = field(default_factory=list)  # searches whose next refresh was scheduled again
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
            ("temporaries removed", self.tidied),
            ("refresh scheduled again", self.rescheduled),
        ):
            if ids:
                parts.append(f"{label}: " + ", ".join(f"#{pk}" for pk in ids))
        return "; ".join(parts) or "nothing to do: every unfinished search has a live job"


def reconcile(search_ids: list[int] | None = None, *, wait: bool = True) -> ReconcileOutcome:
    """Queue queued runs that have no live job; recover running runs whose process is gone; tidy up.

    Raises redis.exceptions.RedisError when Redis cannot be reached. With wait=False, a sweep already
    running elsewhere makes this one a no-op (the periodic sweep of each worker).
    """
    conn = django_rq.get_connection("default")
    outcome = ReconcileOutcome()
    lock = conn.lock("dnflow:reconcile", timeout=120, blocking_timeout=30)
    if not lock.acquire(blocking=wait):
        outcome.skipped = True
        return outcome
    try:
        runs = SearchRun.objects.active().order_by("created", "pk")
        untidy = SearchRun.objects.untidy().order_by("pk")
        if search_ids is not None:
            runs, untidy = runs.filter(search_id__in=search_ids), untidy.filter(search_id__in=search_ids)
        for run in runs:
            if run.status == Status.RUNNING:
                _reconcile_running(conn, run, outcome)
            elif not job_is_live(conn, run.rq_job_id) and enqueue_run(run.pk):
                outcome.queued.append(run.search_id)
        for run in untidy:
            if not conn.exists(alive_key(run.pk)) and run.tidy_up():
                outcome.tidied.append(run.search_id)
        if search_ids is None:
            outcome.rescheduled = reschedule_lost()
    finally:
        try:
            lock.release()
        except Exception:  # expired: nothing to release
            log.debug("reconcile lock already gone", exc_info=True)
    return outcome


def _reconcile_running(conn, run: SearchRun, outcome: ReconcileOutcome) -> None:
    if conn.exists(alive_key(run.pk)):
        return  # its process beats: it runs
    if run.started and timezone.now() - run.started < timedelta(seconds=alive_ttl()):
        return  # just claimed
    job = fetch_job(conn, run.rq_job_id)
    if job is not None and is_executing(conn, job) and worker_is_alive(conn, job.worker_name):
        return  # rq sees it run on a live worker; rq's own timeout still applies
    new_status = recover_lost(run, job)
    if new_status == Status.QUEUED:
        outcome.requeued.append(run.search_id)
    elif new_status == Status.FAILED:
        outcome.failed.append(run.search_id)


def recover_lost(run: SearchRun, job, *, lost: str = "worker") -> str | None:
    """A running run lost its process: queue it again to resume, or end it as failed.

    The one place that decides, for every way a loss is noticed: this sweep, the worker whose work
    horse died (searches.worker.DnflowWorker.settle_run, at once), and rq's on_failure callback for
    a job it found abandoned (searches.execute.job_failed). `lost` names what stopped, for the
    person reading the note: the worker, or only its work horse. Returns the new status, or None if
    the run had changed meanwhile.
    """
    timeout = job.timeout if job is not None else None
    ran = (timezone.now() - run.started).total_seconds() if run.started else 0
    this_claim = run.this_claim()
    if timeout and timeout > 0 and ran >= timeout:
        return Status.FAILED if this_claim.fail(timeout_reason(timeout)) else None
    why = what_rq_saw(job)
    times = run.times_lost + 1
    if times > settings.DNFLOW_LOST_SEARCH_RETRIES:
        error = (
            f"The {lost} running this search stopped unexpectedly {times} times in a row ({why}): "
            "killed, crashed or out of memory. Run it again to resume from the completed steps."
        )
        if not this_claim.fail(error):
            return None
        run.tidy_up()  # its process is gone: nothing writes in the folder any more
        return Status.FAILED
    requeued_step = f"Queued again: its {lost} stopped. Completed steps are kept."
    if not this_claim.requeue_lost(requeued_step):
        return None
    log.warning("%s lost its %s (%s): queued again to resume", run, lost, why)
    TaskEvent.objects.create(
        run=run,
        task_family="Worker",
        event=EventKind.NOTE,
        message=f"The {lost} running this search stopped ({why}). Queued again to resume: completed steps are kept.",
    )
    enqueue_run(run.pk, step=requeued_step)
    return Status.QUEUED
