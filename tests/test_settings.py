"""Start-up refuses unsafe production settings, and production settings pass Django's deploy checks."""

import os
import secrets
import subprocess
import sys

from tests.conftest import PROJECT_DIR


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_debug_off_without_secret_key_refuses_to_start():
    result = manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is missing or the local default" in result.stderr


def test_debug_off_with_the_local_default_key_refuses_to_start():
    result = manage("check", DEBUG="0", SECRET_KEY="dnflow-insecure-local-development-key")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_a_malformed_boolean_names_the_variable():
    result = manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_production_settings_pass_the_deploy_checks():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="dnflow.example.org",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_out_of_range_or_of_the_wrong_kind_are_refused_at_start_naming_the_variable():
    """Each was accepted before: a busy loop, an empty sample, every import refused for a limit of
    -1 bytes, a luigid address Luigi spent a minute failing on, a traceback from the logging setup."""
    refused = {
        "DNFLOW_WORKER_HEARTBEAT": ("0", "DNFLOW_WORKER_HEARTBEAT=0 is too small: it takes 1 or more"),
        "DNFLOW_SAMPLE_SIZE": ("-3", "DNFLOW_SAMPLE_SIZE=-3 is too small: it takes 1 or more"),
        "DNFLOW_MAX_ARCHIVE_BYTES": ("-1", "DNFLOW_MAX_ARCHIVE_BYTES=-1 is too small: it takes 0 or more"),
        "DNFLOW_LUIGI_WORKERS": ("0", "DNFLOW_LUIGI_WORKERS=0 is too small"),
        "DNFLOW_RECONCILE_INTERVAL": ("-5", "DNFLOW_RECONCILE_INTERVAL=-5 is too small"),
        "DNFLOW_PRICE_PER_POST": ("-0.5", "DNFLOW_PRICE_PER_POST=-0.5 is too small"),
        "DNFLOW_LUIGI_SCHEDULER_URL": (
            "127.0.0.1:8082",
            "does not start with http:// or https://: write the whole address, for example http://127.0.0.1:8082",
        ),
        "REDIS_URL": ("redis//127.0.0.1:6379/0", "for example redis://127.0.0.1:6379/0"),
        "LOG_LEVEL": ("verbose", "LOG_LEVEL='verbose' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        "DNFLOW_ARCHIVE_IMPORT": ("hardlink", "DNFLOW_ARCHIVE_IMPORT='hardlink' is not one of copy, link"),
    }
    for name, (value, says) in refused.items():
        result = manage("check", **{name: value})
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert says in result.stderr and "Traceback" not in result.stderr, (name, result.stderr)


def test_settings_at_their_bounds_and_in_any_case_are_taken():
    result = manage(
        "check",
        DNFLOW_MAX_ARCHIVE_BYTES="0",
        DNFLOW_LOST_SEARCH_RETRIES="0",
        DNFLOW_SAMPLE_SIZE="1",
        LOG_LEVEL="info",
        DNFLOW_ARCHIVE_IMPORT="Link",
        DNFLOW_LUIGI_SCHEDULER_URL="https://luigid.example.org:8082",
        REDIS_URL="unix:///run/redis/redis.sock",
    )
    assert result.returncode == 0, result.stderr
