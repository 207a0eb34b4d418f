"""The actions on a search. The admin, the web pages, the JSON API and the CLI all call these,
so each action behaves the same wherever a person starts it."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from pipeline import contract
from pipeline.describe import bag_info
from pipeline.ids import newest_id
from pipeline.package import build_package, package_path
from pipeline.purge import PURGED_FILES, read_gone
from pipeline.purge_task import attempt_in_words, stopped_purges
from pipeline.summarise import write_sample
from pipeline.times import parse_iso

from . import execute, queue, reconcile, run_files, schedule
from .models import EventKind, RunKind, RunRefused, Search, SearchRun, Source, Status, TaskEvent
from .validation import MIN_REFRESH_EVERY

log = logging.getLogger("dnflow.services")


class ActionRefused(Exception):
    """The action does not fit the search's current state; the message says why."""


class RefreshUnfinished(ActionRefused):
    """The last collection of new posts stopped part-way: a new one would pay X again for what it
    stored (it asks from the same newest post). Resuming it is the way on."""


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
    title: str = "",
    notes: str = "",
    refresh_every=None,
    enqueue: bool = True,
) -> Search:
    """Validate and save a search with its first run; with enqueue, hand the run to a worker once
    the transaction commits.

    The returned search tells whether its run reached the queue: `search.queued` is True (on the
    queue), False (not on the queue: enqueue=False, or Redis could not be reached, which the run's
    `step` then says, and the reconcile sweep queues it later) or None (inside a transaction not yet
    committed).
    """
    search = Search(
        owner=owner,
        term=term.strip(),
        source=source,
        count=settings.DNFLOW_DEFAULT_COUNT if count is None and Source(source).is_live else count,
        archive_path=archive_path,
        lang=lang.strip(),
        start_time=start_time,
        end_time=end_time,
        title=title.strip(),
        notes=notes.strip(),
        refresh_every=refresh_every,
    )
    search.full_clean()
    return start_first_run(search, enqueue=enqueue)


def start_first_run(search: Search, *, enqueue: bool = True) -> Search:
    """Save a validated new search and its first run (the admin's add form comes here too)."""
    with transaction.atomic():
        search.save()
        run = search.start_run()
    search.queued = False
    if enqueue:
        enqueue_run(search, run)
    if search.refresh_every:
        transaction.on_commit(lambda: schedule.plan(search))
    return search


def enqueue_run(search: Search, run: SearchRun) -> None:
    """Queue one rq job for the run after the current transaction commits.

    Sets `search.queued` (and refreshes the run's `rq_job_id` and `step`) once that happens.
    """
    search.queued = None

    def hand_over() -> None:
        search.queued = queue.enqueue_run(run.pk) is not None
        run.refresh_from_db(fields=["rq_job_id", "step"])

    transaction.on_commit(hand_over)


def reconcile_searches(search_ids: list[int] | None = None) -> reconcile.ReconcileOutcome:
    """Queue runs that never reached a worker, recover those whose worker died, tidy stopped ones.

    Raises redis.exceptions.RedisError if Redis cannot be reached.
    """
    return reconcile.reconcile(search_ids)


def execute_search(search: Search) -> SearchRun:
    """Carry out the search's queued run in this process (the command line's foreground run)."""
    return execute.execute_run(search.latest_run_id)


def rerun_search(search: Search, *, enqueue: bool = True) -> SearchRun:
    """Run again: a failed or cancelled run resumes in its own folder (finished steps are kept);
    after a finished run, the search is collected again into a new run."""
    latest = _latest_done_run(search)
    if latest.status == Status.FINISHED:
        return collect_again(search, enqueue=enqueue)
    ended, how = latest.finished, "was cancelled" if latest.status == Status.CANCELLED else "had failed"
    if not latest.runs().resume():
        raise ActionRefused(f"Search #{search.pk} changed meanwhile: reload the page and try again.")
    # Resuming clears the run's end: its history keeps when and how it had ended.
    when = f" at {timezone.localtime(ended):%Y-%m-%d %H:%M:%S %Z}" if ended else ""
    TaskEvent.objects.create(
        run=latest,
        task_family="Run again",
        event=EventKind.NOTE,
        message=f"Resumed: the run {how}{when}. Completed steps are kept; the others start again."
        # Its steps are written anew as it resumes: the reason it failed stays here.
        + (f" It had failed with: {latest.error}" if latest.status == Status.FAILED and latest.error else ""),
    )
    latest.refresh_from_db()
    if enqueue:
        enqueue_run(search, latest)
    return latest


