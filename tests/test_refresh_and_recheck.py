"""Collections that last: a refresh asks X only for newer posts and adds them, each post once; a
schedule refreshes once per slot however many workers run; a recheck leaves out what was deleted,
from the published outputs and the package too. Against the emulated X API (real HTTP)."""

from __future__ import annotations

import json
import time
import zipfile
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from searches import schedule, services
from searches.models import RunKind, Search, SearchRun, Source, Status

from .pipeline_helpers import PhotoServer, drawn_image, image_bytes, read_rows
from .purge_helpers import objects_in
from .worker_helpers import REAL_ARCHIVE

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


def collected_ids(run: SearchRun) -> list[str]:
    return (run.folder_path / "tweet-ids.txt").read_text().split()


def gone_from_x(x_api, collected: list[str]) -> tuple[list[str], set[str]]:
    """Seven of the collected posts deleted on X and one author's posts protected: (deleted, all gone)."""
    deleted, protected_author = collected[:7], x_api.posts[10]["author_id"]
    x_api.delete_posts(*deleted)
    x_api.protect_authors(protected_author)
    return deleted, set(deleted) | {p["id"] for p in x_api.posts if p["author_id"] == protected_author}


def ids_everywhere(visitor: Client, run: SearchRun) -> list[list[str]]:
    """The ids of the run's results: in its folder, as a visitor downloads them from the search's
    page (the run must be the search's results), and in its package."""
    response = visitor.get(reverse("search_file", args=[run.search_id, "tweet-ids.txt"]))
    with zipfile.ZipFile(run.folder_path / f"{run.folder}.zip") as package:
        packaged = package.read(f"{run.folder}/data/tweet-ids.txt").decode().split()
    return [collected_ids(run), b"".join(response.streaming_content).decode().split(), packaged]


def live_search(owner, count: int = 100) -> Search:
    search = services.create_search(owner=owner, term="#kpop", source=Source.RECENT, count=count, enqueue=False)
    assert services.execute_search(search).status == Status.FINISHED
    return Search.objects.with_runs().get(pk=search.pk)


def test_collect_new_posts_asks_only_for_newer_ones_and_adds_them_once(x_api, owner):
    newest = [post["id"] for post in x_api.posts[:20]]
    x_api.delete_posts(*newest)  # not posted yet when the search first runs
    search = live_search(owner)
    first = search.results_run
    assert collected_ids(first) == [p["id"] for p in x_api.posts[20:120]]

    x_api.deleted_posts.difference_update(newest)  # posted since
    before = len(x_api.search_requests())
    run = services.refresh_search(search, enqueue=False)
    assert (run.kind, run.builds_on, run.since_id) == (RunKind.REFRESH, first, max(collected_ids(first), key=int))
    run = services.execute_search(Search.objects.get(pk=search.pk))

    assert run.status == Status.FINISHED, run.error
    asked = x_api.search_requests()[before:]
    assert asked and all(r.params.get("since_id") == run.since_id for r in asked)
    # The refresh stored only the new posts; its summary covers both runs, each post once.
    assert sum(len(json.loads(line).get("data", [])) for line in (run.folder_path / "tweets.jsonl").open()) == 20
    assert sorted(collected_ids(run)) == sorted([*collected_ids(first), *newest])
    assert json.loads((run.folder_path / "summary.json").read_text())["num_tweets"] == 120
    assert not run.events.filter(message__startswith="X had more new posts"), "all 20 fitted in the count"
    search = Search.objects.with_runs().get(pk=search.pk)
    assert search.results_run == run and first.folder_path.is_dir()

    # Nothing new: the next refresh adds nothing and the collection stays the same.
    again = services.execute_search(Search.objects.get(pk=services.refresh_search(search, enqueue=False).search_id))
    assert again.status == Status.FINISHED and sorted(collected_ids(again)) == sorted(collected_ids(run))


