"""Where a purge is started: the search page (asks first, on a page of its own; POST only), the
admin (asks first, like Django's delete) and `manage.py purge_unavailable ID --yes`. Only the owner
and staff may purge; anyone else gets a 404, and asking never changes anything."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from pipeline.contract import PURGE_RECORD, PURGE_REPORT
from pipeline.purge import purge_notes
from searches import services
from searches.models import RunKind, Search, SearchRun, Status

from .purge_helpers import archive_search, deleted_on_x, rechecked
from .worker_helpers import manage

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


@pytest.fixture
def rechecked_search(x_api, owner, data_dir, real_data) -> Search:
    """An uploaded archive, collected, with 7 of its posts gone from X, rechecked."""
    search, _ = archive_search(owner, data_dir, real_data)
    deleted_on_x(x_api)
    rechecked(search)
    return Search.objects.with_runs().get(pk=search.pk)


def purge_runs(search: Search) -> list[SearchRun]:
    return list(SearchRun.objects.filter(search=search, kind=RunKind.PURGE).order_by("number"))


def failed_purge(search: Search) -> SearchRun:
    """A purge of the search that fails part-way: it purges the first run's folder, then finds the
    recheck's tweets.csv unreadable (garbage bytes, put back as it was once the purge has failed)."""
    broken = SearchRun.objects.get(search_id=search.pk, number=2).folder_path / "tweets.csv"
    table = broken.read_bytes()
    broken.write_bytes(b"\xff\xfe not a table\n")
    try:
        services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
        stopped = services.execute_search(Search.objects.get(pk=search.pk))
    finally:
        broken.write_bytes(table)
    assert (stopped.kind, stopped.status) == (RunKind.PURGE, Status.FAILED)
    # It named only a UnicodeDecodeError; the server's own path is not for a published page to show.
    assert stopped.error.startswith(f"{broken.parent.name}/tweets.csv is not the table dnflow wrote")
    assert str(broken.parent.parent) not in stopped.error
    return stopped


def test_the_owner_is_asked_first_with_exactly_what_goes_and_asking_changes_nothing(rechecked_search, owner_client):
    url = reverse("search_purge", args=[rechecked_search.pk])
    page = owner_client.get(reverse("search_detail", args=[rechecked_search.pk])).content.decode()
    assert f'href="{url}"' in page  # from the "Still on X?" panel

    response = owner_client.get(url)

    assert response.status_code == 200
    text = response.content.decode()
    assert "found <strong>7 posts</strong> that X no longer gives" in text
    assert "<code>resource-not-found</code>: 7" in text
    assert "<code>tweets.jsonl</code>, <code>tweets.csv</code>, <code>sample.csv</code>" in text
    assert "The archive you uploaded, <code>v2-pages-twarc-network.jsonl</code>, is deleted too" in text
    assert "It cannot be undone" in text
    assert f'<form method="post" action="{url}"' in text
    assert "can no longer be resumed" not in text
    assert purge_runs(rechecked_search) == []


def test_the_owner_is_told_a_stopped_run_can_no_longer_be_resumed(rechecked_search, owner_client):
    services.collect_again(rechecked_search, enqueue=False)
    services.cancel_search(Search.objects.get(pk=rechecked_search.pk))

    text = owner_client.get(reverse("search_purge", args=[rechecked_search.pk])).content.decode()

    assert "Run 3 cancelled: after the purge it can no longer be resumed" in text


def test_the_results_notice_names_a_stopped_run_as_what_it_was_not_a_collection(rechecked_search, owner_client):
    services.recheck_search(rechecked_search, enqueue=False)
    services.cancel_search(Search.objects.get(pk=rechecked_search.pk))

    page = owner_client.get(reverse("search_detail", args=[rechecked_search.pk])).content.decode()

    assert "Run 3 (availability recheck) was cancelled; these results are from run 2" in page
    assert "collection was cancelled" not in page