def collect_again(search: Search, *, enqueue: bool = True) -> SearchRun:
    """A new run into a new folder; the earlier runs and their files are kept until the search is
    deleted, and the search goes on showing its newest finished results until the new run finishes."""
    _latest_done_run(search)
    if search.archive_is_gone:
        purged = search.runs.filter(kind=RunKind.PURGE, status=Status.FINISHED).exists()
        why = ": it was removed when the posts no longer on X were purged" if purged else ""
        raise ActionRefused(
            f"The archive of search #{search.pk} is no longer on the server ({Path(search.archive_path).name}){why}. "
            "To collect it again, start a new search with the archive."
        )
    return _start_run(search, enqueue=enqueue)


def paid_reads(search: Search, action: str) -> int | None:
    """How many posts (or ids) `action` ("collect_again" or "recheck") reads from the X API, at most,
    for the person to agree to what it costs; None when it reads nothing that is paid for (collecting
    an archive again)."""
    results = search.results_run if search.has_results else None
    if action == "recheck":  # every post is looked up on X, an archive's too
        return (results.num_posts or 0) if results else 0
    if not Source(search.source).uses_api:
        return None
    if Source(search.source) == Source.IDS:
        asked = run_files.read_summary(search.results_dir).get("ids_requested") if results else None
        return asked if isinstance(asked, int) else (results.num_posts or 0) if results else 0
    return search.count or 0


def refresh_search(search: Search, *, enqueue: bool = True) -> SearchRun:
    """Collect new posts: a run that asks X only for posts newer than the newest one collected so
    far (since_id) and builds on the search's results, so its summary covers every run, each post
    once. Live X searches only."""
    if not Source(search.source).is_live:
        raise ActionRefused("Only a live X search can collect new posts: an archive or a list of ids does not grow.")
    latest = _latest_done_run(search)
    if not search.has_results:
        raise ActionRefused("Collect new posts once a first collection has finished.")
    if latest.kind == RunKind.REFRESH and latest.status in (Status.FAILED, Status.CANCELLED):
        raise RefreshUnfinished(
            f"The last collection of new posts (run {latest.number}) stopped before it finished: 'Run again' "
            "resumes it where it stopped, without asking X again for the posts it stored. Collect new posts "
            "once it has finished."
        )
    return _start_run(
        search, enqueue=enqueue, kind=RunKind.REFRESH, builds_on=search.results_run, since_id=_newest_collected(search)
    )


def _newest_collected(search: Search) -> str:
    """The newest post ever collected: of the results, or of the posts their newest recheck found
    gone (left out of the results, purged perhaps). Were a refresh to start after the newest of the
    results only, X would be asked, and paid, again for a newer post found gone: one back on X
    would be collected again, into the owner's copies that a purge had cleared of it."""
    newest = [newest_id(search.results_dir / contract.TWEET_IDS) or ""]
    recheck = search.results_run.newest_recheck()
    if recheck is not None and recheck.availability_file.is_file():
        newest += [post.tweet_id for post in read_gone(recheck.availability_file) if post.tweet_id.isdigit()]
    return max(newest, key=lambda post_id: int(post_id or 0))


def recheck_search(search: Search, *, enqueue: bool = True) -> SearchRun:
    """Look every collected post up again and record, dated, which X no longer gives and why; the
    search's results then leave those posts out (the raw posts of the earlier runs stay, unless
    the owner purges them: purge_unavailable)."""
    _latest_done_run(search)
    refusal = why_not_recheck(search)
    if refusal:
        raise ActionRefused(refusal)
    return _start_run(search, enqueue=enqueue, kind=RunKind.RECHECK, builds_on=search.results_run)


