"""Faults while a search runs: Redis restarted, the database connection dropped, the disk full,
and storms of errors from the X API. Whatever happens, a search ends finished or failed with a
reason a person can act on, never stuck as running, and nothing half-written looks complete.

Already covered elsewhere: a TaskEvent write that raises (tests/test_workflow_events.py::
test_a_failing_event_write_is_logged_and_the_workflow_carries_on), Redis down when a search is
created (tests/test_reconcile.py), a worker killed mid-run (tests/test_workers.py), single 5xx,
429 and dropped connections at the client (tests/test_x_api.py).
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

import pipeline.outputs
import pipeline.xapi_client
from pipeline import events
from searches import services
from searches.models import EventKind, Search, SearchRun, Source, Status, TaskEvent

from .hardening_helpers import assert_no_complete_outputs, private_redis, small_archive, synthetic_tweet, write_jsonl
from .pipeline_helpers import queued_archive_search
from .web_helpers import field_errors
from .worker_helpers import WorkerPool
from .x_emulator import Fault

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = pytest.mark.django_db(transaction=True)

DONE = (Status.FINISHED, Status.FAILED)


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


# --- Redis restarted while a search runs -----------------------------------------------------------


@pytest.mark.worker
def test_a_redis_restart_mid_run_leaves_no_search_stuck(settings, tmp_path, x_api):
    """Redis comes back empty: the running search's job and the queued one's are gone from it."""
    x_api.page_delay = 0.6  # five pages of a slow X: the run is surely under way when Redis goes
    with private_redis(tmp_path) as redis_server:
        settings.REDIS_URL = redis_server.url
        settings.RQ_QUEUES = {"default": {"URL": redis_server.url, "DEFAULT_TIMEOUT": 600}}
        (tmp_path / "worker-logs").mkdir()
        pool = WorkerPool(tmp_path / "worker-logs", redis_server.url)
        try:
            running = services.create_search(term="#kpop", source=Source.RECENT, count=500)
            archive = small_archive(tmp_path / "s.jsonl")
            waiting = services.create_search(source=Source.ARCHIVE, archive_path=str(archive))
            assert running.latest_run.rq_job_id and waiting.latest_run.rq_job_id
            pool.start(1, X_BEARER_TOKEN=settings.X_BEARER_TOKEN, DNFLOW_X_API_URL=x_api.url)
            pool.wait_for(
                lambda: (SearchRun.objects.get(pk=running.latest_run_id).num_posts or 0) >= 100,
                timeout=30,
                what="the first search collects its first page",
            )

            redis_server.restart(down_for=1.0)
            # The fault hit mid-run: the search was still running when Redis came back empty.
            assert Search.objects.get(pk=running.pk).status == Status.RUNNING

            pool.wait_for(
                lambda: SearchRun.objects.filter(search__in=[running.pk, waiting.pk], status__in=DONE).count() == 2,
                timeout=90,
                what="both searches ended after the Redis restart",
                interval=0.3,
            )
            logs = pool.logs()
        finally:
            pool.kill_all()

    for run in SearchRun.objects.filter(search__in=[running.pk, waiting.pk]):
        assert run.status == Status.FINISHED, (run.search_id, run.error, logs)
        assert (run.folder_path / "summary.json").is_file()
        assert (run.folder_path / f"{run.folder}.zip").is_file()
    assert SearchRun.objects.get(pk=running.latest_run_id).num_posts == 500


# --- the database connection dropped while events are written ------------------------------------


@pytest.fixture(autouse=True)
def fresh_connection_afterwards():
    """A test that cut the connection must not leave it cut for the next one."""
    yield
    connection.close()


def drop_database_connection() -> None:
    """Cut this process's database connection from under Django, as a database restart does."""
    if connection.vendor == "postgresql":
        import psycopg

        pid = connection.connection.info.backend_pid
        dsn = connection.connection.info.dsn
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    else:
        connection.connection.close()  # every later query on it fails, like a dead socket