def test_a_post_queues_the_purge_for_a_worker(rechecked_search, owner_client, empty_queue):
    response = owner_client.post(reverse("search_purge", args=[rechecked_search.pk]), follow=True)

    assert "purging the 7 posts X no longer gives from its files" in response.content.decode()
    [run] = purge_runs(rechecked_search)
    assert run.status == Status.QUEUED and run.rq_job_id and empty_queue.count == 1
    assert Search.objects.get(pk=rechecked_search.pk).latest_run == run


def test_staff_may_purge_a_search_of_someone_else(rechecked_search, client, staff_user, empty_queue):
    client.force_login(staff_user)
    assert client.get(reverse("search_purge", args=[rechecked_search.pk])).status_code == 200
    client.post(reverse("search_purge", args=[rechecked_search.pk]))
    assert len(purge_runs(rechecked_search)) == 1


@pytest.mark.parametrize("published", [False, True])
def test_anyone_else_gets_a_404_and_nothing_happens(rechecked_search, client, other_user, empty_queue, published):
    if published:
        services.publish_search(rechecked_search)
    url = reverse("search_purge", args=[rechecked_search.pk])
    logged_in = Client()
    logged_in.force_login(other_user)
    for visitor in (client, logged_in):
        assert visitor.get(url).status_code == 404
        assert visitor.post(url).status_code == 404
        if published:
            assert url not in visitor.get(reverse("search_detail", args=[rechecked_search.pk])).content.decode()
    assert purge_runs(rechecked_search) == [] and empty_queue.count == 0


def test_the_page_refuses_while_a_run_is_queued(rechecked_search, owner_client, empty_queue):
    services.collect_again(rechecked_search)
    url = reverse("search_purge", args=[rechecked_search.pk])
    assert url not in owner_client.get(reverse("search_detail", args=[rechecked_search.pk])).content.decode()

    for response in (owner_client.get(url, follow=True), owner_client.post(url, follow=True)):
        assert response.redirect_chain[-1][0] == rechecked_search.get_absolute_url()
        assert "has a run queued: a purge waits until no run of it is queued or running" in response.content.decode()
    assert purge_runs(rechecked_search) == []


def test_the_admin_asks_first_then_purges(rechecked_search, client, staff_user, empty_queue):
    client.force_login(staff_user)
    changelist = reverse("admin:searches_search_changelist")
    chosen = {"action": "purge_unavailable", "_selected_action": [rechecked_search.pk]}

    asked = client.post(changelist, chosen)

    assert asked.status_code == 200
    page = asked.content.decode()
    assert "Purge the posts X no longer gives?" in page and "found <strong>7 posts</strong>" in page
    assert 'name="purge" value="yes"' in page
    assert purge_runs(rechecked_search) == []

    done = client.post(changelist, {**chosen, "purge": "yes"}, follow=True)

    assert "Purging the posts no longer on X of 1 search." in done.content.decode()
    assert len(purge_runs(rechecked_search)) == 1
    # Asked again: nothing can be purged while the purge is queued, and the admin says why.
    again = client.post(changelist, chosen, follow=True).content.decode()
    assert "has a run queued: a purge waits" in again
    assert len(purge_runs(rechecked_search)) == 1


