"""What the workflow tells the database: TaskEvents per task, progress, plain failure reasons,
re-runs that redo only what did not finish, rate-limit waits, and handler failures that are logged."""

from __future__ import annotations

import logging
import os
import re
from collections import Counter

import orjson
import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError

from pipeline import events
from pipeline import tasks as pipeline_tasks
from pipeline.contract import temporaries
from pipeline.runner import build_workflow
from pipeline.sample.generator import generate_posts
from searches import services
from searches.models import EventKind, Search, SearchRun, Source, Status, TaskEvent

from .pipeline_helpers import WRITERS, archive_search, queued_archive_search
from .x_emulator import Fault

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = pytest.mark.django_db(transaction=True)

FAMILIES = ["CollectPosts", "SummarisePosts", "BuildNetworks", "FetchPhotos", "MatchPhotos", "PackageOutputs"]


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


def events_of(run: SearchRun) -> Counter:
    return Counter((e.task_family, e.event) for e in run.events.all())


def test_each_task_records_its_start_time_and_success_and_the_search_its_progress(tmp_path):
    search = queued_archive_search(WRITERS["v1"](tmp_path / "a.jsonl"))

    search = services.execute_search(search)

    assert (search.status, search.progress, search.num_posts) == (Status.FINISHED, 100.0, 5)
    counts = events_of(search)
    for family in FAMILIES:
        for kind in (EventKind.START, EventKind.SUCCESS, EventKind.PROCESSING_TIME):
            assert counts[(family, kind)] == 1, (family, kind)
    assert counts[("SummarisePosts", EventKind.NOTE)] == 1  # the import skipped a bad line and a duplicate
    timing = search.events.get(task_family="SummarisePosts", event=EventKind.PROCESSING_TIME)
    assert timing.duration is not None and timing.duration >= 0
    started = list(search.events.filter(event=EventKind.START).values_list("task_family", flat=True))
    # In the order of events.STEPS, always: the progress bar only goes forward.
    assert started == FAMILIES
    success = search.events.get(task_family="SummarisePosts", event=EventKind.SUCCESS)
    assert success.message.startswith("5 posts summarised")


def test_progress_is_written_at_a_sensible_rate_not_per_post(real_data, tmp_path):
    search = archive_search(real_data / "v2-pages-twarc-network.jsonl")  # 500 posts
    assert build_workflow(search).ok
    progress_events = search.events.filter(event=EventKind.PROGRESS).count()
    assert progress_events <= 4 * len(FAMILIES)
    search.refresh_from_db()
    assert search.num_posts == 500


def test_copying_a_big_archive_moves_the_bar_and_says_how_much_is_read(tmp_path):
    archive = tmp_path / "big.jsonl"  # SYNTHETIC, about 29 MiB: copied in several reads
    archive.write_bytes(b"".join(orjson.dumps(post) + b"\n" for post in generate_posts(20000, seed=3, fmt="v1")))
    size = f"{archive.stat().st_size / 2**20:.1f} MiB"
    search = queued_archive_search(archive)

    search = services.execute_search(search)

    assert search.status == Status.FINISHED
    copying = search.events.filter(task_family="CollectPosts", event=EventKind.PROGRESS).order_by("pk")
    said = [event.message for event in copying]
    assert len(said) >= 2, said
    for message in said:
        assert re.fullmatch(rf"\d+% of this step: Copying the archive big\.jsonl \([\d.]+ MiB of {size}\)", message)


def test_a_failure_midway_is_recorded_and_a_rerun_redoes_only_what_did_not_finish(tmp_path, monkeypatch):
    real_match = pipeline_tasks.match_photos

    def broken_match(*args, **kwargs):
        raise RuntimeError("the hashing library crashed")

    monkeypatch.setattr(pipeline_tasks, "match_photos", broken_match)
    search = queued_archive_search(WRITERS["twarc2"](tmp_path / "a.jsonl"))

    search = services.execute_search(search)

    assert search.status == Status.FAILED
    assert search.error == "Matching similar photos failed: RuntimeError: the hashing library crashed"
    assert "Traceback" not in search.error
    failure = search.events.get(event=EventKind.FAILURE)
    assert (failure.task_family, failure.message) == ("MatchPhotos", search.error)
    folder = search.folder_path
    assert not (folder / "media-graph.json").exists()
    assert not (folder / f"{folder.name}.zip").exists()

    monkeypatch.setattr(pipeline_tasks, "match_photos", real_match)
    services.rerun_search(search.search, enqueue=False)
    search = services.execute_search(search.search)

    assert (search.status, search.error) == (Status.FINISHED, "")
    counts = events_of(search)
    # Finished tasks were not run again ...
    for family in ("CollectPosts", "SummarisePosts", "FetchPhotos"):
        assert counts[(family, EventKind.START)] == 1, family
    # ... the failed one ran again, announced as a retry, and the rest ran once.
    assert counts[("MatchPhotos", EventKind.START)] == 2
    assert counts[("MatchPhotos", EventKind.RETRY)] == 1
    assert counts[("MatchPhotos", EventKind.SUCCESS)] == 1
    assert counts[("PackageOutputs", EventKind.START)] == 1
    assert (folder / f"{folder.name}.zip").is_file()


