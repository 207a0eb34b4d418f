"""`manage.py rqworker`: django_rq's worker command, running DnflowWorker and reconciling at start.

Start one per core (or fewer); they share Redis, the database and the data folder. At start, searches
that never reached the queue (Redis was down) are queued, and running searches whose worker died are
recovered (see searches/reconcile.py); every worker repeats that sweep every DNFLOW_RECONCILE_INTERVAL s.
A worker that cannot reach Redis or the database at start says so in one paragraph and exits 2; once
running, it waits out a Redis outage (searches/worker.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connections
from django_rq.management.commands.rqworker import Command as DjangoRQWorkerCommand
from redis.exceptions import RedisError

from searches.models import SearchRun, Status
from searches.reconcile import reconcile

from ..plain import PlainErrors, redis_problem


class Command(PlainErrors, DjangoRQWorkerCommand):
    help = "Run an rq worker for dnflow searches (reconciles unfinished searches first)."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        # rq's scheduler puts scheduled refreshes on the queue when their time comes (searches.schedule);
        # every worker may run it: rq lets one at a time.
        parser.set_defaults(worker_class="searches.worker.DnflowWorker", with_scheduler=True)

    def handle(self, *args, **options) -> None:
        try:
            outcome = reconcile()
        except RedisError as exc:
            raise redis_problem(exc) from exc
        finally:
            connections.close_all()  # the work horses are forked from this process
        if options["verbosity"] > 0:
            self.stdout.write(f"Reconcile at start: {outcome}")
            self.stdout.write(where_this_worker_works())
        unseen = finished_folders_not_here()
        if unseen:
            self.stderr.write(unseen)
        super().handle(*args, **options)


def where_this_worker_works() -> str:
    """The data folder and the Luigi scheduler: on several machines, every worker must say the same."""
    scheduler = urlsplit(settings.DNFLOW_LUIGI_SCHEDULER_URL)
    if scheduler.username or scheduler.password:  # never a password in a log
        scheduler = scheduler._replace(netloc=scheduler.hostname + (f":{scheduler.port}" if scheduler.port else ""))
    return (
        f"Data folder: {settings.DNFLOW_DATA_DIR}; Luigi scheduler: "
        f"{urlunsplit(scheduler) if settings.DNFLOW_LUIGI_SCHEDULER_URL else 'local, one in each job'}"
    )


RECENT_RUNS_CHECKED = 20


def finished_folders_not_here() -> str:
    """A warning when none of the newest finished runs' folders is in this worker's data folder:
    it would write its runs where the web processes and the other workers do not look."""
    recent = list(SearchRun.objects.filter(status=Status.FINISHED).order_by("-finished")[:RECENT_RUNS_CHECKED])
    if not recent or not all(run.folder_missing for run in recent):
        return ""
    return (
        f"Warning: none of the {len(recent)} newest finished runs has its folder in DNFLOW_DATA_DIR "
        f"({settings.DNFLOW_DATA_DIR}). If the other workers and the web processes use another folder, this "
        "worker would write its runs where they cannot be shown: give every process the same DNFLOW_DATA_DIR, "
        "a folder they all share (the README's More than one machine)."
    )