def test_the_command_says_what_goes_purges_only_with_yes_and_exits_2_when_it_cannot(rechecked_search, data_dir):
    pk = str(rechecked_search.pk)

    asked = manage(data_dir, "purge_unavailable", pk)

    assert asked.returncode == 2, asked.stderr
    assert "found 7 posts no longer on X (resource-not-found: 7)" in asked.stdout
    assert "run 1 (collection): tweets.jsonl, tweets.csv, sample.csv, retweeted-posts.csv" in asked.stdout
    assert (
        asked.stderr.strip() == f"Nothing was changed: a purge cannot be undone. To purge, run "
        f"manage.py purge_unavailable {pk} --yes"
    )
    assert purge_runs(rechecked_search) == []

    done = manage(data_dir, "purge_unavailable", pk, "--yes")

    assert done.returncode == 0, done.stderr
    [run] = purge_runs(rechecked_search)
    assert run.status == Status.FINISHED
    # How many files held them depends on the sample, which is drawn by the search's id.
    assert re.search(rf"Search #{pk}: purged 7 posts X no longer gave from [2-4] files of 1 run\.", done.stdout)
    assert "The uploaded archive was deleted." in done.stdout
    assert done.stdout.strip().splitlines()[-1] == str(run.folder_path.resolve())

    for args, says in (
        ([pk, "--yes"], "there is nothing more to purge"),
        (["999999", "--yes"], "No search #999999"),
    ):
        refused = manage(data_dir, "purge_unavailable", *args)
        assert refused.returncode == 2, refused.stderr
        said = refused.stderr.strip()
        assert says in said and len(said.splitlines()) == 1 and "Traceback" not in said, said


def test_a_purge_stopped_by_a_kill_is_finished_by_purging_again_once_reconcile_queued_it(rechecked_search, data_dir):
    """What the testers found: a purge killed with kill -9 stays "running", and asking again said to
    wait for the run to end, which it never does; then, once reconcile had queued it again, the
    command still refused, sent people to run_search and spoke of paying X twice."""
    pk = rechecked_search.pk
    run = services.purge_unavailable(Search.objects.with_runs().get(pk=pk), enqueue=False)
    assert run.runs().claim()  # its process then killed: nothing will end it

    running = manage(data_dir, "purge_unavailable", str(pk), "--yes")

    assert running.returncode == 2
    said = running.stderr
    assert "has a run running: a purge waits" in said and "pay" not in said
    assert "`manage.py reconcile_searches` finds that out" in said
    assert f"queues it again; `manage.py purge_unavailable {pk} --yes` then finishes it here" in said
    # Asked for something else meanwhile, the commands say the same of the purge (not of paying X).
    recheck = manage(data_dir, "recheck_search", str(pk))
    assert recheck.returncode == 2 and "pay" not in recheck.stderr
    assert f"`manage.py purge_unavailable {pk} --yes` then finishes it here" in recheck.stderr

    assert run.runs().requeue_lost("Queued again")  # what reconcile does once its heartbeat is old

    finished = manage(data_dir, "purge_unavailable", str(pk), "--yes")

    assert finished.returncode == 0, finished.stderr
    assert f"Run {run.number}, a purge of these posts, is queued: carrying it out here." in finished.stderr
    assert f"Search #{pk}: purged 7 posts X no longer gave" in finished.stdout
    [purge] = purge_runs(rechecked_search)
    assert (purge.pk, purge.status) == (run.pk, Status.FINISHED)


def test_run_search_again_that_carries_out_a_purge_says_what_it_purged_not_0_posts(rechecked_search, data_dir):
    """The refusals send people to `run_search --again` to finish a purge: it said "finished: 0
    posts", which reads as a search emptied."""
    pk = str(rechecked_search.pk)
    services.purge_unavailable(Search.objects.with_runs().get(pk=rechecked_search.pk), enqueue=False)
    # Asked to collect again, it does not carry out the queued purge instead, without a word.
    other = manage(data_dir, "run_search", "--again", pk, "--collect-again")
    assert other.returncode == 2 and "queued (purge of the posts found gone): it runs before anything" in other.stderr
    assert purge_runs(rechecked_search)[0].status == Status.QUEUED

    done = manage(data_dir, "run_search", "--again", pk)

    assert done.returncode == 0, done.stderr
    assert re.search(rf"^Search #{pk}: purged 7 posts X no longer gave from [2-4] files of 1 run\.", done.stdout, re.M)
    assert "0 posts" not in done.stdout
    assert purge_runs(rechecked_search)[0].status == Status.FINISHED


