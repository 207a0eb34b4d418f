"""The estimate before a live search: counts by day from the X API's counts endpoints, and the cost.

Expected numbers are worked out by hand from the recorded data: its 500 posts were all written on
2021-06-26 between 19:22 and 19:57 UTC, 203 of them tagged `it`; the recording was made at
2021-06-26T19:56:43Z, which is the emulator's "now".
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

import pipeline.xapi_client
from pipeline.xapi import Estimate, XApiError, collect_live, estimate
from tests.x_emulator import Fault

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture


def test_recent_counts_by_day_and_the_cost_at_the_default_price(x_api, settings):
    assert settings.DNFLOW_PRICE_PER_POST == 0.005
    result = estimate(query="blacklivesmatter", source="recent")

    [request] = x_api.requests
    assert request.path == "/2/tweets/counts/recent"
    assert (request.params["query"], request.params["granularity"]) == ("blacklivesmatter", "day")
    # The last 7 days, cut at midnights: 19 June (from 19:56:43) to 26 June (until 19:56:43).
    days = [f"2021-06-{day}" for day in range(19, 27)]
    assert result.by_day == [(day, 500 if day == "2021-06-26" else 0) for day in days]
    assert result.total == 500
    assert result.cost == pytest.approx(2.5)
    assert result.describe() == (
        "about 500 posts match (7 days: 2021-06-19 to 2021-06-26) -- about $2.50 at $0.005 per post read"
    )


def test_the_configured_price_and_the_language_are_used(x_api, settings):
    settings.DNFLOW_PRICE_PER_POST = 0.0075
    result = estimate(query="blacklivesmatter", source="recent", lang="it")

    assert x_api.requests[0].params["query"] == "blacklivesmatter lang:it"
    assert result.total == 203
    assert (result.price_per_post, result.cost) == (0.0075, pytest.approx(1.5225))
    assert result.describe() == (
        "about 203 posts match (7 days: 2021-06-19 to 2021-06-26) -- about $1.52 at $0.0075 per post read"
    )


def test_full_archive_counts_follow_next_token_across_pages(x_api):
    x_api.counts_buckets_per_page = 7
    start = datetime(2021, 6, 10, 2, 0, tzinfo=timezone.get_fixed_timezone(120))  # midnight UTC
    result = estimate(query="blacklivesmatter", source="all", start_time=start, end_time="2021-06-30T00:00:00Z")

    requests = x_api.requests
    assert [r.path for r in requests] == ["/2/tweets/counts/all"] * 3  # 20 days, 7 per page
    assert requests[0].params["start_time"] == "2021-06-10T00:00:00Z"
    assert "next_token" not in requests[0].params
    assert all(r.params.get("next_token") for r in requests[1:])
    assert [day for day, _ in result.by_day] == [f"2021-06-{day:02d}" for day in range(10, 30)]
    assert dict(result.by_day)["2021-06-26"] == 500
    assert result.total == 500
    assert result.describe() == (
        "about 500 posts match (20 days: 2021-06-10 to 2021-06-29) -- about $2.50 at $0.005 per post read"
    )  # given a start time, the count covers what the search covers: nothing more to say


def test_the_cost_is_of_the_posts_the_count_lets_the_search_read_not_of_all_that_match(x_api):
    capped = estimate(query="blacklivesmatter", source="recent", count=100)
    assert (capped.total, capped.reads, capped.cost) == (500, 100, pytest.approx(0.5))
    assert capped.describe() == (
        "about 500 posts match (7 days: 2021-06-19 to 2021-06-26); with count 100 the search reads at most 100 "
        "-- at most $0.50 at $0.005 per post read"
    )

    # The search asks for what it still needs, but X's pages hold 10 posts at least: 105 reads 110.
    small = estimate(query="blacklivesmatter", source="recent", count=105)
    assert (small.reads, small.cost) == (110, pytest.approx(0.55))
    assert "with count 105 the search reads at most 110 (X's pages hold at least 10 posts) -- at most $0.55" in (
        small.describe()
    )

    roomy = estimate(query="blacklivesmatter", source="recent", count=1000)
    assert (roomy.reads, roomy.cost) == (500, pytest.approx(2.5))
    assert roomy.describe() == (
        "about 500 posts match (7 days: 2021-06-19 to 2021-06-26); with count 1,000 the search reads them all "
        "-- about $2.50 at $0.005 per post read"
    )


def test_a_full_archive_estimate_without_a_start_time_says_it_counts_and_covers_only_30_days(x_api, tmp_path):
    result = estimate(query="blacklivesmatter", source="all", count=100)

    assert "start_time" not in x_api.requests[0].params
    assert result.describe() == (
        "about 500 posts match (30 days: 2021-05-27 to 2021-06-26); with count 100 the search reads at most 100 "
        "-- at most $0.50 at $0.005 per post read. Without a start time a full-archive search covers only the "
        "last 30 days (X's default), the days counted here: give a start time (--start) to reach further back."
    )
    until = estimate(query="blacklivesmatter", source="all", end_time="2021-06-27T00:00:00Z")
    assert "(30 days: 2021-05-28 to 2021-06-26)" in until.describe()
    assert "covers only the 30 days before its end time" in until.describe()

    # The search itself covers those days and no more, as X does: a month on, neither finds the posts.
    x_api.now += timedelta(days=31)
    assert estimate(query="blacklivesmatter", source="all").total == 0
    assert (
        collect_live(
            query="blacklivesmatter", source="all", count=100, raw_path=tmp_path / "r", state_path=tmp_path / "s"
        ).posts
        == 0
    )


def test_a_window_shorter_than_a_day_is_said_in_minutes_or_hours_not_as_a_day(x_api):
    quarter = estimate(
        query="blacklivesmatter", source="recent", start_time="2021-06-26T19:30:00Z", end_time="2021-06-26T19:45:00Z"
    )
    assert 0 < quarter.total < 500
    assert f"about {quarter.total} posts match (15 minutes: 2021-06-26) -- " in quarter.describe()

    evening = estimate(
        query="blacklivesmatter", source="recent", start_time="2021-06-26T13:00:00Z", end_time="2021-06-26T19:00:00Z"
    )
    assert "(6 hours: 2021-06-26)" in evening.describe()
    # An hour and a half is not "2 hours" (the check found it so).
    half_past = estimate(
        query="blacklivesmatter", source="recent", start_time="2021-06-26T13:00:00Z", end_time="2021-06-26T14:30:00Z"
    )
    assert "(90 minutes: 2021-06-26)" in half_past.describe()
    two_and_a_half = estimate(
        query="blacklivesmatter", source="recent", start_time="2021-06-26T13:00:00Z", end_time="2021-06-26T15:30:00Z"
    )
    assert "(2.5 hours: 2021-06-26)" in two_and_a_half.describe()

    # A day and more is said in days, as before.
    two_days = estimate(
        query="blacklivesmatter", source="recent", start_time="2021-06-24T20:00:00Z", end_time="2021-06-26T20:00:00Z"
    )
    assert "(2 days: 2021-06-24 to 2021-06-26)" in two_days.describe()


def test_the_start_time_is_named_as_the_person_asking_calls_it(x_api):
    on_the_page = estimate(query="blacklivesmatter", source="all", start_field="From")
    assert "give a start time (From) to reach further back" in on_the_page.describe()
    assert "--start" not in on_the_page.describe()


def test_describe_in_plain_words_with_thousands_and_cents():
    week = [(f"2026-03-0{day}", 1763) for day in range(1, 8)]
    many = Estimate(total=12345, by_day=week, cost=61.725, price_per_post=0.005, days=7)
    assert many.describe() == "about 12,345 posts match (7 days) -- about $61.73 at $0.005 per post read"
    one = Estimate(total=1, by_day=[("2026-03-01", 1)], cost=0.005, price_per_post=0.005)
    assert one.describe() == "about 1 post matches (1 day) -- about $0.01 at $0.005 per post read"


def test_a_server_error_is_retried_before_the_estimate(x_api, monkeypatch):
    monkeypatch.setattr(pipeline.xapi_client, "BACKOFF_BASE_SECONDS", 0.02)
    x_api.fail_next(Fault.server_error(503))
    assert estimate(query="blacklivesmatter", source="recent").total == 500
    assert [r.status for r in x_api.requests] == [503, 200]


@pytest.mark.parametrize(
    ("fault", "source", "words"),
    [
        (Fault.bad_request("Ambiguous use of and as a keyword (at position 5)"), "recent", ["Ambiguous use of and"]),
        (Fault.unauthorized(), "recent", ["401", "X_BEARER_TOKEN"]),
        (Fault.not_enrolled(), "all", ["403", "Project", "full-archive"]),
        (Fault.usage_cap(), "recent", ["usage cap", "billing cycle"]),
    ],
)
def test_refusals_are_explained(x_api, settings, fault, source, words):
    x_api.fail_next(fault)
    with pytest.raises(XApiError) as failure:
        estimate(query="blacklivesmatter", source=source)
    for word in words:
        assert word in str(failure.value)
    assert failure.value.retryable is False
    assert settings.X_BEARER_TOKEN not in str(failure.value)
    assert len(x_api.requests) == 1


def test_no_token_is_explained_before_any_request(x_api, settings):
    settings.X_BEARER_TOKEN = ""
    with pytest.raises(XApiError, match="X_BEARER_TOKEN"):
        estimate(query="blacklivesmatter", source="recent")
    assert x_api.requests == []


def test_an_estimate_the_rate_limit_holds_up_answers_at_once_with_the_time_x_gives(x_api):
    """On the web form a person waits for it: it held the request for the whole wait (21.5 s for a
    20 s reset; up to 8 waits of 16 minutes by default)."""
    x_api.fail_next(Fault.rate_limit(reset_in=600))
    began = datetime.now()
    with pytest.raises(XApiError) as refused:
        estimate(query="blacklivesmatter", source="recent")
    assert (datetime.now() - began).total_seconds() < 5
    message = str(refused.value)
    assert message.startswith("The X API is limiting this app's requests until ")
    assert "Nothing was read or spent" in message
    # The time X gives (its reset header, whole seconds), as the clock here says it: about ten minutes on.
    said = datetime.strptime(message.split(" until ")[1][:8], "%H:%M:%S")
    expected = timezone.localtime(timezone.now() + timedelta(seconds=600))
    off = (said.hour * 3600 + said.minute * 60 + said.second) - (
        expected.hour * 3600 + expected.minute * 60 + expected.second
    )
    assert abs((off + 43200) % 86400 - 43200) <= 5, (message, expected)
    assert len(x_api.requests) == 1


def test_a_rate_limit_that_resets_beyond_the_longest_wait_says_when_and_which_setting(x_api, tmp_path, settings):
    settings.DNFLOW_MAX_RATE_LIMIT_WAIT = 0.05  # X's reset is ten minutes off: each wait stops here
    x_api.fail_next(*[Fault.rate_limit(reset_in=600)] * 9)
    with pytest.raises(XApiError) as failed:
        collect_live(
            query="blacklivesmatter", source="recent", count=10, raw_path=tmp_path / "r", state_path=tmp_path / "s"
        )
    message = str(failed.value)
    assert "after 8 waits for its rate limit" in message
    assert "as the time its limit resets, further off than DNFLOW_MAX_RATE_LIMIT_WAIT (0 s)" in message
    assert "run it again after then, or raise that setting" in message
    assert "Another program" not in message


def test_a_plan_that_may_search_but_not_count_is_told_so_by_the_estimate(x_api):
    x_api.fail_next(Fault.not_enrolled())
    with pytest.raises(XApiError) as refused:
        estimate(query="blacklivesmatter", source="recent")
    message = str(refused.value)
    assert "counting posts (recent counts, which the estimate asks for)" in message
    assert "the search itself can still run, without an estimate" in message


def test_a_query_x_refuses_says_to_start_a_new_search_not_to_run_the_same_one_again(x_api, tmp_path):
    x_api.fail_next(Fault.bad_request("Ambiguous use of and as a keyword (at position 5)"))
    with pytest.raises(XApiError) as refused:
        collect_live(query="cats and", source="recent", count=10, raw_path=tmp_path / "r", state_path=tmp_path / "s")
    assert "Fix the search terms, operators or dates in a new search" in str(refused.value)
    assert "running it again would send the same one" in str(refused.value)
