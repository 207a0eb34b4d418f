"""The log-in brake holds across web processes and cannot be reset without the password.

The basic rules (five failures, per username and address, a success resets, the admin too) are
in tests/test_access.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import global_settings
from django.core.cache import caches
from django.urls import reverse

from searches.views.accounts import LOGIN_FAILURE_LIMIT

from .conftest import TEST_REDIS_URL
from .hardening_helpers import free_port
from .worker_helpers import PROJECT_DIR, worker_database_url

WRONG = "Please enter a correct username and password"
BRAKED = "Too many failed log-in attempts"
WEB_PROCESSES = 4


@pytest.fixture
def login_attempts():
    """The brake's counts, empty before and after (transactional tests do not roll them back)."""
    caches["logins"].clear()
    yield caches["logins"]
    caches["logins"].clear()


@pytest.mark.django_db
def test_an_empty_password_does_not_reset_the_count(client, owner, login_attempts):
    url = reverse("login")
    for _ in range(LOGIN_FAILURE_LIMIT - 1):
        assert WRONG in client.post(url, {"username": "alice", "password": "wrong"}).content.decode()

    client.post(url, {"username": "alice", "password": ""})  # no password checked: nothing counted or reset

    assert WRONG in client.post(url, {"username": "alice", "password": "wrong"}).content.decode()
    response = client.post(url, {"username": "alice", "password": "alice-password-1"})
    assert BRAKED in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.fixture
def web_server(tmp_path):
    """`gunicorn -w 4 dnflow_site.wsgi` on a free port and the test database; its access log names the
    process that answered each request."""
    port = free_port()
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "REDIS_URL": TEST_REDIS_URL,
        "DNFLOW_DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "1",
    }
    command = [sys.executable, "-m", "gunicorn", "-w", str(WEB_PROCESSES), "-b", f"127.0.0.1:{port}"]
    command += ["--access-logfile", str(access_log), "--access-logformat", "%(p)s %(m)s %(U)s %(s)s"]
    command.append("dnflow_site.wsgi")
    with open(tmp_path / "gunicorn.log", "wb") as output:
        server = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=output, stderr=output)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + reverse("login"), timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("gunicorn did not start:\n" + (tmp_path / "gunicorn.log").read_text())
            time.sleep(0.2)
        yield base, access_log
    finally:
        server.terminate()
        server.wait(timeout=30)


def log_in(base: str, username: str, password: str) -> str:
    """A browser of its own: fetch the form (and its CSRF cookie), post it; the page that comes back."""
    with requests.Session() as browser:
        url = base + reverse("login")
        browser.get(url, timeout=30)
        form = {"username": username, "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        return browser.post(url, data=form, headers={"Referer": url}, timeout=60).text


@pytest.mark.django_db(transaction=True)
def test_wrong_passwords_spread_over_four_web_processes_are_refused_after_the_limit(
    django_user_model, settings, login_attempts, web_server
):
    base, access_log = web_server
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # the server's own hashers must read it
    django_user_model.objects.create_user("dora", password="dora-password-1")
    attempts = 3 * WEB_PROCESSES

    # Four at a time: a busy process cannot take the next one, so they spread over the processes.
    with ThreadPoolExecutor(WEB_PROCESSES) as browsers:
        pages = list(browsers.map(lambda _: log_in(base, "dora", "wrong"), range(attempts)))

    answered_by = {line.split()[0] for line in access_log.read_text().splitlines() if " POST " in line}
    assert len(answered_by) >= 2, "the attempts did not spread over the processes"
    checked = sum(WRONG in page for page in pages)
    refused = sum(BRAKED in page for page in pages)
    assert (checked, refused) == (LOGIN_FAILURE_LIMIT, attempts - LOGIN_FAILURE_LIMIT), answered_by
    assert BRAKED in log_in(base, "dora", "dora-password-1")  # even the right password, for now