def test_only_a_live_search_with_a_finished_run_collects_new_posts(owner, real_data):
    archive = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(REAL_ARCHIVE), enqueue=False)
    services.execute_search(archive)
    with pytest.raises(services.ActionRefused, match="Only a live X search"):
        services.refresh_search(Search.objects.get(pk=archive.pk))


def test_no_recheck_of_the_synthetic_sample_or_of_a_search_without_posts(x_api, owner, client, settings):
    """The sample's ids are made up: X would call every post gone and its results would lose them
    all (and the lookups cost money). A search that holds no post has nothing to look up."""
    client.force_login(owner)
    sample = services.create_search(owner=owner, term="energy", source=Source.SAMPLE, enqueue=False)
    nothing = services.create_search(
        owner=owner, term="nosuchwordanywhere", source=Source.ARCHIVE, archive_path=str(REAL_ARCHIVE), enqueue=False
    )
    archive = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(REAL_ARCHIVE), enqueue=False)
    for search in (sample, nothing, archive):
        assert services.execute_search(search).status == Status.FINISHED

    for search, refusal in (
        (sample, "The bundled sample is synthetic: its made-up posts were never on X, so there is nothing to recheck."),
        (nothing, f"Search #{nothing.pk} holds no post: there is nothing to recheck."),
    ):
        search = Search.objects.with_runs().get(pk=search.pk)
        with pytest.raises(services.ActionRefused) as refused:
            services.recheck_search(search, enqueue=False)
        assert str(refused.value) == refusal
        assert "Recheck availability" not in client.get(search.get_absolute_url()).content.decode()
        assert search.runs.count() == 1
    # A real archive's posts can be rechecked: the button is there.
    assert "Recheck availability" in client.get(archive.get_absolute_url()).content.decode()


def test_a_recheck_leaves_out_what_was_deleted_from_the_published_outputs_and_the_package(x_api, owner, client):
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(REAL_ARCHIVE), enqueue=False)
    first = services.execute_search(search)
    services.publish_search(Search.objects.get(pk=search.pk))
    everyone = collected_ids(first)
    assert len(everyone) == 500
    deleted, gone = gone_from_x(x_api, everyone)

    run = services.recheck_search(Search.objects.get(pk=search.pk), enqueue=False)
    run = services.execute_search(Search.objects.get(pk=search.pk))

    assert (run.kind, run.status) == (RunKind.RECHECK, Status.FINISHED), run.error
    kept = [i for i in everyone if i not in gone]
    # What anyone gets: the ids, the counts and the package leave the gone posts out.
    visitor = Client()
    assert ids_everywhere(visitor, run) == [kept] * 3
    with zipfile.ZipFile(run.folder_path / f"{run.folder}.zip") as package:
        assert len([n for n in package.namelist() if "/data/rechecks/availability-" in n]) == 1
    summary = json.loads((run.folder_path / "summary.json").read_text())
    assert summary["num_tweets"] == len(kept)
    assert summary["availability"]["left_out"] == len(gone)
    assert summary["availability"]["unavailable_by_reason"] == {
        "resource-not-found": len(deleted),
        "not-authorized-for-resource": len(gone) - len(deleted),
    }
    page = visitor.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert f"{len(kept)} of 500 posts still there" in page
    assert f"{len(gone)} posts X no longer gives are left out" in page
    # The owner's raw posts stay where they were collected.
    assert sum(1 for _ in first.folder_path.joinpath("tweets.jsonl").open()) > 0
    assert collected_ids(first) == everyone

    # A second recheck checks again every post ever collected (the protected account came back).
    x_api.protected_authors.clear()
    services.recheck_search(Search.objects.get(pk=search.pk), enqueue=False)
    again = services.execute_search(Search.objects.get(pk=search.pk))
    assert collected_ids(again) == [i for i in everyone if i not in deleted]
    page = Client().get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "Posts still there, recheck after recheck" in page


