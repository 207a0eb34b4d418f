"""The test suite never touches a Redis database that is not its own.

Each test runs a small pytest session of the real suite in a child process, against a
redis-server of its own, and looks at that server's databases afterwards. The child gets its own
SQLite database too, so it never meets the test database of this session.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import redis

from .hardening_helpers import private_redis
from .worker_helpers import PROJECT_DIR

# A test that queues a search and empties the tests' Redis database as it goes (conftest.empty_test_redis).
REDIS_USING_TEST = "tests/test_reconcile.py::test_admin_action_reconciles_the_selected_searches"
REAL_KEY = "rq:queue:default"  # what a real queue holds


def run_child_session(tmp_path, **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'child.sqlite3'}",
        "DNFLOW_DATA_DIR": str(tmp_path / "child-data"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", REDIS_USING_TEST],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def redis_server(tmp_path):
    with private_redis(tmp_path) as server:
        yield server


def database(server, number: int) -> redis.Redis:
    return redis.Redis.from_url(url(server, number))


def url(server, number: int) -> str:
    return f"redis://127.0.0.1:{server.port}/{number}"


def test_the_tests_leave_the_queue_in_redis_url_alone(tmp_path, redis_server):
    real, tests = database(redis_server, 3), database(redis_server, 1)
    real.rpush(REAL_KEY, "someone's real job")

    child = run_child_session(tmp_path, REDIS_URL=url(redis_server, 3), DNFLOW_TEST_REDIS_URL=url(redis_server, 1))

    assert child.returncode == 0, child.stdout + child.stderr
    assert real.lrange(REAL_KEY, 0, -1) == [b"someone's real job"]
    assert real.dbsize() == 1
    assert tests.exists("dnflow:tests:this-database-belongs-to-the-tests")  # the session used its own database


def test_the_tests_refuse_a_test_database_that_holds_keys_they_did_not_put_there(tmp_path, redis_server):
    foreign = database(redis_server, 2)
    foreign.rpush(REAL_KEY, "someone's real job")

    child = run_child_session(tmp_path, REDIS_URL=url(redis_server, 0), DNFLOW_TEST_REDIS_URL=url(redis_server, 2))

    assert child.returncode == 4, child.stdout + child.stderr  # pytest's usage error: nothing ran
    said = child.stdout + child.stderr
    assert f"The tests' Redis database {url(redis_server, 2)} holds 1 keys that the tests did not put there" in said
    assert "point DNFLOW_TEST_REDIS_URL at an empty one" in said
    assert "passed" not in said
    assert foreign.lrange(REAL_KEY, 0, -1) == [b"someone's real job"] and foreign.dbsize() == 1
