"""Web latency under load: the home list, the status fragment and the JSON API list, on a database
with many searches.

    .venv/bin/python bench/bench_web.py [--searches 200000] [--events 20000000] [--requests 400]
        [--concurrency 1,4] [--server gunicorn|runserver] [--refill] [--fill-only]

Fills a throwaway database with SYNTHETIC searches, their runs and task events (200,000 searches
and 20,000,000 events by default; loaded in bulk, COPY on PostgreSQL; a database already filled at
that scale is reused), starts the real server on 127.0.0.1 with DEBUG off, and sends a bounded
number of requests (each endpoint: --requests, at most --seconds) from a few client threads:
  - the home page as a user who owns half the searches, on its first and last page (by its page
    number, and by the "Older" link of the page before), and anonymously (published searches),
    first and last page;
  - the status fragment (the htmx poll) of a running search holding a tenth of the events, and
    its home-page row;
  - the JSON API's list of searches, as that owner.
Prints median / p95 latency and requests per second. Target: median under 50 ms.

The database is SQLite under bench/out/web/, or, when DATABASE_URL names PostgreSQL, a separate
throwaway database `dnflow_bench_web` on that server (never the configured one).
"""

from __future__ import annotations

import argparse
import html
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from common import OUT, PYTHON, REPO, ensure_repo_on_path

WEB = OUT / "web"
BENCH_DB_NAME = "dnflow_bench_web"
TARGET_MEDIAN_MS = 50.0
FAMILIES = ("CollectPosts", "SummarisePosts", "FetchPhotos", "MatchPhotos", "PackageOutputs")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Web latency under load (see bench/README.md).")
    parser.add_argument("--searches", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--requests", type=int, default=400, help="Requests per endpoint and concurrency level.")
    parser.add_argument("--seconds", type=float, default=60, help="At most this long per endpoint and level.")
    parser.add_argument("--concurrency", default="1,4", help="Client threads, e.g. 1,4.")
    parser.add_argument("--server", choices=("gunicorn", "runserver"), default="gunicorn")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--refill", action="store_true", help="Fill the database again even if it is full.")
    parser.add_argument("--fill-only", action="store_true", help="Fill (or check) the database, measure nothing.")
    parser.add_argument(
        "--lenient", action="store_true", help="Measure a page that lacks what it should show (an older version)."
    )
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

# What a search's runs look like, by (search index // 2) % 10, so the owner and the others get each:
# most have one finished run; some a finished run and a newer running, failed or cancelled one (the
# pages then show the results of the older, finished run); some have not finished a run yet.
RUN_PLANS = (
    ("finished",),
    ("finished",),
    ("finished",),
    ("finished",),
    ("finished",),
    ("finished",),
    ("finished", "running"),
    ("finished", "failed"),
    ("finished", "failed", "cancelled"),
    ("running",),
)
LOAD_CHUNK = 200_000  # rows per executemany / COPY write


def is_full(searches: int, events: int) -> bool:
    from django.contrib.auth import get_user_model

    from searches.models import Search, TaskEvent

    return (
        get_user_model().objects.filter(username="bench-owner").exists()
        and Search.objects.count() == searches
        and TaskEvent.objects.count() == events
    )


def drop_database(database_url: str) -> None:
    """Start from nothing: the throwaway SQLite file, or the throwaway PostgreSQL database."""
    if database_url.startswith("postgres"):
        import psycopg

        admin = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB_NAME}" WITH (FORCE)')
        create_postgres_database(database_url)
    else:
        for suffix in ("", "-wal", "-shm"):
            (WEB / f"bench-web.sqlite3{suffix}").unlink(missing_ok=True)