def why_not_recheck(search: Search) -> str:
    """Why the search's posts cannot be looked up again ("" when they can): the page offers the
    button only when they can, and the admin and the command line refuse with this."""
    if not search.has_results:
        return "A search can be rechecked once a collection has finished."
    if search.source == Source.SAMPLE:
        # Its ids are made up: X would call every post gone, and the results would lose them all.
        return "The bundled sample is synthetic: its made-up posts were never on X, so there is nothing to recheck."
    if not search.results_run.num_posts:
        return f"Search #{search.pk} holds no post: there is nothing to recheck."
    if not settings.X_BEARER_TOKEN:
        return "A recheck asks the X API: set X_BEARER_TOKEN in the environment of the web server and the workers."
    return ""


def _start_run(search: Search, *, enqueue: bool, **run_fields) -> SearchRun:
    """A new run of the search (refused while another is queued or running), queued if asked."""
    try:
        run = search.start_run(**run_fields)
    except RunRefused as exc:
        raise ActionRefused(str(exc)) from None
    if enqueue:
        enqueue_run(search, run)
    return run


@dataclass
class PurgePlan:
    """What purging a search would remove, as the confirmation page, the admin and the CLI say it."""

    search: Search
    recheck: SearchRun | None  # the newest recheck of the results: its gone posts go (gone: how many)
    checked_at: datetime | None
    gone: int
    reasons: dict[str, int]
    stopped: list[dict] = field(default_factory=list)  # purges that stopped part-way (stopped_purges)

    @cached_property
    def files(self) -> list[tuple[SearchRun, list[str]]]:
        """Each run with those of its files that may hold the posts (a purge rewrites each that does)."""
        found = []
        for run in self.search.runs.order_by("number"):
            names = [name for name in PURGED_FILES if run.folder and (run.folder_path / name).is_file()]
            if names:
                found.append((run, names))
        return found

    @property
    def upload(self) -> str:
        """What becomes of the file the search was collected from: "removed" (the archive the
        owner uploaded: it holds the posts too), "shared" (an upload another search uses too),
        "server" (a file given on the server, never touched), "ids" (an id dataset: ids only), or ""."""
        search = self.search
        if not search.archive_path:
            return ""
        if Source(search.source) == Source.IDS:
            return "ids"
        if not search.archive_was_uploaded:
            return "server"
        return "removed" if search.own_upload() is not None else "shared"

    @property
    def stopped_run(self) -> SearchRun | None:
        """The newest run, if it failed or was cancelled: once the purge is the newest run, "run
        again" starts a new collection instead of resuming it."""
        latest = self.search.latest_run
        return latest if latest is not None and latest.status in (Status.FAILED, Status.CANCELLED) else None

    @property
    def stopped_purge(self) -> SearchRun | None:
        """The newest run, if it is a purge of these results that failed or was cancelled: purging
        now finishes it."""
        stopped = self.stopped_run
        if stopped is None or stopped.kind != RunKind.PURGE or stopped.builds_on_id != self.search.results_run_id:
            return None
        return stopped

    @cached_property
    def earlier_attempts(self) -> list[str]:
        """Purges that stopped part-way with another run after them, in words: this purge completes
        them, and its report lists what they had changed (the one it resumes is stopped_purge)."""
        resumed = self.stopped_purge.number if self.stopped_purge is not None else None
        return [attempt_in_words(a) for a in self.stopped if a["run"] != resumed]

    @property
    def upload_name(self) -> str:
        return Path(self.search.archive_path).name


def plan_purge(search: Search) -> PurgePlan:
    """What a purge would remove now; ActionRefused says why it cannot run (a run is queued or
    running, the results were never rechecked, the recheck found nothing gone, or its posts were
    purged already)."""
    latest = SearchRun.objects.filter(pk=search.latest_run_id).first()
    if latest is not None and not latest.is_done:
        raise ActionRefused(
            f"Search #{search.pk} has a run {latest.get_status_display().lower()}: a purge waits until no run of it "
            "is queued or running. Wait for the run to end, or cancel it, then purge."
        )
    results = search.results_run if search.results_run_id else None
    recheck = results.newest_recheck() if results is not None else None
    stopped = stopped_purges(search)
    if recheck is None:
        refusal, checked_at = (
            f"Recheck search #{search.pk} first: a purge removes the posts a recheck of its results found no "
            "longer on X, and these results have not been rechecked.",
            None,
        )
    else:
        refusal, checked_at, reasons = _nothing_to_purge(search, recheck)
        if not refusal:
            return PurgePlan(search, recheck, checked_at, sum(reasons.values()), reasons, stopped)
    if stopped:
        # A purge that stopped part-way can always be finished: its own record says what goes.
        return PurgePlan(search, recheck, checked_at, 0, {}, stopped)
    raise ActionRefused(refusal)


