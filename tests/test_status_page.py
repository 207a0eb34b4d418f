"""The live status: one fragment for the page and its polling endpoint, 286 once done, bounded queries."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from searches.models import EventKind, Status, TaskEvent
from tests.web_helpers import add_events, make_search, write_outputs

pytestmark = pytest.mark.django_db


def status_section(html: str) -> str:
    """The status fragment of a page, its CSRF tokens blanked (they are masked anew on each render)."""
    match = re.search(r'<section id="status".*?</section>', html, re.S)
    assert match, "no status fragment in the page"
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value=""', match.group(0))


def part(html: str, element_id: str) -> str:
    """The div of `html` with this id (its end tag is the first to start a line), CSRF tokens blanked."""
    match = re.search(rf'<div id="{element_id}"[^>]*>.*?\n</div>', html, re.S)
    assert match, f"no #{element_id} in the page"
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', 'name="csrfmiddlewaretoken" value=""', match.group(0))


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.FINISHED, Status.FAILED, Status.CANCELLED])
def test_page_and_polling_endpoint_render_the_same_fragment(owner_client, owner, status):
    search = make_search(owner, status=status, step="Collecting posts: 450 of 1,000", progress=45.0)
    add_events(search)
    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
    fragment = owner_client.get(reverse("search_status", args=[search.pk]), HTTP_HX_REQUEST="true")
    body = fragment.content.decode().strip()
    assert body.startswith('<div id="status-live"')
    assert part(page, "status-live") == part(body, "status-live")
    assert "<html" not in body
    if status in (Status.QUEUED, Status.RUNNING):
        # The actions and the schedule form are not polled: a person may be using them.
        assert 'id="status-actions"' not in body
    else:
        # Once done, they come anew (a finished run offers other actions), out of band.
        assert part(body, "status-actions") == part(page, "status-actions").replace(
            '<div id="status-actions">', '<div id="status-actions" hx-swap-oob="true">'
        )


def test_running_search_polls_every_two_seconds_and_the_endpoint_keeps_it_going(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING, step="Collecting posts: 450 of 1,000", progress=45.0)
    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
    section = status_section(page)
    assert f'hx-get="{reverse("search_status", args=[search.pk])}"' in section
    assert 'hx-trigger="every 2s"' in section
    assert '<progress id="progress" max="100" value="45"' in section
    assert "Collecting posts: 450 of 1,000" in section
    response = owner_client.get(reverse("search_status", args=[search.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    # Without JavaScript a reload shows the same; a <noscript> refresh does it by itself. What is
    # typed in the title and notes would be lost on the next one: they wait until the run is done.
    assert '<noscript><meta http-equiv="refresh"' in page
    assert "<noscript><style>.describe { display: none; }</style>" in page
    search.latest_run.runs().finish()
    assert ".describe { display: none; }" not in owner_client.get(search.get_absolute_url()).content.decode()


@pytest.mark.parametrize("status", [Status.FINISHED, Status.FAILED, Status.CANCELLED])
def test_endpoint_answers_286_once_done_and_the_fragment_stops_polling(owner_client, owner, status):
    search = make_search(owner, status=status)
    response = owner_client.get(reverse("search_status", args=[search.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()
    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
    assert "hx-trigger" not in status_section(page)
    assert "noscript" not in page


def test_search_that_finishes_between_polls_shows_finished_and_the_summary_link(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING)
    url = reverse("search_status", args=[search.pk])
    assert owner_client.get(url).status_code == 200
    write_outputs(search)
    search.latest_run.runs().finish()
    search.latest_run.runs().update(num_posts=5)
    response = owner_client.get(url)
    body = response.content.decode()
    assert response.status_code == 286
    assert "Finished" in body
    assert reverse("search_summary", args=[search.pk]) in body
    # The live page gets the summary as a reload would show it, swapped in out of band.
    results = re.search(r'<div id="results" hx-swap-oob="true">(.*)</div>', body, re.S)
    assert results and 'id="summary"' in results.group(1)
    assert "#climate" in results.group(1)


def test_home_rows_poll_only_while_running(owner_client, owner):
    running = make_search(owner, status=Status.RUNNING, term="still going")
    done = make_search(owner, term="all done")
    page = owner_client.get(reverse("home")).content.decode()
    row_of = {
        s.pk: re.search(rf'<li class="search-row" id="search-row-{s.pk}".*?</li>', page, re.S).group(0)
        for s in (running, done)
    }
    assert f'hx-get="{reverse("search_status", args=[running.pk])}?part=row"' in row_of[running.pk]
    assert "hx-trigger" not in row_of[done.pk]
    # The row endpoint renders the same row the home page shows.
    row = owner_client.get(reverse("search_status", args=[running.pk]) + "?part=row").content.decode().strip()
    assert row == row_of[running.pk]


def test_timeline_shows_each_step_with_its_duration_and_the_failure_in_plain_words(owner_client, owner):
    search = make_search(
        owner, status=Status.FAILED, error="The archive ended in the middle of a post: upload it again."
    )
    add_events(search, ("CollectPosts", "Summarise"), fail_last=True)
    section = status_section(owner_client.get(reverse("search_detail", args=[search.pk])).content.decode())
    assert re.search(r"<th scope=\"row\">CollectPosts</th>.*?12 s.*?finished", section, re.S)
    assert re.search(r"<th scope=\"row\">Summarise</th>.*?12 s.*?failed", section, re.S)
    assert "What went wrong:</strong> The archive ended in the middle of a post: upload it again." in section
    assert "Run again" in section


def test_rate_limit_wait_is_shown_with_its_end_time(owner_client, owner, settings):
    until = (timezone.now() + timedelta(minutes=12)).replace(second=0, microsecond=0)
    search = make_search(owner, status=Status.RUNNING, rate_limited_until=until)
    TaskEvent.objects.create(
        run=search.latest_run, task_family="CollectPosts", event=EventKind.RATE_LIMIT, message="429: waiting 12 minutes"
    )
    section = status_section(owner_client.get(reverse("search_detail", args=[search.pk])).content.decode())
    assert f"Waiting for the rate limit until {until:%H:%M:%S} UTC" in section
    assert "429: waiting 12 minutes" in section


def test_a_past_rate_limit_is_not_shown(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING, rate_limited_until=timezone.now() - timedelta(minutes=1))
    section = status_section(owner_client.get(reverse("search_detail", args=[search.pk])).content.decode())
    assert "Waiting for the rate limit" not in section


def test_a_step_sent_as_markup_is_shown_as_text(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING, step="<script>alert(1)</script>")
    body = owner_client.get(reverse("search_status", args=[search.pk])).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_cancel_button_for_a_running_search_cancels_it(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING)
    section = status_section(owner_client.get(reverse("search_detail", args=[search.pk])).content.decode())
    assert f'action="{reverse("search_cancel", args=[search.pk])}"' in section
    response = owner_client.post(reverse("search_cancel", args=[search.pk]))
    assert response.status_code == 302
    search.refresh_from_db()
    assert search.status == Status.CANCELLED


def _many_events(search, n: int) -> None:
    start = timezone.now() - timedelta(hours=1)
    TaskEvent.objects.bulk_create(
        TaskEvent(
            run=search.latest_run,
            task_family=f"Task{i % 7}",
            task_id=f"Task{i % 7}_x",
            event=EventKind.PROGRESS if i % 3 else EventKind.START,
            message=f"step {i}",
            created=start + timedelta(seconds=i),
        )
        for i in range(n)
    )


def test_status_queries_do_not_grow_with_events(owner_client, owner, django_assert_max_num_queries):
    small, large = make_search(owner, status=Status.RUNNING), make_search(owner, status=Status.RUNNING)
    _many_events(small, 3)
    _many_events(large, 600)
    for search in (small, large):
        # session, user, search (with owner and runs), events: the newest, then the newest starts,
        # successes, failures and processing times (one query each)
        with django_assert_max_num_queries(8):
            assert owner_client.get(reverse("search_status", args=[search.pk])).status_code == 200
        with django_assert_max_num_queries(9):  # ... and the list of its runs
            assert owner_client.get(reverse("search_detail", args=[search.pk])).status_code == 200
    page = owner_client.get(reverse("search_detail", args=[large.pk])).content.decode()
    assert "the most recent only" in page
    assert "step 599" in page and "step 5<" not in page


def test_home_queries_do_not_grow_with_searches(owner_client, owner, other_user, django_assert_max_num_queries):
    for i in range(3):
        make_search(owner, status=Status.RUNNING, term=f"mine {i}")
        make_search(other_user, published=True, outputs=False, term=f"theirs {i}")
    # session, user, and for own and published searches: a count and a page
    with django_assert_max_num_queries(6) as few:
        owner_client.get(reverse("home"))
    for i in range(20):
        make_search(owner, status=Status.RUNNING, term=f"more {i}")
        make_search(other_user, published=True, outputs=False, term=f"more theirs {i}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = owner_client.get(reverse("home")).content.decode()
    assert "more 19" in page and "more theirs 19" in page


def test_a_long_run_shows_every_step_however_many_progress_reports_came_after_it_started(owner_client, owner):
    """A long collection reports progress thousands of times: the steps that started and ended
    before its newest events still have their rows, and the running step its newest progress."""
    search = make_search(owner, status=Status.RUNNING)
    families = ("CollectPosts", "SummarisePosts", "FetchPhotos")
    start = timezone.now() - timedelta(hours=2)
    events = []
    for index, family in enumerate(families):
        kinds = [EventKind.START] + [EventKind.PROGRESS] * 300 + ([EventKind.SUCCESS] if index < 2 else [])
        for n, kind in enumerate(kinds):
            events.append(
                TaskEvent(
                    run=search.latest_run,
                    task_family=family,
                    task_id=f"{family}_1",
                    event=kind,
                    message=f"{family} progress {n}" if kind == EventKind.PROGRESS else "",
                    created=start + timedelta(seconds=len(events)),
                )
            )
    TaskEvent.objects.bulk_create(events)
    body = owner_client.get(reverse("search_status", args=[search.pk]), HTTP_HX_REQUEST="true").content.decode()
    for family, state in zip(families, ("finished", "finished", "running"), strict=True):
        assert re.search(rf'<tr class="task-{state}">\s*<th scope="row">{family}</th>', body), family
    assert "FetchPhotos progress 300" in body
    assert "the most recent only" not in body


def test_a_running_search_whose_process_stopped_beating_says_so_until_it_beats_again(owner_client, owner, settings):
    """The worker behind it was killed: the page said "Running" as if all were well until a sweep."""
    import redis

    from searches.models import SearchRun
    from searches.watchdog import alive_key, alive_ttl

    search = make_search(owner, status=Status.RUNNING, step="Counting: 39,000 posts so far", progress=16.0)
    run = search.latest_run
    poll = reverse("search_status", args=[search.pk])
    says = "No word from the process running this search for a while: it may have stopped"

    assert says not in owner_client.get(poll).content.decode(), "only just started: no beat is due yet"
    SearchRun.objects.filter(pk=run.pk).update(started=timezone.now() - timedelta(seconds=alive_ttl() + 5))
    assert says in owner_client.get(poll).content.decode()
    assert says in owner_client.get(search.get_absolute_url()).content.decode()

    beats = redis.Redis.from_url(settings.REDIS_URL)
    beats.set(alive_key(run.pk), "4242", ex=alive_ttl())
    try:
        assert says not in owner_client.get(poll).content.decode()
    finally:
        beats.delete(alive_key(run.pk))
    # Redis unreachable: the page does not guess, and does not wait.
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:9/0"}}
    began = timezone.now()
    assert says not in owner_client.get(poll).content.decode()
    assert (timezone.now() - began).total_seconds() < 2


def test_a_queued_search_says_when_no_worker_runs_to_take_it(owner_client, owner, empty_queue, settings):
    """What the tester found: with no worker running (`make run` starts none), a search said
    "Waiting for a worker" for ever, and nothing said that none ran or how to start one."""
    from rq import Worker
    from rq.worker_registration import REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY

    connection = empty_queue.connection
    # Workers killed by earlier tests stay registered a while: this test starts from none.
    connection.delete(REDIS_WORKER_KEYS, WORKERS_BY_QUEUE_KEY % empty_queue.name)
    search = make_search(owner, status=Status.QUEUED, step="Waiting for a worker")
    poll = reverse("search_status", args=[search.pk])
    says = "No worker is running, so nothing takes this search from the queue. Start one (<code>make worker</code>"

    assert says in owner_client.get(poll).content.decode()
    assert says in owner_client.get(search.get_absolute_url()).content.decode()

    worker = Worker([empty_queue], connection=connection, name="test-worker-waiting")
    worker.register_birth()
    try:
        assert says not in owner_client.get(poll).content.decode()
    finally:
        worker.register_death()
    assert says in owner_client.get(poll).content.decode()
    # Redis unreachable: the page does not guess.
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:9/0"}}
    assert says not in owner_client.get(poll).content.decode()


def test_a_finished_recheck_says_how_many_posts_are_still_on_x_not_that_it_collected_them(owner_client, owner):
    from searches.models import RunKind, SearchRun

    search = make_search(owner)
    SearchRun.objects.filter(pk=search.latest_run_id).update(kind=RunKind.RECHECK, num_posts=136)
    page = owner_client.get(search.get_absolute_url()).content.decode()
    assert "136 posts still on X, in the results." in page and "136 posts collected" not in page
