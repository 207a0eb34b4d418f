"""`manage.py rqworker`: django_rq's worker command, running DnflowWorker and reconciling at start.

Start one per core (or fewer); they share Redis, the database and the data folder. At start, searches
that never reached the queue (Redis was down) are queued, and running searches whose worker died are
recovered (see searches/reconcile.py); every worker repeats that sweep every DNFLOW_RECONCILE_INTERVAL s.
"""

from __future__ import annotations

from django_rq.management.commands.rqworker import Command as DjangoRQWorkerCommand
from redis.exceptions import RedisError

from searches.reconcile import reconcile


class Command(DjangoRQWorkerCommand):
    help = "Run an rq worker for dnflow searches (reconciles unfinished searches first)."

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        # rq's scheduler puts scheduled refreshes on the queue when their time comes (searches.schedule);
        # every worker may run it: rq lets one at a time.
        parser.set_defaults(worker_class="searches.worker.DnflowWorker", with_scheduler=True)

    def handle(self, *args, **options) -> None:
        try:
            outcome = reconcile()
            if options["verbosity"] > 0:
                self.stdout.write(f"Reconcile at start: {outcome}")
        except RedisError as exc:
            # The worker below reports the same problem and exits; say what to do about it.
            self.stderr.write(f"Redis could not be reached ({exc}): is it running, and is REDIS_URL right?")
        finally:
            from django.db import connections

            connections.close_all()
        super().handle(*args, **options)
