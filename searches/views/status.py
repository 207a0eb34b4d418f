"""The search page and its polling endpoint: both render the fragments of searches/status.html.

The page shows the newest run live (its status, progress and steps), the earlier runs below it,
each with its own steps, and the results of the newest finished run. The polling endpoint renders
the newest run's panel alone; when that run is done it also sends the results section (an htmx
out-of-band swap), so the live page ends up the same as a reload of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_htmx.http import HTMX_STOP_POLLING

from pipeline.events import of_this_step, step_percent

from .. import services
from ..forms import DescribeForm, ScheduleForm
from ..models import EventKind, Search, SearchRun, Status, TaskEvent, run_reads_from_x
from ..watchdog import heartbeat_missing, no_worker_running
from .access import can_manage, visible_search
from .summary import results_context

# A long run holds millions of events, nearly all progress reports. Each run's steps table reads
# bounded slices of them, so no run can make the page (or each two-second poll) slower: the newest
# events (the current step's progress, the recent notes), and the newest starts, ends and
# processing times of its steps however far back they are (an index on run, event, created finds
# them). Five queries per run shown, a bounded number of runs.
TIMELINE_EVENTS = 200
STEP_EVENTS = 100
NOTES_SHOWN = 8
RUNS_SHOWN = 10


@dataclass
class StepRow:
    """One Luigi task of a run: when it started and ended, and how it went."""

    family: str
    started: datetime | None = None
    ended: datetime | None = None
    state: str = "running"  # running, finished, failed, or how the run ended for a step it left open
    duration: float | None = None
    message: str = ""


@dataclass
class Steps:
    rows: list[StepRow] = field(default_factory=list)
    notes: list[TaskEvent] = field(default_factory=list)  # rate-limit waits, retries, notes
    truncated: bool = False


ROW_EVENTS = (EventKind.START, EventKind.SUCCESS, EventKind.FAILURE, EventKind.PROCESSING_TIME)
# Failures are not repeated here: the step's row and the run's error already say it.
NOTE_EVENTS = (EventKind.RATE_LIMIT, EventKind.RETRY, EventKind.NOTE)
# What a step that never ended says once its run is over.
OPEN_STEP_ENDINGS = {Status.CANCELLED: "cancelled", Status.FAILED: "stopped", Status.FINISHED: "finished"}


def run_steps(run: SearchRun, *, live: bool) -> Steps:
    """The rows of a run's steps table and its notes; `live`: its first step asks X (run_reads_from_x)."""
    newest = run.events.order_by("-created", "-pk")[:TIMELINE_EVENTS]
    step_events, truncated = _step_events(run)
    # Oldest first, each event once (the newest may be among the steps' starts and ends too).
    events = sorted({e.pk: e for e in [*step_events, *newest]}.values(), key=lambda e: (e.created, e.pk))
    rows: dict[str, StepRow] = {}
    latest_by_family: dict[str, StepRow] = {}
    notes = []
    for event in events:
        # A task's own events make its row; progress, rate-limit waits and notes only annotate it
        # (they may come without a task id, from code that does not know which task it serves).
        row = rows.get(event.task_id) if event.task_id else None
        if (
            row is None
            and event.event in ROW_EVENTS
            and (event.event == EventKind.START or not latest_by_family.get(event.task_family))
        ):
            earlier = latest_by_family.get(event.task_family)
            if earlier is not None and earlier.state == "running":
                # The step starts again (the run was resumed): the earlier attempt never ended, and
                # the run's final state is not that attempt's.
                earlier.state = "stopped"
            row = rows[event.task_id or f"{event.task_family}#{len(rows)}"] = StepRow(family=event.task_family)
            latest_by_family[event.task_family] = row
        row = row or latest_by_family.get(event.task_family)
        if row is not None:
            _apply(row, event)
        if event.event in NOTE_EVENTS:
            notes.append(event)
    if run.is_done:
        ending = OPEN_STEP_ENDINGS.get(run.status_enum, "stopped")
        for row in rows.values():
            if row.state == "running":
                # Its run ended while it ran (cancelled, or its process died): it will not go on.
                row.state, row.message, row.ended = ending, "", row.ended or run.finished
                if row.duration is None and row.started and row.ended:
                    row.duration = (row.ended - row.started).total_seconds()
    elif run.status == Status.QUEUED:
        for row in rows.values():
            if row.state == "running":
                # Queued again (run again after a cancel or a lost worker): that attempt is over,
                # and the step starts anew when a worker takes the run.
                row.state, row.message = "stopped", ""
    elif run.status == Status.RUNNING:
        running = [row for row in rows.values() if row.state == "running"]
        if len(running) == 1:
            # Its last progress event is a few percent old; the run's own step says where it is
            # now, as the line above the table does (with one step at a time, it is this step's).
            percent = step_percent(running[0].family, live, run.progress)
            if percent is not None:  # else the run's step is another one's
                running[0].message = of_this_step(percent, run.step)
    return Steps(rows=list(rows.values()), notes=notes[-NOTES_SHOWN:], truncated=truncated)


