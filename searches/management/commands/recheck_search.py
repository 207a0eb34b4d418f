"""`manage.py recheck_search ID`: look a search's collected posts up again on X and record, dated,
which are gone and why. The search's results (and, once published, what anyone sees) then leave
those posts out; the raw posts of its earlier runs stay until the owner purges them
(`manage.py purge_unavailable ID`).

In the foreground by default, like run_search; `--enqueue` hands it to a worker instead.
Exit codes: 0 done, 1 the recheck failed (the reason is printed), 2 bad input or a configuration
problem (searches/management/plain.py).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from searches import run_files, services
from searches.models import Status

from ..plain import PlainErrors
from .run_search import BAD_INPUT, FAILED, PLAIN, execute_watched, search_from_argument, still_running_hint


class Command(PlainErrors, BaseCommand):
    help = "Look a finished search's posts up again and record which X no longer gives, and why."

    def add_arguments(self, parser) -> None:
        parser.add_argument("search_id", type=int, help="The search to recheck.")
        parser.add_argument("--enqueue", action="store_true", help="Queue it for a worker and print the run number.")

    def handle(self, *args, **options) -> None:
        search = search_from_argument(options["search_id"])
        try:
            run = services.recheck_search(search, enqueue=options["enqueue"])
        except services.ActionRefused as exc:
            running = search.latest_run is not None and search.latest_run.status == Status.RUNNING
            hint = still_running_hint(search.pk) if running else ""
            raise CommandError(f"{exc}{hint}", returncode=BAD_INPUT) from None
        if options["enqueue"]:
            self.stdout.write(f"Search #{search.pk}: recheck queued as run {run.number}.")
            return
        run = execute_watched(search, run, self.stderr)
        if run.status != Status.FINISHED:
            raise CommandError(
                f"Search #{search.pk}: the recheck {run.get_status_display().lower()}: {run.error}", returncode=FAILED
            )
        found = run_files.read_summary(run.folder_path).get("availability") or {}
        gone = found.get("unavailable_by_reason") or {}
        reasons = "; ".join(f"{reason}: {count:,}" for reason, count in gone.items())
        why = f" ({reasons})" if reasons else ""
        purged = found.get("purged_not_checked", 0)
        not_asked = f"; {purged:,} purged before, not looked up again" if purged else ""
        self.stdout.write(
            f"Search #{search.pk}: rechecked {found.get('checked', 0):,} posts at {found.get('checked_at', '?')}: "
            f"{found.get('available', 0):,} still there, {sum(gone.values()):,} gone{why}{not_asked}."
        )
        self.stderr.write(f"Results now from run {run.number}: {run.num_posts or 0:,} posts.", PLAIN)
        self.stdout.write(str(run.folder_path.resolve()))
