"""Build one run's Luigi workflow in this process and say, in plain words, how it went.

`luigi.build` returns True whenever scheduling worked, even if every task failed; we ask for the
detailed summary and read its status. The reason a person reads is the failing task's own
message (an ArchiveError, XApiError or QueryError explains itself), never a traceback.

With a central scheduler (DNFLOW_LUIGI_SCHEDULER_URL, luigid), luigid may hand a task to another
worker. Luigi's summary then says SUCCESS although this process ran nothing; only the final task's
outputs prove that the workflow finished.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import luigi
import luigi.configuration
from django.conf import settings
from django.db import connections
from django.utils import timezone
from luigi.execution_summary import LuigiStatusCode

from searches.models import EventKind, SearchRun, TaskEvent

from . import events
from .errors import EXPLAINED_ERRORS
from .tasks import RunTask, final_task

log = logging.getLogger("dnflow.pipeline")

OK_STATUSES = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
STATUS_REASONS = {
    LuigiStatusCode.SCHEDULING_FAILED: "The workflow could not be scheduled (is the Luigi scheduler reachable?).",
    LuigiStatusCode.NOT_RUN: "The Luigi scheduler did not let this worker run the workflow: "
    "another worker may be running the same search.",
    LuigiStatusCode.MISSING_EXT: "A file the workflow needs is missing.",
}
TAKEN_BY_ANOTHER_WORKER = (
    "The Luigi scheduler (DNFLOW_LUIGI_SCHEDULER_URL) gave this run's steps to another worker, so this process "
    "stopped without running them. One run must have one process: if none is running this search any more, "
    "run it again: completed steps are kept."
)
STOPPED_EARLY = "The workflow stopped before its last step without saying why."


@dataclass(frozen=True)
class WorkflowResult:
    ok: bool
    error: str = ""


class _ExplainedFailures(logging.Filter):
    """Luigi logs every failed task with its traceback. For errors that explain themselves (a bad
    archive, an X API refusal) the traceback is noise in a worker's log or a terminal: the plain
    reason is logged (dnflow.pipeline) and recorded instead. Unexpected errors keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, EXPLAINED_ERRORS)


_explained_failures = _ExplainedFailures()


def _quiet_luigi_logging() -> None:
    # Left alone, the first luigi.build adds its own DEBUG handler to "luigi-interface",
    # overriding Django's LOGGING; our settings decide what is logged.
    config = luigi.configuration.get_config()
    if not config.has_section("core"):
        config.add_section("core")
    config.set("core", "no_configure_logging", "true")
    luigi_log = logging.getLogger("luigi-interface")
    if _explained_failures not in luigi_log.filters:
        luigi_log.addFilter(_explained_failures)


def build_workflow(run: SearchRun) -> WorkflowResult:
    """Build every output of the run in its folder; only unfinished tasks run."""
    run.folder_path.mkdir(parents=True, exist_ok=True)
    events.register(RunTask)  # idempotent: Luigi keeps handlers in a set per class
    events.last_failures.pop(run.pk, None)
    _quiet_luigi_logging()

    workers = max(1, int(settings.DNFLOW_LUIGI_WORKERS))
    options: dict = {"detailed_summary": True, "workers": workers}
    if settings.DNFLOW_LUIGI_SCHEDULER_URL:
        options["scheduler_url"] = settings.DNFLOW_LUIGI_SCHEDULER_URL
    else:
        options["local_scheduler"] = True
    if workers > 1:
        # Luigi forks a process per task: a database connection shared across a fork breaks both ends.
        connections.close_all()

    began = timezone.now()
    final = final_task(run)
    result = luigi.build([final], **options)
    if result.status not in OK_STATUSES:
        reason = _failure_reason(run.pk, began) or STATUS_REASONS.get(result.status) or "The workflow failed."
    elif final.complete():
        return WorkflowResult(ok=True)
    else:
        # Luigi counts tasks that luigid gave to another worker as fine.
        reason = TAKEN_BY_ANOTHER_WORKER if settings.DNFLOW_LUIGI_SCHEDULER_URL else STOPPED_EARLY
    log.warning("%s failed: %s", run, reason)
    return WorkflowResult(ok=False, error=reason)


def _failure_reason(run_id: int, since) -> str:
    """The failing task's own message: kept in this process, or (forked workers) from its TaskEvent."""
    reason = events.last_failures.pop(run_id, "")
    if reason:
        return reason
    event = (
        TaskEvent.objects.filter(run_id=run_id, event=EventKind.FAILURE, created__gte=since)
        .order_by("-created", "-pk")
        .first()
    )
    return event.message if event else ""