def drop_connection_before(monkeypatch, family: str, kind: str) -> list[str]:
    """Drop the connection just before the first `kind` event of task `family` is written."""
    real = events._record
    dropped: list[str] = []

    def record(task, event_kind, message="", duration=None):
        if task.task_family == family and event_kind == kind and not dropped:
            dropped.append(task.task_id)
            drop_database_connection()
        return real(task, event_kind, message, duration)

    monkeypatch.setattr(events, "_record", record)
    return dropped


def test_a_connection_dropped_while_an_event_is_written_loses_that_event_only(tmp_path, monkeypatch, caplog):
    dropped = drop_connection_before(monkeypatch, "SummarisePosts", EventKind.START)
    search = queued_archive_search(small_archive(tmp_path / "a.jsonl"))

    with caplog.at_level(logging.ERROR, logger="dnflow.events"):
        search = services.execute_search(search)

    assert dropped, "the fault was never injected"
    assert search.status == Status.FINISHED, search.error
    lost = [r.getMessage() for r in caplog.records if r.name == "dnflow.events"]
    # (With what the database said, on one line: PostgreSQL's terminated connection is an OperationalError.)
    assert len(lost) == 1 and lost[0].startswith(f"could not record the start of {dropped[0]} for run #{search.pk}")
    # The lost event is the only one missing: the rest of the run was recorded on a new connection.
    assert not TaskEvent.objects.filter(run=search, task_family="SummarisePosts", event=EventKind.START).exists()
    assert TaskEvent.objects.filter(run=search, task_family="SummarisePosts", event=EventKind.SUCCESS).exists()
    assert TaskEvent.objects.filter(run=search, task_family="PackageOutputs", event=EventKind.SUCCESS).exists()
    assert (search.folder_path / "summary.json").is_file()


def test_a_connection_dropped_at_the_end_of_a_run_still_records_its_outcome(tmp_path, monkeypatch, caplog):
    """The drop comes after the last event, just before the outcome is written."""
    from searches import execute

    real = execute.build_workflow

    def run_then_drop(run):
        result = real(run)
        drop_database_connection()
        return result

    monkeypatch.setattr(execute, "build_workflow", run_then_drop)
    search = queued_archive_search(small_archive(tmp_path / "a.jsonl"))

    search = services.execute_search(search)

    assert search.status == Status.FINISHED, search.error
    assert SearchRun.objects.get(pk=search.pk).status == Status.FINISHED


def test_a_connection_dropped_as_the_counting_ends_still_gives_the_run_its_exact_count(tmp_path, monkeypatch, caplog):
    """The drop comes once the counting step has written its files, before it records how many
    posts it counted: that record is lost, the run is not, and its count is the outputs' own."""
    import pipeline.tasks

    real = pipeline.tasks.summarise_posts
    dropped = []

    def summarise_then_drop(*args, **kwargs):
        facts = real(*args, **kwargs)
        dropped.append(facts["num_tweets"])
        drop_database_connection()
        return facts

    monkeypatch.setattr(pipeline.tasks, "summarise_posts", summarise_then_drop)
    search = queued_archive_search(small_archive(tmp_path / "a.jsonl", posts=7))

    with caplog.at_level(logging.ERROR, logger="dnflow.events"):
        search = services.execute_search(search)

    assert dropped == [7], "the fault was never injected"
    assert search.status == Status.FINISHED, search.error
    assert SearchRun.objects.get(pk=search.pk).num_posts == 7
    assert any("could not record progress of SummarisePosts" in r.getMessage() for r in caplog.records)


def test_a_run_resumed_after_its_counting_step_gets_the_count_its_outputs_hold(tmp_path):
    """A run failed after counting, with a count its progress reports left short (the database
    failed as the count was recorded): the resumed run does not count again, and still ends with
    the outputs' count, which the pages, the admin and the API show."""
    run = services.execute_search(queued_archive_search(small_archive(tmp_path / "a.jsonl", posts=7)))
    assert run.status == Status.FINISHED, run.error
    # What the later steps write goes; the counting step's files stay, as a failure in them leaves it.
    (run.folder_path / "summary.json").unlink()
    (run.folder_path / f"{run.folder}.zip").unlink()
    SearchRun.objects.filter(pk=run.pk).update(status=Status.FAILED, num_posts=3, error="database is locked")

    services.rerun_search(Search.objects.get(pk=run.search_id), enqueue=False)
    resumed = services.execute_search(Search.objects.get(pk=run.search_id))

    assert resumed.status == Status.FINISHED, resumed.error
    assert resumed.pk == run.pk, "resumed in its own run"
    counting = TaskEvent.objects.filter(run=run, task_family="SummarisePosts", event=EventKind.START)
    assert counting.count() == 1, "the resumed run counted again"
    assert resumed.num_posts == 7