def _nothing_to_purge(search: Search, recheck: SearchRun) -> tuple[str, datetime | None, dict[str, int]]:
    """Why the posts the recheck found gone are not to purge ("" when they are), when it checked,
    and how many it found gone by X's reason."""
    found = run_files.read_summary(recheck.folder_path).get("availability") or {}
    reasons = {str(reason): int(count) for reason, count in (found.get("unavailable_by_reason") or {}).items()}
    checked_at = parse_iso(found.get("checked_at"))
    when = f"{checked_at:%Y-%m-%d %H:%M} UTC" if checked_at else f"run {recheck.number}"
    if not sum(reasons.values()):
        return f"The recheck of {when} found every post still on X: there is nothing to purge.", checked_at, reasons
    done = search.runs.filter(kind=RunKind.PURGE, status=Status.FINISHED, number__gt=recheck.number).first()
    if done is None:
        return "", checked_at, reasons
    # When its record says the posts went: a resumed purge keeps its first attempt's time.
    purged_at = parse_iso(run_files.read_purge_report(done.folder_path).get("purged_at")) or done.finished
    return (
        f"The posts the recheck of {when} found gone were purged on {purged_at:%Y-%m-%d %H:%M} UTC (run "
        f"{done.number}): there is nothing more to purge. Recheck again to find the posts deleted since.",
        checked_at,
        reasons,
    )


def purge_unavailable(search: Search, *, enqueue: bool = True) -> SearchRun:
    """Remove from every run's files the posts the newest recheck of the results found gone.

    A run of its own (RunKind.PURGE, pipeline.purge_task), for the one-run-at-a-time rule: the
    database refuses a second queued or running run of a search, so no collection, refresh or
    recheck can start while the files change, and the purge cannot start while one of them runs.
    It writes where a worker writes, and can take as long as a big archive needs.
    """
    plan = plan_purge(search)
    if plan.stopped_purge is not None:
        # It is resumed, not started anew: one record of the posts and one purge time for every
        # file, where a new purge would leave the files it had changed naming a cancelled run.
        return rerun_search(search, enqueue=enqueue)
    return _start_run(search, enqueue=enqueue, kind=RunKind.PURGE, builds_on=search.results_run)


def refresh_on_schedule(search_id: int, slot_text: str) -> str:
    """rq job (searches.schedule): a search's refresh slot has come. Start its refresh, once."""
    close_old_connections()
    search = Search.objects.with_runs().filter(pk=search_id).first()
    slot = datetime.fromisoformat(slot_text)
    if search is None or not schedule.take_slot(search, slot):
        return "not this one's to run"
    try:
        try:
            run = refresh_search(search)
        except RefreshUnfinished:
            if search.latest_run.status != Status.FAILED:
                raise  # cancelled by a person: theirs to resume
            run = rerun_search(search)  # the failed refresh collects what is due, paying nothing twice
    except ActionRefused as exc:
        if search.latest_run_id:
            TaskEvent.objects.create(
                run_id=search.latest_run_id,
                task_family="Schedule",
                event=EventKind.NOTE,
                message=f"The new posts due at {slot:%Y-%m-%d %H:%M %Z} were not collected: {exc}",
            )
        return "skipped"
    log.info("search #%s: new posts for the slot of %s, run %s", search_id, slot, run.number)
    return "started"


