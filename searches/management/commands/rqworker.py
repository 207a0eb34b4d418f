"""`manage.py rqworker`: django_rq's worker command, running DnflowWorker and reconciling at start.

Start one per core (or fewer); they share Redis, the database and the data folder. At start, searches
that never reached the queue (Redis was down) are queued, and running searches whose worker died are
recovered (see searches/reconcile.py); every worker repeats that sweep every DNFLOW_RECONCILE_INTERVAL s.
A worker that cannot reach Redis or the database at start says so in one paragraph and exits 2; once
running, it waits out a Redis outage (searches/worker.py).
"""

from __future__ import annotations

from django.db import connections
from django_rq.management.commands.rqworker import Command as DjangoRQWorkerCommand
from redis.exceptions import RedisError

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
        super().handle(*args, **options)
