"""The bridge from Luigi to the database: task events become TaskEvent rows and run progress.

Luigi calls the handlers below for START, SUCCESS, FAILURE and PROCESSING_TIME of every task that
derives from `pipeline.tasks.RunTask` (they are registered on that class only, so other Luigi
tasks in the process are left alone). Registration uses Luigi's class-level set of callbacks, so
running many builds in one worker process never registers a handler twice.

Luigi swallows whatever a handler raises (it logs it under its own name and carries on). A failed
database write here must not vanish: every handler catches its own errors and logs them, with the
event it was recording, under the logger "dnflow.events".

Tasks report progress through `Progress`, which writes at a sensible rate (every ~2 % of the step,
or once a second, never per post), and rate-limit waits through `Progress.wait`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import luigi
from django.db import Error as DatabaseError
from django.db import connection
from django.utils import timezone

from searches.models import EventKind, SearchRun, TaskEvent

from .errors import DATABASE_UNAVAILABLE, WorkflowCancelled, error_kind, plain_reason

log = logging.getLogger("dnflow.events")


@dataclass(frozen=True)
class Step:
    family: str  # the Luigi task family
    label: str  # what the status page says while it runs
    weight_live: float  # share of the whole workflow, in percent, for a live X search
    weight_file: float  # ... for an archive or the sample, where collecting is a copy


# The workflow's steps in order; their weights add up to 100 for each kind of source.
STEPS = (
    Step("CollectPosts", "Collecting posts", 58, 10),
    Step("SummarisePosts", "Counting hashtags, mentions, URLs and more", 20, 47),
    Step("BuildNetworks", "Building the mention and hashtag networks", 2, 5),
    Step("FetchPhotos", "Fetching photos", 12, 24),
    Step("MatchPhotos", "Matching similar photos", 4, 5),
    Step("PackageOutputs", "Packaging a BagIt archive", 4, 9),
)
# A recheck's first step takes the place (and the weights) of collecting.
INSTEAD = {"CheckAvailability": Step("CheckAvailability", "Rechecking which posts X still gives", 58, 58)}
# A purge is a run of one step.
ALONE = {"PurgeUnavailable": Step("PurgeUnavailable", "Purging the posts no longer on X", 100, 100)}
STEP_BY_FAMILY = {step.family: step for step in STEPS} | INSTEAD | ALONE
# Write progress when it moved by this many percent of the whole workflow, or after this long.
PROGRESS_PERCENT = 2.0
PROGRESS_SECONDS = 1.0
# A progress TaskEvent (the status page's timeline) only every this many percent of one step.
PROGRESS_EVENT_STEP = 25.0


def step_range(family: str, live: bool) -> tuple[float, float]:
    """Where a step starts and ends on the workflow's 0..100 scale."""
    if family in ALONE:
        return 0.0, 100.0
    if family in INSTEAD:
        family = STEPS[0].family
    start = 0.0
    for step in STEPS:
        weight = step.weight_live if live else step.weight_file
        if step.family == family:
            return start, start + weight
        start += weight
    return 0.0, 0.0


def step_percent(family: str, live: bool, overall: float) -> float | None:
    """How far into its step `family` a run at `overall` (0..100) is, in percent; None when
    `overall` is outside that step (the run is in another one)."""
    start, end = step_range(family, live)
    if end <= start or not start <= overall <= end:
        return None
    return (overall - start) * 100 / (end - start)


def of_this_step(percent: float, text: str) -> str:
    """A step's progress in words: its progress events, and the status page's running step."""
    return f"{percent:.0f}% of this step: {text}"


# Reasons by run id, kept in this process: the runner reads them even if writing the failure
# event failed. (With several Luigi workers the tasks run in forked processes; then the runner
# reads the failure events from the database instead.)
last_failures: dict[int, str] = {}


