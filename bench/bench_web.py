"""Web latency under load: the home list and the status fragment, on a database with many searches.

    .venv/bin/python bench/bench_web.py [--requests 400] [--concurrency 1,4] [--server gunicorn|runserver]

Fills a throwaway database with SYNTHETIC searches and task events (2,000 and 200,000 by
default; bulk_create), starts the real server on 127.0.0.1 with DEBUG off, and sends a bounded
number of requests (each endpoint: --requests, at most --seconds) from a few client threads:
  - the home page as a user who owns many searches, and anonymously (published searches);
  - a status fragment (the htmx poll) of a running search with the most events, and a home row.
Prints median / p95 latency and requests per second. Target: median under 100 ms.

The database is SQLite under bench/out/web/, or, when DATABASE_URL names PostgreSQL, a separate
throwaway database `dnflow_bench_web` on that server (never the configured one).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from common import OUT, PYTHON, REPO, ensure_repo_on_path

WEB = OUT / "web"
BENCH_DB_NAME = "dnflow_bench_web"
TARGET_MEDIAN_MS = 100.0
FAMILIES = ("CollectPosts", "SummarisePosts", "FetchPhotos", "MatchPhotos", "PackageOutputs")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Web latency under load (see bench/README.md).")
    parser.add_argument("--searches", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=400, help="Requests per endpoint and concurrency level.")
    parser.add_argument("--seconds", type=float, default=60, help="At most this long per endpoint and level.")
    parser.add_argument("--concurrency", default="1,4", help="Client threads, e.g. 1,4.")
    parser.add_argument("--server", choices=("gunicorn", "runserver"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--refill", action="store_true", help="Fill the database again even if it is full.")
    return parser.parse_args()


def bench_database_url() -> str:
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(configured)
        return urlunsplit(parts._replace(path=f"/{BENCH_DB_NAME}"))
    return f"sqlite:///{WEB / 'bench-web.sqlite3'}"


def server_env(database_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="dnflow_site.settings",
        DEBUG="0",  # as in production: no query log kept per request, no debug pages
        SECRET_KEY=secrets.token_urlsafe(50),
        DNFLOW_HTTPS="0",  # plain HTTP on 127.0.0.1
        DNFLOW_DATA_DIR=str(WEB / "data"),
        ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="ERROR",
    )
    return env


def create_postgres_database(database_url: str) -> None:
    import psycopg

    parts = urlsplit(database_url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB_NAME,)).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{BENCH_DB_NAME}"')


# --- the data ------------------------------------------------------------------------------------


def fill(searches: int, events: int, refill: bool) -> dict:
    """SYNTHETIC searches and events; returns the ids and the owner's session cookie the load needs."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from searches.models import EventKind, Search, Source, Status, TaskEvent

    users = get_user_model()
    owner = users.objects.filter(username="bench-owner").first()
    full = owner is not None and Search.objects.count() == searches and TaskEvent.objects.count() == events
    if not full or refill:
        TaskEvent.objects.all().delete()
        Search.objects.all().delete()
        users.objects.filter(username__startswith="bench-").delete()
        owner = users.objects.create_user("bench-owner", password=secrets.token_urlsafe(16))
        others = [users.objects.create_user(f"bench-user-{i}", password=secrets.token_urlsafe(16)) for i in range(20)]
        now = timezone.now()
        statuses = [Status.FINISHED] * 7 + [Status.RUNNING, Status.FAILED, Status.QUEUED]
        rows = []
        for i in range(searches):
            status = statuses[(i // 2) % len(statuses)]  # both owners get every status
            mine = i % 2 == 0
            rows.append(
                Search(
                    owner=owner if mine else others[i % len(others)],
                    term=f"synthetic benchmark search {i} #bench{i % 37}",
                    source=Source.SAMPLE,
                    status=status,
                    progress=100.0 if status == Status.FINISHED else 40.0,
                    step="Finished" if status == Status.FINISHED else "Counting: 40,000 posts so far",
                    num_posts=1000 + i if status == Status.FINISHED else None,
                    created=now - timedelta(minutes=searches - i),
                    started=now - timedelta(minutes=searches - i),
                    finished=now if status == Status.FINISHED else None,
                    published_at=now if not mine and i % 4 == 1 else None,
                    folder=f"search-bench-{i}",
                )
            )
        Search.objects.bulk_create(rows, batch_size=1000)
        ids = list(Search.objects.order_by("pk").values_list("pk", flat=True))
        # One long-running search of the owner's holds a tenth of the events; the rest are spread out.
        big = Search.objects.filter(owner=owner, status=Status.RUNNING).order_by("pk").first()
        big_events = events // 10
        per_search = (events - big_events) // (len(ids) - 1)
        plan = [(big.pk, big_events)] + [(pk, per_search) for pk in ids if pk != big.pk]
        plan[-1] = (plan[-1][0], events - big_events - per_search * (len(plan) - 2))
        batch = []
        for pk, count in plan:
            batch.extend(_events_for(pk, count, now, TaskEvent, EventKind))
            if len(batch) >= 20_000:
                TaskEvent.objects.bulk_create(batch, batch_size=5000)
                batch = []
        TaskEvent.objects.bulk_create(batch, batch_size=5000)
        if connection.vendor == "postgresql":
            # Autovacuum analyses a table after this many inserts in production; right after a bulk load
            # the planner would still think the events table is tiny.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
    big = Search.objects.filter(owner=owner, status=Status.RUNNING).order_by("pk").first()
    client = Client()
    client.force_login(owner)
    return {
        "owner_session": client.cookies["sessionid"].value,
        "big_search": big.pk,
        "big_events": big.events.count(),
        "own_searches": Search.objects.filter(owner=owner).count(),
        "published": Search.objects.published().count(),
    }


def _events_for(search_id: int, count: int, now, TaskEvent, EventKind) -> list:  # noqa: N803 -- model classes
    """A workflow's worth of events: start, progress..., processing time, success, per task."""
    events = []
    base = now - timedelta(seconds=count)
    per_family = max(1, count // len(FAMILIES))
    for n in range(count):
        family = FAMILIES[min(n // per_family, len(FAMILIES) - 1)]
        step = n % per_family
        if step == 0:
            kind, message = EventKind.START, ""
        elif step == per_family - 1:
            kind, message = EventKind.SUCCESS, f"{family} done"
        elif step % 97 == 0:
            kind, message = EventKind.RATE_LIMIT, "Waiting 60 s for the X API rate limit"
        else:
            kind, message = EventKind.PROGRESS, f"Counting: {step * 250:,} posts so far"
        events.append(
            TaskEvent(
                search_id=search_id,
                task_family=family,
                task_id=f"{family}_bench_{search_id}",
                event=kind,
                message=message,
                created=base + timedelta(seconds=n),
            )
        )
    return events


# --- the server ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(kind: str, port: int, env: dict, workers: int) -> subprocess.Popen:
    if kind == "gunicorn":
        argv = [
            PYTHON,
            "-m",
            "gunicorn",
            "dnflow_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
    else:
        argv = [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    log = (WEB / f"{kind}.log").open("wb")
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_up(base: str, server: subprocess.Popen, seconds: float = 30) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"The server exited ({server.returncode}); see {WEB.relative_to(REPO)}/*.log")
        try:
            if requests.get(f"{base}/robots.txt", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    sys.exit(f"The server did not answer on {base} within {seconds:.0f} s.")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# --- the load ------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    name: str
    concurrency: int
    latencies: list[float]  # seconds, successful requests only
    errors: int
    statuses: set
    wall: float

    def line(self) -> str:
        if not self.latencies:
            return f"{self.name:<40} {self.concurrency:>3}   no successful request ({self.errors} errors)"
        ordered = sorted(self.latencies)
        median = statistics.median(ordered) * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        rate = len(ordered) / self.wall
        mark = "" if median < TARGET_MEDIAN_MS else "  OVER TARGET"
        return (
            f"{self.name:<40} {self.concurrency:>3} {len(ordered):>6} {median:>9.1f} {p95:>9.1f} {rate:>9.1f}"
            f"  {sorted(self.statuses)}{f' {self.errors} errors' if self.errors else ''}{mark}"
        )


def check_pages(endpoints: list[tuple[str, str, dict, tuple[str, ...]]]) -> None:
    import requests

    for name, url, cookies, expected in endpoints:
        response = requests.get(url, cookies=cookies, timeout=30)
        missing = [text for text in expected if text not in response.text]
        rows = response.text.count('class="search-row"')
        if response.status_code not in (200, 286) or missing:
            sys.exit(f"{name}: {url} answered {response.status_code} without {missing}; is the data there?")
        print(f"  checked {name}: {response.status_code}, {len(response.content):,} bytes, {rows} search rows")


def load(name: str, url: str, cookies: dict, *, requests_total: int, concurrency: int, seconds: float) -> LoadResult:
    """`requests_total` GETs from `concurrency` threads, stopping early after `seconds`."""
    import requests

    lock = threading.Lock()
    remaining = [requests_total]
    latencies: list[float] = []
    statuses: set = set()
    errors = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        with requests.Session() as session:
            session.cookies.update(cookies)
            session.get(url, timeout=30)  # warm this connection and the server's code paths
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                began = time.perf_counter()
                try:
                    response = session.get(url, timeout=30)
                    elapsed = time.perf_counter() - began
                    ok = response.status_code in (200, 286)
                except requests.RequestException:
                    elapsed, ok, response = 0.0, False, None
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1
                    if response is not None:
                        statuses.add(response.status_code)

    threads = [threading.Thread(target=client, name=f"bench-client-{i}") for i in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(name, concurrency, latencies, errors[0], statuses, time.perf_counter() - began)


def main() -> None:
    args = parse_args()
    levels = [int(n) for n in args.concurrency.split(",") if n.strip()]
    WEB.mkdir(parents=True, exist_ok=True)
    database_url = bench_database_url()
    env = server_env(database_url)
    if database_url.startswith("postgres"):
        create_postgres_database(database_url)
    os.environ.update(env)
    print(f"Database: {database_url.split('@')[-1]} (throwaway)")
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)

    ensure_repo_on_path()
    import django

    django.setup()
    began = time.perf_counter()
    facts = fill(args.searches, args.events, args.refill)
    print(
        f"Data: {args.searches:,} synthetic searches, {args.events:,} task events "
        f"(the owner has {facts['own_searches']:,}; {facts['published']:,} published; "
        f"status fragment of search #{facts['big_search']} with {facts['big_events']:,} events), "
        f"ready in {time.perf_counter() - began:.1f} s"
    )
    from django.db import connections

    connections.close_all()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.server, port, env, args.workers)
    results = []
    try:
        wait_until_up(base, server)
        workers = f", {args.workers} workers" if args.server == "gunicorn" else ""
        print(f"Server: {args.server}{workers}, DEBUG off, on {base}; load average {os.getloadavg()[0]:.1f}")
        owner = {"sessionid": facts["owner_session"]}
        big = facts["big_search"]
        # Each page must show what it is measured for, not a login form or an empty list.
        endpoints = [
            ("home, logged in (many own searches)", f"{base}/", owner, ("Your searches", "search-row-")),
            ("home, anonymous (published list)", f"{base}/", {}, ("Published searches", "search-row-")),
            ("status fragment (htmx poll)", f"{base}/searches/{big}/status/", owner, ('id="status"', "<table")),
            ("status fragment, home row", f"{base}/searches/{big}/status/?part=row", owner, (f"search-row-{big}",)),
        ]
        check_pages(endpoints)
        print(f"\n{'endpoint':<40} {'c':>3} {'reqs':>6} {'median ms':>9} {'p95 ms':>9} {'req/s':>9}  statuses")
        for name, url, cookies, _expected in endpoints:
            for level in levels:
                result = load(name, url, cookies, requests_total=args.requests, concurrency=level, seconds=args.seconds)
                results.append(result)
                print(result.line(), flush=True)
    finally:
        stop_server(server)
    medians = [statistics.median(r.latencies) * 1000 for r in results if r.latencies]
    failed = [r for r in results if not r.latencies or r.errors]
    worst = max(medians) if medians else float("inf")
    verdict = "meets" if worst < TARGET_MEDIAN_MS and not failed else "MISSES"
    print(f"\nWorst median {worst:.1f} ms; target < {TARGET_MEDIAN_MS:g} ms: {verdict}")
    print(f"Load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