def fill(searches: int, events: int) -> None:
    """SYNTHETIC users, searches, runs and task events, loaded in bulk into an empty database.

    Rows go in with their ids given, so a search can name its runs (latest_run, results_run) as
    SearchRun's transitions would have left them, without a second pass over the table. PostgreSQL
    loads with COPY; SQLite with executemany in one transaction, its journal off (a throwaway file).
    """
    from django.contrib.auth import get_user_model
    from django.db import connection

    users = get_user_model()
    owner = users.objects.create_user("bench-owner")  # no password: the bench logs in with force_login
    others = [users.objects.create_user(f"bench-user-{i}") for i in range(20)]
    now = datetime.now(UTC).replace(microsecond=0)
    search_rows, run_rows, event_plan = plan_rows(searches, events, owner.pk, [u.pk for u in others], now)
    load = _copy_rows if connection.vendor == "postgresql" else _insert_rows
    stamp = _stamp_postgres if connection.vendor == "postgresql" else _stamp_sqlite
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "sqlite":
        raw.execute("PRAGMA journal_mode=OFF")
        raw.execute("PRAGMA synchronous=OFF")
        raw.execute("PRAGMA cache_size=-262144")  # 256 MiB
        raw.execute("PRAGMA foreign_keys=OFF")  # searches and runs name each other; both go in whole
    # Searches and runs in one transaction: PostgreSQL checks their (deferred) foreign keys at its end.
    with bulk_transaction(raw, connection.vendor):
        load(raw, "searches_search", SEARCH_COLUMNS, ([stamp(v) for v in row] for row in search_rows))
        load(raw, "searches_searchrun", RUN_COLUMNS, ([stamp(v) for v in row] for row in run_rows))
    with bulk_transaction(raw, connection.vendor):
        load(raw, "searches_taskevent", EVENT_COLUMNS, _event_rows(event_plan, stamp))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("searches_search", "searches_searchrun", "searches_taskevent"):
                # The table names are the constants above, never input.
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # noqa: S608
            # Autovacuum would analyse (and vacuum, for index-only scans) the tables soon after a bulk
            # load in production; right after it the planner would still think they are tiny.
            cursor.execute("VACUUM ANALYZE")
    else:
        # No ANALYZE: nothing runs it on an installation's SQLite file, so its planner works without
        # statistics there, and must be measured so. (Statistics taken before a migration adds an
        # index also mislead it: the new index has none, the old ones do.)
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA journal_mode=WAL")


SEARCH_COLUMNS = (
    "id owner_id term source archive_path count lang start_time end_time title notes refresh_every "
    "next_refresh_at created published_at latest_run_id results_run_id"
).split()
RUN_COLUMNS = (
    "id search_id number folder kind builds_on_id since_id status progress step error rate_limited_until "
    "rq_job_id num_posts times_lost tidy created started finished"
).split()
EVENT_COLUMNS = "id run_id task_family task_id event message duration created".split()