def _record(task, kind: str, message: str = "", duration: float | None = None) -> None:
    TaskEvent.objects.create(
        run_id=task.run_id,
        task_family=task.task_family,
        task_id=task.task_id,
        event=kind,
        message=message,
        duration=duration,
    )


def _log_lost(exc: BaseException, message: str, *args) -> None:
    """A record that could not be written. A database that is locked, restarting or unreachable is
    no bug: one line says so (a foreground run_search prints this log, and would show a traceback
    for every progress report). Anything else comes with its traceback."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        log.error(message + " (the database: %s)", *args, error_kind(exc))
    else:
        log.exception(message, *args)


def _renew_connection_after(exc: BaseException) -> None:
    """After a failed database write, let the next query open a new connection: one that dropped (a
    database restart, a network cut) would otherwise fail every write for the rest of the run."""
    if isinstance(exc, DatabaseError) and not connection.in_atomic_block:
        try:
            connection.close()
        except Exception:
            log.debug("could not close the broken database connection", exc_info=True)


def _guarded(what: str):
    """Run a handler; log (never raise) whatever goes wrong, naming the event and the task."""

    def decorate(handler):
        def run(task, *args):
            try:
                handler(task, *args)
            except WorkflowCancelled:
                pass  # the task itself stops at its next progress report
            except Exception as exc:
                _log_lost(exc, "could not record %s of %s for run #%s", what, task.task_id, task.run_id)
                _renew_connection_after(exc)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return decorate


@_guarded("the start")
def on_start(task) -> None:
    step = STEP_BY_FAMILY.get(task.task_family)
    failed_before = TaskEvent.objects.filter(
        run_id=task.run_id, task_family=task.task_family, event=EventKind.FAILURE
    ).exists()
    if failed_before:
        _record(task, EventKind.RETRY, "Running again after an earlier failure.")
    _record(task, EventKind.START, step.label if step else "")
    Progress(task).update(0.0, force=True)


@_guarded("the success")
def on_success(task) -> None:
    step = STEP_BY_FAMILY.get(task.task_family)
    _record(task, EventKind.SUCCESS, getattr(task, "outcome", "") or (step.label if step else ""))
    Progress(task).update(1.0, force=True, step_text=f"{step.label}: done" if step else None)


@_guarded("the processing time")
def on_processing_time(task, seconds: float) -> None:
    _record(task, EventKind.PROCESSING_TIME, f"{seconds:.1f} s", duration=seconds)


def on_failure(task, exc: BaseException) -> None:
    step = STEP_BY_FAMILY.get(task.task_family)
    reason = plain_reason(exc, step.label if step else task.task_family)
    last_failures[task.run_id] = reason
    # A task stopped because its run was cancelled (or taken over) did not fail: the run's own
    # state says how it ended, and the step shows that.
    kind = EventKind.NOTE if isinstance(exc, WorkflowCancelled) else EventKind.FAILURE
    try:
        _record(task, kind, reason)
    except Exception as exc:
        _log_lost(exc, "could not record the failure of %s for run #%s (%s)", task.task_id, task.run_id, reason)
        _renew_connection_after(exc)


_HANDLERS = (
    (luigi.Event.START, on_start),
    (luigi.Event.SUCCESS, on_success),
    (luigi.Event.FAILURE, on_failure),
    (luigi.Event.PROCESSING_TIME, on_processing_time),
)


def register(task_class: type[luigi.Task]) -> None:
    """Attach the handlers to `task_class` (and so to its subclasses only). Safe to call again."""
    for event, handler in _HANDLERS:
        task_class.event_handler(event)(handler)


# Set while a process has been asked to stop (run_search's signal handlers raise KeyboardInterrupt
# too): where that exception was lost, swallowed by code that runs at a fork or in a __del__, the
# next progress report stops the workflow, at a point where every step cleans up after itself.
stop_asked = threading.Event()
INTERRUPTED = "Interrupted from the command line. Run it again to resume: finished steps are kept."


class Progress:
    """Progress of one running task, written to its run at a sensible rate.

    progress = Progress(task)
    progress.update(done / total, step_text=f"Fetching photos ({done} of {total})")
    """

    # Throttle state per task id; reset when a task starts, so a re-run reports afresh.
    _last: dict[str, tuple[float, float, float]] = {}  # task id -> (overall %, monotonic time, event %)

    def __init__(self, task) -> None:
        self.task = task
        step = STEP_BY_FAMILY.get(task.task_family)
        self.label = step.label if step else task.task_family
        self.live = bool(getattr(task, "is_live", False))

    def update(
        self,
        fraction: float,
        *,
        step_text: str | None = None,
        num_posts: int | None = None,
        force: bool = False,
    ) -> None:
        """Record that the task is `fraction` (0..1) done; cheap to call often."""
        if stop_asked.is_set():
            raise WorkflowCancelled(INTERRUPTED)
        start, end = step_range(self.task.task_family, self.live)
        fraction = min(max(fraction, 0.0), 1.0)
        overall = round(start + (end - start) * fraction, 1)
        now = time.monotonic()
        key = self.task.task_id
        if force and fraction == 0.0:
            self._last.pop(key, None)
        last_percent, last_time, last_event = self._last.get(key, (-100.0, -100.0, -100.0))
        if not force and overall - last_percent < PROGRESS_PERCENT and now - last_time < PROGRESS_SECONDS:
            return
        if not force and overall == last_percent:
            return
        fields: dict = {"progress": overall, "step": (step_text or self.label)[:200]}
        if num_posts is not None:
            fields["num_posts"] = num_posts
        event_percent = last_event
        if 0.0 < fraction < 1.0 and fraction * 100 - last_event >= PROGRESS_EVENT_STEP:
            event_percent = fraction * 100
        self._last[key] = (overall, now, event_percent)
        event = of_this_step(event_percent, step_text or self.label) if event_percent != last_event else ""
        self._write(fields, event)

    def _write(self, fields: dict, event: str) -> None:
        try:
            updated = SearchRun.objects.filter(pk=self.task.run_id).report_progress(**fields)
            if event:
                _record(self.task, EventKind.PROGRESS, event)
        except Exception as exc:
            _log_lost(exc, "could not record progress of %s for run #%s", self.task.task_id, self.task.run_id)
            _renew_connection_after(exc)
            return
        if not updated:
            # Only a running run takes progress: this one was cancelled, or its claim ended.
            # Said on the status page, where runs are numbered per search: not by the run's row id.
            raise WorkflowCancelled("Stopped here: the run was cancelled, or another worker took it over.")

    def note(self, message: str) -> None:
        """A line on the status page's timeline (e.g. what an import skipped)."""
        try:
            _record(self.task, EventKind.NOTE, message)
        except Exception as exc:
            _log_lost(exc, "could not record a note of %s for run #%s", self.task.task_id, self.task.run_id)
            _renew_connection_after(exc)

    def wait(self, until: datetime | None, reason: str) -> None:
        """collect_live's on_wait: a rate-limit wait (or a retry's pause) starts, or (None) ends."""
        runs = SearchRun.objects.filter(pk=self.task.run_id)
        try:
            if until is None:
                runs.wait_until(None, self.label)
                return
            rate_limit = reason.lower().startswith("waiting for the rate limit")
            if rate_limit:
                step = f"Waiting for the rate limit until {timezone.localtime(until):%H:%M:%S}"
                runs.wait_until(until, step)
            else:
                step = reason[:1].upper() + reason[1:]
                runs.report_progress(step=step[:200])
            _record(self.task, EventKind.RATE_LIMIT if rate_limit else EventKind.RETRY, step)
        except Exception as exc:
            _log_lost(exc, "could not record a wait of %s for run #%s", self.task.task_id, self.task.run_id)
            _renew_connection_after(exc)