def set_schedule(search: Search, every) -> Search:
    """Collect new posts every `every` (a timedelta), or never (None)."""
    if not Source(search.source).is_live:
        raise ActionRefused("Only a live X search can collect new posts on a schedule.")
    if every is not None and every < MIN_REFRESH_EVERY:
        raise ActionRefused("Collect new posts at most once an hour.")
    if every != search.refresh_every:
        # A new interval counts from now: "every hour" after "every week" is not due in a week.
        schedule.unschedule(search)
    search.refresh_every = every
    search.save(update_fields=["refresh_every"])
    schedule.plan(search)
    return search


def _latest_done_run(search: Search) -> SearchRun:
    latest = SearchRun.objects.filter(pk=search.latest_run_id).first()
    if latest is None:
        raise ActionRefused(f"Search #{search.pk} has no run yet.")
    if not latest.is_done:
        raise ActionRefused(f"Search #{search.pk} is still {latest.get_status_display().lower()}.")
    return latest


def cancel_search(search: Search) -> SearchRun:
    """The queued run leaves the queue; a running one is stopped and ends as cancelled. The
    search's earlier results, if any, are what it shows from then on."""
    run = SearchRun.objects.filter(pk=search.latest_run_id).first()
    if run is None or run.is_done:
        what = run.get_status_display().lower() if run else "not started"
        raise ActionRefused(f"Search #{search.pk} has already {what}.")
    # The database first: from here on no worker can claim the run, and a running work horse's
    # watchdog stops it even if rq's stop message never reaches its worker.
    where = f" at “{run.step}” ({run.progress:.0f}%)" if run.status == Status.RUNNING and run.step else ""
    if run.runs().cancel():
        TaskEvent.objects.create(
            run=run,
            task_family="Cancel",
            event=EventKind.NOTE,
            message=f"Cancelled{where}. Run again resumes it: completed steps are kept.",
        )
    queue.stop_job(run)
    run.refresh_from_db()
    return run


def describe_search(search: Search, *, title: str, notes: str) -> Search:
    """Change what the owner calls the search and their notes on it (the query stays as it is)."""
    search.title, search.notes = title.strip()[:200], notes.strip()
    search.save(update_fields=["title", "notes"])
    return search


def publish_search(search: Search) -> Search:
    if not search.has_results:
        raise ActionRefused("Only a search with a finished run can be published: wait for it to finish.")
    if search.published_at is None:
        search.published_at = timezone.now()
        search.save(update_fields=["published_at"])
    return search


def unpublish_search(search: Search) -> Search:
    if search.published_at is not None:
        search.published_at = None
        search.save(update_fields=["published_at"])
    return search


def delete_search(search: Search) -> list[str]:
    """Stop its run if one is active, then remove every run's files, its upload, and its rows.
    Returns the folders of finished runs that were not on this server to remove (another machine's
    DNFLOW_DATA_DIR may hold them): the person deleting must hear of them."""
    run = SearchRun.objects.filter(pk=search.latest_run_id).first()
    if run is not None and not run.is_done:
        run.runs().cancel()
        queue.stop_job(run)
    not_here = [run.folder for run in search.runs.all() if run.folder_missing]
    search.delete_files()
    leftovers = [folder for folder in (search.own_upload(), search.own_links()) if folder is not None]
    search.delete()
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)  # never follows a link: the archives stay
    return not_here


def folders_not_here_text(name: str, folders: list[str]) -> str:
    """What to say of a deleted search whose folders this server did not have."""
    return (
        f"{name}: the folder{'s' if len(folders) != 1 else ''} {', '.join(folders)} "
        f"{'were' if len(folders) != 1 else 'was'} not in this server's DNFLOW_DATA_DIR, so nothing of "
        f"{'them' if len(folders) != 1 else 'it'} was removed here. If another machine keeps its runs elsewhere, "
        "remove them there, and give every machine the same DNFLOW_DATA_DIR."
    )


def draw_sample(search: Search, size: int) -> None:
    """The results' sample drawn again at `size` (pipeline.summarise.write_sample), and their package
    made again: the bag holds no sample (its posts' text stays out), but its summary.json says the
    sample's size, and a deposited package must say what the folder says."""
    folder = search.results_dir
    write_sample(folder, size, search_id=search.pk)
    if package_path(folder).is_file():
        summary = run_files.read_summary(folder)
        build_package(folder, bag_info(search, search.results_run, summary), summary)