def test_collecting_an_archive_again_after_a_recheck_leaves_out_what_it_found_gone(x_api, owner):
    """What the second check found: the archive still holds the posts a recheck found gone, and
    collecting it again put them back into the results, the package and what is published, with no
    word. The newest recheck before the new collection speaks for it, and the next recheck looks
    those posts up again."""
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(REAL_ARCHIVE), enqueue=False)
    everyone = collected_ids(services.execute_search(search))
    services.publish_search(Search.objects.get(pk=search.pk))
    deleted, gone = gone_from_x(x_api, everyone)
    services.recheck_search(Search.objects.get(pk=search.pk), enqueue=False)
    recheck = services.execute_search(Search.objects.get(pk=search.pk))
    assert recheck.status == Status.FINISHED, recheck.error

    services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    again = services.execute_search(Search.objects.get(pk=search.pk))

    assert (again.kind, again.status) == (RunKind.COLLECT, Status.FINISHED), again.error
    kept = [i for i in everyone if i not in gone]
    visitor = Client()
    assert ids_everywhere(visitor, again) == [kept] * 3
    summary = json.loads((again.folder_path / "summary.json").read_text())
    assert (summary["num_tweets"], summary["availability"]["left_out"]) == (len(kept), len(gone))
    page = visitor.get(reverse("search_summary", args=[search.pk])).content.decode()
    # ... all but the recheck's own list, which anyone may download too, and the page says so.
    assert (
        f"{len(gone)} posts X no longer gives are left out of these results and of everything published but the "
        "recheck's own list, which names each post that X no longer gives by its id, with X's reason"
    ) in page
    said = " ".join(again.events.values_list("message", flat=True))
    assert f"Left out {len(gone)} posts that the recheck of " in said
    assert f"(run {recheck.number}) found no longer on X: the archive still holds them" in said
    # Nothing was purged: the new copy of the archive holds them, as the archive does.
    assert gone <= set(objects_in(again.folder_path / "tweets.jsonl"))
    # ... and the owner may still purge them.
    assert services.plan_purge(Search.objects.with_runs().get(pk=search.pk)).gone == len(gone)

    # The next recheck looks them up again (the protected account came back), not only the results' ids.
    x_api.protected_authors.clear()
    services.recheck_search(Search.objects.get(pk=search.pk), enqueue=False)
    after = services.execute_search(Search.objects.get(pk=search.pk))
    assert after.status == Status.FINISHED, after.error
    assert collected_ids(after) == [i for i in everyone if i not in deleted]


@pytest.mark.worker
def test_a_scheduled_refresh_runs_once_per_slot_with_two_workers(x_api, owner, workers, settings):
    search = live_search(owner)
    env = {"X_BEARER_TOKEN": x_api.token, "DNFLOW_X_API_URL": x_api.url}
    Search.objects.filter(pk=search.pk).update(refresh_every=timedelta(hours=1))
    search.refresh_from_db()
    slot = timezone.now() + timedelta(seconds=3)
    Search.objects.filter(pk=search.pk).update(next_refresh_at=slot)
    schedule.schedule_slot(search.pk, slot)
    schedule.schedule_slot(search.pk, slot)  # asked twice: still one job for the slot
    workers.start(2, **env)

    def refreshes() -> list[SearchRun]:
        return list(SearchRun.objects.filter(search=search, kind=RunKind.REFRESH))

    workers.wait_for(lambda: refreshes() and refreshes()[0].is_done, timeout=60, what="the slot's refresh ran")
    time.sleep(4)  # time for a second worker to run the slot again, were it to
    assert len(refreshes()) == 1 and refreshes()[0].status == Status.FINISHED, workers.logs()
    assert Search.objects.get(pk=search.pk).next_refresh_at == slot + timedelta(hours=1)

    # Three slots were missed while nothing ran them: the refresh runs once, and the next slot is
    # the first one to come.
    missed = timezone.now() - timedelta(hours=3, minutes=10)
    Search.objects.filter(pk=search.pk).update(next_refresh_at=missed)
    schedule.schedule_slot(search.pk, missed)
    workers.wait_for(lambda: len(refreshes()) == 2 and refreshes()[0].is_done, timeout=60, what="the missed slot")
    time.sleep(4)
    assert len(refreshes()) == 2
    following = Search.objects.get(pk=search.pk).next_refresh_at
    assert timezone.now() < following <= timezone.now() + timedelta(hours=1)
    assert following == missed + 4 * timedelta(hours=1)


