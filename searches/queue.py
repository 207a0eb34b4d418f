"""Handing runs to the workers through rq, and taking them back.

The job takes the run's id and nothing else: rq keeps job arguments in Redis, and secrets (the
bearer token) must never travel there; the worker reads them from its own settings.

One job per run: `enqueue_run` holds a per-run Redis lock, leaves alone a run whose recorded job
is still live, and writes the new job id on the run before the job reaches Redis; so the web, the
admin, the CLI and the reconcile sweep can all ask for a run to be queued and it still gets one
job. The job's claim (SearchRun.objects.claim) accepts only the recorded job, so two workers never
run one run.

The job function and its callbacks are named by their dotted path, which is how rq stores them
anyway: this module does not need to import the code that runs a job.
"""

from __future__ import annotations

import logging

import django_rq
from django.utils import timezone

from .models import SearchRun, Status
from .rqstate import WAITING_STATUSES, fetch_job, job_is_live
from .watchdog import job_timeout

log = logging.getLogger("dnflow.queue")

JOB_FUNCTION = "searches.execute.run_job"
ON_FAILURE = "searches.execute.job_failed"
ON_STOPPED = "searches.execute.job_stopped"
NOT_QUEUED_STEP = (
    "Saved, waiting for the job queue: Redis could not be reached. "
    "It is queued automatically when Redis is back (manage.py reconcile_searches)."
)


def enqueue_run(run_id: int, *, step: str = "Waiting for a worker") -> str | None:
    """Hand a queued run to the workers; returns its live job id, or None if it is not on the queue.

    If Redis is unreachable the run stays saved and queued, its `step` says so, and the reconcile
    sweep queues it later.
    """
    from redis.exceptions import LockError, RedisError

    try:
        conn = django_rq.get_connection("default")
        with conn.lock(f"dnflow:enqueue:run:{run_id}", timeout=30, blocking_timeout=10):
            return _enqueue_locked(conn, run_id, step)
    except LockError:
        log.warning("run #%s: another process holds its enqueue lock; leaving it to that one", run_id)
        return SearchRun.objects.filter(pk=run_id).values_list("rq_job_id", flat=True).first() or None
    except RedisError as exc:
        log.warning("run #%s saved but not queued: Redis unreachable (%s)", run_id, exc)
        SearchRun.objects.filter(pk=run_id).note_unqueued(NOT_QUEUED_STEP)
        return None


def _enqueue_locked(conn, run_id: int, step: str) -> str | None:
    from rq import Callback

    run = SearchRun.objects.filter(pk=run_id).select_related("search").first()
    if run is None or run.status != Status.QUEUED:
        return None
    if run.rq_job_id and job_is_live(conn, run.rq_job_id):
        return run.rq_job_id
    job_id = f"run-{run_id}-{timezone.now():%Y%m%d%H%M%S%f}"
    # Recorded before the job exists, so the job's claim (which accepts only the recorded job) cannot
    # run ahead of this write.
    if not SearchRun.objects.filter(pk=run_id).assign_job(job_id, step):
        return None
    try:
        django_rq.get_queue("default", connection=conn).enqueue(
            JOB_FUNCTION,
            run_id,
            job_id=job_id,
            job_timeout=job_timeout(),
            description=f"dnflow search #{run.search_id}, run {run.number}",
            on_failure=Callback(ON_FAILURE),
            on_stopped=Callback(ON_STOPPED),
        )
    except Exception:
        SearchRun.objects.filter(pk=run_id).forget_job(job_id)
        raise
    return job_id


def stop_job(run: SearchRun) -> None:
    """Take the run's job off the queue, or stop it on its worker (rq's stop-job command).

    Called after the run was cancelled in the database, which is what counts: a job that is not
    reached here is stopped by its watchdog, or never claims the run.
    """
    from redis.exceptions import RedisError
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation

    job_id = SearchRun.objects.filter(pk=run.pk).values_list("rq_job_id", flat=True).first() or run.rq_job_id
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
        elif status in WAITING_STATUSES:
            job.cancel()
    except InvalidJobOperation:
        pass
    except RedisError as exc:
        log.warning("%s: could not reach Redis to stop its job (%s)", run, exc)
