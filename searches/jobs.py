"""The rq job that runs a search, and the queue operations around it.

The job takes the search id and nothing else: rq keeps job arguments in Redis, and secrets
(the bearer token) must never travel there; the worker reads them from its own settings.
"""

from __future__ import annotations

import logging

import django_rq
from django.db import close_old_connections
from django.utils import timezone

from .models import Search, Status

log = logging.getLogger("dnflow.jobs")


def enqueue(search_id: int) -> str | None:
    """Put the search on the queue; returns the job id, or None if Redis is unreachable."""
    from redis.exceptions import RedisError

    try:
        queue = django_rq.get_queue("default")
        job = queue.enqueue(
            run_search_job,
            search_id,
            job_id=f"search-{search_id}-{timezone.now():%Y%m%d%H%M%S%f}",
            description=f"dnflow search #{search_id}",
        )
    except RedisError as exc:
        log.warning("search #%s saved but not queued: Redis unreachable (%s)", search_id, exc)
        Search.objects.filter(pk=search_id, status=Status.QUEUED).update(
            step="Saved, waiting for the job queue: Redis could not be reached. "
            "It is queued automatically when Redis is back (manage.py reconcile_searches)."
        )
        return None
    Search.objects.filter(pk=search_id).update(rq_job_id=job.id, step="Waiting for a worker")
    return job.id


def run_search_job(search_id: int) -> str:
    """rq entry point: claim the search, run its workflow in-process, record the outcome."""
    close_old_connections()
    search = run_search(search_id)
    return search.status


def claim(search_id: int) -> bool:
    """Move a queued search to running in one conditional UPDATE: two workers never both win."""
    now = timezone.now()
    return bool(
        Search.objects.filter(pk=search_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started=now, finished=None, step="Starting", error=""
        )
    )


def run_search(search_id: int) -> Search:
    """Claim and run a search in this process; returns it in its final state."""
    from pipeline.runner import run_workflow

    if not claim(search_id):
        search = Search.objects.get(pk=search_id)
        log.info("search #%s not claimed: it is %s", search_id, search.status)
        return search
    search = Search.objects.get(pk=search_id)
    if not search.folder:
        search.folder = search.new_folder_name()
        search.save(update_fields=["folder"])
    try:
        result = run_workflow(search)
        ok, error = result.ok, result.error
    except Exception as exc:  # the reason must reach the person, whatever broke
        log.exception("search #%s crashed", search_id)
        ok, error = False, f"Unexpected error: {exc}"
    finish(search_id, ok=ok, error=error)
    return Search.objects.get(pk=search_id)


def finish(search_id: int, *, ok: bool, error: str = "") -> None:
    """Record the outcome, unless the search was cancelled meanwhile (cancel wins)."""
    fields = {"finished": timezone.now(), "rate_limited_until": None}
    if ok:
        fields.update(status=Status.FINISHED, progress=100.0, step="Finished", error="")
    else:
        fields.update(status=Status.FAILED, step="Failed", error=error or "The workflow failed.")
    Search.objects.filter(pk=search_id, status=Status.RUNNING).update(**fields)


def cancel(search: Search) -> None:
    """Take a queued search off the queue or stop a running one; it ends as cancelled."""
    from redis.exceptions import RedisError
    from rq.command import send_stop_job_command
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    if search.rq_job_id:
        try:
            conn = django_rq.get_connection("default")
            job = Job.fetch(search.rq_job_id, connection=conn)
            if job.get_status() == "started":
                send_stop_job_command(conn, job.id)
            else:
                job.cancel()
        except (NoSuchJobError, InvalidJobOperation):
            pass
        except RedisError as exc:
            log.warning("search #%s: could not reach Redis to stop its job (%s)", search.pk, exc)
    Search.objects.filter(pk=search.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.CANCELLED,
        step="Cancelled",
        finished=timezone.now(),
        rate_limited_until=None,
    )
