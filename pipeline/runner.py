"""Build one run's Luigi workflow in this process and say, in plain words, how it went.

`luigi.build` returns True whenever scheduling worked, even if every task failed; we ask for the
detailed summary and read its status. The reason a person reads is the failing task's own
message (an ArchiveError, XApiError or QueryError explains itself), never a traceback.

With a central scheduler (DNFLOW_LUIGI_SCHEDULER_URL, luigid) two more things can go wrong:
- luigid cannot be reached. Luigi would retry every call for a minute and then raise; we ask it
  once (with a few quick tries) before building, and say in plain words what to do.
- luigid hands a task to another worker. Luigi's summary then says SUCCESS although this process
  ran nothing; only the final task's outputs prove that the workflow finished.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import luigi
import luigi.configuration
import requests
from django.conf import settings
from django.db import connections
from django.utils import timezone
from luigi.execution_summary import LuigiStatusCode
from luigi.rpc import RPCError

from searches.models import EventKind, SearchRun, TaskEvent

from . import events
from .errors import EXPLAINED_ERRORS
from .purge_task import finishing_task
from .tasks import RunTask

log = logging.getLogger("dnflow.pipeline")

# Set while Luigi runs a workflow's tasks in forked processes (DNFLOW_LUIGI_WORKERS > 1).
_forking_tasks = False


def _close_connections_before_a_fork() -> None:
    """Luigi forks a process per task while it schedules in this one, and scheduling reads the
    database (each task's run). A connection open at a fork is shared by both ends: on PostgreSQL
    the children read each other's replies ("generator raised StopIteration" in a row, a run that
    "does not exist"). Closed before every fork, each process opens its own."""
    if _forking_tasks:
        connections.close_all()


os.register_at_fork(before=_close_connections_before_a_fork)

OK_STATUSES = (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY)
STATUS_REASONS = {
    LuigiStatusCode.SCHEDULING_FAILED: "The workflow could not be scheduled: a task could not say whether it was "
    "complete (the worker's log has the details).",
    LuigiStatusCode.NOT_RUN: "The Luigi scheduler (DNFLOW_LUIGI_SCHEDULER_URL) did not let this worker run the "
    "workflow's steps: it may be paused, or it took this worker for gone after more than a minute without a "
    "word from it (a machine that was suspended or starved). Unpause it if it is, then run the search again: "
    "completed steps are kept.",
    LuigiStatusCode.MISSING_EXT: "A file the workflow needs is missing.",
}
TAKEN_BY_ANOTHER_WORKER = (
    "The Luigi scheduler (DNFLOW_LUIGI_SCHEDULER_URL) gave this run's steps to another worker, so this process "
    "stopped without running them. One run must have one process: if none is running this search any more, "
    "run it again: completed steps are kept."
)
STOPPED_EARLY = "The workflow stopped before its last step without saying why."

# Asking luigid whether it answers, before a build: so many tries, so far apart, each so long at most.
# (Within a build, Luigi's own retries apply to every call: 3 attempts, 30 s apart, each of at most
# 10 s, so a run rides over a luigid restart of up to a minute. luigi.cfg's [core] rpc-retry-attempts,
# rpc-retry-wait and rpc-connect-timeout change them.)
CHECK_TRIES = 3
CHECK_PAUSE = 2.0
CHECK_TIMEOUT = 5.0


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

    scheduler_url = settings.DNFLOW_LUIGI_SCHEDULER_URL
    workers = max(1, int(settings.DNFLOW_LUIGI_WORKERS))
    options: dict = {"detailed_summary": True, "workers": workers}
    if scheduler_url:
        options["scheduler_url"] = scheduler_url
        problem = scheduler_problem(scheduler_url)
        if problem:
            log.warning("%s not started: %s", run, problem)
            return WorkflowResult(ok=False, error=problem)
    else:
        options["local_scheduler"] = True
    global _forking_tasks
    _forking_tasks = workers > 1

    began = timezone.now()
    final = finishing_task(run)
    try:
        result = luigi.build([final], **options)
    except RPCError as exc:
        reason = (
            f"{_the_scheduler(scheduler_url)} stopped answering during the run ({_why(exc.sub_exception)}). "
            "Check that luigid runs there, then run the search again: completed steps are kept."
        )
        log.warning("%s failed: %s", run, reason)
        return WorkflowResult(ok=False, error=reason)
    finally:
        _forking_tasks = False
    if result.status not in OK_STATUSES:
        reason = _failure_reason(run.pk, began) or STATUS_REASONS.get(result.status) or "The workflow failed."
    elif final.complete():
        return WorkflowResult(ok=True)
    else:
        # Luigi counts tasks that luigid gave to another worker as fine.
        reason = TAKEN_BY_ANOTHER_WORKER if scheduler_url else STOPPED_EARLY
    log.warning("%s failed: %s", run, reason)
    return WorkflowResult(ok=False, error=reason)


def scheduler_problem(url: str) -> str:
    """Why the Luigi scheduler at `url` cannot take a workflow now, in plain words; "" if it can."""
    if not url.startswith(("http://", "https://")):
        return ""  # e.g. http+unix://: Luigi itself will say
    endpoint = url.rstrip("/") + "/api/is_paused"
    why = ""
    for attempt in range(CHECK_TRIES):
        if attempt:
            time.sleep(CHECK_PAUSE)  # a luigid that is restarting answers again within seconds
        try:
            response = requests.post(endpoint, data={"data": "{}"}, timeout=CHECK_TIMEOUT)
            response.raise_for_status()
            paused = response.json()["response"]["paused"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            why = _why(exc)
            continue
        if paused:
            return (
                f"{_the_scheduler(url)} is paused, so it lets no worker run a task. Unpause it (the button on its "
                "web page), then run the search again: completed steps are kept."
            )
        return ""
    return (
        f"{_the_scheduler(url)} cannot be reached: {why}. Start luigid there, or correct the setting (empty, "
        "each worker schedules its own runs), then run the search again: completed steps are kept."
    )


def _the_scheduler(url: str) -> str:
    """The scheduler, named for a person: its URL without the password Luigi allows in it."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return f"The Luigi scheduler at {url} (setting DNFLOW_LUIGI_SCHEDULER_URL)"


def _why(exc: BaseException | None) -> str:
    """A few words for what went wrong talking to luigid, rather than urllib3's paragraph."""
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"it answered HTTP {exc.response.status_code}, not like luigid"
    if isinstance(exc, (ValueError, KeyError, TypeError)):
        return "it did not answer like luigid"
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    if found:
        return found.group(1).strip().rstrip(".").lower()
    return "the connection failed"


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