def test_an_archive_without_posts_fails_with_the_archives_own_reason(tmp_path):
    junk = tmp_path / "notes.jsonl"
    junk.write_text('{"hello": "world"}\n{"also": "not a post"}\n')
    search = queued_archive_search(junk)

    search = services.execute_search(search)

    assert search.status == Status.FAILED
    assert "none of its first lines is an X/Twitter post" in search.error
    assert search.error.startswith("notes.jsonl")
    assert search.events.get(event=EventKind.FAILURE).task_family == "CollectPosts"


def test_a_query_archives_cannot_answer_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValidationError) as refused:
        queued_archive_search(WRITERS["v1"](tmp_path / "a.jsonl"), term="climate place:Paris")
    assert "place: cannot be used on an archive" in refused.value.message_dict["term"][0]
    assert not Search.objects.exists()


def test_a_failing_event_write_is_logged_and_the_workflow_carries_on(tmp_path, monkeypatch, caplog):
    def refuse(self, *args, **kwargs):
        raise DatabaseError("database is locked")

    monkeypatch.setattr(TaskEvent, "save", refuse)
    search = archive_search(WRITERS["v1"](tmp_path / "a.jsonl"))

    with caplog.at_level(logging.ERROR, logger="dnflow.events"):
        result = build_workflow(search)

    assert result.ok
    messages = [r.getMessage() for r in caplog.records if r.name == "dnflow.events"]
    assert any(m.startswith("could not record the start of CollectPosts") for m in messages)
    assert any(m.startswith("could not record the success of PackageOutputs") for m in messages)
    logged = [r for r in caplog.records if r.name == "dnflow.events"]
    assert all("database is locked" in (r.exc_text or "") or r.exc_info for r in logged)


def test_a_live_search_records_the_rate_limit_wait_and_never_the_token(x_api, settings):
    settings.DNFLOW_MAX_RATE_LIMIT_WAIT = 3
    x_api.fail_next(Fault.normal(), Fault.rate_limit(reset_in=1))
    search = services.create_search(term="#kpop", source=Source.RECENT, count=150, enqueue=False)

    search = services.execute_search(search)

    assert search.status == Status.FINISHED, search.error
    assert search.num_posts == 150
    assert search.rate_limited_until is None  # cleared when the wait ended
    wait = search.events.get(event=EventKind.RATE_LIMIT)
    assert wait.task_family == "CollectPosts"
    assert wait.message.startswith("Waiting for the rate limit until ")
    token = settings.X_BEARER_TOKEN
    for event in search.events.all():
        assert token not in event.message and token not in event.task_id
    assert (search.folder_path / "tweets.jsonl").is_file()
    assert not (search.folder_path / "tweets.jsonl.part").exists()


def test_a_live_collection_stopped_midway_resumes_without_reading_pages_again(x_api):
    x_api.fail_next(Fault.normal(), Fault.usage_cap())
    search = services.create_search(term="#kpop", source=Source.RECENT, count=250, enqueue=False)

    search = services.execute_search(search)

    assert search.status == Status.FAILED
    assert search.error.startswith("Your X API usage cap is used up")
    assert "resumes from there" in search.error
    assert (search.folder_path / "collect-state.json").is_file()
    assert not (search.folder_path / "tweets.jsonl").exists()  # only a finished collection gets the name
    first_run = len(x_api.search_requests())

    services.rerun_search(search.search, enqueue=False)
    search = services.execute_search(search.search)

    assert (search.status, search.num_posts) == (Status.FINISHED, 250)
    again = x_api.search_requests()[first_run:]
    assert [r.params.get("max_results") for r in again] == ["100", "50"]  # pages 2 and 3 only
    assert all(r.params.get("next_token") for r in again)
    ids = (search.folder_path / "tweet-ids.txt").read_text().split()
    assert ids == [post["id"] for post in x_api.posts[:250]]
    counts = events_of(search)
    assert counts[("CollectPosts", EventKind.RETRY)] == 1
    assert counts[("CollectPosts", EventKind.FAILURE)] == 1