@pytest.mark.worker
def test_a_worker_carries_out_the_purge_asked_for_on_the_page(rechecked_search, owner_client, workers):
    owner_client.post(reverse("search_purge", args=[rechecked_search.pk]))
    workers.start(1)

    workers.wait_for(lambda: purge_runs(rechecked_search)[0].is_done, timeout=60, what="the purge ran")

    [run] = purge_runs(rechecked_search)
    assert run.status == Status.FINISHED, (run.error, workers.logs())
    page = owner_client.get(reverse("search_detail", args=[rechecked_search.pk])).content.decode()
    assert "the 7 posts X no longer gave were removed from the owner's copies too" in page
    assert "PurgeUnavailable" in page  # its step, in the run's steps table


def test_a_purge_that_stopped_part_way_is_finished_not_started_again(rechecked_search, owner_client, data_dir):
    """What the check found: asking again after a purge stopped part-way started a second purge, so
    the files the first one had changed named a record kept by a failed run, and the rest another."""
    pk = rechecked_search.pk
    collection = SearchRun.objects.get(search_id=pk, number=1)
    stopped = failed_purge(rechecked_search)
    assert "Put the file back as it was, or delete it, then purge again." in stopped.error
    [first_note] = purge_notes(collection.folder_path)
    assert first_note["record"] == f"{stopped.folder}/{PURGE_RECORD}"
    text = owner_client.get(reverse("search_purge", args=[pk])).content.decode()
    assert f"Run {stopped.number}, a purge of these posts, failed part-way: purging now finishes it" in text
    asked = manage(data_dir, "purge_unavailable", str(pk))
    assert f"Run {stopped.number}, a purge of these posts, failed part-way" in asked.stdout

    finished = manage(data_dir, "purge_unavailable", str(pk), "--yes")

    assert finished.returncode == 0, finished.stderr
    # Nothing but what it did: no log line about the summary a purge never writes.
    assert finished.stderr.splitlines() == [f"The record of the posts is in run {stopped.number}'s folder:"]
    [purge] = purge_runs(rechecked_search)
    assert (purge.pk, purge.status) == (stopped.pk, Status.FINISHED)
    # One record, one time: what it purged before it stopped is in its report, named by its record.
    assert purge_notes(collection.folder_path) == [first_note]
    report = json.loads((purge.folder_path / PURGE_REPORT).read_text())
    assert report["purged_at"] == first_note["purged_at"]
    assert {"tweets.jsonl", "tweets.csv"} <= set(first_note["files"])
    assert [(done["run"], done["files"]) for done in report["runs"]] == [(collection.number, first_note["files"])]
    resumed = " ".join(purge.events.values_list("message", flat=True))
    assert "Resumed: the run had failed at" in resumed and f"It had failed with: {stopped.error}" in resumed
    # Its time is its record's, on the page as in the files, however long after it was finished.
    SearchRun.objects.filter(pk=purge.pk).update(finished=purge.finished + timedelta(hours=1))
    page = owner_client.get(reverse("search_summary", args=[pk])).content.decode()
    assert f"Purged {first_note['purged_at'][:16].replace('T', ' ')} UTC: the 7 posts" in page
    refused = manage(data_dir, "purge_unavailable", str(pk))
    assert f"were purged on {first_note['purged_at'][:16].replace('T', ' ')} UTC (run {purge.number})" in refused.stderr