def plan_rows(searches: int, events: int, owner_id: int, other_ids: list[int], now: datetime):
    """The search and run rows, and per run with events: (run id, count, first event time, running)."""
    search_rows, run_rows, started_runs = [], [], []
    run_id = 0
    for i in range(searches):
        mine = i % 2 == 0
        created = now - timedelta(minutes=searches - i)
        results = None
        plan = RUN_PLANS[(i // 2) % len(RUN_PLANS)]
        for number, status in enumerate(plan, start=1):
            run_id += 1
            started = created + timedelta(minutes=number)
            finished = started + timedelta(seconds=30) if status != "running" else None
            if status == "finished":
                results = run_id
            step = {"running": "Counting: 40,000 posts so far", "failed": "Failed", "cancelled": "Cancelled"}
            run_rows.append(
                (run_id, i + 1, number, f"search-bench-{i + 1}-{number}", "collect", None, "", status,
                 100.0 if status == "finished" else 40.0, step.get(status, "Finished"),
                 "The archive ended in the middle of a post." if status == "failed" else "", None, "",
                 1000 + i if status == "finished" else None, 0, True, started, started, finished)
            )  # fmt: skip
            started_runs.append((run_id, started, status == "running", mine))
        published = now - timedelta(seconds=searches - i) if not mine and i % 4 == 1 else None
        search_rows.append(
            (i + 1, owner_id if mine else other_ids[i % len(other_ids)],
             f"synthetic benchmark search {i} #bench{i % 37}", "sample", "", None, "", None, None, "", "",
             None, None, created, published, run_id, results)
        )  # fmt: skip
    # One long-running run of the owner's holds a tenth of the events (its status fragment is
    # measured); the rest are spread evenly over every other run.
    big = next(run for run in reversed(started_runs) if run[2] and run[3])
    big_events = events // 10
    rest = [run for run in started_runs if run is not big]
    per_run, extra = divmod(events - big_events, len(rest))
    # It is still going: its events end now.
    event_plan = [(big[0], big_events, now - timedelta(seconds=big_events), True)]
    event_plan += [(run[0], per_run + (1 if n < extra else 0), run[1], run[2]) for n, run in enumerate(rest)]
    return search_rows, run_rows, event_plan


def _event_rows(event_plan, stamp):
    """A workflow's worth of events per run: start, progress..., rate-limit waits, success, per task."""
    event_id = 0
    second = timedelta(seconds=1)
    for run_id, count, began, running in event_plan:
        per_family = max(2, count // len(FAMILIES))
        at = began
        for n in range(count):
            index = min(n // per_family, len(FAMILIES) - 1)
            family, step = FAMILIES[index], n - index * per_family
            # A running run's last task has not ended yet.
            ends = n == count - 1 and not running if index == len(FAMILIES) - 1 else step == per_family - 1
            if step == 0:
                kind, message = "start", ""
            elif ends:
                kind, message = "success", f"{family} done"
            elif step % 97 == 0:
                kind, message = "rate_limit", "Waiting 60 s for the X API rate limit"
            else:
                kind, message = "progress", f"Counting: {step * 250:,} posts so far"
            event_id += 1
            at += second
            yield (event_id, run_id, family, f"{family}_bench_{run_id}", kind, message, None, stamp(at))


def _stamp_sqlite(value):
    # As Django's SQLite backend stores datetimes: naive UTC text.
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(" ")
    return value


def _stamp_postgres(value):
    return value


@contextmanager
def bulk_transaction(raw, vendor: str):
    """One transaction on the driver's own connection (Django's is in autocommit mode)."""
    if vendor == "postgresql":
        with raw.transaction():
            yield
        return
    raw.execute("BEGIN")
    try:
        yield
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")


def _chunks(rows, size: int = LOAD_CHUNK):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert_rows(raw, table: str, columns: list[str], rows) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
    for chunk in _chunks(rows):
        raw.executemany(sql, chunk)


def _copy_rows(raw, table: str, columns: list[str], rows) -> None:
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def describe_data() -> dict:
    """The ids and counts the load needs, and the owner's session cookie."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from searches.models import Search, SearchRun, Status

    owner = get_user_model().objects.get(username="bench-owner")
    big = (
        SearchRun.objects.filter(search__owner=owner, status=Status.RUNNING)
        .order_by("-id")
        .values_list("search_id", "pk")[:1]
    )
    big_search, big_run = next(iter(big))
    client = Client()
    client.force_login(owner)
    return {
        "owner_session": client.cookies["sessionid"].value,
        "big_search": big_search,
        "big_events": SearchRun.objects.get(pk=big_run).events.count(),
        "own_searches": Search.objects.filter(owner=owner).count(),
        "published": Search.objects.published().exclude(owner=owner).count(),
        "runs": SearchRun.objects.count(),
    }


# --- the server ----------------------------------------------------------------------------------


def older_link(url: str, cookies: dict) -> str:
    """The query string of the owner's list's "Older" link on the page at `url`."""
    import requests

    page = requests.get(url, cookies=cookies, timeout=30).text
    links = re.findall(r'<a href="\?([^"]*mine_after=[^"]*)" rel="next">', page)
    if not links:
        sys.exit(f"No Older link for the owner's list on {url}")
    return html.unescape(links[0])


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


def check_pages(endpoints: list[tuple[str, str, dict, tuple[str, ...]]], *, lenient: bool = False) -> None:
    import requests

    for name, url, cookies, expected in endpoints:
        response = requests.get(url, cookies=cookies, timeout=30)
        missing = [text for text in expected if text not in response.text]
        rows = response.text.count('class="search-row"')
        if response.status_code not in (200, 286) or missing:
            problem = f"{name}: {url} answered {response.status_code} without {missing}"
            if not lenient or response.status_code not in (200, 286):
                sys.exit(f"{problem}; is the data there?")
            print(f"  WARNING {problem} (--lenient: measured anyway)")
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


def migrate(env: dict) -> None:
    began = time.perf_counter()
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    print(f"Migrated in {time.perf_counter() - began:.1f} s")


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
    if args.refill:
        drop_database(database_url)
    migrate(env)

    ensure_repo_on_path()
    import django

    django.setup()
    from django.db import connections

    from searches.paging import COUNT_UP_TO, pages_of

    began = time.perf_counter()
    if not is_full(args.searches, args.events):
        # Whatever is there (an interrupted fill, another scale) goes: the load wants empty tables.
        connections.close_all()
        drop_database(database_url)
        migrate(env)
        fill(args.searches, args.events)
    facts = describe_data()
    print(
        f"Data: {args.searches:,} SYNTHETIC searches with {facts['runs']:,} runs, {args.events:,} task events "
        f"(the owner has {facts['own_searches']:,}; {facts['published']:,} others published; "
        f"status fragment of search #{facts['big_search']} with {facts['big_events']:,} events), "
        f"ready in {time.perf_counter() - began:.1f} s"
    )
    connections.close_all()
    if args.fill_only:
        return

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
        own_pages = pages_of(facts["own_searches"])
        published_pages = pages_of(facts["published"])
        # The last page as a person reaches it: the "Older" link of the page before, which says
        # where that page ended (searches/paging.py), rather than a page number typed by hand.
        older = older_link(f"{base}/?mine={own_pages - 1}", owner) if own_pages > 1 else ""
        # What page 1 says of a list (searches/paging.py counts it up to COUNT_UP_TO).
        first_page_line = (
            f"Page 1 · more than {COUNT_UP_TO:,} searches"
            if facts["own_searches"] > COUNT_UP_TO
            else f"Page 1 of {own_pages}"
        )
        # Each page must show what it is measured for, not a login form, an empty list or page 1.
        endpoints = [
            (
                "home, owner, page 1",
                f"{base}/",
                owner,
                ("Your searches", "search-row-", first_page_line),
            ),
            (
                f"home, owner, page {own_pages:,} (last)",
                f"{base}/?mine={own_pages}",
                owner,
                ("search-row-", f"Page {own_pages} of {own_pages}"),
            ),
            *(
                [
                    (
                        f"home, owner, page {own_pages:,} by the link",
                        f"{base}/?{older}",
                        owner,
                        ("search-row-", "← Newer"),
                    )
                ]
                if older
                else []
            ),
            ("home, anonymous, page 1", f"{base}/", {}, ("Published searches", "search-row-")),
            (
                f"home, anonymous, page {published_pages:,} (last)",
                f"{base}/?published={published_pages}",
                {},
                ("search-row-", f"Page {published_pages} of {published_pages}"),
            ),
            ("status fragment (htmx poll)", f"{base}/searches/{big}/status/", owner, ('id="status-live"', "<table")),
            ("status fragment, home row", f"{base}/searches/{big}/status/?part=row", owner, (f"search-row-{big}",)),
            ("API list, owner", f"{base}/api/searches/", owner, ('{"searches": [{"id": ',)),
        ]
        check_pages(endpoints, lenient=args.lenient)
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
