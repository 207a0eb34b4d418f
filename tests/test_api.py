"""The JSON API: what a search is doing, and its counts, under the pages' visibility rules."""

import pytest
from django.test import Client
from django.urls import reverse

from searches.models import Status
from tests.web_helpers import add_events, make_search

pytestmark = pytest.mark.django_db


def test_detail_reports_status_progress_counts_files_and_events(owner_client, owner):
    search = make_search(owner)
    add_events(search, ("CollectPosts", "Summarise"))
    data = owner_client.get(reverse("api_search_detail", args=[search.pk])).json()
    assert data["id"] == search.pk and data["status"] == "finished" and data["progress"] == 100.0
    assert data["counts"] == {
        "num_tweets": 5,
        "unique_hashtags": 2,
        "unique_mentions": 2,
        "unique_urls": 2,
        "unique_users": 4,
    }
    assert data["first_post_at"] == "2024-03-01T10:05:00+00:00"
    assert [(e["task"], e["event"]) for e in data["events"]] == [
        ("CollectPosts", "start"),
        ("CollectPosts", "success"),
        ("Summarise", "start"),
        ("Summarise", "success"),
    ]
    names = {f["name"] for f in data["files"]}
    assert {"count-hashtags.csv", "tweet-ids.txt", "tweets.csv", f"{search.results_run.folder}.zip"} <= names
    ids_url = next(f["url"] for f in data["files"] if f["name"] == "tweet-ids.txt")
    assert b"".join(owner_client.get(ids_url).streaming_content).split() == [
        b"1001",
        b"1002",
        b"1003",
        b"1004",
        b"1005",
    ]
    assert data["url"].endswith(search.get_absolute_url())


def test_public_detail_lists_no_files_with_post_text(client, owner):
    search = make_search(owner, published=True)
    names = {f["name"] for f in client.get(reverse("api_search_detail", args=[search.pk])).json()["files"]}
    assert "count-hashtags.csv" in names
    assert not names & {"tweets.csv", "sample.csv", "tweets.jsonl"}


def test_a_failed_search_reports_its_error(owner_client, owner):
    search = make_search(owner, status=Status.FAILED, error="The X API refused the query: fix it.")
    data = owner_client.get(reverse("api_search_detail", args=[search.pk])).json()
    assert data["status"] == "failed" and data["error"] == "The X API refused the query: fix it."
    assert data["counts"] == {} and data["files"] == []


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("hashtags", [{"hashtag": "climate", "count": 3}, {"hashtag": "energy", "count": 2}]),
        ("domains", [{"domain": "example.org", "count": 2}, {"domain": "news.example.com", "count": 1}]),
        (
            "followers",
            [{"user": "ben", "followers": 5000}, {"user": "ada", "followers": 120}, {"user": "cleo", "followers": 40}],
        ),
        ("media", [{"url": "https://pbs.example.com/media/AAA.jpg", "file": "AAA.jpg", "count": 2}]),
    ],
)
def test_counts_come_ranked_and_limited(owner_client, owner, kind, expected):
    search = make_search(owner)
    url = reverse("api_search_counts", args=[search.pk, kind])
    data = owner_client.get(url, {"limit": len(expected)}).json()
    assert data["kind"] == kind and data["limit"] == len(expected)
    assert data["counts"] == expected


@pytest.mark.parametrize("limit", ["0", "1001", "-5", "ten", "", "2.5"])
def test_a_bad_limit_is_a_400_that_says_what_is_allowed(owner_client, owner, limit):
    search = make_search(owner)
    response = owner_client.get(reverse("api_search_counts", args=[search.pk, "hashtags"]), {"limit": limit})
    assert response.status_code == 400
    assert response.json() == {"error": f"limit must be a whole number from 1 to 1000 (got {limit!r})."}


def test_an_unknown_kind_is_a_404_naming_the_kinds(owner_client, owner):
    search = make_search(owner)
    response = owner_client.get(reverse("api_search_counts", args=[search.pk, "passwords"]))
    assert response.status_code == 404
    assert "hashtags, mentions, urls, domains, media, followers" in response.json()["error"]


def test_counts_of_a_running_search_say_it_is_not_finished(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING)
    response = owner_client.get(reverse("api_search_counts", args=[search.pk, "hashtags"]))
    assert response.status_code == 409
    assert "running" in response.json()["error"]


def test_private_searches_are_404_in_json(client, owner):
    search = make_search(owner)
    for url in (
        reverse("api_search_detail", args=[search.pk]),
        reverse("api_search_counts", args=[search.pk, "hashtags"]),
    ):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json() == {"error": f"No search #{search.pk} that you can see."}


def test_the_api_is_read_only(owner_client, owner):
    search = make_search(owner)
    assert owner_client.post(reverse("api_search_list")).status_code == 405
    assert owner_client.delete(reverse("api_search_detail", args=[search.pk])).status_code == 405


def test_list_gives_each_search_s_state(owner_client, owner):
    running = make_search(owner, status=Status.RUNNING, step="Collecting posts", progress=45.0)
    data = owner_client.get(reverse("api_search_list")).json()["searches"]
    assert [(s["id"], s["status"], s["progress"], s["step"]) for s in data] == [
        (running.pk, "running", 45.0, "Collecting posts")
    ]


def test_title_and_notes_come_with_the_search(owner_client, owner):
    search = make_search(owner, title="Heat wave, March", notes="For the <b>archive</b> team.")
    listed = owner_client.get(reverse("api_search_list")).json()["searches"][0]
    assert (listed["title"], listed["term"]) == ("Heat wave, March", "climate") and "notes" not in listed
    detail = owner_client.get(reverse("api_search_detail", args=[search.pk])).json()
    assert detail["notes"] == "For the <b>archive</b> team."


def test_notes_stay_with_the_owner_when_the_search_is_published(owner_client, owner):
    search = make_search(owner, title="Heat wave, March", notes="Keep away from the press until June.")
    owner_client.post(reverse("search_publish", args=[search.pk]))
    client = Client()  # anyone: the search is published

    for url in (search.get_absolute_url(), reverse("search_summary", args=[search.pk])):
        page = client.get(url).content.decode()
        assert "Heat wave, March" in page and "Keep away from the press" not in page, url
    assert "notes" not in client.get(reverse("api_search_detail", args=[search.pk])).json()
    # The owner still reads them, and is told who else does.
    page = owner_client.get(search.get_absolute_url()).content.decode()
    assert "Keep away from the press until June." in page and "Only you and staff see these notes" in page
