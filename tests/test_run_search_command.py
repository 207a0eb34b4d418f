"""`manage.py run_search`: run from a real shell process where the exit code and the last line matter."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import django_rq
import orjson
import pytest
from django.core.management import CommandError, call_command

from pipeline.contract import temporaries
from pipeline.sample.generator import generate_posts
from searches.models import Search, SearchRun, Source, Status

from .conftest import TEST_REDIS_URL
from .pipeline_helpers import SPECS, WRITERS, v1_tweet
from .worker_helpers import worker_database_url
from .x_emulator import Fault  # noqa: F401 -- the emulator module provides the x_api fixture

pytest_plugins = ["tests.x_emulator"]
pytestmark = pytest.mark.django_db(transaction=True)

PROJECT = Path(__file__).resolve().parent.parent


def manage_env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": TEST_REDIS_URL,  # its heartbeats: never REDIS_URL's database, which may be a real queue
        "DNFLOW_DATA_DIR": str(data_dir),
        "X_BEARER_TOKEN": "",
        "DNFLOW_FETCH_PHOTOS": "1",
    }


def manage(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "run_search", *args],
        cwd=PROJECT,
        env=manage_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_archive_without_a_term_prints_the_output_folder_last(tmp_path, data_dir):
    archive = WRITERS["v1"](tmp_path / "climate.jsonl")

    done = manage(data_dir, "--archive", str(archive))

    assert done.returncode == 0, done.stderr
    folder = Path(last_line(done.stdout))
    assert folder.is_absolute() and folder.parent == data_dir
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["source"], summary["num_tweets"], summary["status"]) == ("archive", 5, "finished")
    search = Search.objects.get()
    assert (search.status, search.latest_run.folder) == (Status.FINISHED, folder.name)
    assert "Traceback" not in done.stderr


def test_an_archive_with_a_broken_line_says_which_line_was_skipped(data_dir, real_data):
    done = manage(data_dir, "--archive", str(real_data / "v2-stream-broken-last-line.jsonl"))

    assert done.returncode == 0, done.stderr
    assert "finished: 7 posts" in done.stdout
    assert "skipped 1 malformed line" in done.stderr
    assert "line 8" in done.stderr
    assert Path(last_line(done.stdout)).is_dir()


def test_a_term_without_credentials_searches_the_bundled_sample(data_dir):
    done = manage(data_dir, "climate")

    assert done.returncode == 0, done.stderr
    folder = Path(last_line(done.stdout))
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["source"], summary["term"], summary["synthetic"]) == ("sample", "climate", True)
    assert summary["num_tweets"] > 0
    assert (folder / f"{folder.name}.zip").is_file()
    # Progress went to stderr as plain lines (no terminal here), one per step seen.
    assert "Search #" in done.stderr and "%" in done.stderr


def test_a_bad_archive_is_refused_before_anything_is_saved(tmp_path, data_dir):
    junk = tmp_path / "notes.jsonl"
    junk.write_text('{"hello": "world"}\n')

    done = manage(data_dir, "--archive", str(junk))

    assert done.returncode == 2  # bad input, said at once: nothing ran
    assert "none of its first lines is an X/Twitter post" in done.stderr
    assert "Traceback" not in done.stderr and "CommandError" not in done.stderr
    assert not Search.objects.exists()


def test_bad_input_exits_with_2_and_says_what_to_fix(tmp_path, data_dir):
    missing = manage(data_dir, "--archive", str(tmp_path / "nowhere.jsonl"))
    assert missing.returncode == 2
    assert f"No file or folder at {tmp_path / 'nowhere.jsonl'}" in missing.stderr

    live = manage(data_dir, "climate", "--source", "recent")
    assert live.returncode == 2
    assert "No X API credentials: set X_BEARER_TOKEN" in live.stderr

    when = manage(data_dir, "climate", "--start", "last tuesday")
    assert when.returncode == 2
    assert "--start 'last tuesday' is not an ISO 8601 time" in when.stderr
    assert not Search.objects.exists()  # nothing was saved for bad input


def test_validation_errors_reach_callers_of_call_command(settings):
    with pytest.raises(CommandError) as raised:
        call_command("run_search", "climate", "--count", "0", "--source", "sample")
    assert raised.value.returncode == 2
    assert "--count: Ask for at least 1 post" in str(raised.value)
    # Below Django's own bound of the field too, the problem is said once, in the search's words.
    with pytest.raises(CommandError) as raised:
        call_command("run_search", "climate", "--count", "-5", "--source", "sample")
    assert str(raised.value) == "--count: Ask for at least 1 post (got -5), or leave the count empty to take them all."


def test_several_archive_files_are_imported_together_in_order_for_an_owner(tmp_path, settings, owner):
    settings.DNFLOW_FETCH_PHOTOS = False
    lines = [json.dumps(v1_tweet(spec)) for spec in SPECS]
    first, second = tmp_path / "part1.jsonl", tmp_path / "part2.data"
    first.write_text("\n".join(lines[:3]) + "\n")
    second.write_text("\n".join(lines[3:]) + "\n")
    out = StringIO()

    call_command(
        "run_search",
        "--archive",
        str(first),
        "--archive",
        str(second),
        "--owner",
        "alice",
        stdout=out,
        stderr=StringIO(),
    )

    folder = Path(last_line(out.getvalue()))
    assert (folder / "tweet-ids.txt").read_text().split() == ["1001", "1002", "1003", "1004", "1005"]
    search = Search.objects.get()
    assert search.owner == owner
    # Named as given, not by the folder of links they are read from.
    assert search.title == "part1.jsonl + part2.data"
    assert json.loads((folder / "summary.json").read_text())["archive"] == "part1.jsonl + part2.data"

    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("run_search", "--archive", str(first), "--owner", "nobody")


def test_enqueue_saves_and_queues_and_prints_the_id(settings):
    queue = django_rq.get_queue("default")
    queue.empty()
    out = StringIO()
    try:
        call_command("run_search", "climate", "--enqueue", stdout=out)
        search = Search.objects.get()
        assert last_line(out.getvalue()) == str(search.pk)
        assert (search.status, search.source) == (Status.QUEUED, Source.SAMPLE)
        assert search.latest_run.rq_job_id in queue.job_ids
    finally:
        queue.empty()


def test_estimate_prints_the_total_cost_and_days_and_collects_nothing(x_api):
    out = StringIO()

    call_command("run_search", "#kpop", "--estimate", "--source", "recent", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("about ") and "per post read" in lines[0]
    assert len(lines) >= 2 and all(line.startswith("  20") for line in lines[1:])
    assert not Search.objects.exists()
    assert not x_api.search_requests()


def test_estimate_prices_only_the_posts_the_count_lets_the_search_read(x_api):
    out = StringIO()

    call_command("run_search", "#kpop", "--estimate", "--source", "recent", "--count", "100", stdout=out)

    first = out.getvalue().splitlines()[0]
    assert first.startswith("about 500 posts match") and "reads at most 100 -- at most $0.50" in first


# --- make demo's owner ---------------------------------------------------------------------------


def demo_owner() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("demo_owner", stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_the_demo_search_belongs_to_a_demo_user_made_once_with_a_password_said_once(client, django_user_model):
    username, said = demo_owner()
    assert username == "demo"
    password = said.split("with the password ", 1)[1].split(" ", 1)[0]
    assert client.login(username="demo", password=password)

    again, said_again = demo_owner()
    assert again == "demo" and password not in said_again and "changepassword demo" in said_again
    assert django_user_model.objects.count() == 1


def test_the_demo_search_belongs_to_the_first_superuser_when_there_is_one(django_user_model):
    django_user_model.objects.create_user("zed")
    django_user_model.objects.create_superuser("root", password="root-password-1")
    django_user_model.objects.create_superuser("second", password="second-password-1")
    assert demo_owner()[0] == "root"
    assert not django_user_model.objects.filter(username="demo").exists()


def test_make_demo_s_search_is_its_owner_s_on_the_web(client, data_dir, django_user_model):
    username, said = demo_owner()
    password = said.split("with the password ", 1)[1].split(" ", 1)[0]
    call_command("run_search", "climate", "--owner", username, "--count", "50", stdout=StringIO(), stderr=StringIO())
    search = Search.objects.get()
    assert search.owner.get_username() == "demo" and search.latest_run.status == Status.FINISHED
    client.login(username=username, password=password)
    assert f"#{search.pk} climate" in client.get("/").content.decode()


@pytest.mark.parametrize(
    "stops", [[signal.SIGTERM], [signal.SIGHUP], [signal.SIGINT] * 3], ids=["SIGTERM", "SIGHUP", "Ctrl-C thrice"]
)
def test_a_foreground_run_stopped_by_a_signal_keeps_what_it_finished_and_resumes_with_again(tmp_path, data_dir, stops):
    """A closed terminal (SIGHUP), `timeout` or a service manager (SIGTERM) stop a foreground run
    as Ctrl-C does: it ends as failed, leaves no temporary file, and `--again` finishes it. Ctrl-C
    pressed again while it stops does not cut its clean-up short (the process died of it, exit 130)."""
    archive = tmp_path / "synthetic.jsonl"  # SYNTHETIC, about 90 MiB: counted for a few seconds
    archive.write_bytes(b"".join(orjson.dumps(post) + b"\n" for post in generate_posts(60000, seed=5, fmt="v1")))
    env = {**manage_env(data_dir), "DNFLOW_FETCH_PHOTOS": "0"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_search", "--archive", str(archive)],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not SearchRun.objects.filter(status=Status.RUNNING, step__startswith="Counting").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    for stop in stops:
        process.send_signal(stop)
        time.sleep(0.03)
    out, err = process.communicate(timeout=60)

    search = Search.objects.with_runs().get()
    assert process.returncode == 1, err
    assert err.strip().endswith(
        f"Interrupted. Search #{search.pk} keeps what it finished: resume it with "
        f"`manage.py run_search --again {search.pk}`, or 'run again' on its page or in the admin."
    )
    assert search.latest_run.status == Status.FAILED
    assert temporaries(search.latest_run.folder_path) == []
    assert not (search.latest_run.folder_path / "summary.json").exists()

    again = manage(data_dir, "--again", str(search.pk))

    assert again.returncode == 0, again.stderr
    search = Search.objects.with_runs().get()
    assert (search.runs.count(), search.latest_run.status, search.latest_run.num_posts) == (1, Status.FINISHED, 60000)
    assert Path(last_line(again.stdout)) == search.latest_run.folder_path.resolve()


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path, data_dir):
    archive = WRITERS["v1"](tmp_path / "climate.jsonl")
    command = f"{sys.executable} manage.py run_search --archive {archive} | head -1"
    piped = subprocess.run(
        ["bash", "-c", command], cwd=PROJECT, env=manage_env(data_dir), capture_output=True, text=True, timeout=120
    )
    assert re.match(r"Search #\d+ finished: 5 posts", piped.stdout), piped.stdout
    assert "Traceback" not in piped.stderr and "BrokenPipeError" not in piped.stderr, piped.stderr
    assert Search.objects.get().status == Status.FINISHED


def test_again_collects_a_finished_search_anew_and_refuses_one_still_running(tmp_path, data_dir):
    archive = WRITERS["v1"](tmp_path / "climate.jsonl")
    assert manage(data_dir, "--archive", str(archive)).returncode == 0
    search = Search.objects.get()

    again = manage(data_dir, "--again", str(search.pk))

    assert again.returncode == 0, again.stderr
    assert list(search.runs.order_by("number").values_list("status", flat=True)) == [Status.FINISHED] * 2

    search.start_run().runs().claim()  # as a run whose process was killed leaves it
    refused = manage(data_dir, "--again", str(search.pk))
    assert refused.returncode == 2
    assert f"Search #{search.pk} is still running. If the process running it was killed" in refused.stderr
    assert "`manage.py reconcile_searches`" in refused.stderr
    # Not "run this again": a worker resumes it once reconcile has queued it, and two would pay twice.
    assert "a running worker then resumes it" in refused.stderr
    assert f"`manage.py run_search --again {search.pk}` resumes it here once reconcile has queued it" in refused.stderr
    assert manage(data_dir, "--again", "999").stderr.strip() == "No search #999: see the admin for the ids."
    # Run as it was saved: what would make another search (or spend on an estimate) is refused.
    mixed = manage(data_dir, "--again", str(search.pk), "--estimate", "--count", "5", "climate")
    assert mixed.returncode == 2
    assert mixed.stderr.strip() == (
        f"--again runs search #{search.pk} as it was saved, so it takes no --count, --estimate, a query: "
        "leave them out, or start a new search with them."
    )
    assert search.runs.count() == 3


def test_again_does_not_quietly_collect_a_finished_x_api_search_anew(tmp_path, data_dir, owner):
    """Killed, then resumed by a worker unseen: `--again` found it finished and read every post from
    X again, paid twice. A new collection of a search that reads X is asked for in words."""
    from tests.web_helpers import make_search

    search = make_search(owner, source=Source.RECENT, term="#kpop", count=100)

    refused = manage(data_dir, "--again", str(search.pk))

    assert refused.returncode == 2
    assert f"Search #{search.pk} has finished (run 1, " in refused.stderr
    assert "there is nothing to resume" in refused.stderr and "add --collect-again" in refused.stderr
    assert search.runs.count() == 1
    asked = manage(data_dir, "--again", str(search.pk), "--collect-again")
    assert "nothing to resume" not in asked.stderr
    assert search.runs.count() == 2, asked.stderr


def test_again_with_enqueue_hands_the_resumed_run_to_a_worker_and_prints_the_id(tmp_path, data_dir, empty_queue):
    archive = WRITERS["v1"](tmp_path / "climate.jsonl")
    assert manage(data_dir, "--archive", str(archive)).returncode == 0
    search = Search.objects.get()
    run = search.latest_run
    SearchRun.objects.filter(pk=run.pk).update(status=Status.FAILED, error="the machine went down")

    queued = manage(data_dir, "--again", str(search.pk), "--enqueue")

    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.strip() == str(search.pk)
    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.rq_job_id, "resumed in its own run, on the queue"
    assert [job.id for job in empty_queue.get_jobs()] == [run.rq_job_id]
    # Queued already: nothing is queued twice.
    twice = manage(data_dir, "--again", str(search.pk), "--enqueue")
    assert twice.returncode == 2
    assert f"Search #{search.pk} is queued already: a worker runs it once one is free" in twice.stderr
    assert len(empty_queue.get_jobs()) == 1


def test_a_query_that_starts_with_a_minus_is_shown_where_it_goes(tmp_path, data_dir):
    archive = WRITERS["v1"](tmp_path / "climate.jsonl")

    refused = manage(data_dir, "--archive", str(archive), "-is:retweet")

    assert refused.returncode == 2
    assert "A query that starts with '-' goes after --: run_search ... -- '-is:retweet'" in refused.stderr
    assert manage(data_dir, "--archive", str(archive), "--", "-is:retweet").returncode == 0


def test_an_estimate_without_a_token_says_the_token_is_missing(data_dir):
    refused = manage(data_dir, "--estimate", "climate")
    assert refused.returncode == 2
    assert "X_BEARER_TOKEN is not set: set it to your app's bearer token" in refused.stderr
    assert "archives and the sample cost nothing" not in refused.stderr
