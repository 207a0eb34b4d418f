"""Shared test fixtures: a private data folder and Redis database, the real recorded fixtures,
users and a logged-in client, and the settings most tests want.

Redis: the tests never touch the database in REDIS_URL, which may be someone's real queue. They
use DNFLOW_TEST_REDIS_URL (default db 15 of the local server), which they empty as they go, and
they refuse to start if that database holds keys they did not put there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import django_rq
import pytest
import redis

from tests.browser_helpers import browser  # noqa: F401 (the one Chromium fixture, for every browser test)

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Real recorded X API data (see its README): test fixtures only, never published, so they are not
# in this repository. They sit in the team's shared folder beside the checkout, or where
# DNFLOW_REAL_DATA points.
REAL_DATA = Path(os.environ.get("DNFLOW_REAL_DATA") or PROJECT_DIR.parent / "shared" / "data" / "real")
TEST_REDIS_URL = os.environ.get("DNFLOW_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
# Set in the tests' Redis database by the tests, so they know the keys there are theirs to delete.
TEST_REDIS_MARKER = "dnflow:tests:this-database-belongs-to-the-tests"
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def pytest_sessionstart(session) -> None:
    if not (REAL_DATA / "v2-pages-twarc-network.jsonl").is_file():
        raise pytest.UsageError(
            f"The recorded X API fixtures are missing from {REAL_DATA}. Put the team's shared/ folder "
            "beside this checkout, or set DNFLOW_REAL_DATA to the folder that holds them."
        )
    _claim_test_redis()


def _claim_test_redis() -> None:
    try:
        conn = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
        keys = conn.dbsize()
    except redis.RedisError:
        return  # the tests that need Redis fail with their own message; the others run
    if keys and not conn.exists(TEST_REDIS_MARKER):
        raise pytest.UsageError(
            f"The tests' Redis database {TEST_REDIS_URL} holds {keys} keys that the tests did not put there "
            "(a real queue?). The tests empty their database as they go: point DNFLOW_TEST_REDIS_URL at an "
            "empty one (for example redis://127.0.0.1:6379/14)."
        )
    conn.set(TEST_REDIS_MARKER, "1")


def empty_test_redis() -> None:
    """Delete what earlier tests left in the tests' Redis database (keeping the marker)."""
    conn = django_rq.get_connection("default")
    conn.flushdb()
    conn.set(TEST_REDIS_MARKER, "1")


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path) -> Path:
    """Every test writes its outputs into its own folder, never the project's data/."""
    path = tmp_path / "data"
    path.mkdir()
    settings.DNFLOW_DATA_DIR = path
    return path


@pytest.fixture(autouse=True)
def test_redis(settings) -> str:
    """Every test (and every worker it starts) queues on the tests' own Redis database."""
    settings.REDIS_URL = TEST_REDIS_URL
    settings.RQ_QUEUES = {"default": {"URL": TEST_REDIS_URL, "DEFAULT_TIMEOUT": settings.DNFLOW_JOB_TIMEOUT}}
    return TEST_REDIS_URL


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    # Many tests log users in; the default PBKDF2 hasher would spend most of their time.
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


@pytest.fixture
def empty_queue(test_redis):
    """The job queue, empty before and after: searches started here wait on it, no worker runs them."""
    queue = django_rq.get_queue("default")
    empty(queue)
    yield queue
    empty(queue)


def empty(queue) -> None:
    """The queue's jobs and its scheduled ones (a schedule's next slot), which Queue.empty leaves."""
    queue.empty()
    scheduled = queue.scheduled_job_registry
    for job_id in scheduled.get_job_ids():
        scheduled.remove(job_id, delete_job=True)


@pytest.fixture
def no_photo_downloads(settings) -> None:
    # The fixtures' photo hosts are not reachable from here; photo fetching has its own tests.
    settings.DNFLOW_FETCH_PHOTOS = False


@pytest.fixture
def small_disk(tmp_path, settings) -> Path:
    """DNFLOW_DATA_DIR on a real 1 MB tmpfs (needs root; skipped where it cannot be mounted)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    settings.DNFLOW_DATA_DIR = mount_point
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.fail(f"The real fixtures are missing: expected them in {REAL_DATA}")
    return REAL_DATA


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("carol", password="carol-password-1", is_staff=True, is_superuser=True)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def workers(transactional_db, settings, tmp_path):
    """Real `manage.py rqworker` processes on the test database and Redis, started by the test."""
    from .worker_helpers import worker_pool

    with worker_pool(settings, tmp_path) as pool:
        yield pool
