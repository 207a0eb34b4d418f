"""The search page and its polling endpoint: both render the one fragment in searches/status.html."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_htmx.http import HTMX_STOP_POLLING

from ..models import EventKind, Search, TaskEvent
from .access import can_manage, visible_search
from .summary import summary_context

# The timeline shows the newest events only, so a long search cannot make the page (or each
# two-second poll) slower: one query, bounded rows.
TIMELINE_EVENTS = 200
NOTES_SHOWN = 8


@dataclass
class TaskRow:
    """One Luigi task on the timeline: when it started and ended, and how it went."""

    family: str
    started: datetime | None = None
    ended: datetime | None = None
    state: str = "running"  # running, finished, failed
    duration: float | None = None
    message: str = ""


@dataclass
class Timeline:
    tasks: list[TaskRow] = field(default_factory=list)
    notes: list[TaskEvent] = field(default_factory=list)  # rate-limit waits, retries, failures, notes
    truncated: bool = False


ROW_EVENTS = (EventKind.START, EventKind.SUCCESS, EventKind.FAILURE, EventKind.PROCESSING_TIME)
# Failures are not repeated here: the task's row and the search's error already say it.
NOTE_EVENTS = (EventKind.RATE_LIMIT, EventKind.RETRY, EventKind.NOTE)


def build_timeline(search: Search) -> Timeline:
    newest = list(search.events.order_by("-created", "-pk")[: TIMELINE_EVENTS + 1])
    truncated = len(newest) > TIMELINE_EVENTS
    rows: dict[str, TaskRow] = {}
    latest_by_family: dict[str, TaskRow] = {}
    notes = []
    for event in reversed(newest[:TIMELINE_EVENTS]):
        # A task's own events make its row; progress, rate-limit waits and notes only annotate it
        # (they may come without a task id, from code that does not know which task it serves).
        row = rows.get(event.task_id) if event.task_id else None
        if (
            row is None
            and event.event in ROW_EVENTS
            and (event.event == EventKind.START or not latest_by_family.get(event.task_family))
        ):
            row = rows[event.task_id or f"{event.task_family}#{len(rows)}"] = TaskRow(family=event.task_family)
            latest_by_family[event.task_family] = row
        row = row or latest_by_family.get(event.task_family)
        if row is not None:
            _apply(row, event)
        if event.event in NOTE_EVENTS:
            notes.append(event)
    return Timeline(tasks=list(rows.values()), notes=notes[-NOTES_SHOWN:], truncated=truncated)


def _apply(row: TaskRow, event: TaskEvent) -> None:
    if event.event == EventKind.START:
        row.started, row.state = event.created, "running"
    elif event.event in (EventKind.SUCCESS, EventKind.FAILURE):
        row.ended = event.created
        row.state = "finished" if event.event == EventKind.SUCCESS else "failed"
        if row.duration is None and row.started is not None:
            row.duration = (row.ended - row.started).total_seconds()
    elif event.event == EventKind.PROCESSING_TIME and event.duration is not None:
        row.duration = event.duration
    if event.message and event.event != EventKind.PROCESSING_TIME:
        row.message = event.message


def status_context(request: HttpRequest, search: Search) -> dict:
    waiting_until = search.rate_limited_until
    if waiting_until is not None and (search.is_done or waiting_until <= timezone.now()):
        waiting_until = None
    return {
        "search": search,
        "can_manage": can_manage(request.user, search),
        "timeline": build_timeline(search),
        "waiting_until": waiting_until,
    }


def search_detail(request: HttpRequest, pk: int) -> HttpResponse:
    search = visible_search(request, pk)
    context = status_context(request, search)
    if search.status == "finished":
        context.update(summary_context(request, search))
    return render(request, "searches/detail.html", context)


def search_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The polling endpoint: the status panel (or a home-page row with ?part=row); 286 once done."""
    search = visible_search(request, pk)
    if request.GET.get("part") == "row":
        context = {"search": search}
        template = "searches/status.html#row"
    else:
        context = status_context(request, search)
        template = "searches/status.html#panel"
    response = render(request, template, context)
    if search.is_done:
        response.status_code = HTMX_STOP_POLLING
    return response