# --- the disk full while outputs are written ------------------------------------------------------


def _says_disk_full(error: str) -> None:
    assert error.startswith("Disk full"), error
    assert "DNFLOW_DATA_DIR" in error and "run the search again" in error
    assert "Traceback" not in error and "Errno" not in error


def test_a_disk_full_while_summarising_fails_the_search_in_plain_words(tmp_path, monkeypatch):
    """An injected write error: the output files refuse every write once 64 KB are written."""
    real_temp_file = pipeline.outputs._temp_file
    written = {"bytes": 0}

    class FillingFile:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            written["bytes"] += len(data)
            if written["bytes"] > 64 * 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self._handle.write(data)

        def __getattr__(self, name):
            return getattr(self._handle, name)

    def filling_temp_file(path, mode):
        handle, temp = real_temp_file(path, mode)
        return FillingFile(handle), temp

    monkeypatch.setattr(pipeline.outputs, "_temp_file", filling_temp_file)
    posts = [synthetic_tweet(20_000 + n, f"post {n} " + "words " * 60, user=f"user{n % 50}") for n in range(800)]
    search = queued_archive_search(write_jsonl(tmp_path / "a.jsonl", posts))

    search = services.execute_search(search)

    assert search.status == Status.FAILED
    _says_disk_full(search.error)
    assert TaskEvent.objects.get(run=search, event=EventKind.FAILURE).task_family == "SummarisePosts"
    assert_no_complete_outputs(search.folder_path)


def test_a_really_full_disk_fails_the_search_in_plain_words(tmp_path, small_disk):
    # About 700 KB of raw posts fit; the raw copy and the summary files together do not.
    posts = [synthetic_tweet(30_000 + n, f"post {n} " + "words " * 70, user=f"user{n % 50}") for n in range(1000)]
    archive = write_jsonl(tmp_path / "archive.jsonl", posts)
    assert 600_000 < archive.stat().st_size < 900_000
    search = queued_archive_search(archive)

    search = services.execute_search(search)

    assert search.status == Status.FAILED, "the disk was not full after all"
    _says_disk_full(search.error)
    assert_no_complete_outputs(search.folder_path)


# --- the disk full while an upload is stored ------------------------------------------------------


def _files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if not path.is_dir()] if folder.exists() else []


@pytest.mark.parametrize(
    "where",
    [
        "kept in memory, written into uploads/",
        "a temporary file beside uploads/ (the default)",
        "a temporary file on another disk, copied into uploads/",
        "the temporary file itself",
    ],
)
def test_an_upload_onto_a_full_disk_is_refused_on_the_form_and_nothing_is_kept(
    where, owner_client, small_disk, data_dir, settings, tmp_path
):
    """1.5 MB of posts on a 1 MB disk: the form says the disk is full and what to do, and keeps nothing."""
    uploads_disk = small_disk
    if where == "a temporary file beside uploads/ (the default)":
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # to uploads/.incoming/ on the small disk
    elif where == "a temporary file on another disk, copied into uploads/":
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
        settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)  # then copied across
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
        settings.FILE_UPLOAD_TEMP_DIR = str(small_disk)  # the upload fills the disk before the view runs
        settings.DNFLOW_DATA_DIR = uploads_disk = data_dir
    posts = [synthetic_tweet(40_000 + n, f"post {n} " + "words " * 50) for n in range(3000)]
    body = write_jsonl(tmp_path / "big.jsonl", posts).read_bytes()
    assert len(body) > 1_400_000

    response = owner_client.post(
        reverse("home"), {"term": "kept", "source": "archive", "archive": SimpleUploadedFile("big.jsonl", body)}
    )

    assert response.status_code == 200
    errors = field_errors(response.content.decode(), "archive")
    assert "The server's disk is full: big.jsonl could not be stored" in errors, errors
    assert "nothing of it was kept" in errors and "DNFLOW_DATA_DIR" in errors
    assert "manage.py run_search --archive FILE" in errors
    assert 'value="kept"' in response.content.decode()
    assert not Search.objects.exists()
    assert _files_under(small_disk) == []
    assert _files_under(uploads_disk / "uploads") == []
    # Nothing half-written holds the space: a small archive fits afterwards.
    small = SimpleUploadedFile("small.jsonl", small_archive(tmp_path / "small.jsonl").read_bytes())
    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": small}, follow=True)
    search = Search.objects.get()
    assert Path(search.archive_path).is_file(), field_errors(response.content.decode(), "archive")


