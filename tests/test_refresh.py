"""Refreshing a search: since_id reaches the API, only newer posts come back, and a resume keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

import pipeline.xapi_client
from pipeline.contract import TWEET_IDS
from pipeline.ids import newest_id
from pipeline.xapi import XApiError, collect_live, counted_pages, read_state
from tests.x_emulator import Fault

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture

QUERY = "blacklivesmatter"


def collect(folder: Path, count: int, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    return collect_live(
        query=QUERY,
        source="recent",
        count=count,
        raw_path=folder / "tweets.jsonl",
        state_path=folder / "state.json",
        **kwargs,
    )


def counted_ids(folder: Path) -> list[str]:
    pages = counted_pages(folder / "tweets.jsonl", folder / "state.json")
    return [post["id"] for page in pages for post in page.get("data", [])]


def test_a_search_with_since_id_sends_it_and_gets_only_newer_posts(x_api, tmp_path):
    since = x_api.posts[150]["id"]  # the posts are newest first: 150 are newer than this one
    result = collect(tmp_path / "run", 1000, since_id=since)

    assert [r.params["since_id"] for r in x_api.search_requests()] == [since, since]
    assert result.posts == 150
    assert counted_ids(tmp_path / "run") == [post["id"] for post in x_api.posts[:150]]
    assert read_state(tmp_path / "run" / "state.json")["since_id"] == since


def test_a_refresh_from_the_newest_id_of_an_earlier_run_adds_only_what_is_new(x_api, tmp_path):
    # The earlier run ended before the 100 newest posts were made.
    earlier = tmp_path / "earlier"
    collect(earlier, 1000, end_time=x_api.posts[99]["created_at"])
    (earlier / TWEET_IDS).write_text("".join(f"{i}\n" for i in counted_ids(earlier)))

    since = newest_id(earlier / TWEET_IDS)
    collect(tmp_path / "refresh", 1000, since_id=since)

    old, new = counted_ids(earlier), counted_ids(tmp_path / "refresh")
    assert new and set(new).isdisjoint(old)
    assert new + old == [post["id"] for post in x_api.posts if post["id"] in set(new + old)]
    assert all(int(post_id) > int(since) for post_id in new)


def test_a_resume_with_another_since_id_is_refused_and_with_the_same_one_goes_on(
    x_api, tmp_path, settings, monkeypatch
):
    monkeypatch.setattr(pipeline.xapi_client, "BACKOFF_BASE_SECONDS", 0.02)
    settings.DNFLOW_API_RETRIES = 1
    since = x_api.posts[450]["id"]
    x_api.fail_next(Fault.normal(), Fault.server_error(503), Fault.server_error(503))
    with pytest.raises(XApiError):
        collect(tmp_path / "run", 450, since_id=since)
    asked = len(x_api.requests)

    with pytest.raises(XApiError, match="different since_id: it cannot be resumed"):
        collect(tmp_path / "run", 450, since_id=x_api.posts[300]["id"])
    with pytest.raises(XApiError, match="different since_id"):
        collect(tmp_path / "run", 450)  # none is another one too
    assert len(x_api.requests) == asked

    result = collect(tmp_path / "run", 450, since_id=int(since))  # the same id, as a number
    assert (result.posts, result.resumed) == (450, True)
    assert counted_ids(tmp_path / "run") == [post["id"] for post in x_api.posts[:450]]


def test_a_since_id_that_is_not_an_id_is_refused_before_anything_is_sent(x_api, tmp_path, settings):
    with pytest.raises(ValueError, match="since_id must be a post id"):
        collect(tmp_path / "run", 10, since_id="1.40888E+18")
    assert x_api.requests == []

    answer = requests.get(
        f"{x_api.url}/2/tweets/search/recent",
        params={"query": QUERY, "since_id": "abc"},
        headers={"Authorization": f"Bearer {settings.X_BEARER_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert (
        answer.json()["errors"][0]["message"]
        == "The `since_id` query parameter value [abc] does not match ^[0-9]{1,19}$"
    )


def test_counts_take_since_id_as_the_search_does(x_api, settings):
    since = x_api.posts[150]["id"]
    answer = requests.get(
        f"{x_api.url}/2/tweets/counts/recent",
        params={"query": QUERY, "since_id": since, "granularity": "day"},
        headers={"Authorization": f"Bearer {settings.X_BEARER_TOKEN}"},
        timeout=10,
    )
    assert answer.json()["meta"]["total_tweet_count"] == 150


def test_a_collection_begun_before_since_id_existed_resumes_only_without_one(x_api, tmp_path, settings, monkeypatch):
    monkeypatch.setattr(pipeline.xapi_client, "BACKOFF_BASE_SECONDS", 0.02)
    settings.DNFLOW_API_RETRIES = 0
    x_api.fail_next(Fault.normal(), Fault.server_error(503))
    with pytest.raises(XApiError):
        collect(tmp_path / "run", 300)
    state_file = tmp_path / "run" / "state.json"
    old = read_state(state_file)
    del old["since_id"]  # as the state files of the version before
    state_file.write_text(json.dumps(old))

    with pytest.raises(XApiError, match="different since_id"):
        collect(tmp_path / "run", 300, since_id=x_api.posts[400]["id"])
    assert collect(tmp_path / "run", 300).posts == 300
