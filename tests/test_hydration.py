"""Looking posts up by id (pipeline.hydrate) against the X API emulator: real HTTP, real recorded posts."""

from __future__ import annotations

import csv
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

import pipeline.xapi_client
from pipeline.contract import (
    IDS_REQUESTED,
    LIVE_PARTIAL,
    LOOKUP_STATE,
    MISSING_IDS,
    RAW_POSTS,
    TWEET_IDS,
    is_packaged,
    is_recheck,
)
from pipeline.formats import ImportReport, iter_collection, iter_posts
from pipeline.hydrate import (
    LOOKUP_BATCH,
    NOT_RETURNED,
    REASONS,
    ApiConfig,
    estimate_lookup,
    hydrate,
    missing_reason,
    recheck,
    recheck_paths,
    unfinished_rechecks,
)
from pipeline.ids import read_ids
from pipeline.rawpages import read_state
from pipeline.summarise import summarise_posts
from pipeline.xapi_client import EXPANSIONS, MEDIA_FIELDS, TWEET_FIELDS, USER_FIELDS, XApiError
from tests.conftest import PROJECT_DIR
from tests.x_emulator import NOT_AUTHORIZED, NOT_FOUND, Fault

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture

NOT_FOUND_KEY, NOT_AUTHORIZED_KEY = "resource-not-found", "not-authorized-for-resource"


@pytest.fixture
def api(x_api, settings) -> ApiConfig:
    """What the caller passes: built from the settings where the work runs (the emulator's, here)."""
    return ApiConfig(bearer_token=settings.X_BEARER_TOKEN, api_url=x_api.url, retries=3, max_rate_limit_wait=10)


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(pipeline.xapi_client, "BACKOFF_BASE_SECONDS", 0.02)


def write_ids(folder: Path, ids: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / IDS_REQUESTED
    path.write_text("".join(f"{i}\n" for i in ids))
    return path


def run_hydrate(folder: Path, api: ApiConfig, **kwargs):
    return hydrate(
        ids_path=folder / IDS_REQUESTED,
        raw_path=folder / LIVE_PARTIAL,
        state_path=folder / LOOKUP_STATE,
        missing_path=folder / MISSING_IDS,
        api=api,
        **kwargs,
    )


def batches_asked(x_api) -> list[list[str]]:
    return [r.params["ids"].split(",") for r in x_api.lookup_requests()]


def in_batches(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + LOOKUP_BATCH] for i in range(0, len(ids), LOOKUP_BATCH)]


