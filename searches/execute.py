"""Carrying out one run in this process: the rq job (a worker's work horse) or the command line.

`execute_run` claims the run (one conditional UPDATE that only the recorded job can win), tidies
what earlier runs of the search left behind, runs the Luigi workflow in-process with a watchdog
beside it, and records the outcome on that claim only: a run cancelled or taken over meanwhile
keeps the state it was given ("cancel wins"). A cancelled run never completes the workflow, so its
folder lacks the final outputs (summary.json is written last, after the package).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import Error as DatabaseError
from django.db import close_old_connections, connection
from django.utils import timezone

from pipeline.runner import build_workflow

from . import run_files
from .choices import ACTIVE_STATUSES
from .models import SearchRun, Status
from .reconcile import recover_lost
from .watchdog import RunWatchdog, timeout_reason

log = logging.getLogger("dnflow.execute")


def run_job(run_id: int) -> str:
    """rq entry point: claim the run, run its workflow in-process, record the outcome."""
    from rq import get_current_job

    close_old_connections()
    job = get_current_job()
    run = execute_run(
        run_id,
        job_id=job.id if job else None,
        timeout=job.timeout if job else None,
        stop_when_taken=job is not None,
    )
    return run.status


def execute_run(
    run_id: int, *, job_id: str | None = None, timeout: int | None = None, stop_when_taken: bool = False
) -> SearchRun:
    """Claim and carry out a run in this process; returns it in its final state.

    stop_when_taken (rq work horses): end the process as soon as the run is cancelled or recovered
    elsewhere. The CLI leaves it off: a cancelled CLI run stops at its next progress report.
    """
    from rq.timeouts import JobTimeoutException

    started = SearchRun.objects.filter(pk=run_id).claim(job_id=job_id)
    run = SearchRun.objects.select_related("search").get(pk=run_id)
    if started is None:
        log.info("%s not claimed: it is %s", run, run.status)
        return run
    _tidy_before(run)
    watchdog = RunWatchdog(run, enforce=stop_when_taken)
    watchdog.start()
    try:
        result = build_workflow(run)
        ok, error = result.ok, result.error
    except JobTimeoutException:  # a plain rq worker's alarm that escaped Luigi
        watchdog.stop()
        run.this_claim().fail(timeout_reason(timeout or 0))
        raise
    except Exception as exc:  # the reason must reach the person, whatever broke
        log.exception("%s crashed", run)
        ok, error = False, f"Unexpected error: {exc}"
    finally:
        watchdog.stop()
    if not ok and timeout and timeout > 0 and timezone.now() - started >= timedelta(seconds=timeout):
        # A plain rq worker's alarm that Luigi caught and turned into a failed task.
        error = timeout_reason(timeout)
    try:
        _record_outcome(run, ok, error)
    except DatabaseError as exc:
        # The connection dropped during the run (a database restart): record the outcome on a new one,
        # or the run would stay "running" until the reconcile sweep took it for a dead worker's.
        log.warning("%s: database connection lost (%s); recording the outcome on a new one", run, exc)
        if not connection.in_atomic_block:
            connection.close()
        _record_outcome(run, ok, error)
    return SearchRun.objects.select_related("search").get(pk=run_id)


def _tidy_before(run: SearchRun) -> None:
    """The search's other runs have stopped (one run at a time), and this one is claimed by this
    process: whatever temporaries any of them left, this one included if it resumes, are nobody's
    work in progress now."""
    for stopped in run.search.runs.exclude(status__in=ACTIVE_STATUSES):
        stopped.tidy_up()
    run.tidy_up()


def _record_outcome(run: SearchRun, ok: bool, error: str) -> None:
    claim = run.this_claim()
    if ok:
        claim.finish(num_posts=posts_in_outputs(run))
    else:
        claim.fail(error)
    # The workflow has returned: nothing writes in the folder now. A finished run has no
    # temporaries; a failed or cancelled one may have.
    run.tidy_up()


def posts_in_outputs(run: SearchRun) -> int | None:
    """The posts the finished outputs hold (summary.json's num_tweets), or None where they do not
    say (a purge's run). The count the counting step recorded can be short or missing: the database
    may have failed just then, and a resumed run does not count again."""
    posts = run_files.read_summary(run.folder_path).get("num_tweets")
    return posts if type(posts) is int and posts >= 0 else None


def job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """rq's on_failure callback: in the work horse when the job raised, or when rq found it abandoned."""
    from rq.exceptions import AbandonedJobError
    from rq.timeouts import JobTimeoutException

    close_old_connections()
    run_id = job.args[0]
    this_job = SearchRun.objects.filter(pk=run_id, rq_job_id=job.id)
    if issubclass(exc_type, JobTimeoutException):
        this_job.fail(timeout_reason(job.timeout))
    elif issubclass(exc_type, AbandonedJobError):
        run = this_job.filter(status=Status.RUNNING).first()
        if run is not None:
            recover_lost(run, job)
    else:
        this_job.fail(f"Unexpected error: {exc_value}")


def job_stopped(job, connection) -> None:
    """rq's on_stopped callback, in the worker once it killed the work horse of a cancelled run:
    the horse is gone, so what it left in the folder can go too."""
    close_old_connections()
    run = SearchRun.objects.filter(pk=job.args[0], rq_job_id=job.id).exclude(status=Status.RUNNING).first()
    if run is not None:
        run.tidy_up()
