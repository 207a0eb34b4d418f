"""`manage.py reconcile_searches`: queue searches that never reached a worker, recover lost ones.

Also run by every worker at start and every DNFLOW_RECONCILE_INTERVAL seconds; use this after Redis
was down, or from cron, to be sure. Exit 2 when Redis or the database cannot be reached.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from redis.exceptions import RedisError

from searches import services

from ..plain import PlainErrors, redis_problem


class Command(PlainErrors, BaseCommand):
    help = (
        "Queue searches that never reached a worker (Redis was down) and recover running searches "
        "whose worker died (queued again to resume, or failed with the reason)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("search_ids", nargs="*", type=int, help="Only these searches (default: all unfinished).")

    def handle(self, *args, **options) -> None:
        try:
            outcome = services.reconcile_searches(options["search_ids"] or None)
        except RedisError as exc:
            raise redis_problem(exc) from exc
        self.stdout.write(f"Reconcile: {outcome}")
