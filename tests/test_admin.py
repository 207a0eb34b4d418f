"""The admin lists searches with their runs and drives the same actions as the web pages and the CLI."""

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from searches.models import EventKind, Search, SearchRun, Status, TaskEvent
from tests.web_helpers import add_run, make_search

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:searches_search_changelist"


@pytest.fixture
def queue(empty_queue):
    return empty_queue


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def run_action(admin_client, action: str, *searches: Search):
    return admin_client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [s.pk for s in searches]},
        follow=True,
    )


def test_the_admin_is_for_staff_only(client, owner):
    client.force_login(owner)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_changelist_shows_status_progress_posts_and_owner(admin_client, owner):
    search = make_search(owner, num_posts=400321, outputs=False)
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "climate" in page
    assert "Finished" in page
    assert "400,321" in page, "posts are counted with separators, as on the pages"
    assert "alice" in page
    assert "<title>Select search to change | dnflow admin</title>" in page
    # The runs say it the same way: their list, a search's runs and a run's own page.
    run = search.runs.get()
    for url in (
        reverse("admin:searches_searchrun_changelist"),
        reverse("admin:searches_search_change", args=[search.pk]),
        reverse("admin:searches_searchrun_change", args=[run.pk]),
    ):
        assert "400,321" in admin_client.get(url).content.decode(), url


def test_change_page_lists_the_runs_and_a_run_shows_its_events_read_only(admin_client, owner):
    search = make_search(owner, outputs=False)
    add_run(search, status=Status.FAILED, error="disk full")
    run = search.runs.get(number=2)
    TaskEvent.objects.create(run=run, task_family="Summarise", event=EventKind.FAILURE, message="disk full")

    page = admin_client.get(reverse("admin:searches_search_change", args=[search.pk])).content.decode()
    assert "run 1" in page and "run 2" in page
    assert reverse("admin:searches_searchrun_change", args=[run.pk]) in page
    run_page = admin_client.get(reverse("admin:searches_searchrun_change", args=[run.pk])).content.decode()
    assert "disk full" in run_page
    assert 'name="events-0-message"' not in run_page, "events must not be editable"
    assert 'name="status"' not in run_page, "a run's state is its workers' to change"


