"""The pages people keep open cost the same number of database queries with 5 searches or events
as with 50: the home list and the status fragment it polls every two seconds never query once per
row (no N+1), so a busy installation stays as fast as an empty one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from searches.models import EventKind, Search, Status, TaskEvent
from searches.paging import PAGE_SIZE
from tests.web_helpers import add_run, make_search, older_links

pytestmark = pytest.mark.django_db

FEW, MANY = 5, 50
# Every state a listed search can be in: each renders its row differently (progress, step, count).
STATUSES = (Status.FINISHED, Status.RUNNING, Status.QUEUED, Status.FAILED, Status.CANCELLED)
FAMILIES = ("CollectPosts", "SummarisePosts", "FetchPhotos", "MatchPhotos", "PackageOutputs")


def add_searches(
    owner, count: int, *, label: str, published: bool = False, start: int = 0, status: str | None = None
) -> list[Search]:
    now = timezone.now()
    searches = []
    for i in range(start, start + count):
        state = status or STATUSES[i % len(STATUSES)]
        run_fields = {"step": "Counting: 2,000 posts so far"} if state in (Status.RUNNING, Status.QUEUED) else {}
        if state == Status.FINISHED:
            run_fields["num_posts"] = 100 + i
        if state == Status.FAILED:
            run_fields["error"] = "The archive ended in the middle of a post."
        searches.append(
            make_search(
                owner,
                status=state,
                published=published,
                outputs=False,
                term=f"{label} {i}",
                created=now - timedelta(minutes=i),
                **run_fields,
            )
        )
    return searches


def add_events(search: Search, count: int) -> None:
    """`count` events as a workflow records them: each task starts, reports progress and ends;
    rate-limit waits and notes are mixed in (they show as notes below the timeline)."""
    base = timezone.now() - timedelta(hours=1)
    per_family = max(3, count // len(FAMILIES))
    events = []
    for n in range(count):
        family = FAMILIES[min(n // per_family, len(FAMILIES) - 1)]
        step = n % per_family
        if step == 0:
            kind = EventKind.START
        elif step == per_family - 1:
            kind = EventKind.SUCCESS
        else:
            kind = (EventKind.PROGRESS, EventKind.RATE_LIMIT, EventKind.NOTE, EventKind.PROCESSING_TIME)[step % 4]
        events.append(
            TaskEvent(
                run_id=search.latest_run_id,
                task_family=family,
                task_id=f"{family}_{search.pk}",
                event=kind,
                message=f"event {n}",
                duration=1.5 if kind == EventKind.PROCESSING_TIME else None,
                created=base + timedelta(seconds=n),
            )
        )
    TaskEvent.objects.bulk_create(events)


def measure(client, url: str, **headers) -> tuple[int, str]:
    """(queries, body) of one GET, after a first GET that settles the session."""
    client.get(url, **headers)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code in (200, 286), f"{url} answered {response.status_code}"
    return len(captured), response.content.decode()


@pytest.fixture
def publishers(django_user_model):
    """Several owners, so that a missing select_related would cost one query per row."""
    return [django_user_model.objects.create_user(f"publisher{i}", password="x") for i in range(5)]


def publish(publishers, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        add_searches(publishers[i % len(publishers)], 1, label="published", published=True, start=i)


@pytest.mark.parametrize("who", ["owner", "anonymous", "staff"])
def test_home_queries_do_not_grow_with_searches(client, owner, staff_user, publishers, who):
    viewer = {"owner": owner, "staff": staff_user, "anonymous": None}[who]
    if viewer is not None:
        client.force_login(viewer)
    home = reverse("home")

    if viewer is not None:
        add_searches(viewer, FEW, label="mine")
    publish(publishers, FEW)
    few_queries, page = measure(client, home)
    rows = FEW * 2 if viewer is not None else FEW
    assert page.count('class="search-row"') == rows

    if viewer is not None:
        add_searches(viewer, MANY - FEW, label="mine", start=FEW)
    publish(publishers, MANY - FEW, start=FEW)
    many_queries, page = measure(client, home)
    # Ten times the searches, every status and five owners among them: a page of each list, the
    # same queries.
    assert page.count('class="search-row"') == rows * PAGE_SIZE // FEW
    assert "published 49" in page and "publisher4" in page
    assert "Page 1 of 2 · 50 searches" in page
    if viewer is not None:
        assert "mine 0 " in page or "mine 0<" in page  # the newest first
    assert many_queries == few_queries, f"{many_queries} queries with {MANY} searches, {few_queries} with {FEW}"


@pytest.mark.parametrize("status", [Status.RUNNING, Status.FINISHED])
def test_status_fragment_queries_do_not_grow_with_events(client, owner, status):
    client.force_login(owner)
    few, many = (add_searches(owner, 1, label=label, start=i, status=status)[0] for i, label in ((0, "f"), (5, "m")))
    add_events(few, FEW)
    add_events(many, MANY)

    counts = {}
    for search in (few, many):
        panel = reverse("search_status", args=[search.pk])
        counts[search.pk] = (
            measure(client, panel, HTTP_HX_REQUEST="true")[0],
            measure(client, panel + "?part=row", HTTP_HX_REQUEST="true")[0],
        )
    _, fragment = measure(client, reverse("search_status", args=[many.pk]), HTTP_HX_REQUEST="true")
    # The larger timeline is really shown: every task of the workflow has its row, and notes are listed.
    for family in FAMILIES:
        assert f'<th scope="row">{family}</th>' in fragment
    assert 'class="notes"' in fragment
    assert counts[many.pk] == counts[few.pk], f"(panel, row) queries: {counts[many.pk]} vs {counts[few.pk]}"


def test_status_fragment_queries_are_the_same_for_another_viewer(client, owner, other_user, staff_user):
    """A published search polled by someone who does not own it, and by staff: no per-event query either."""
    search = add_searches(owner, 1, label="shared", published=True, status=Status.RUNNING)[0]
    add_events(search, FEW)
    url = reverse("search_status", args=[search.pk])
    for viewer in (other_user, staff_user, None):
        client.logout()
        if viewer is not None:
            client.force_login(viewer)
        few_queries, _ = measure(client, url, HTTP_HX_REQUEST="true")
        add_events(search, MANY - FEW)
        many_queries, _ = measure(client, url, HTTP_HX_REQUEST="true")
        TaskEvent.objects.filter(run__search=search).delete()
        add_events(search, FEW)
        assert many_queries == few_queries, f"{viewer}: {many_queries} vs {few_queries}"


@pytest.mark.parametrize("who", ["owner", "anonymous"])
def test_a_deep_page_of_home_costs_what_the_first_does(client, owner, publishers, who):
    """The last page of a long list: paged on ids, so its rows come with their runs in one query
    however many pages come before it."""
    viewer = owner if who == "owner" else None
    if viewer is not None:
        client.force_login(viewer)
    param = "mine" if viewer is not None else "published"

    def add(count: int, start: int) -> None:
        if viewer is not None:
            add_searches(viewer, count, label="mine", start=start)
        else:
            publish(publishers, count, start=start)

    add(PAGE_SIZE + FEW, 0)
    few_queries, page = measure(client, f"{reverse('home')}?{param}=2")
    assert f"Page 2 of 2 · {PAGE_SIZE + FEW} searches" in page
    assert page.count('class="search-row"') == FEW
    # The same page reached by page 1's "Older" link (which says where page 1 ended).
    few_link_queries, linked = measure(
        client, reverse("home") + "?" + older_links(measure(client, reverse("home"))[1])[-1]
    )
    assert f"Page 2 of 2 · {PAGE_SIZE + FEW} searches" in linked and linked.count('class="search-row"') == FEW

    # Five times the rows on the last page too: a query per row would show.
    add(4 * PAGE_SIZE - FEW, PAGE_SIZE + FEW)
    total = 5 * PAGE_SIZE
    many_queries, page = measure(client, f"{reverse('home')}?{param}=5")
    assert f"Page 5 of 5 · {total} searches" in page
    assert page.count('class="search-row"') == PAGE_SIZE
    # The last page holds the oldest search: the first published, or the one created longest ago.
    assert (f"mine {total - 1}<" if viewer else "published 0<") in page
    assert many_queries == few_queries, f"{many_queries} queries on page 5 of 5, {few_queries} on page 2 of 2"
    many_link_queries, linked = measure(
        client, reverse("home") + "?" + older_links(measure(client, f"{reverse('home')}?{param}=4")[1])[-1]
    )
    assert f"Page 5 of 5 · {total} searches" in linked and linked.count('class="search-row"') == PAGE_SIZE
    assert many_link_queries == few_link_queries, f"by link: {many_link_queries} on page 5, {few_link_queries} on 2"


def test_api_list_queries_do_not_grow_with_searches(client, owner, publishers):
    client.force_login(owner)
    url = reverse("api_search_list")
    add_searches(owner, FEW, label="mine")
    publish(publishers, FEW)
    few_queries, body = measure(client, url)
    assert body.count('"id": ') == 2 * FEW

    for search in add_searches(owner, MANY - FEW, label="mine", start=FEW, status=Status.FINISHED)[::3]:
        add_run(search, status=Status.FAILED)  # a newer run that failed: the results stay the older run's
    publish(publishers, MANY - FEW, start=FEW)
    many_queries, body = measure(client, url)
    # Every status, five owners, a newer unfinished run beside the results: no query per row.
    assert body.count('"id": ') == 2 * MANY
    assert '"owner": "publisher4"' in body and '"status": "failed"' in body and '"results_from": "' in body
    assert many_queries == few_queries, f"{many_queries} queries with {MANY} searches, {few_queries} with {FEW}"
