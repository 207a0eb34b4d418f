"""Live collection through tweepy against the local X API emulator (real HTTP, real recorded pages)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

import pipeline.xapi_client
from pipeline.xapi import XApiError, collect_live, counted_pages, make_client, read_state
from tests.conftest import PROJECT_DIR
from tests.x_emulator import REAL_PAGES, Fault

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture

QUERY = "blacklivesmatter"


@pytest.fixture
def quick_retries(monkeypatch):
    """Retry backoff in hundredths of a second: the behaviour is the same, the test is not slow."""
    monkeypatch.setattr(pipeline.xapi_client, "BACKOFF_BASE_SECONDS", 0.02)


def collect(tmp_path: Path, count: int, name: str = "tweets", **kwargs):
    kwargs.setdefault("query", QUERY)
    kwargs.setdefault("source", "recent")
    return collect_live(
        count=count, raw_path=tmp_path / f"{name}.jsonl", state_path=tmp_path / f"{name}.state.json", **kwargs
    )


def counted_ids(tmp_path: Path, name: str = "tweets") -> list[str]:
    pages = counted_pages(tmp_path / f"{name}.jsonl", tmp_path / f"{name}.state.json")
    return [post["id"] for page in pages for post in page.get("data", [])]


def raw_lines(tmp_path: Path, name: str = "tweets") -> list[bytes]:
    return (tmp_path / f"{name}.jsonl").read_bytes().splitlines()


# --- the emulator itself ---------------------------------------------------------------------------


def test_emulator_gives_back_the_recorded_pages_when_asked_as_they_were_recorded(x_api, settings):
    """At twarc's own fields and 100 per page, the emulator's pages are the recorded ones."""
    recorded = [json.loads(line) for line in REAL_PAGES.read_text().splitlines()]
    twarc_url = recorded[0]["__twarc"]["url"]
    url = x_api.url + twarc_url.removeprefix("https://api.twitter.com")
    headers = {"Authorization": f"Bearer {settings.X_BEARER_TOKEN}"}
    token = None
    for page in recorded:
        answer = requests.get(url, params={"next_token": token} if token else {}, headers=headers, timeout=10)
        assert answer.status_code == 200
        served = answer.json()
        token = served["meta"].pop("next_token", None)
        page.pop("__twarc")
        page["meta"].pop("next_token")
        assert served == page
    assert token is None


def test_emulator_refuses_a_wrong_token_and_never_records_the_token(x_api, settings):
    answer = requests.get(
        f"{x_api.url}/2/tweets/search/recent", params={"query": "x"}, headers={"Authorization": "Bearer no"}, timeout=10
    )
    assert answer.status_code == 401
    assert answer.json()["title"] == "Unauthorized"
    assert x_api.requests[0].authorized is False
    assert "Authorization" not in x_api.requests[0].headers


# --- pages, includes, exact counts -------------------------------------------------------------------


def test_pages_follow_next_token_and_are_stored_exactly_as_received_with_includes(x_api, tmp_path):
    progress = []
    result = collect(tmp_path, 300, on_progress=lambda done, total: progress.append((done, total)))

    assert (result.posts, result.pages, result.resumed) == (300, 3, False)
    searches = x_api.search_requests()
    assert [r.params.get("next_token") for r in searches[1:]] == [
        json.loads(r.body)["meta"]["next_token"] for r in searches[:-1]
    ]
    # Each stored line is the response body byte for byte, appended in order.
    assert raw_lines(tmp_path) == [r.body for r in searches]
    assert progress == [(100, 300), (200, 300), (300, 300)]
    # The expansions and fields the records need were asked for, and came back.
    first = searches[0].params
    assert {"author_id", "referenced_tweets.id", "attachments.media_keys"} <= set(first["expansions"].split(","))
    assert {"created_at", "public_metrics", "entities"} <= set(first["tweet.fields"].split(","))
    for line in raw_lines(tmp_path):
        page = json.loads(line)
        users = {u["id"]: u for u in page["includes"]["users"]}
        assert all(post["author_id"] in users for post in page["data"])
        assert all("followers_count" in u["public_metrics"] for u in users.values())
        assert page["includes"]["tweets"]  # retweeted originals are kept
        assert all("created_at" in post and "public_metrics" in post for post in page["data"])
    assert counted_ids(tmp_path) == [post["id"] for post in x_api.posts[:300]]
    state = read_state(tmp_path / "tweets.state.json")
    assert state["done"] is True
    assert state["raw_bytes"] == (tmp_path / "tweets.jsonl").stat().st_size


def test_count_250_stops_exactly_without_reading_more_than_needed(x_api, tmp_path):
    result = collect(tmp_path, 250)

    assert result.posts == 250
    assert [r.params["max_results"] for r in x_api.search_requests()] == ["100", "100", "50"]
    assert counted_ids(tmp_path) == [post["id"] for post in x_api.posts[:250]]
    assert sum(len(json.loads(line)["data"]) for line in raw_lines(tmp_path)) == 250


def test_count_below_the_api_minimum_stores_the_page_whole_and_counts_only_what_was_asked(x_api, tmp_path):
    result = collect(tmp_path, 5)

    assert result.posts == 5
    [request] = x_api.search_requests()
    assert request.params["max_results"] == "10"  # the API refuses fewer
    assert raw_lines(tmp_path) == [request.body]  # the page as received, all 10 posts
    assert len(json.loads(raw_lines(tmp_path)[0])["data"]) == 10
    state = read_state(tmp_path / "tweets.state.json")
    assert (state["posts"], state["counted_in_last_page"], state["done"]) == (5, 5, True)
    assert counted_ids(tmp_path) == [post["id"] for post in x_api.posts[:5]]


def test_full_archive_asks_for_up_to_500_per_page(x_api, tmp_path):
    result = collect(tmp_path, 500, source="all")

    assert (result.posts, result.pages) == (500, 1)
    [request] = x_api.search_requests()
    assert (request.path, request.params["max_results"]) == ("/2/tweets/search/all", "500")


def test_language_and_dates_reach_the_api_and_a_search_ends_when_x_has_no_more(x_api, tmp_path):
    italian = [post["id"] for post in x_api.posts if post["lang"] == "it"]
    start = datetime(2021, 6, 26, 21, 0, tzinfo=timezone.get_fixed_timezone(120))  # 19:00 UTC
    result = collect(tmp_path, 1000, lang="it", start_time=start)

    first = x_api.search_requests()[0].params
    assert first["query"] == f"{QUERY} lang:it"
    assert first["start_time"] == "2021-06-26T19:00:00Z"
    assert result.posts == len(italian) < 1000
    assert counted_ids(tmp_path) == italian
    assert read_state(tmp_path / "tweets.state.json")["done"] is True


# --- waits and retries -----------------------------------------------------------------------------------


def test_a_rate_limit_is_waited_out_until_its_reset_and_the_collection_completes(x_api, tmp_path):
    x_api.fail_next(Fault.normal(), Fault.rate_limit(reset_in=2))
    waits = []
    started = time.monotonic()
    result = collect(tmp_path, 300, on_wait=lambda until, reason: waits.append((until, reason)))
    elapsed = time.monotonic() - started

    assert result.posts == 300
    statuses = [r.status for r in x_api.search_requests()]
    assert statuses == [200, 429, 200, 200]  # waited: no early retry hit the window again
    limited, retry = x_api.search_requests()[1:3]
    reset = int(limited.response_headers["x-rate-limit-reset"])
    assert retry.at >= reset
    (until, reason), (end, end_reason) = waits
    assert (
        until.tzinfo is not None
        and abs(until.timestamp() - (reset + pipeline.xapi_client.RATE_LIMIT_MARGIN_SECONDS)) < 0.01
    )
    assert reason == f"waiting for the rate limit until {timezone.localtime(until):%H:%M:%S}"
    assert (end, end_reason) == (None, "")
    assert elapsed < 6  # the wait (2-3 s past the reset) and three quick pages
    assert counted_ids(tmp_path) == [post["id"] for post in x_api.posts[:300]]


def test_a_rate_limit_without_a_reset_header_backs_off_within_the_configured_bound(x_api, tmp_path, settings):
    settings.DNFLOW_MAX_RATE_LIMIT_WAIT = 1
    x_api.fail_next(Fault.rate_limit_without_reset())
    result = collect(tmp_path, 20)

    limited, retry = x_api.search_requests()
    assert (limited.status, retry.status, result.posts) == (429, 200, 20)
    assert 0.9 <= retry.at - limited.at < 2.5


def test_server_errors_and_dropped_connections_are_retried(x_api, tmp_path, quick_retries):
    x_api.fail_next(Fault.server_error(503), Fault.drop(), Fault.normal(), Fault.server_error(502))
    reasons = []
    result = collect(tmp_path, 200, on_wait=lambda until, reason: reasons.append(reason))

    assert result.posts == 200
    assert [r.status for r in x_api.search_requests()] == [503, 0, 200, 502, 200]
    assert counted_ids(tmp_path) == [post["id"] for post in x_api.posts[:200]]
    assert "503" in reasons[0] and "trying again" in reasons[0]
    assert "closed without an answer" in reasons[2]


def test_a_request_that_times_out_is_retried(x_api, tmp_path, quick_retries, monkeypatch):
    monkeypatch.setattr(pipeline.xapi_client, "REQUEST_TIMEOUT", (2, 0.5))
    x_api.fail_next(Fault.stall(1.2))
    waits = []
    assert collect(tmp_path, 10, on_wait=lambda until, reason: waits.append(reason)).posts == 10
    assert len(x_api.search_requests()) >= 2
    assert "no answer in time" in waits[0]


def test_x_failing_past_the_retries_stops_with_a_retryable_error_and_the_run_resumes_later(
    x_api, tmp_path, settings, quick_retries
):
    settings.DNFLOW_API_RETRIES = 2
    x_api.fail_next(Fault.normal(), *[Fault.server_error(503)] * 3)
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 300)
    assert failure.value.retryable is True
    assert "3 tries" in str(failure.value) and "try again later" in str(failure.value)
    assert "kept" in str(failure.value)
    assert read_state(tmp_path / "tweets.state.json")["posts"] == 100

    result = collect(tmp_path, 300)
    assert (result.posts, result.resumed) == (300, True)
    assert counted_ids(tmp_path) == [post["id"] for post in x_api.posts[:300]]


# --- refusals, explained ---------------------------------------------------------------------------------------


def test_a_bad_query_ends_with_the_apis_own_message(x_api, tmp_path):
    message = "There were errors processing your request: Reference to invalid operator 'lnag' (at position 18)"
    x_api.fail_next(Fault.bad_request(message))
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 100)
    assert message in str(failure.value)
    assert "Fix the search terms" in str(failure.value)
    assert failure.value.retryable is False
    assert len(x_api.search_requests()) == 1  # no retry of a refusal


def test_a_start_time_older_than_the_recent_window_is_refused_in_plain_words(x_api, tmp_path):
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 100, start_time=x_api.now - timedelta(days=8))
    assert "HTTP 400" in str(failure.value) and "start_time" in str(failure.value)


def test_a_wrong_token_ends_with_what_to_do_and_never_shows_the_token(x_api, tmp_path, settings):
    settings.X_BEARER_TOKEN = "wrong-token-0123456789"
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 100)
    message = str(failure.value)
    assert "401" in message and "X_BEARER_TOKEN" in message and "developer portal" in message
    assert "wrong-token-0123456789" not in message
    assert [r.status for r in x_api.requests] == [401]


def test_an_app_not_allowed_full_archive_search_is_told_what_to_change(x_api, tmp_path):
    x_api.fail_next(Fault.not_enrolled())
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 100, source="all")
    message = str(failure.value)
    assert "403" in message and "client-not-enrolled" in message
    assert "Project" in message and "developer portal" in message and "full-archive" in message
    assert failure.value.retryable is False


def test_a_used_up_usage_cap_is_not_waited_for(x_api, tmp_path):
    x_api.fail_next(Fault.usage_cap())
    waits = []
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 100, on_wait=lambda until, reason: waits.append(reason))
    message = str(failure.value)
    assert "usage cap" in message and "billing cycle" in message
    assert failure.value.retryable is False
    assert waits == [] and len(x_api.requests) == 1


def test_no_token_configured_is_explained_before_any_request(x_api, tmp_path, settings):
    settings.X_BEARER_TOKEN = ""
    with pytest.raises(XApiError, match="No X API credentials: set X_BEARER_TOKEN"):
        collect(tmp_path, 100)
    assert x_api.requests == []


def test_make_client_answers_dicts_from_the_configured_host(x_api):
    client = make_client()
    assert client.wait_on_rate_limit is False
    answer = client.search_recent_tweets(QUERY, max_results=10)
    assert isinstance(answer, dict) and len(answer["data"]) == 10
    assert x_api.requests[0].path == "/2/tweets/search/recent"


# --- resume ---------------------------------------------------------------------------------------------------------


def test_a_finished_collection_returns_at_once_and_a_different_search_is_not_resumed(x_api, tmp_path):
    collect(tmp_path, 100)
    requests_before = len(x_api.requests)

    again = collect(tmp_path, 100)
    assert (again.posts, again.resumed) == (100, True)
    assert len(x_api.requests) == requests_before
    with pytest.raises(XApiError, match="different query"):
        collect(tmp_path, 100, query="other words")


def test_a_killed_collection_resumes_with_every_post_once(x_api, tmp_path, settings):
    reference = collect(tmp_path, 450, name="reference")
    assert reference.posts == 450
    expected = counted_ids(tmp_path, "reference")

    raw, state_file = tmp_path / "tweets.jsonl", tmp_path / "tweets.state.json"
    x_api.page_delay = 0.5
    code = (
        "import django; django.setup()\n"
        "from pathlib import Path\n"
        "from pipeline.xapi import collect_live\n"
        f"collect_live(query={QUERY!r}, source='recent', count=450, raw_path=Path({str(raw)!r}), "
        f"state_path=Path({str(state_file)!r}))\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dnflow_site.settings",
        "DNFLOW_X_API_URL": x_api.url,
        "X_BEARER_TOKEN": settings.X_BEARER_TOKEN,
        "DNFLOW_DATA_DIR": str(settings.DNFLOW_DATA_DIR),
        "LOG_LEVEL": "DEBUG",  # tweepy logs each request's headers: they must reach stderr redacted
    }
    log_file = tmp_path / "collector.log"  # a file, not a pipe: DEBUG logs would fill a pipe and block
    with open(log_file, "wb") as log:
        process = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = read_state(state_file) if state_file.exists() else None
            if state and state["pages"] >= 2:
                break
            assert process.poll() is None, log_file.read_text()
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    logged = log_file.read_text()
    assert process.returncode == -signal.SIGKILL
    assert "Bearer [redacted]" in logged and settings.X_BEARER_TOKEN not in logged

    stopped = read_state(state_file)
    assert 2 <= stopped["pages"] < 5 and not stopped["done"]
    # A kill can also land after a page is appended and before the state records it, even mid-line:
    # the next run must drop such a tail rather than keep the page twice.
    with open(raw, "ab") as tail:
        tail.write(raw_lines(tmp_path)[-1] + b"\n" + b'{"data":[{"id":"14088')

    x_api.page_delay = 0
    already = len(x_api.requests)
    result = collect(tmp_path, 450)

    assert (result.posts, result.resumed) == (450, True)
    assert x_api.requests[already].params["next_token"] == stopped["next_token"]
    ids = counted_ids(tmp_path)
    assert ids == expected and len(set(ids)) == 450
    assert b"14088\n" not in raw.read_bytes() and len(raw_lines(tmp_path)) == 5


def test_the_token_never_reaches_stored_files_or_logs(x_api, tmp_path, settings, caplog, quick_retries):
    caplog.set_level(logging.DEBUG)
    token = settings.X_BEARER_TOKEN
    x_api.fail_next(Fault.server_error(503), Fault.normal(), Fault.bad_request("Invalid query"))
    with pytest.raises(XApiError) as failure:
        collect(tmp_path, 300)

    assert "Bearer [redacted]" in caplog.text  # tweepy did log the request headers
    assert token not in caplog.text
    assert token not in str(failure.value)
    assert token.encode() not in (tmp_path / "tweets.jsonl").read_bytes()
    assert token not in (tmp_path / "tweets.state.json").read_text()
    assert all(token not in json.dumps(r.headers) + json.dumps(r.params) for r in x_api.requests)
    assert all(r.authorized for r in x_api.requests)


def test_waits_report_when_they_end_in_utc_aware_times(x_api, tmp_path, quick_retries):
    x_api.fail_next(Fault.server_error(500))
    waits = []
    collect(tmp_path, 10, on_wait=lambda until, reason: waits.append(until))
    assert waits[0] is not None and waits[0].utcoffset() == timedelta(0) and waits[1] is None
    assert waits[0] <= datetime.now(UTC) + timedelta(seconds=1)