def test_cancelling_a_running_search_stops_its_workflow_at_the_next_progress_report(tmp_path, monkeypatch):
    real = pipeline_tasks.summarise_posts

    def cancel_then_summarise(*args, **kwargs):
        search.latest_run.runs().cancel()
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_tasks, "summarise_posts", cancel_then_summarise)
    search = queued_archive_search(WRITERS["v1"](tmp_path / "a.jsonl"))

    search = services.execute_search(search)

    assert search.status == Status.CANCELLED  # the end of the run did not overwrite it
    stopped = search.events.get(event=EventKind.NOTE, task_family="SummarisePosts")
    assert stopped.message == "Stopped here: the run was cancelled, or another worker took it over."
    assert not search.events.filter(event=EventKind.FAILURE).exists()  # cancelled, not failed
    assert not (search.folder_path / "summary.json").exists()
    assert not list(search.folder_path.glob("count-*.csv"))  # nothing half-made looks complete
    assert temporaries(search.folder_path) == []


def test_forked_luigi_workers_record_events_and_the_failure_reason(tmp_path, settings):
    settings.DNFLOW_LUIGI_WORKERS = 2
    search = queued_archive_search(WRITERS["v2"](tmp_path / "a.jsonl"))
    run = services.execute_search(search)
    assert run.status == Status.FINISHED
    assert events_of(run)[("PackageOutputs", EventKind.SUCCESS)] == 1

    junk = tmp_path / "junk.jsonl"
    junk.write_text("[1, 2, 3]\n")
    failed = services.execute_search(queued_archive_search(junk))
    assert failed.status == Status.FAILED
    assert failed.error.startswith("junk.jsonl ")  # read back from the failure event the child wrote


def test_handlers_act_for_our_tasks_only_and_never_twice(tmp_path):
    import luigi

    from pipeline import events
    from pipeline.tasks import RunTask

    class Unrelated(luigi.Task):
        run_id = luigi.IntParameter()

        def output(self):
            return luigi.LocalTarget(str(tmp_path / f"unrelated-{self.run_id}"))

        def run(self):
            self.output().open("w").close()

    search = archive_search(WRITERS["v1"](tmp_path / "a.jsonl"))
    for _ in range(3):
        events.register(RunTask)
    assert build_workflow(search).ok
    assert luigi.build([Unrelated(run_id=search.pk)], local_scheduler=True)

    assert events_of(search)[("CollectPosts", EventKind.START)] == 1
    assert not TaskEvent.objects.filter(task_family="Unrelated").exists()
    for event in (luigi.Event.START, luigi.Event.SUCCESS, luigi.Event.FAILURE, luigi.Event.PROCESSING_TIME):
        assert len(RunTask._event_callbacks[RunTask][event]) == 1


def test_a_term_that_matches_nothing_finishes_with_empty_counts(tmp_path):
    search = queued_archive_search(WRITERS["twarc2"](tmp_path / "a.jsonl"), term="volcano")

    search = services.execute_search(search)

    assert (search.status, search.num_posts) == (Status.FINISHED, 0)
    assert (search.folder_path / "count-hashtags.csv").read_bytes() == b"hashtag,count\r\n"
    assert (search.folder_path / "tweet-ids.txt").read_text() == ""


def test_a_stop_asked_of_the_process_ends_the_workflow_at_its_next_progress_report(tmp_path):
    """What run_search's signal handlers set beside raising KeyboardInterrupt, for where that
    exception is swallowed (the logging module's after-fork hook while the summary pass forks)."""
    search = queued_archive_search(WRITERS["v1"](tmp_path / "a.jsonl"))
    events.stop_asked.set()
    try:
        run = services.execute_search(search)
    finally:
        events.stop_asked.clear()

    assert (run.status, run.error) == (Status.FAILED, events.INTERRUPTED)
    assert not (run.folder_path / "summary.json").exists() and temporaries(run.folder_path) == []


def test_while_luigi_forks_tasks_no_database_connection_crosses_a_fork(monkeypatch):
    """Shared across a fork, a PostgreSQL connection's replies are read by the wrong process: seen
    in CI as "generator raised StopIteration" in forked BuildNetworks and FetchPhotos."""
    from django.db import connection

    from pipeline import runner

    monkeypatch.setattr(runner, "_forking_tasks", True, raising=False)  # as in luigi.build, several workers
    SearchRun.objects.exists()  # the scheduling process has used its connection
    assert connection.connection is not None
    child = os.fork()
    if child == 0:
        os._exit(0 if connection.connection is None else 1)  # the child starts with none of its own
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