def test_a_missed_slot_whose_job_redis_lost_runs_now_and_keeps_the_series(x_api, owner, empty_queue):
    """A worker's sweep finds a slot with no job (Redis lost it, or it was missed): the refresh runs
    at once, and the next slot is the series' next, not an hour after the sweep. (The sweep moved the
    slot to now + 1 s, so the series shifted; the two-worker test above failed by that when a sweep
    came between its setting the missed slot and scheduling its job.)"""
    search = live_search(owner)
    missed = timezone.now() - timedelta(hours=3, minutes=10)
    Search.objects.filter(pk=search.pk).update(refresh_every=timedelta(hours=1), next_refresh_at=missed)

    assert schedule.reschedule_lost() == [search.pk]

    assert Search.objects.get(pk=search.pk).next_refresh_at == missed
    assert schedule.slot_job_id(search.pk, missed) in empty_queue.scheduled_job_registry.get_job_ids()
    search = Search.objects.get(pk=search.pk)
    assert schedule.take_slot(search, missed)
    assert Search.objects.get(pk=search.pk).next_refresh_at == missed + 4 * timedelta(hours=1)


def test_a_recheck_leaves_the_photos_of_posts_no_longer_on_x_out_of_its_media(x_api, owner, tmp_path, settings):
    """The real archive with its photo URLs pointed at a local server (a test-only rewrite: the
    pictures are SYNTHETIC): a recheck run starts from the earlier run's photos, and must not keep
    those that only posts now gone had."""
    pages = [json.loads(line) for line in REAL_ARCHIVE.read_text(encoding="utf-8").splitlines()]
    picture = image_bytes(drawn_image(7), "PNG")
    server = PhotoServer({})
    names: dict[str, str] = {}  # media_key -> file name
    for page in pages:
        for media in page.get("includes", {}).get("media", []):
            if media.get("type") == "photo" and media.get("url"):
                name = media["url"].rsplit("/", 1)[-1]
                server.routes[f"/media/{name}"] = (200, "image/png", picture)
                media["url"] = server.url(f"/media/{name}")
                names[media["media_key"]] = name
    archive = tmp_path / "real-with-local-photos.jsonl"
    archive.write_text("".join(json.dumps(page) + "\n" for page in pages), encoding="utf-8")
    settings.DNFLOW_FETCH_PHOTOS = True
    settings.DNFLOW_PHOTO_PRIVATE_ADDRESSES = True  # the server is on 127.0.0.1
    try:
        search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(archive), enqueue=False)
        first = services.execute_search(search)
        assert first.status == Status.FINISHED, first.error
        # A photo one post had, and the posts that carry it: that post and its retweets.
        posts = [post for page in pages for post in page["data"]]
        having = {}
        for post in posts:
            for key in post.get("attachments", {}).get("media_keys", []):
                if key in names:
                    having.setdefault(names[key], set()).add(post["id"])
        name, owners = next((n, ids) for n, ids in sorted(having.items()) if len(ids) == 1)
        gone = set(owners) | {
            post["id"] for post in posts if any(ref["id"] in owners for ref in post.get("referenced_tweets", []))
        }
        assert (first.folder_path / "media" / name).is_file()
        x_api.delete_posts(*gone)

        services.recheck_search(Search.objects.get(pk=search.pk), enqueue=False)
        run = services.execute_search(Search.objects.get(pk=search.pk))
    finally:
        server.stop()

    assert (run.kind, run.status) == (RunKind.RECHECK, Status.FINISHED), run.error
    assert not any(row[0].endswith(f"/{name}") for row in read_rows(run.folder_path / "count-media.csv")[1:])
    assert not (run.folder_path / "media" / name).exists()
    assert len(list((run.folder_path / "media").glob("*.jpg"))) > 10  # the others' photos stay
    services.publish_search(Search.objects.get(pk=search.pk))
    assert Client().get(reverse("search_file", args=[search.pk, f"media/{name}"])).status_code == 404