def test_a_purge_after_another_run_came_between_takes_over_the_one_that_stopped(
    rechecked_search, owner_client, data_dir
):
    """What the checks found: with a recheck (or a collection) between a purge that stopped part-way
    and the next purge, the next is a purge of its own. Its report said "0 files of 0 runs", and
    what the first had removed was on record only in a failed run; until then nothing said that
    some copies were purged already, and the published page stopped naming the recheck's public
    list. The stopped purge is said everywhere, and the new purge's report lists what it changed."""
    pk = rechecked_search.pk
    collection = SearchRun.objects.get(search_id=pk, number=1)
    stopped = failed_purge(rechecked_search)
    [first_note] = purge_notes(collection.folder_path)
    rechecked(Search.objects.get(pk=pk))  # another run comes between
    services.publish_search(Search.objects.get(pk=pk))
    stopped_words = (
        f"he purge of run {stopped.number}, which failed part-way (it had changed the files of run "
        f"{collection.number}, as its own record says), is not finished"
    )
    summary = owner_client.get(reverse("search_summary", args=[pk])).content.decode()
    assert f"T{stopped_words}. Purging again finishes the job." in summary
    assert "the raw posts on the server still hold them" not in summary
    # Nothing is left to leave out of the results (the copy lost them), but the public list names them.
    public = Client().get(reverse("search_summary", args=[pk])).content.decode()
    assert f"T{stopped_words}." in public and "Purging again" not in public
    assert "left out of everything published but the recheck's own list, which names each post" in public
    asking = owner_client.get(reverse("search_purge", args=[pk])).content.decode()
    assert f"T{stopped_words}: this purge completes it, and its report lists what it had changed." in asking
    assert f"T{stopped_words}: this purge completes it" in manage(data_dir, "purge_unavailable", str(pk)).stdout

    finished = manage(data_dir, "purge_unavailable", str(pk), "--yes")

    assert finished.returncode == 0, finished.stderr
    purge = purge_runs(rechecked_search)[-1]
    assert purge.pk != stopped.pk and purge.status == Status.FINISHED
    report = json.loads((purge.folder_path / PURGE_REPORT).read_text())
    assert report["runs"] == []  # the collection's files had lost the posts already
    [attempt] = report["earlier_attempts"]
    assert attempt == {
        "run": stopped.number,
        "status": "failed",
        "record": first_note["record"],
        "purged_at": first_note["purged_at"],
        "runs": [{"run": collection.number, "folder": collection.folder, "files": first_note["files"]}],
    }
    completes = (
        f"it completes the purge of run {stopped.number}, which failed part-way (it had changed the files of run "
        f"{collection.number}, as its own record says)"
    )
    assert completes in " ".join(purge.events.values_list("message", flat=True))
    assert f"from 0 files of 0 runs. It completes the purge of run {stopped.number}, which" in finished.stdout
    page = owner_client.get(reverse("search_summary", args=[pk])).content.decode()
    assert completes in page and "is not finished" not in page


def test_a_run_put_back_in_the_queue_then_cancelled_is_not_said_never_to_have_started(rechecked_search, owner_client):
    """What the check found: a purge that had worked for a while, then was queued again (run again,
    or its process lost) and cancelled before it resumed, was listed as "never started"."""
    pk = rechecked_search.pk
    stopped = failed_purge(rechecked_search)
    began = stopped.started
    services.rerun_search(Search.objects.with_runs().get(pk=pk), enqueue=False)
    services.cancel_search(Search.objects.get(pk=pk))
    services.collect_again(Search.objects.with_runs().get(pk=pk), enqueue=False)  # it is an earlier run now

    page = owner_client.get(reverse("search_detail", args=[pk])).content.decode()

    [line] = re.findall(rf'id="run-{stopped.number}".*?</summary>', page, re.S)
    assert "never started" not in line and f"{began:%Y-%m-%d %H:%M}" in line


def test_run_search_collect_again_collects_again_and_never_resumes_a_stopped_purge(rechecked_search, data_dir):
    """What the check found: `run_search --again ID --collect-again` after a purge (or a recheck) had
    stopped resumed it instead, without a word: an irreversible purge with no --yes, or X lookups
    paid for without being asked. It collects again, as the page's "Collect again from the start"."""
    pk = rechecked_search.pk
    stopped = failed_purge(rechecked_search)

    again = manage(data_dir, "run_search", "--again", str(pk), "--collect-again")

    assert again.returncode == 0, again.stderr
    latest = SearchRun.objects.filter(search_id=pk).order_by("-number").first()
    assert (latest.kind, latest.status, latest.number) == (RunKind.COLLECT, Status.FINISHED, stopped.number + 1)
    assert SearchRun.objects.get(pk=stopped.pk).status == Status.FAILED