def _step_events(run: SearchRun) -> tuple[list[TaskEvent], bool]:
    """The newest STEP_EVENTS events of each kind that makes a step's row, and whether older ones exist.

    One query per kind: with `event = %s` the (run, event, created) index answers it in order, on
    SQLite as on PostgreSQL. With `event IN (...)` SQLite's planner prefers walking the run's events
    newest first through the (run, created) index, past millions of progress reports.
    """
    events: list[TaskEvent] = []
    truncated = False
    for kind in ROW_EVENTS:
        newest = list(run.events.filter(event=kind).order_by("-created", "-pk")[: STEP_EVENTS + 1])
        truncated = truncated or len(newest) > STEP_EVENTS
        events += newest[:STEP_EVENTS]
    return events, truncated


def _apply(row: StepRow, event: TaskEvent) -> None:
    if event.event == EventKind.START:
        row.started, row.state, row.ended, row.duration = event.created, "running", None, None
    elif event.event in (EventKind.SUCCESS, EventKind.FAILURE):
        row.ended = event.created
        row.state = "finished" if event.event == EventKind.SUCCESS else "failed"
        if row.duration is None and row.started is not None:
            row.duration = (row.ended - row.started).total_seconds()
    elif event.event == EventKind.PROCESSING_TIME and event.duration is not None:
        row.duration = event.duration
    if event.message and event.event != EventKind.PROCESSING_TIME:
        row.message = event.message


@dataclass
class RunView:
    run: SearchRun
    steps: Steps
    waiting_until: datetime | None
    silent: bool = False  # running, yet no heartbeat: its process stopped (see watchdog.heartbeat_missing)
    unattended: bool = False  # queued, and no worker runs to take it (see watchdog.no_worker_running)


def run_view(run: SearchRun, search: Search) -> RunView:
    waiting_until = run.rate_limited_until
    if waiting_until is not None and (run.is_done or waiting_until <= timezone.now()):
        waiting_until = None
    live = run_reads_from_x(search.source, run.kind)  # (the search at hand: no query per run)
    return RunView(run=run, steps=run_steps(run, live=live), waiting_until=waiting_until)


def panel_context(request: HttpRequest, search: Search) -> dict:
    """The newest run, live: what the polling endpoint renders."""
    manager = can_manage(request.user, search)
    current = run_view(search.latest_run, search)
    return {
        "search": search,
        "current": replace(current, silent=heartbeat_missing(current.run), unattended=no_worker_running(current.run)),
        "can_manage": manager,
        "can_recheck": manager and not services.why_not_recheck(search),
        "schedule_form": ScheduleForm(initial={"refresh_every": _hours_of(search.refresh_every)}) if manager else None,
    }


def _hours_of(every) -> str:
    return str(int(every.total_seconds() // 3600)) if every else ""


def search_detail(request: HttpRequest, pk: int) -> HttpResponse:
    search = visible_search(request, pk)
    runs = list(search.runs.order_by("-number")[: RUNS_SHOWN + 1])
    context = {
        **panel_context(request, search),
        "describe_form": DescribeForm(initial={"title": search.title, "notes": search.notes}),
        "earlier_runs": [run_view(run, search) for run in runs[1:RUNS_SHOWN]],
        "more_runs": len(runs) > RUNS_SHOWN,
        **results_context(request, search),
    }
    return render(request, "searches/detail.html", context)


def search_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The polling endpoint: the newest run's panel (or a home-page row with ?part=row); 286 once done.

    Once done, the panel comes with the results section, swapped in out of band.
    """
    search = visible_search(request, pk)
    if request.GET.get("part") == "row":
        response = render(request, "searches/status.html#row", {"search": search})
    else:
        context = panel_context(request, search)
        if search.is_done:
            context.update(results_context(request, search), results_out_of_band=True)
        response = render(request, "searches/status.html#live", context)
    if search.is_done:
        response.status_code = HTMX_STOP_POLLING
    return response