def missing_rows(folder: Path) -> list[list[str]]:
    with open(folder / MISSING_IDS, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def never_posted(x_api, count: int) -> list[str]:
    """Ids X never had: between two recorded posts, so they look like real ids."""
    known = {post["id"] for post in x_api.posts}
    base = int(x_api.posts[0]["id"])
    return [str(base - n) for n in range(1, 10_000) if str(base - n) not in known][:count]


# --- the emulator's lookup ------------------------------------------------------------------------------


def test_the_emulator_answers_a_lookup_with_the_problems_x_sends_for_gone_posts(x_api, settings):
    deleted, protected, suspended, kept = x_api.posts[0], x_api.posts[1], x_api.posts[2], x_api.posts[3]
    assert len({p["author_id"] for p in (protected, suspended, kept)}) == 3
    x_api.delete_posts(deleted["id"])
    x_api.protect_authors(protected["author_id"])
    x_api.suspend_authors(suspended["author_id"])
    asked = [deleted["id"], protected["id"], kept["id"], suspended["id"], kept["id"]]
    answer = requests.get(
        f"{x_api.url}/2/tweets",
        params={"ids": ",".join(asked), "tweet.fields": "created_at", "expansions": "author_id"},
        headers={"Authorization": f"Bearer {settings.X_BEARER_TOKEN}"},
        timeout=10,
    )

    assert answer.status_code == 200
    body = answer.json()
    assert list(body) == ["data", "includes", "errors"]  # no meta: a lookup has no pages
    assert body["data"] == [{k: kept[k] for k in ("id", "text", "created_at", "author_id")}]  # asked twice, once
    assert [u["id"] for u in body["includes"]["users"]] == [kept["author_id"]]
    assert body["errors"][0] == {
        "value": deleted["id"],
        "detail": f"Could not find tweet with ids: [{deleted['id']}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": "ids",
        "resource_id": deleted["id"],
        "type": NOT_FOUND,
    }
    for problem, post in zip(body["errors"][1:], (protected, suspended), strict=True):
        assert problem == {
            "value": post["id"],
            "parameter": "ids",
            "resource_type": "tweet",
            "section": "data",
            "title": "Authorization Error",
            "detail": f"Sorry, you are not authorized to see the Tweet with ids: [{post['id']}].",
            "resource_id": post["id"],
            "type": NOT_AUTHORIZED,
        }
    # Gone posts are gone from searches too.
    search = requests.get(
        f"{x_api.url}/2/tweets/search/recent",
        params={"query": "x", "max_results": 10},
        headers={"Authorization": f"Bearer {settings.X_BEARER_TOKEN}"},
        timeout=10,
    ).json()
    assert {deleted["id"], protected["id"], suspended["id"]}.isdisjoint(p["id"] for p in search["data"])


def test_the_emulator_refuses_lookups_x_refuses(x_api, settings):
    headers = {"Authorization": f"Bearer {settings.X_BEARER_TOKEN}"}
    for ids, message in (
        ("", "The `ids` query parameter can not be empty"),
        (
            ",".join(["1"] * 101),
            "The number of values in the `ids` query parameter list [101] is not between 1 and 100",
        ),
        ("1.40888E+18", "The `ids` query parameter value [1.40888E+18] does not match ^[0-9]{1,19}$"),
    ):
        answer = requests.get(f"{x_api.url}/2/tweets", params={"ids": ids}, headers=headers, timeout=10)
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["message"] == message


def test_a_lookup_page_of_recorded_posts_holds_what_a_search_page_holds(x_api, api, tmp_path):
    """Same fields and expansions: the lookup's page for the first 100 posts is the search's first page."""
    folder = tmp_path / "run"
    write_ids(folder, [post["id"] for post in x_api.posts[:100]])
    run_hydrate(folder, api)
    looked_up = json.loads((folder / LIVE_PARTIAL).read_bytes())

    searched = pipeline.xapi_client.make_client(api).search_recent_tweets(
        "x",
        max_results=100,
        expansions=EXPANSIONS,
        tweet_fields=TWEET_FIELDS,
        user_fields=USER_FIELDS,
        media_fields=MEDIA_FIELDS,
    )
    assert looked_up["data"] == searched["data"]
    assert looked_up["includes"] == searched["includes"]
    assert looked_up.get("errors") == searched.get("errors")  # what X says of expanded users, if anything
    assert set(looked_up) == set(searched) - {"meta"}  # a lookup has no pages, so no meta


# --- hydration --------------------------------------------------------------------------------------------


def test_a_dataset_with_duplicates_damage_and_gone_posts_gives_exactly_the_available_posts(x_api, api, tmp_path):
    posts = x_api.posts[:240]
    x_api.delete_posts(posts[3]["id"], posts[150]["id"])
    x_api.protect_authors(posts[7]["author_id"])
    x_api.suspend_authors(posts[42]["author_id"])
    [never] = never_posted(x_api, 1)
    ids = [post["id"] for post in posts] + [never]
    dataset = tmp_path / "shared-dataset.csv"
    rows = ["id,note"] + [f"{i},x" for i in ids[:120]] + [f"{ids[0]},again", "1.40888E+18,x", f"{ids[9]}.0,x"]
    rows += [f"{i},x" for i in ids[120:]] + [f"{ids[200]},again"]
    dataset.write_text("\n".join(rows) + "\n")
    folder = tmp_path / "run"

    report = read_ids(dataset, folder / IDS_REQUESTED)
    assert (report.ids, report.duplicates, report.damaged) == (241, 2, {"scientific-notation": 1, "decimal": 1})
    assert report.should_refuse  # the caller decides; this one goes on with the 241 good ids
    progress = []
    result = run_hydrate(folder, api, on_progress=lambda done, total: progress.append((done, total)))

    gone = {p["id"]: x_api.unavailable(p) for p in posts if x_api.unavailable(p)}
    assert sorted(set(gone.values())) == ["deleted", "protected", "suspended"]
    available = [p["id"] for p in posts if p["id"] not in gone]
    reasons = {"deleted": NOT_FOUND_KEY, "protected": NOT_AUTHORIZED_KEY, "suspended": NOT_AUTHORIZED_KEY}
    expected_missing = [[i, reasons[gone[i]]] for i in ids if i in gone] + [[never, NOT_FOUND_KEY]]

    # The raw pages hold exactly the available posts: what the summary pass reads from them.
    raw = folder / LIVE_PARTIAL
    assert [post.id for post in iter_posts(raw, ImportReport())] == available
    assert [post.id for post in iter_collection(raw, report=ImportReport())] == available
    assert result.ids_requested == 241 and result.ids_found == len(available)
    assert result.ids_missing_by_reason == {
        NOT_FOUND_KEY: sum(1 for _, why in expected_missing if why == NOT_FOUND_KEY),
        NOT_AUTHORIZED_KEY: sum(1 for _, why in expected_missing if why == NOT_AUTHORIZED_KEY),
    }
    assert result.ids_missing == len(expected_missing) == 241 - len(available)
    assert missing_rows(folder) == [["tweet_id", "reason"], *expected_missing]
    assert set(result.ids_missing_by_reason) <= set(REASONS)

    # 100 ids a request, in the dataset's order; each page stored exactly as received.
    assert batches_asked(x_api) == in_batches((folder / IDS_REQUESTED).read_text().split())
    assert [len(b) for b in batches_asked(x_api)] == [100, 100, 41]
    assert raw.read_bytes().splitlines() == [r.body for r in x_api.lookup_requests()]
    first = x_api.lookup_requests()[0].params
    assert {"author_id", "referenced_tweets.id", "attachments.media_keys"} <= set(first["expansions"].split(","))
    assert {"created_at", "public_metrics", "entities"} <= set(first["tweet.fields"].split(","))
    assert progress == [(100, 241), (200, 241), (241, 241)]
    state = read_state(folder / LOOKUP_STATE)
    assert (state["done"], state["pages"], state["raw_bytes"]) == (True, 3, raw.stat().st_size)

    # The missing ids, given back to the reader, are ready to be tried again.
    again = read_ids(folder / MISSING_IDS, tmp_path / "retry" / IDS_REQUESTED)
    assert (tmp_path / "retry" / IDS_REQUESTED).read_text().split() == [i for i, _ in expected_missing]
    assert not again.should_refuse

    # Done: a second run asks nothing and says the same.
    asked = len(x_api.requests)
    assert run_hydrate(folder, api).ids_missing_by_reason == result.ids_missing_by_reason
    assert len(x_api.requests) == asked


def child_hydration(x_api, settings, folder: Path, log_file: Path, *, pause_after: int = 0) -> subprocess.Popen:
    """A separate process running hydrate (without Django: the token comes in its environment)."""
    code = (
        "import logging, os, sys, time\n"
        "from pathlib import Path\n"
        "from pipeline.contract import IDS_REQUESTED, LIVE_PARTIAL, LOOKUP_STATE, MISSING_IDS\n"
        "from pipeline.hydrate import hydrate\n"
        "from pipeline.xapi_client import ApiConfig\n"
        "logging.basicConfig(level=logging.DEBUG)  # tweepy logs each request's headers: redacted\n"
        "api = ApiConfig(bearer_token=os.environ['X_TOKEN'], api_url=os.environ['X_URL'])\n"
        "folder = Path(sys.argv[1])\n"
        "def pause(done, total):\n"
        f"    if done == {pause_after}:\n"
        "        time.sleep(60)  # between two batches: the test kills the process here\n"
        "hydrate(ids_path=folder / IDS_REQUESTED, raw_path=folder / LIVE_PARTIAL, state_path=folder / LOOKUP_STATE,\n"
        "        missing_path=folder / MISSING_IDS, api=api, on_progress=pause)\n"
    )
    env = {**os.environ, "X_TOKEN": settings.X_BEARER_TOKEN, "X_URL": x_api.url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    with open(log_file, "wb") as log:  # a file, not a pipe: DEBUG logs would fill a pipe and block
        return subprocess.Popen(
            [sys.executable, "-c", code, str(folder)], cwd=PROJECT_DIR, env=env, stdout=log, stderr=log
        )


def kill_when(process: subprocess.Popen, log_file: Path, ready) -> None:
    try:
        deadline = time.monotonic() + 20
        while not ready():
            assert process.poll() is None, log_file.read_text()
            assert time.monotonic() < deadline, "the lookup did not get there in time"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL


def test_a_hydration_killed_between_batches_resumes_without_asking_any_batch_twice(x_api, api, tmp_path, settings):
    never = never_posted(x_api, 40)
    ids = [post["id"] for post in x_api.posts] + never  # 540 ids: 6 batches
    folder = tmp_path / "run"
    write_ids(folder, ids)
    state_file, raw = folder / LOOKUP_STATE, folder / LIVE_PARTIAL
    log_file = tmp_path / "hydrate.log"

    process = child_hydration(x_api, settings, folder, log_file, pause_after=200)
    kill_when(process, log_file, lambda: state_file.exists() and read_state(state_file)["position"] == 200)
    logged = log_file.read_text()
    assert "Bearer [redacted]" in logged and settings.X_BEARER_TOKEN not in logged
    stopped = read_state(state_file)
    assert (stopped["pages"], stopped["done"]) == (2, False)
    assert batches_asked(x_api) == in_batches(ids)[:2]  # nothing in flight when it died
    # A kill can also land after a page is appended and before the state records it, even mid-line:
    # the next run must drop such a tail rather than keep a page twice.
    with open(raw, "ab") as tail:
        tail.write(raw.read_bytes().splitlines()[-1] + b"\n" + b'{"data":[{"id":"14088')

    result = run_hydrate(folder, api)

    assert result.resumed and (result.ids_requested, result.ids_found) == (540, 500)
    assert result.ids_missing_by_reason == {NOT_FOUND_KEY: 40}
    assert batches_asked(x_api) == in_batches(ids)  # each batch asked once: none twice, none skipped
    assert [post.id for post in iter_posts(raw, ImportReport())] == ids[:500]
    assert len(raw.read_bytes().splitlines()) == 6 and b'"14088\n' not in raw.read_bytes()
    assert [row[0] for row in missing_rows(folder)[1:]] == never


def test_a_hydration_killed_with_a_batch_in_flight_asks_that_batch_again_and_stores_it_once(
    x_api, api, tmp_path, settings
):
    ids = [post["id"] for post in x_api.posts[:350]]
    folder = tmp_path / "run"
    write_ids(folder, ids)
    x_api.page_delay = 1.0  # each answer comes a second late: the third is in flight at the kill
    log_file = tmp_path / "hydrate.log"

    process = child_hydration(x_api, settings, folder, log_file)
    kill_when(process, log_file, lambda: len(x_api.lookup_requests()) == 3)
    assert read_state(folder / LOOKUP_STATE)["pages"] == 2

    x_api.page_delay = 0
    result = run_hydrate(folder, api)

    batches = in_batches(ids)
    assert batches_asked(x_api) == batches[:3] + batches[2:]  # the one without a stored answer, again
    assert result.ids_found == 350
    assert [post.id for post in iter_posts(folder / LIVE_PARTIAL, ImportReport())] == ids


def test_a_rate_limit_during_a_lookup_is_waited_out_and_the_batch_sent_again_once(x_api, api, tmp_path):
    ids = [post["id"] for post in x_api.posts[:250]]
    folder = tmp_path / "run"
    write_ids(folder, ids)
    x_api.fail_next(Fault.normal(), Fault.rate_limit(reset_in=2))
    waits = []
    started = time.monotonic()
    result = run_hydrate(folder, api, on_wait=lambda until, reason: waits.append((until, reason)))

    lookups = x_api.lookup_requests()
    assert [r.status for r in lookups] == [200, 429, 200, 200]
    assert batches_asked(x_api) == [ids[:100], ids[100:200], ids[100:200], ids[200:]]
    limited, retry = lookups[1:3]
    reset = int(limited.response_headers["x-rate-limit-reset"])
    assert retry.at >= reset  # waited for the window, not hammering it
    (until, reason), (end, end_reason) = waits
    assert abs(until.timestamp() - (reset + pipeline.xapi_client.RATE_LIMIT_MARGIN_SECONDS)) < 0.01
    assert reason.startswith("waiting for the rate limit until ") and (end, end_reason) == (None, "")
    assert time.monotonic() - started < 6
    assert result.ids_found == 250
    assert (folder / LIVE_PARTIAL).read_bytes().splitlines() == [lookups[0].body, lookups[2].body, lookups[3].body]


def test_x_failing_mid_lookup_stops_with_a_retryable_error_and_the_run_resumes_at_the_next_batch(
    x_api, api, tmp_path, quick_retries
):
    ids = [post["id"] for post in x_api.posts[:300]]
    folder = tmp_path / "run"
    write_ids(folder, ids)
    x_api.fail_next(Fault.normal(), *[Fault.server_error(503)] * 4)  # api: 3 retries, so 4 tries fail
    with pytest.raises(XApiError) as failure:
        run_hydrate(folder, api)
    assert failure.value.retryable and "4 tries" in str(failure.value) and "kept" in str(failure.value)
    assert read_state(folder / LOOKUP_STATE)["position"] == 100

    result = run_hydrate(folder, api)
    answered = [r.params["ids"].split(",") for r in x_api.lookup_requests() if r.status == 200]
    assert answered == in_batches(ids) and result.ids_found == 300 and result.resumed


def test_a_lookup_is_not_resumed_with_a_different_id_list(x_api, api, tmp_path):
    folder = tmp_path / "run"
    write_ids(folder, [post["id"] for post in x_api.posts[:10]])
    run_hydrate(folder, api)
    write_ids(folder, [post["id"] for post in x_api.posts[10:20]])
    with pytest.raises(XApiError, match="id list that has changed since it started"):
        run_hydrate(folder, api)


def test_the_cost_is_estimated_before_anything_is_spent_and_what_is_left_on_a_resume(x_api, api, tmp_path):
    folder = tmp_path / "run"
    write_ids(folder, [post["id"] for post in x_api.posts[:250]])
    estimate = estimate_lookup(folder / IDS_REQUESTED, price_per_post=0.005, state_path=folder / LOOKUP_STATE)
    assert (estimate.ids, estimate.remaining, estimate.requests) == (250, 250, 3)
    assert estimate.cost_at_most == pytest.approx(1.25)
    assert estimate.describe() == (
        "at most 250 posts to read in 3 requests -- at most $1.25 at $0.005 per post read (posts that are gone "
        "are not billed, so it may cost less)"
    )
    assert x_api.requests == []

    x_api.fail_next(Fault.normal(), Fault.bad_request("stop here", parameter="ids"))
    with pytest.raises(XApiError):
        run_hydrate(folder, api)
    left = estimate_lookup(folder / IDS_REQUESTED, price_per_post=0.005, state_path=folder / LOOKUP_STATE)
    assert (left.remaining, left.requests) == (150, 2)
    assert "(100 of 250 done already)" in left.describe()


# --- refusals, explained, and the token ---------------------------------------------------------------------


def test_no_token_is_explained_before_any_request_or_file(x_api, tmp_path):
    folder = tmp_path / "run"
    write_ids(folder, [x_api.posts[0]["id"]])
    with pytest.raises(XApiError, match="No X API credentials: set X_BEARER_TOKEN"):
        run_hydrate(folder, ApiConfig(bearer_token="", api_url=x_api.url))
    assert x_api.requests == [] and sorted(p.name for p in folder.iterdir()) == [IDS_REQUESTED]


def test_a_wrong_token_and_an_app_without_lookup_access_are_told_what_to_change(x_api, api, tmp_path):
    folder = tmp_path / "run"
    write_ids(folder, [x_api.posts[0]["id"]])
    wrong = ApiConfig(bearer_token="wrong-token-0123456789", api_url=x_api.url)
    with pytest.raises(XApiError) as failure:
        run_hydrate(folder, wrong)
    message = str(failure.value)
    assert "401" in message and "X_BEARER_TOKEN" in message and "wrong-token-0123456789" not in message
    assert "wrong-token" not in repr(wrong)

    x_api.fail_next(Fault.not_enrolled())
    with pytest.raises(XApiError) as failure:
        run_hydrate(folder, api)
    assert "403" in str(failure.value) and "looking up posts by id (GET /2/tweets)" in str(failure.value)
    assert not failure.value.retryable


def test_an_id_list_that_was_not_read_by_the_reader_is_refused_in_plain_words(x_api, api, tmp_path):
    folder = tmp_path / "run"
    write_ids(folder, [x_api.posts[0]["id"], "1.40888E+18"])
    with pytest.raises(XApiError, match=r"holds '1\.40888E\+18', which is not a post id.*pipeline\.ids\.read_ids"):
        run_hydrate(folder, api)
    assert x_api.requests == []


def test_the_token_stays_out_of_pages_state_missing_ids_logs_and_errors(x_api, api, tmp_path, caplog, quick_retries):
    caplog.set_level(logging.DEBUG)
    token = api.bearer_token
    folder = tmp_path / "run"
    write_ids(folder, [post["id"] for post in x_api.posts[:150]] + never_posted(x_api, 3))
    x_api.fail_next(Fault.server_error(503), Fault.normal(), Fault.bad_request("Invalid ids", parameter="ids"))
    with pytest.raises(XApiError) as failure:
        run_hydrate(folder, api)
    result = run_hydrate(folder, api)

    assert result.ids_found == 150
    assert "Bearer [redacted]" in caplog.text and token not in caplog.text
    assert token not in str(failure.value)
    for path in folder.iterdir():
        assert token.encode() not in path.read_bytes(), path.name
    assert all(r.authorized for r in x_api.requests)


def test_a_config_holding_the_token_cannot_be_pickled_into_a_queue_or_shown(api):
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(api)
    assert api.bearer_token not in repr(api) and api.bearer_token not in str(api)


def test_the_lookup_modules_need_no_django(tmp_path):
    code = (
        "import sys\n"
        "import pipeline.hydrate, pipeline.ids, pipeline.rawpages, pipeline.xapi_client\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('django', 'luigi', 'rq')})\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_reasons_are_named_as_x_names_its_problems():
    assert missing_reason({"type": "https://api.twitter.com/2/problems/resource-not-found"}) == NOT_FOUND_KEY
    assert missing_reason({"type": "https://api.x.com/2/problems/not-authorized-for-resource"}) == NOT_AUTHORIZED_KEY
    assert missing_reason({"type": "about:blank", "title": "Some New Error"}) == "some-new-error"
    assert set(REASONS) == {NOT_FOUND_KEY, NOT_AUTHORIZED_KEY, NOT_RETURNED}


# --- recheck ----------------------------------------------------------------------------------------------


def finished_collection(x_api, api, folder: Path, count: int) -> list[str]:
    """A collection looked up by id and summarised as the workflow does: its tweet-ids.txt."""
    write_ids(folder, [post["id"] for post in x_api.posts[:count]])
    run_hydrate(folder, api)
    (folder / LIVE_PARTIAL).replace(folder / RAW_POSTS)
    posts = iter_collection(folder / RAW_POSTS, report=ImportReport())
    summarise_posts(posts, folder, sample_size=3, seed="1", make_facts=lambda facts: {})
    return (folder / TWEET_IDS).read_text().split()


def test_a_recheck_after_posts_went_writes_a_dated_availability_file_with_statuses_and_reasons(x_api, api, tmp_path):
    folder = tmp_path / "run"
    collected = finished_collection(x_api, api, folder, 230)
    assert len(collected) == 230
    first_lookups = len(x_api.lookup_requests())
    x_api.delete_posts(collected[5], collected[120])
    x_api.protect_authors(x_api.posts[30]["author_id"])
    x_api.suspend_authors(x_api.posts[200]["author_id"])
    gone = {p["id"]: x_api.unavailable(p) for p in x_api.posts[:230] if x_api.unavailable(p)}
    reasons = {"deleted": NOT_FOUND_KEY, "protected": NOT_AUTHORIZED_KEY, "suspended": NOT_AUTHORIZED_KEY}

    paths = recheck_paths(folder, datetime(2026, 1, 5, 10, 15, 0, tzinfo=UTC))
    progress = []
    result = recheck(ids_path=folder / TWEET_IDS, paths=paths, api=api, on_progress=lambda *p: progress.append(p))

    assert paths.availability == folder / "rechecks" / "availability-20260105T101500Z.csv"
    with open(paths.availability, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["tweet_id", "status", "reason", "checked_at"]
    assert [row[0] for row in rows[1:]] == collected
    for post_id, status, reason, checked_at in rows[1:]:
        if post_id in gone:
            assert (status, reason) == ("unavailable", reasons[gone[post_id]])
        else:
            assert (status, reason) == ("available", "")
        assert datetime.strptime(checked_at, "%Y-%m-%dT%H:%M:%SZ")
    assert (result.ids_checked, result.available, result.unavailable) == (230, 230 - len(gone), len(gone))
    assert result.unavailable_by_reason == {
        key: sum(1 for why in gone.values() if reasons[why] == key) for key in (NOT_FOUND_KEY, NOT_AUTHORIZED_KEY)
    }
    assert progress == [(100, 230), (200, 230), (230, 230)]
    # It asked for the ids only, and kept no pages: the rechecks folder holds the file and its state.
    recheck_lookups = x_api.lookup_requests()[first_lookups:]
    assert [sorted(r.params) for r in recheck_lookups] == [["ids"]] * 3
    assert sorted(p.name for p in (folder / "rechecks").iterdir()) == [
        "availability-20260105T101500Z.csv",
        "availability-20260105T101500Z.state.json",
    ]
    relative = paths.availability.relative_to(folder).as_posix()
    assert is_recheck(relative) and is_packaged(relative)
    assert not is_packaged(paths.state.relative_to(folder).as_posix())

    # A later recheck is a new dated file; the earlier one stays as it was.
    before = paths.availability.read_bytes()
    x_api.delete_posts(collected[0])
    later = recheck(ids_path=folder / TWEET_IDS, paths=recheck_paths(folder), api=api)
    assert later.path != paths.availability and later.unavailable == result.unavailable + 1
    assert paths.availability.read_bytes() == before


def test_an_interrupted_recheck_is_found_and_resumed_without_asking_a_batch_twice(x_api, api, tmp_path, quick_retries):
    folder = tmp_path / "run"
    collected = finished_collection(x_api, api, folder, 300)
    already = len(x_api.lookup_requests())
    x_api.delete_posts(collected[250])
    x_api.fail_next(Fault.normal(), *[Fault.server_error(503)] * 4)
    paths = recheck_paths(folder)
    with pytest.raises(XApiError):
        recheck(ids_path=folder / TWEET_IDS, paths=paths, api=api)
    assert not paths.availability.exists() and paths.partial.exists()

    [pending] = unfinished_rechecks(folder)
    assert pending == paths
    result = recheck(ids_path=folder / TWEET_IDS, paths=pending, api=api)

    answered = [r.params["ids"].split(",") for r in x_api.lookup_requests()[already:] if r.status == 200]
    assert answered == in_batches(collected)
    assert result.resumed and (result.available, result.unavailable_by_reason) == (299, {NOT_FOUND_KEY: 1})
    lines = paths.availability.read_text().splitlines()
    assert len(lines) == 301 and lines[251].startswith(f"{collected[250]},unavailable,resource-not-found,")
    assert not paths.partial.exists() and unfinished_rechecks(folder) == []