# --- storms of errors from the X API --------------------------------------------------------------


@pytest.fixture
def quick_waits(monkeypatch, settings):
    """Backoff in hundredths of a second and rate-limit waits of a fifth: the same logic, fast."""
    monkeypatch.setattr(pipeline.xapi_client, "BACKOFF_BASE_SECONDS", 0.01)
    settings.DNFLOW_MAX_RATE_LIMIT_WAIT = 0.2
    settings.DNFLOW_API_RETRIES = 4


def live_search(count: int) -> Search:
    return services.create_search(term="#kpop", source=Source.RECENT, count=count, enqueue=False)


def test_a_storm_of_5xx_and_429_within_the_budgets_still_collects_every_post(x_api, quick_waits):
    storm = [Fault.server_error(503), Fault.server_error(500), Fault.rate_limit_without_reset()] * 3
    x_api.fail_next(*storm[:4], Fault.normal(), *storm[4:], Fault.normal(), Fault.server_error(502))

    search = services.execute_search(live_search(250))

    assert search.status == Status.FINISHED, search.error
    assert search.num_posts == 250
    assert (search.folder_path / "tweet-ids.txt").read_text().split() == [p["id"] for p in x_api.posts[:250]]
    statuses = [r.status for r in x_api.search_requests()]
    assert statuses.count(200) == 3 and statuses.count(429) == 3 and len(statuses) == 3 + len(storm) + 1
    waits = TaskEvent.objects.filter(run=search, event__in=[EventKind.RETRY, EventKind.RATE_LIMIT]).count()
    assert waits >= len(storm)  # each wait was on the search's timeline
    assert search.rate_limited_until is None


@pytest.mark.parametrize(
    "storm,says",
    [
        ([Fault.server_error(503)] * 5, "Gave up after 5 tries: the X API answered 503"),
        ([Fault.drop()] * 5, "Gave up after 5 tries: could not reach the X API"),
        ([Fault.rate_limit_without_reset()] * 9, "still answered 'too many requests' after 8 waits"),
    ],
    ids=["5xx", "dropped connections", "429"],
)
def test_a_storm_past_the_budget_fails_the_search_clearly_and_keeps_what_was_collected(x_api, quick_waits, storm, says):
    x_api.fail_next(Fault.normal(), *storm)

    search = services.execute_search(live_search(250))

    assert search.status == Status.FAILED
    assert says in search.error and "try again later" in search.error
    assert "collected so far are kept" in search.error
    assert len(x_api.search_requests()) == 1 + len(storm)  # bounded: it stopped trying
    assert search.rate_limited_until is None
    assert (search.folder_path / "collect-state.json").is_file()
    assert_no_complete_outputs(search.folder_path)

    services.rerun_search(search.search, enqueue=False)  # X is fine again: the rerun resumes and finishes
    search = services.execute_search(search.search)
    assert (search.status, search.num_posts) == (Status.FINISHED, 250)


@pytest.mark.parametrize("error", ["database is locked", "terminating connection due to administrator command"])
def test_a_step_the_database_failed_says_so_and_how_to_go_on(error):
    """As Django raises them when SQLite stays locked or PostgreSQL drops the connection."""
    from django.db import OperationalError

    from pipeline.errors import plain_reason

    reason = plain_reason(OperationalError(error), "Counting hashtags, mentions, URLs and more")
    assert reason.startswith("Database unavailable: Counting hashtags, mentions, URLs and more could not use")
    assert error in reason and "DATABASE_URL" in reason and "run the search again: completed steps are kept" in reason


