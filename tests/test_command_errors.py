"""What the commands say when they cannot work: one paragraph naming the problem and the fix, no
traceback, and an exit code a script can act on (2: nothing ran, fix the configuration; 1: a
search ran and failed). Real `manage.py` processes."""

from __future__ import annotations

import subprocess

import pytest

from .hardening_helpers import run_cli, synthetic_tweet, write_jsonl
from .worker_helpers import manage

pytestmark = pytest.mark.django_db(transaction=True)

# Nothing listens on port 1.
UNREACHABLE_DATABASE = "postgres://nobody:secret-password@127.0.0.1:1/x"
UNREACHABLE_REDIS = "redis://:secret-password@127.0.0.1:1/0"
COMMANDS = {
    "run_search": ["run_search", "climate"],
    "reconcile_searches": ["reconcile_searches"],
    "rqworker": ["rqworker", "--burst"],
    "recheck_search": ["recheck_search", "1"],
    "purge_unavailable": ["purge_unavailable", "1", "--yes"],
}


def one_paragraph(done: subprocess.CompletedProcess) -> str:
    said = done.stderr.strip()
    assert "Traceback" not in said and "CommandError" not in said, said
    assert len(said.splitlines()) == 1, said
    return said


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_that_cannot_be_reached_exits_2_with_what_to_check(command, tmp_path):
    done = manage(tmp_path / "data", *COMMANDS[command], DATABASE_URL=UNREACHABLE_DATABASE)

    assert done.returncode == 2, done.stderr
    said = one_paragraph(done)
    assert said.startswith("The database could not be used: connection"), said
    assert "port 1 failed: Connection refused" in said
    assert "Check that it is running and that DATABASE_URL (postgresql database 'x' on 127.0.0.1:1)" in said
    assert "secret-password" not in said and done.stdout == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_without_its_tables_exits_2_and_says_to_migrate(command, tmp_path):
    empty = tmp_path / "empty.sqlite3"

    done = manage(tmp_path / "data", *COMMANDS[command], DATABASE_URL=f"sqlite:///{empty}")

    assert done.returncode == 2, done.stderr
    said = one_paragraph(done)
    assert f"The database (the SQLite file {empty}) has no dnflow tables yet" in said
    assert "Create them with manage.py migrate, then run this again." in said


@pytest.mark.parametrize("command", ["reconcile_searches", "rqworker"])
def test_redis_that_cannot_be_reached_at_start_exits_2_with_what_to_check(command, tmp_path):
    done = manage(tmp_path / "data", *COMMANDS[command], REDIS_URL=UNREACHABLE_REDIS)

    assert done.returncode == 2, done.stderr
    said = one_paragraph(done)
    assert said.startswith("Redis could not be reached at redis://:***@127.0.0.1:1/0 (Error 111"), said
    assert "Start Redis or fix REDIS_URL" in said and "secret-password" not in said


@pytest.mark.parametrize(
    "variable,value,says",
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean: use 1/0, true/false, yes/no or on/off."),
        ("DNFLOW_JOB_TIMEOUT", "a day", "DNFLOW_JOB_TIMEOUT='a day' is not a whole number."),
        ("DATABASE_URL", "mysqlx://db/x", "DATABASE_URL is not a database URL dnflow can use (Scheme 'mysqlx://'"),
    ],
)
def test_a_bad_setting_exits_2_and_names_it(variable, value, says, tmp_path):
    done = manage(tmp_path / "data", "run_search", "climate", **{variable: value})

    assert done.returncode == 2, done.stderr
    said = one_paragraph(done)
    assert said.startswith(f"dnflow is not configured correctly: {says}"), said
    assert "Fix that environment variable" in said


def test_a_full_disk_fails_the_search_with_exit_1_and_no_traceback(tmp_path, small_disk):
    posts = [synthetic_tweet(30_000 + n, f"post {n} " + "words " * 70, user=f"user{n % 50}") for n in range(1000)]
    archive = write_jsonl(tmp_path / "archive.jsonl", posts)

    done = run_cli(small_disk, "--archive", str(archive))

    assert done.returncode == 1, done.stderr  # the search ran, and failed
    assert "Traceback" not in done.stderr and "luigi-interface" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Search #") and " failed: Disk full: " in last, last
    assert "Free some space where dnflow keeps its data (DNFLOW_DATA_DIR)" in last
