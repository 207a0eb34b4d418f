"""Refreshes on a schedule: a live search collects its new posts every `refresh_every`, with rq's own
scheduler (workers run with it: `manage.py rqworker` starts it), no cron of dnflow's own.

Each search with a schedule has one scheduled rq job, for its next slot (`Search.next_refresh_at`).
When the slot comes, a worker's scheduler queues the job (services.refresh_on_schedule), which:
- takes the slot with one conditional UPDATE (next_refresh_at from this slot to the next one), so
  two workers that both ran it, or a job queued twice, start one refresh, never two;
- starts the refresh (services.refresh_search) unless the search is busy or has nothing to build on
  (then the slot passes with a note on the search's newest run);
- schedules the next slot: the first one after now, so slots missed while no worker ran are run
  once, not one after the other.

The job carries the search id and the slot, nothing else. Reconcile schedules again a slot whose
job Redis lost (a restart without persistence).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import django_rq
from django.utils import timezone
from redis.exceptions import RedisError
from rq.job import Job

from .models import Search

log = logging.getLogger("dnflow.schedule")

JOB_FUNCTION = "searches.services.refresh_on_schedule"


def slot_job_id(search_id: int, slot: datetime) -> str:
    return f"refresh-{search_id}-{slot:%Y%m%dT%H%M%S}"


def next_slot(after: datetime, every: timedelta, *, first: datetime) -> datetime:
    """The first slot of the series first, first + every, ... that comes after `after`."""
    if after < first:
        return first
    passed = (after - first) // every + 1
    return first + passed * every


def plan(search: Search, *, now: datetime | None = None) -> datetime | None:
    """Set (or clear) the search's next slot and schedule its job; returns the slot."""
    now = now or timezone.now()
    if not search.refresh_every:
        Search.objects.filter(pk=search.pk).update(next_refresh_at=None)
        search.next_refresh_at = None
        return None
    slot = (
        search.next_refresh_at
        if search.next_refresh_at and search.next_refresh_at > now
        else now + search.refresh_every
    )
    Search.objects.filter(pk=search.pk).update(next_refresh_at=slot)
    search.next_refresh_at = slot
    schedule_slot(search.pk, slot)
    return slot


def schedule_slot(search_id: int, slot: datetime) -> None:
    """Put the slot's job in rq's scheduled jobs (the same job id for the same slot: never twice)."""
    try:
        queue = django_rq.get_queue("default")
        queue.enqueue_at(
            slot,
            JOB_FUNCTION,
            search_id,
            slot.isoformat(),
            job_id=slot_job_id(search_id, slot),
            description=f"dnflow search #{search_id}: new posts at {slot:%Y-%m-%d %H:%M %Z}",
        )
    except RedisError as exc:  # reconcile schedules it once Redis is back
        log.warning("search #%s: its next refresh could not be scheduled (%s)", search_id, exc)


def unschedule(search: Search) -> None:
    """Forget the search's next slot and its job (plan() then counts a new one from now). A job
    that Redis keeps anyway finds the slot gone when it runs (take_slot) and starts nothing."""
    slot = search.next_refresh_at
    Search.objects.filter(pk=search.pk).update(next_refresh_at=None)
    search.next_refresh_at = None
    if slot is None:
        return
    try:
        queue = django_rq.get_queue("default")
        queue.scheduled_job_registry.remove(slot_job_id(search.pk, slot), delete_job=True)
    except RedisError as exc:
        log.warning("search #%s: the job of its former slot could not be removed (%s)", search.pk, exc)


def take_slot(search: Search, slot: datetime, *, now: datetime | None = None) -> bool:
    """The slot has come: move the search on to its next slot (the first after now), once. False
    when another worker (or another copy of the job) took it first, or the schedule changed."""
    if not search.refresh_every:
        return False
    # rq's scheduler may start a job up to a second before its time: the next slot comes after
    # this one, whatever the clock says.
    following = next_slot(max(now or timezone.now(), slot), search.refresh_every, first=slot)
    if not Search.objects.filter(pk=search.pk, next_refresh_at=slot).update(next_refresh_at=following):
        return False
    search.next_refresh_at = following
    schedule_slot(search.pk, following)
    return True


def reschedule_lost(now: datetime | None = None) -> list[int]:
    """Searches with a schedule whose next slot has no job in Redis: scheduled again (ids)."""
    now = now or timezone.now()
    conn = django_rq.get_connection("default")
    again = []
    for search in Search.objects.filter(refresh_every__isnull=False).only("pk", "refresh_every", "next_refresh_at"):
        slot = search.next_refresh_at
        if slot is not None and Job.exists(slot_job_id(search.pk, slot), connection=conn):
            continue
        if slot is None:
            slot = now + timedelta(seconds=1)
            Search.objects.filter(pk=search.pk).update(next_refresh_at=slot)
        # A slot missed while nothing could run it keeps its time: its job, due already, runs now,
        # once, and the next slot is the series' first to come (take_slot), not an hour from now.
        schedule_slot(search.pk, slot)
        again.append(search.pk)
    return again