def test_a_record_the_database_refused_is_logged_in_one_line_and_a_bug_with_its_traceback(caplog):
    """A foreground run_search prints this log: a locked database is said once a report, not as a traceback."""
    from django.db import OperationalError

    with caplog.at_level(logging.ERROR, logger="dnflow.events"):
        for error in (OperationalError("database is locked\nmore"), KeyError("step")):
            try:
                raise error
            except Exception as exc:  # noqa: BLE001 -- as the event writers catch it
                events._log_lost(exc, "could not record progress of %s for run #%s", "SummarisePosts_x", 7)
    database, bug = caplog.records
    assert database.getMessage() == (
        "could not record progress of SummarisePosts_x for run #7 (the database: OperationalError: database is locked)"
    )
    assert database.exc_info is None
    assert bug.getMessage() == "could not record progress of SummarisePosts_x for run #7" and bug.exc_info


@pytest.fixture
def database_not_answering(tmp_path):
    """The database fails this process's next query as it does when it is unavailable: PostgreSQL
    drops the connection (a restart); SQLite stays locked by another process past the wait."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        drop_database_connection()
        yield
        return
    import sqlite3

    connection.close()
    options = connection.settings_dict.setdefault("OPTIONS", {})
    waited = options.get("timeout")
    options["timeout"] = 0.2  # the lock outlasts this process's wait (20 s in production)
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        connection.close()
        options["timeout"] = waited


def test_a_page_the_database_cannot_serve_is_a_503_that_says_so(owner_client, owner, request):
    from django.urls import reverse

    from .web_helpers import make_search

    search = make_search(owner, status=Status.RUNNING)
    request.getfixturevalue("database_not_answering")

    response = owner_client.post(reverse("search_cancel", args=[search.pk]))

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "The database is not answering" in page and "what you asked for may not have been done" in page
    assert "Something went wrong" not in page


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL drops a reader's connection")
def test_the_command_s_progress_goes_on_after_the_database_dropped_its_connection(owner):
    """run_search's progress thread died with a traceback at the first dropped connection, and the
    terminal showed no more progress for the rest of the run."""
    import io
    import time

    import psycopg

    from searches.management.commands.run_search import ProgressWatcher

    from .web_helpers import make_search

    run = make_search(owner, status=Status.RUNNING, step="Copying", progress=5.0).latest_run
    from django.core.management.base import OutputWrapper

    printed = io.StringIO()
    watcher = ProgressWatcher(run.pk, OutputWrapper(printed), tty=False)

    def shows(step: str) -> bool:
        for _ in range(50):
            if step in printed.getvalue():
                return True
            time.sleep(0.1)
        return False

    watcher.start()
    try:
        assert shows("Copying")
        with psycopg.connect(connection.connection.info.dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                [connection.connection.info.backend_pid],
            )
        SearchRun.objects.filter(pk=run.pk).update(step="Counting: 2,000 posts so far", progress=40.0)
        assert shows("Counting: 2,000 posts so far"), printed.getvalue()
    finally:
        watcher.stop()


def test_a_foreground_run_whose_end_the_database_could_not_record_says_how_to_resume_it(tmp_path, monkeypatch):
    """Recording the outcome failed on the first connection and on a new one: the general advice
    ("run this again") would have started another search and left this one "running"."""
    from django.core.management import CommandError, call_command
    from django.db import OperationalError

    from searches import execute

    def database_gone(run, ok, error):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(execute, "_record_outcome", database_gone)
    archive = small_archive(tmp_path / "a.jsonl")

    with pytest.raises(CommandError) as refused:
        call_command("run_search", "--archive", str(archive))

    search = Search.objects.get()
    assert refused.value.returncode == 1
    message = str(refused.value)
    assert message.startswith(f"The database stopped answering while search #{search.pk} ran (OperationalError: ")
    assert f"`manage.py run_search --again {search.pk}` resumes it, or says how to" in message
