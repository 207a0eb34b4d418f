"""The actions on a search. The admin, the web pages, the JSON API and the CLI all call these,
so each action behaves the same wherever a person starts it."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from .models import Search, Source, Status

log = logging.getLogger("dnflow.services")


class ActionRefused(Exception):
    """The action does not fit the search's current state; the message says why."""


def create_search(
    *,
    owner=None,
    term: str = "",
    source: str = Source.SAMPLE,
    count: int | None = None,
    archive_path: str = "",
    lang: str = "",
    start_time=None,
    end_time=None,
    enqueue: bool = True,
) -> Search:
    """Validate and save a search; with enqueue, hand it to a worker once the transaction commits.

    The returned search tells whether it reached the queue: `search.queued` is True (on the queue),
    False (not on the queue: enqueue=False, or Redis could not be reached, which `search.step` then
    says, and the reconcile sweep queues it later) or None (inside a transaction not yet committed).
    """
    from django.conf import settings

    search = Search(
        owner=owner,
        term=term.strip(),
        source=source,
        count=settings.DNFLOW_DEFAULT_COUNT if count is None and Source(source).is_live else count,
        archive_path=archive_path,
        lang=lang.strip(),
        start_time=start_time,
        end_time=end_time,
    )
    search.full_clean()
    search.save()
    search.queued = False
    if enqueue:
        enqueue_search(search)
    return search


def enqueue_search(search: Search) -> None:
    """Queue one rq job for the search after the current transaction commits.

    Sets `search.queued` (and refreshes `rq_job_id` and `step`) once that happens; see create_search.
    """
    from . import jobs

    search.queued = None

    def hand_over() -> None:
        search.queued = jobs.enqueue(search.pk) is not None
        row = Search.objects.filter(pk=search.pk).values("rq_job_id", "step").first()
        if row is not None:
            search.rq_job_id, search.step = row["rq_job_id"], row["step"]

    transaction.on_commit(hand_over)


def reconcile_searches(search_ids: list[int] | None = None):
    """Queue searches that never reached a worker and recover those whose worker died.

    Returns a jobs.ReconcileReport; raises redis.exceptions.RedisError if Redis cannot be reached.
    """
    from . import jobs

    return jobs.reconcile(search_ids)


def execute_search(search_id: int) -> Search:
    """Claim a queued search and run its whole workflow in this process (a worker or the CLI)."""
    from . import jobs

    return jobs.run_search(search_id)


def rerun_search(search: Search, *, enqueue: bool = True) -> Search:
    """Run a failed or cancelled search again: finished tasks are kept, the rest re-run."""
    if not search.is_done:
        raise ActionRefused(f"Search #{search.pk} is still {search.get_status_display().lower()}.")
    if search.status == Status.FINISHED:
        return refresh_search(search, enqueue=enqueue)
    _requeue(search, new_folder=False)
    if enqueue:
        enqueue_search(search)
    return search


def refresh_search(search: Search, *, enqueue: bool = True) -> Search:
    """Collect again into a new folder; the earlier collection is kept on disk until deleted."""
    if not search.is_done:
        raise ActionRefused(f"Search #{search.pk} is still {search.get_status_display().lower()}.")
    _requeue(search, new_folder=True)
    if enqueue:
        enqueue_search(search)
    return search


def _requeue(search: Search, *, new_folder: bool) -> None:
    from . import jobs

    jobs.forget_lost_count(search.pk)
    search.status = Status.QUEUED
    search.progress = 0.0
    search.step = ""
    search.error = ""
    search.rate_limited_until = None
    search.started = None
    search.finished = None
    search.rq_job_id = ""
    if new_folder:
        search.folder = ""
        search.num_posts = None
    search.save()


def cancel_search(search: Search) -> Search:
    """A queued search leaves the queue; a running one is stopped and ends as cancelled."""
    from . import jobs

    if search.is_done:
        raise ActionRefused(f"Search #{search.pk} has already {search.get_status_display().lower()}.")
    jobs.cancel(search)
    search.refresh_from_db()
    return search


def publish_search(search: Search) -> Search:
    if search.status != Status.FINISHED:
        raise ActionRefused("Only a finished search can be published.")
    if search.published_at is None:
        search.published_at = timezone.now()
        search.save(update_fields=["published_at"])
    return search


def unpublish_search(search: Search) -> Search:
    if search.published_at is not None:
        search.published_at = None
        search.save(update_fields=["published_at"])
    return search


def delete_search(search: Search) -> None:
    """Stop it if it runs, then remove its files and its row (events go with it)."""
    from . import jobs

    if not search.is_done:
        jobs.cancel(search)
    search.delete_files()
    search.delete()