def test_a_refresh_that_stopped_part_way_is_resumed_not_started_again_which_would_pay_twice(
    x_api, owner, owner_client, settings, empty_queue
):
    from .x_emulator import Fault

    newest = [post["id"] for post in x_api.posts[:150]]
    x_api.delete_posts(*newest)
    search = live_search(owner, count=300)
    x_api.deleted_posts.difference_update(newest)  # 150 new posts: two pages of 100
    settings.DNFLOW_API_RETRIES = 0
    x_api.fail_next(Fault.normal(), Fault.server_error(503))  # the second page fails
    failed = services.execute_search(Search.objects.get(pk=services.refresh_search(search, enqueue=False).search_id))
    assert (failed.kind, failed.status) == (RunKind.REFRESH, Status.FAILED)
    asked = len(x_api.search_requests())

    # A new refresh would ask again from the same newest post, for the page already stored.
    with pytest.raises(services.RefreshUnfinished, match="'Run again' resumes it where it stopped"):
        services.refresh_search(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    page = owner_client.get(search.get_absolute_url()).content.decode()
    assert ">Run again</button>" in page and ">Collect new posts</button>" not in page

    # The schedule's slot resumes it instead, and X is asked only for the page that was missing.
    Search.objects.filter(pk=search.pk).update(refresh_every=timedelta(hours=1), next_refresh_at=timezone.now())
    slot = Search.objects.get(pk=search.pk).next_refresh_at
    assert services.refresh_on_schedule(search.pk, slot.isoformat()) == "started"
    resumed = services.execute_search(Search.objects.get(pk=search.pk))
    assert resumed.pk == failed.pk and resumed.status == Status.FINISHED, resumed.error
    again = x_api.search_requests()[asked:]
    assert len(again) == 1 and again[0].params.get("next_token"), [r.params for r in again]
    assert json.loads((resumed.folder_path / "summary.json").read_text())["num_tweets"] == 450


def test_a_refresh_cut_off_by_its_count_says_which_new_posts_it_left_on_x(x_api, owner, owner_client):
    """300 new posts, a count of 100: the 100 newest came, and the 200 between the last collection
    and them were silently never collected (the next refresh starts after the newest)."""
    from searches.models import EventKind, TaskEvent

    newest = [post["id"] for post in x_api.posts[:300]]
    x_api.delete_posts(*newest)
    search = live_search(owner, count=100)
    x_api.deleted_posts.difference_update(newest)

    run = services.execute_search(Search.objects.get(pk=services.refresh_search(search, enqueue=False).search_id))

    assert run.status == Status.FINISHED, run.error
    assert sorted(collected_ids(run)) == sorted([*collected_ids(search.results_run), *newest[:100]])
    notes = TaskEvent.objects.filter(run=run, event=EventKind.NOTE).values_list("message", flat=True)
    said = [n for n in notes if n.startswith("X had more new posts than this search's count of 100")]
    assert said and "were not" in said[0] and "start a new search for that period" in said[0]
    outcome = TaskEvent.objects.filter(run=run, task_family="CollectPosts", event=EventKind.SUCCESS).get().message
    assert "stopped at the count with more left on X" in outcome
    assert said[0] in owner_client.get(search.get_absolute_url()).content.decode().replace("&#x27;", "'")
