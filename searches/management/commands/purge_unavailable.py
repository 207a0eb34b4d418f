"""`manage.py purge_unavailable ID --yes`: remove from a search's files the posts its newest recheck
found no longer on X (the raw posts, the tables with their text, the archive the owner uploaded),
on record. The search's results already leave them out; this removes the owner's copies, for good.

Without --yes it only says what it would remove (and changes nothing). In the foreground by default,
like run_search; `--enqueue` hands it to a worker instead. Exit codes: 0 purged (or queued), 1 the
purge ran and failed (the reason is printed; run it again to finish it), 2 bad input, nothing to
purge, not confirmed, a run of the search queued or running, or a configuration problem
(searches/management/plain.py).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from pipeline.words import counted
from searches import services
from searches.models import RunKind, SearchRun, Status

from ..plain import PlainErrors
from .run_search import (
    BAD_INPUT,
    FAILED,
    PLAIN,
    execute_watched,
    purge_line,
    search_from_argument,
    still_running_hint,
)

UPLOAD = {
    "removed": "The archive uploaded for it ({name}) is deleted too: it holds them as well.",
    "shared": "The archive uploaded for it ({name}) stays: another search uses it too.",
    "server": "The archive on the server ({name}) is never touched: it is the owner's file, not dnflow's. "
    "Collecting it again leaves these posts out again.",
    "ids": "The id dataset uploaded for it ({name}) stays as given: a list of ids.",
}


class Command(PlainErrors, BaseCommand):
    help = "Remove from a search's files the posts its newest recheck found no longer on X (asks for --yes)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("search_id", type=int, help="The search to purge.")
        parser.add_argument("--yes", action="store_true", help="Purge: it cannot be undone. Without it: only say.")
        parser.add_argument("--enqueue", action="store_true", help="Queue it for a worker and print the run number.")

    def handle(self, *args, **options) -> None:
        search = search_from_argument(options["search_id"])
        queued = self.queued_purge(search)
        if queued is not None and options["yes"] and not options["enqueue"]:
            # A killed purge that reconcile queued again, or one no worker has taken: finished here.
            self.stderr.write(f"Run {queued.number}, a purge of these posts, is queued: carrying it out here.", PLAIN)
            self.carry_out(search, queued)
            return
        try:
            plan = services.plan_purge(search)
        except services.ActionRefused as exc:
            raise CommandError(str(exc) + self.active_run_hint(search), returncode=BAD_INPUT) from None
        if not options["yes"]:
            self.describe(plan)
            raise CommandError(
                f"Nothing was changed: a purge cannot be undone. To purge, run manage.py purge_unavailable "
                f"{search.pk} --yes",
                returncode=BAD_INPUT,
            )
        try:
            run = services.purge_unavailable(search, enqueue=options["enqueue"])
        except services.ActionRefused as exc:
            raise CommandError(str(exc), returncode=BAD_INPUT) from None
        if options["enqueue"]:
            self.stdout.write(f"Search #{search.pk}: purge queued as run {run.number}.")
            return
        self.carry_out(search, run)

    def queued_purge(self, search) -> SearchRun | None:
        """The search's newest run, if it is a purge of its results waiting in the queue."""
        latest = SearchRun.objects.filter(pk=search.latest_run_id).first()
        if latest is None or latest.status != Status.QUEUED or latest.kind != RunKind.PURGE:
            return None
        return latest if latest.builds_on_id == search.results_run_id else None

    def carry_out(self, search, run: SearchRun) -> None:
        run = execute_watched(search, run, self.stderr)
        if run.status != Status.FINISHED:
            raise CommandError(
                f"Search #{search.pk}: the purge {run.get_status_display().lower()}: {run.error} Run it again "
                f"(manage.py purge_unavailable {search.pk} --yes) to finish it: what is purged stays purged.",
                returncode=FAILED,
            )
        self.stdout.write(purge_line(search, run))
        self.stderr.write(f"The record of the posts is in run {run.number}'s folder:", PLAIN)
        self.stdout.write(str(run.folder_path.resolve()))

    def active_run_hint(self, search) -> str:
        """How to get past a run that stands in the purge's way, when its process may be gone (a
        killed purge is such a run: waiting for it to end would wait for ever)."""
        latest = SearchRun.objects.filter(pk=search.latest_run_id).first()
        if latest is None or latest.is_done:
            return ""
        if latest.status == Status.RUNNING:
            return still_running_hint(search.pk)
        return (
            f" With no worker running, `manage.py run_search --again {search.pk}` carries the queued run out here"
            + (" and finishes the purge." if latest.kind == RunKind.PURGE else ".")
        )

    def describe(self, plan: services.PurgePlan) -> None:
        if plan.gone:
            when = f"{plan.checked_at:%Y-%m-%d %H:%M} UTC" if plan.checked_at else f"run {plan.recheck.number}"
            reasons = "; ".join(f"{reason}: {count:,}" for reason, count in plan.reasons.items())
            self.stdout.write(
                f"Search #{plan.search.pk}: the recheck of {when} found {counted(plan.gone, 'post')} no longer on X "
                f"({reasons})."
            )
        else:
            self.stdout.write(
                f"Search #{plan.search.pk}: no recheck asks for more posts to go; a purge finishes the one that "
                "stopped."
            )
        what = "them" if plan.gone else "the posts the stopped purge's record lists"
        self.stdout.write(
            f"A purge removes {what}, and the copies of them other posts carry, from those of these files that "
            "hold them:"
        )
        for run, names in plan.files:
            self.stdout.write(f"  run {run.number} ({run.get_kind_display().lower()}): {', '.join(names)}")
        if plan.upload:
            self.stdout.write(UPLOAD[plan.upload].format(name=plan.upload_name))
        for attempt in plan.earlier_attempts:
            self.stdout.write(
                f"{attempt[0].upper()}{attempt[1:]}, is not finished: this purge completes it, and its report lists "
                "what it had changed."
            )
        if plan.stopped_purge is not None:
            run = plan.stopped_purge
            self.stdout.write(
                f"Run {run.number}, a purge of these posts, {run.get_status_display().lower()} part-way: purging now "
                "finishes it, with the same record of the posts."
            )
