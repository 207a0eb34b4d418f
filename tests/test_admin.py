"""The admin lists searches and drives the same actions as the web pages and the CLI."""

import django_rq
import pytest
from django.urls import reverse
from django.utils import timezone

from searches.models import EventKind, Search, Source, Status, TaskEvent

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:searches_search_changelist"


@pytest.fixture
def queue():
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


def make_search(owner, status=Status.FINISHED, **fields) -> Search:
    search = Search.objects.create(
        owner=owner, term="climate", source=Source.SAMPLE, count=None, status=status, **fields
    )
    search.folder = search.new_folder_name()
    search.save()
    return search


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
    make_search(owner, num_posts=321, progress=100)
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "climate" in page
    assert "Finished" in page
    assert "321" in page
    assert "alice" in page


def test_change_page_shows_task_events_read_only(admin_client, owner):
    search = make_search(owner)
    TaskEvent.objects.create(search=search, task_family="Summarise", event=EventKind.FAILURE, message="disk full")
    page = admin_client.get(reverse("admin:searches_search_change", args=[search.pk])).content.decode()
    assert "disk full" in page
    assert 'name="events-0-message"' not in page, "events must not be editable"


def test_publish_then_unpublish(admin_client, owner):
    search = make_search(owner)
    run_action(admin_client, "publish", search)
    search.refresh_from_db()
    assert search.published_at is not None
    run_action(admin_client, "unpublish", search)
    search.refresh_from_db()
    assert search.published_at is None


def test_a_search_that_has_not_finished_cannot_be_published(admin_client, owner):
    search = make_search(owner, status=Status.FAILED)
    page = run_action(admin_client, "publish", search).content.decode()
    assert "Only a finished search can be published" in page
    search.refresh_from_db()
    assert search.published_at is None


def test_delete_removes_the_search_and_its_files(admin_client, owner, data_dir):
    search = make_search(owner)
    search.output_dir.mkdir()
    (search.output_dir / "summary.json").write_text("{}")
    neighbour = make_search(owner)
    neighbour.output_dir.mkdir()
    run_action(admin_client, "delete_with_files", search)
    assert not Search.objects.filter(pk=search.pk).exists()
    assert not search.output_dir.exists()
    assert neighbour.output_dir.exists(), "another search's files must be untouched"


def test_cancel_a_queued_search(admin_client, owner, queue):
    search = make_search(owner, status=Status.QUEUED)
    run_action(admin_client, "cancel", search)
    search.refresh_from_db()
    assert search.status == Status.CANCELLED


def test_run_again_queues_one_job_that_carries_only_the_search_id(
    admin_client, owner, queue, django_capture_on_commit_callbacks
):
    search = make_search(owner, status=Status.FAILED, finished=timezone.now(), error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(admin_client, "run_again", search)
    search.refresh_from_db()
    assert search.status == Status.QUEUED
    assert search.error == ""
    jobs = queue.get_jobs()
    assert len(jobs) == 1
    assert jobs[0].args == (search.pk,)
    assert jobs[0].kwargs == {}