def test_the_query_of_a_saved_search_cannot_be_changed(admin_client, owner):
    search = make_search(owner, outputs=False)
    url = reverse("admin:searches_search_change", args=[search.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="term"' not in page and "climate" in page  # shown, not editable

    # A forged form that sets the term anyway changes nothing.
    admin_client.post(url, {"owner": owner.pk, "term": "brexit", "source": "sample"})
    search.refresh_from_db()
    assert search.term == "climate"
    # Nor can code that saves the row change it: a new query means a new search.
    search.term = "brexit"
    with pytest.raises(ValidationError, match="cannot change"):
        search.save()
    assert Search.objects.get(pk=search.pk).term == "climate"


def test_staff_change_a_search_s_title_and_notes_and_find_it_by_its_title(admin_client, owner):
    search = make_search(owner, outputs=False)
    url = reverse("admin:searches_search_change", args=[search.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="title"' in page and 'name="notes"' in page

    # Every hidden field, as the browser sends it back: the runs inline's management form, its rows' ids.
    hidden = dict(re.findall(r'<input type="hidden" name="([\w-]+)" value="([^"]*)"', page))
    assert "runs-TOTAL_FORMS" in hidden and "runs-0-id" in hidden, "the page has the runs inline"
    response = admin_client.post(
        url, {**hidden, "owner": owner.pk, "title": "Floods, March", "notes": "For the newsroom's archive."}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    search.refresh_from_db()
    assert (search.title, search.notes, search.term) == ("Floods, March", "For the newsroom's archive.", "climate")
    found = admin_client.get(reverse("admin:searches_search_changelist"), {"q": "floods"}).content.decode()
    assert f"/admin/searches/search/{search.pk}/change/" in found


def add_in_the_admin(admin_client, **fields) -> Search:
    """Send the admin's "Add search" form (with the runs inline's empty management form); the search."""
    response = admin_client.post(
        reverse("admin:searches_search_add"), {**fields, "runs-TOTAL_FORMS": 0, "runs-INITIAL_FORMS": 0}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return Search.objects.get(term=fields["term"])


def test_a_search_added_in_the_admin_belongs_to_the_staff_member_who_adds_it(admin_client, staff_user, queue):
    add = reverse("admin:searches_search_add")
    page = admin_client.get(add).content.decode()
    owner_field = re.search(r'<select name="owner".*?</select>', page, re.S).group(0)
    assert re.search(rf'<option value="{staff_user.pk}" selected>carol</option>', owner_field)
    # Sent as the page shows it, the owner left as chosen for them.
    search = add_in_the_admin(admin_client, owner=staff_user.pk, term="storm", source="sample")
    assert search.owner == staff_user
    # Someone else may still be chosen.
    other = admin_client.get(add, {"owner": ""}).content.decode()
    assert "selected>carol</option>" not in re.search(r'<select name="owner".*?</select>', other, re.S).group(0)


def test_a_search_added_in_the_admin_takes_its_time_window_in_one_labelled_box_each(admin_client, staff_user, queue):
    add = reverse("admin:searches_search_add")
    page = admin_client.get(add).content.decode()
    for name in ("start_time", "end_time"):
        # One input a label names (the admin's own date and time pair had one label for both).
        assert re.search(rf'<input type="datetime-local" name="{name}"[^>]*id="id_{name}"', page)
        assert f'<label for="id_{name}">' in page
        assert f'name="{name}_0"' not in page
    search = add_in_the_admin(
        admin_client,
        owner=staff_user.pk,
        term="storm",
        source="sample",
        start_time="2024-03-01T10:00",
        end_time="2024-03-02T00:30",
    )
    assert (search.start_time.isoformat(), search.end_time.isoformat()) == (
        "2024-03-01T10:00:00+00:00",
        "2024-03-02T00:30:00+00:00",
    )


def test_publish_then_unpublish(admin_client, owner):
    search = make_search(owner, outputs=False)
    run_action(admin_client, "publish", search)
    search.refresh_from_db()
    assert search.published_at is not None
    run_action(admin_client, "unpublish", search)
    search.refresh_from_db()
    assert search.published_at is None


def test_publish_and_unpublish_count_only_the_searches_they_change(admin_client, owner):
    shared = make_search(owner, term="shared", published=True, outputs=False)
    private = [make_search(owner, term=f"private {i}", outputs=False) for i in range(2)]

    page = run_action(admin_client, "unpublish", shared, *private).content.decode()
    assert "Unpublished 1 search." in page and "Unpublished 3" not in page
    for search in private:
        assert f"{search}: not published; left as it was." in page
    shared.refresh_from_db()
    assert shared.published_at is None

    page = run_action(admin_client, "unpublish", *private).content.decode()
    assert "Unpublished" not in page  # nothing was

    run_action(admin_client, "publish", shared)
    page = run_action(admin_client, "publish", shared, private[0]).content.decode()
    assert "Published 1 search." in page and f"{shared}: already published; left as it was." in page


def test_a_search_without_a_finished_run_cannot_be_published(admin_client, owner):
    search = make_search(owner, status=Status.FAILED)
    page = run_action(admin_client, "publish", search).content.decode()
    assert "Only a search with a finished run can be published" in page
    search.refresh_from_db()
    assert search.published_at is None


def test_delete_removes_the_search_all_its_runs_and_their_files(admin_client, owner, data_dir):
    search = make_search(owner)
    add_run(search, status=Status.CANCELLED)
    folders = [run.folder_path for run in search.runs.all()]
    for folder in folders:
        folder.mkdir(exist_ok=True)
    neighbour = make_search(owner)

    asked = run_action(admin_client, "delete_with_files", search).content.decode()

    # It asks first, as Django's own delete does: nothing is gone yet.
    assert "Delete these searches and all their files?" in asked and "It cannot be undone." in asked
    assert f"{search}" in asked and 'name="delete" value="yes"' in asked
    assert Search.objects.filter(pk=search.pk).exists() and all(folder.exists() for folder in folders)
    admin_client.post(
        reverse(CHANGELIST), {"action": "delete_with_files", "_selected_action": [search.pk], "delete": "yes"}
    )
    assert not Search.objects.filter(pk=search.pk).exists()
    assert not SearchRun.objects.filter(search_id=search.pk).exists()
    assert not any(folder.exists() for folder in folders)
    assert neighbour.results_dir.exists(), "another search's files must be untouched"


def test_cancel_a_queued_search(admin_client, owner, queue):
    search = make_search(owner, status=Status.QUEUED)
    run_action(admin_client, "cancel", search)
    search.refresh_from_db()
    assert search.status == Status.CANCELLED


def test_run_again_queues_one_job_that_carries_only_the_run_id(
    admin_client, owner, queue, django_capture_on_commit_callbacks
):
    search = make_search(owner, status=Status.FAILED, error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "run_again", search)
    search.refresh_from_db()
    assert search.status == Status.QUEUED
    assert search.latest_run.error == ""
    jobs = queue.get_jobs()
    assert len(jobs) == 1
    assert jobs[0].args == (search.latest_run_id,)
    assert jobs[0].kwargs == {}


def test_collect_again_queues_a_new_run_and_keeps_the_results(
    admin_client, owner, queue, django_capture_on_commit_callbacks
):
    search = make_search(owner)
    first = search.results_run
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "collect_again", search)
    search = Search.objects.with_runs().get(pk=search.pk)
    assert search.latest_run.number == 2 and search.status == Status.QUEUED
    assert search.results_run == first and first.folder_path.is_dir()
    assert [job.args for job in queue.get_jobs()] == [(search.latest_run_id,)]


def test_saving_a_search_s_title_keeps_a_run_that_started_meanwhile(admin_client, owner):
    """The admin saved the whole row it had read: a run started (or finished) between its reading
    the search and its saving it lost its place as the search's newest run (or its results)."""
    from django.db.models.signals import pre_save

    search = make_search(owner, outputs=False)
    url = reverse("admin:searches_search_change", args=[search.pk])
    page = admin_client.get(url).content.decode()
    hidden = dict(re.findall(r'<input type="hidden" name="([\w-]+)" value="([^"]*)"', page))
    started = []

    def a_run_starts_meanwhile(sender, instance, **kwargs):
        # As `run_search --again` or a schedule does, in the moment between the admin's read and write.
        if instance.pk == search.pk and not started:
            started.append(Search.objects.get(pk=search.pk).start_run())

    pre_save.connect(a_run_starts_meanwhile, sender=Search)
    try:
        response = admin_client.post(url, {**hidden, "owner": owner.pk, "title": "Floods", "notes": ""})
    finally:
        pre_save.disconnect(a_run_starts_meanwhile, sender=Search)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert started, "no run started meanwhile"
    saved = Search.objects.get(pk=search.pk)
    assert saved.title == "Floods"
    assert saved.latest_run_id == started[0].pk


def test_a_run_is_shown_in_the_admin_but_never_saved_there(admin_client, owner):
    run = make_search(owner, outputs=False).latest_run
    url = reverse("admin:searches_searchrun_change", args=[run.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="_save"' not in page
    assert admin_client.post(url, {"number": 5}).status_code == 403
    run.refresh_from_db()
    assert run.number == 1


def test_deleting_one_search_from_its_page_lists_its_runs_and_says_its_files_go(admin_client, owner):
    """Django's own page for one object: it showed the bulk action's page, with no search listed."""
    search = make_search(owner)
    page = admin_client.get(reverse("admin:searches_search_delete", args=[search.pk])).content.decode()
    assert "also removes every file it collected" in page
    assert f'Search run: <a href="/admin/searches/searchrun/{search.latest_run_id}/change/">' in page
    admin_client.post(reverse("admin:searches_search_delete", args=[search.pk]), {"post": "yes"})
    assert not Search.objects.filter(pk=search.pk).exists() and not search.results_dir.exists()
