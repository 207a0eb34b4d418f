"""Purging what a recheck found gone (issue 14): once the owner chooses to, the posts X no longer
gives leave every file of the search that held their content, on record and explained, and
nothing else changes; a purge is a run of its own, so it never overlaps another run of the search.
Real collections (an uploaded archive of real recorded pages, a live search of the emulated X API),
real rechecks, real purges."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from pipeline.contract import PURGE_RECORD, PURGE_REPORT, RAW_POSTS, SOURCES, TWEET_IDS
from searches import services
from searches.models import RunKind, Search, SearchRun, Source, Status

from .purge_helpers import PAGES, archive_search, deleted_on_x, objects_in, post_objects, purged, rechecked, text_of
from .worker_helpers import manage

pytest_plugins = ["tests.x_emulator"]  # the x_api fixture
pytestmark = pytest.mark.django_db(transaction=True)

PRIVATE_TABLES = ("tweets.csv", "sample.csv", "retweeted-posts.csv")


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


def spellings(text: str) -> set[bytes]:
    """How a post's text may be written in the files: as it is, JSON-escaped, CSV-quoted."""
    return {
        text.encode(),
        json.dumps(text)[1:-1].encode(),
        json.dumps(text, ensure_ascii=False)[1:-1].encode(),
        text.replace('"', '""').encode(),
    }


def every_file(data_dir: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file()}


def table_ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row.get("id") or row.get("tweet_id") for row in rows]


def collected(run: SearchRun) -> list[str]:
    return (run.folder_path / TWEET_IDS).read_text().split()


def test_a_purge_leaves_no_trace_of_the_gone_posts_and_every_other_post_as_it_was(x_api, owner, data_dir, real_data):
    search, first = archive_search(owner, data_dir, real_data)
    gone = deleted_on_x(x_api)
    recheck = rechecked(search)
    raw = first.folder_path / RAW_POSTS
    pages_before = [json.loads(line) for line in raw.read_bytes().splitlines()]
    lines_before = raw.read_bytes().splitlines(keepends=True)
    tables_before = {
        (run, name): (run.folder_path / name).read_bytes() for run in (first, recheck) for name in PRIVATE_TABLES
    }
    files_before = every_file(data_dir)
    texts = {post_id: text_of(x_api, post_id) for post_id in gone}
    # Before: the gone posts are in the raw pages (RETWEETED also in includes.tweets), their text in the tables.
    assert gone <= set(objects_in(raw))
    assert all(any(s in raw.read_bytes() for s in spellings(text)) for text in texts.values())
    assert gone & set(table_ids(first.folder_path / "tweets.csv")) == gone

    run = purged(search)

    # Not one gone post's text is left anywhere in the search's folders (nor its upload: removed).
    for path, content in every_file(data_dir).items():
        for post_id, text in texts.items():
            assert not any(s in content for s in spellings(text)), f"{post_id}'s text is still in {path}"
    # Its id is left only where ids are all there is: the recheck's files, the purge's record, and
    # the first run's id list and counts (public, unchanged, never served once the recheck's results
    # are shown) -- and in the posts that refer to it (a reply names the post it answers).
    id_only = {"tweet-ids.txt", "retweets.csv", "ids-requested.txt", PURGE_RECORD, "purge.json"}
    for path, content in every_file(data_dir).items():
        if path.name in id_only or path.parent.name == "rechecks" or path.suffix == ".zip":
            continue
        if path.name == RAW_POSTS:
            assert not gone & set(objects_in(path)), path
        elif path.name in PRIVATE_TABLES:
            assert not gone & set(table_ids(path)), path
        else:
            assert not any(post_id.encode() in content for post_id in gone), path
    # Every other line of the raw pages is as it was; each page that held a gone post lost exactly
    # that from `data` and `includes.tweets`, and nothing else.
    lines_after = raw.read_bytes().splitlines(keepends=True)
    assert len(lines_after) == len(lines_before) == 5
    for before, line, after in zip(pages_before, lines_before, lines_after, strict=True):
        held = gone & set(post_objects(before, []))
        if not held:
            assert after == line
            continue
        expected = json.loads(json.dumps(before))
        expected["data"] = [p for p in before["data"] if p["id"] not in gone]
        expected["includes"]["tweets"] = [t for t in before["includes"]["tweets"] if t["id"] not in gone]
        assert json.loads(after) == expected
    # The tables lost the gone posts' rows, and only those; the other rows are their bytes as before.
    for (earlier, name), content in tables_before.items():
        now = (earlier.folder_path / name).read_bytes()
        assert set(table_ids(earlier.folder_path / name)) == set(_ids_of(content)) - gone
        assert _lines_in_order(now, content)
    # Files that hold no post text are untouched: ids, counts, networks, summaries, packages.
    changed = {path for path, content in every_file(data_dir).items() if files_before.get(path) != content}
    assert {p.name for p in changed if p.parent != run.folder_path} <= {RAW_POSTS, SOURCES, *PRIVATE_TABLES}
    assert (first.folder_path / TWEET_IDS).read_bytes() == files_before[first.folder_path / TWEET_IDS]

    # On record: exactly the gone posts, with X's reason and the recheck's time.
    with (run.folder_path / PURGE_RECORD).open(newline="") as handle:
        record = list(csv.DictReader(handle))
    assert sorted(row["tweet_id"] for row in record) == sorted(gone)
    assert {row["reason"] for row in record} == {"resource-not-found"}
    assert all(row["checked_at"] and row["purged_at"] for row in record)
    # ... and explained where the raw posts' checksums are: the archive's are the ones from before.
    sources = json.loads((first.folder_path / SOURCES).read_text())
    assert sources["files"][0]["sha256"] == hashlib.sha256((real_data / PAGES).read_bytes()).hexdigest()
    note = sources["purges"][0]
    assert note["record"] == f"{run.folder}/{PURGE_RECORD}"
    assert note["files"][RAW_POSTS]["sha256"] == hashlib.sha256(raw.read_bytes()).hexdigest()
    assert note["files"][RAW_POSTS]["posts_removed"] == len(gone)
    report = json.loads((run.folder_path / PURGE_REPORT).read_text())
    assert report["posts"] == len(gone) and "removed" in report["upload"]

    # The results (and everything published) are the recheck's, as before; the search now knows.
    search = Search.objects.with_runs().get(pk=search.pk)
    assert search.results_run == recheck and not search.results_are_older
    assert collected(recheck) == [i for i in collected(first) if i not in gone]


def _ids_of(content: bytes) -> list[str]:
    rows = list(csv.DictReader(content.decode().splitlines(keepends=True)))
    return [row.get("id") or row.get("tweet_id") for row in rows]


def _lines_in_order(now: bytes, before: bytes) -> bool:
    """Whether every line of `now` is a line of `before`, in the same order (rows kept byte for byte)."""
    remaining = iter(before.split(b"\r\n"))
    return all(line in remaining for line in now.split(b"\r\n"))


def test_a_second_purge_is_refused_and_a_purge_again_changes_nothing(x_api, owner, data_dir, real_data):
    search, first = archive_search(owner, data_dir, real_data)
    deleted_on_x(x_api)
    rechecked(search)
    run = purged(search)
    files = every_file(data_dir)

    with pytest.raises(services.ActionRefused, match="there is nothing more to purge"):
        services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    # The same purge run again (a worker that died, say) finds nothing left to remove.
    SearchRun.objects.filter(pk=run.pk).update(status=Status.QUEUED, started=None)
    (run.folder_path / PURGE_REPORT).unlink()
    files[run.folder_path / PURGE_REPORT] = None
    again = services.execute_search(Search.objects.get(pk=search.pk))
    assert again.status == Status.FINISHED, again.error
    now = every_file(data_dir)
    assert {path: content for path, content in now.items() if path.name != PURGE_REPORT} == {
        path: content for path, content in files.items() if path.name != PURGE_REPORT
    }
    assert json.loads((run.folder_path / PURGE_REPORT).read_text())["runs"][0]["run"] == first.number


def test_after_a_purge_a_recheck_keeps_the_collection_within_its_limit(x_api, owner, data_dir, real_data):
    """The archive holds 500 posts and the search takes 300: the purged ones still count towards
    the 300, so later summaries of the purged file never take in posts 301 and on."""
    search, first = archive_search(owner, data_dir, real_data, count=300)
    collection = collected(first)
    gone = deleted_on_x(x_api)
    assert len(collection) == 300 and gone <= set(collection)
    rechecked(search)
    purged(search)

    again = rechecked(search)

    assert collected(again) == [i for i in collection if i not in gone]
    assert json.loads((again.folder_path / "summary.json").read_text())["num_tweets"] == 300 - len(gone)


def test_collecting_again_an_archive_whose_every_post_was_purged_says_so(x_api, owner, tmp_path, real_data):
    """It said "holds no valid post ... check that the archive is X/Twitter data" of real X data."""
    archive = tmp_path / "mine" / PAGES
    archive.parent.mkdir()
    shutil.copyfile(real_data / PAGES, archive)
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(archive), enqueue=False)
    services.execute_search(search)
    x_api.delete_posts(*(post["id"] for post in x_api.posts))
    rechecked(search)
    purged(search)

    services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    again = services.execute_search(Search.objects.get(pk=search.pk))

    assert again.status == Status.FAILED
    assert "no post is left to summarise, because a purge removed every post this search held" in again.error
    assert "Check that the archive is X/Twitter data" not in again.error


def test_a_recheck_after_a_purge_does_not_pay_for_the_purged_posts_or_call_them_available(
    x_api, owner, data_dir, real_data
):
    """What the tester found: with the gone posts back on X (an account made public again), the
    recheck after the purge looked them up again and its availability file called them available,
    in a package whose ids and summary leave them out."""
    search, first = archive_search(owner, data_dir, real_data)
    gone = deleted_on_x(x_api)
    rechecked(search)
    purged(search)
    x_api.deleted_posts.difference_update(gone)  # back on X
    looked_up_before = len(x_api.requests)

    again = rechecked(search)

    looked_up = {i for r in x_api.requests[looked_up_before:] for i in r.params.get("ids", "").split(",") if i}
    assert looked_up and not looked_up & gone  # nothing paid for posts no copy holds
    summary = json.loads((again.folder_path / "summary.json").read_text())
    assert summary["num_tweets"] == 500 - len(gone)
    assert summary["availability"]["checked"] == summary["availability"]["available"] == 500 - len(gone)
    availability = next((again.folder_path / "rechecks").glob("availability-*.csv"))
    assert not gone & set(table_ids(availability))
    said = " ".join(again.events.values_list("message", flat=True))
    assert f"{len(gone)} purged posts not looked up again" in said


def test_a_stopped_purge_is_finished_after_a_new_collection_from_x_and_leaves_that_collection_alone(
    x_api, owner, owner_client, data_dir
):
    """What the third check found: an X search's purge failed part-way, then the search was
    collected again from X. The page said "Purging again finishes the job", but the command said to
    recheck first and, after a paid recheck, that there was nothing to purge: the purge could never
    be finished. Its own record says what goes, from the runs it was started for; a post back on X
    that the new collection holds is not its to purge."""
    search = services.create_search(owner=owner, term="#kpop", source=Source.RECENT, count=500, enqueue=False)
    first = services.execute_search(search)
    gone = collected(first)[10:13]
    x_api.delete_posts(*gone)
    recheck = rechecked(search)
    broken = recheck.folder_path / "tweets.csv"
    table = broken.read_bytes()
    broken.write_bytes(b"\xff\xfe not a table\n")
    services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    stopped = services.execute_search(Search.objects.get(pk=search.pk))
    broken.write_bytes(table)
    assert stopped.status == Status.FAILED
    back = gone[0]
    x_api.deleted_posts.discard(back)  # back on X: the new collection holds it
    services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    again = services.execute_search(Search.objects.get(pk=search.pk))
    assert again.status == Status.FINISHED and back in collected(again)
    page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "is not finished. Purging again finishes the job." in page and "Finish the purge…" in page
    asked = manage(data_dir, "purge_unavailable", str(search.pk))
    assert "no recheck asks for more posts to go; a purge finishes the one that stopped." in asked.stdout

    finished = manage(data_dir, "purge_unavailable", str(search.pk), "--yes")

    assert finished.returncode == 0, finished.stderr
    assert f"It completes the purge of run {stopped.number}, which failed part-way" in finished.stdout
    purge = SearchRun.objects.filter(search=search, kind=RunKind.PURGE, status=Status.FINISHED).get()
    assert [row["tweet_id"] for row in csv.DictReader((purge.folder_path / PURGE_RECORD).open())] == gone
    report = json.loads((purge.folder_path / PURGE_REPORT).read_text())
    assert [attempt["run"] for attempt in report["earlier_attempts"]] == [stopped.number]
    for run in (first, recheck):  # the runs it was started for: none holds them
        for name in ("tweets.csv", RAW_POSTS):
            if (run.folder_path / name).is_file():
                assert not set(gone) & set(
                    table_ids(run.folder_path / name) if name.endswith(".csv") else objects_in(run.folder_path / name)
                ), (run.number, name)
    assert back in collected(again) and back in objects_in(again.folder_path / RAW_POSTS)
    page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "is not finished" not in page


def test_purged_posts_a_new_collection_from_x_holds_again_are_rechecked_like_any_other(x_api, owner, owner_client):
    """What the second check found: the recheck skipped every purged id, so posts that a collection
    from X held again (their author public again) were never rechecked: deleted for real later,
    they stayed in the results, and the recheck said "0 gone". And the page went on saying only
    that they were purged, while the results held them again."""
    search = services.create_search(owner=owner, term="#kpop", source=Source.RECENT, count=500, enqueue=False)
    first = services.execute_search(search)
    gone = set(collected(first)[10:13])
    x_api.delete_posts(*gone)
    rechecked(search)
    purged(search)
    x_api.deleted_posts.difference_update(gone)  # back on X
    services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    again = services.execute_search(Search.objects.get(pk=search.pk))
    assert gone <= set(collected(again))  # X gives them: the new collection holds them
    assert json.loads((again.folder_path / "summary.json").read_text())["purged_back"] == len(gone)
    page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "Purged " in page and "3 of the purged posts are in these results again: a later collection" in page

    x_api.delete_posts(*gone)  # and now they are deleted for real
    recheck = rechecked(search)

    summary = json.loads((recheck.folder_path / "summary.json").read_text())
    assert summary["availability"]["unavailable_by_reason"] == {"resource-not-found": len(gone)}
    assert not gone & set(collected(recheck))


def test_a_recheck_after_purges_counts_every_purged_post_it_did_not_look_up(
    x_api, owner, owner_client, data_dir, real_data
):
    """What the check found: after two purges (7 posts, then 2) the last recheck said "2 purged posts
    not looked up again", and the page "491 of 491 still there", its chart ending at 100%: read as
    nothing gone. Every post purged before is counted, and the figures are out of every post."""
    search, first = archive_search(owner, data_dir, real_data)
    deleted_on_x(x_api)
    rechecked(search)
    purged(search)
    later = [i for i in collected(first) if i not in x_api.deleted_posts][:2]
    x_api.delete_posts(*later)
    rechecked(search)
    purged(search)

    said = manage(data_dir, "recheck_search", str(search.pk), X_BEARER_TOKEN=x_api.token, DNFLOW_X_API_URL=x_api.url)

    assert said.returncode == 0, said.stderr
    assert "rechecked 491 posts at " in said.stdout and ": 491 still there, 0 gone; 9 purged before, not looked up" in (
        said.stdout
    )
    last = SearchRun.objects.filter(search=search).order_by("-number").first()
    assert "Rechecked 491 posts: 491 still there, 0 gone; 9 purged posts not looked up again" in " ".join(
        last.events.values_list("message", flat=True)
    )
    availability = json.loads((last.folder_path / "summary.json").read_text())["availability"]
    assert (availability["checked"], availability["available"], availability["purged_not_checked"]) == (491, 491, 9)
    page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "491 of 500 posts still there. 9 of the 500 were purged before, and not looked up again." in page
    [chart] = re.findall(r'<table class="bars availability-over-time">.*?</table>', page, re.S)
    assert re.findall(r'<td class="num">([^<]*)</td>', chart) == [
        "493 / 500",
        "491 / 500",
        "491 / 500",
    ]


def test_new_posts_start_after_the_newest_ever_collected_not_after_the_newest_left(x_api, owner):
    """What the second check found: with the newest post gone and purged, "Collect new posts" asked
    X for posts newer than the newest left, paid for that post again (back on X) and stored its
    text again in the owner's copies."""
    search = services.create_search(owner=owner, term="#kpop", source=Source.RECENT, count=500, enqueue=False)
    first = services.execute_search(search)
    newest = max(collected(first), key=int)
    x_api.delete_posts(newest)
    rechecked(search)
    purged(search)
    x_api.deleted_posts.discard(newest)  # back on X
    asked_before = len(x_api.search_requests())

    services.refresh_search(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    refresh = services.execute_search(Search.objects.get(pk=search.pk))

    assert refresh.status == Status.FINISHED, refresh.error
    [asked] = x_api.search_requests()[asked_before:]
    assert asked.params["since_id"] == newest
    assert newest not in objects_in(refresh.folder_path / RAW_POSTS)


def test_a_live_collection_is_purged_page_by_page_and_new_posts_add_to_the_same_collection(x_api, owner):
    newest = [post["id"] for post in x_api.posts[:20]]
    x_api.delete_posts(*newest)  # not posted yet when the search first runs
    # 105: a page of 100 and one of 10 of which 5 count, so the raw file holds 5 posts beyond the limit.
    search = services.create_search(owner=owner, term="#kpop", source=Source.RECENT, count=105, enqueue=False)
    first = services.execute_search(search)
    assert first.status == Status.FINISHED, first.error
    collection = collected(first)
    raw = first.folder_path / RAW_POSTS
    assert len(collection) == 105 and len(set(objects_in(raw)) - set(newest)) > 105
    gone = set(collection[3:9])
    x_api.delete_posts(*gone)
    rechecked(search)

    run = purged(search)

    assert not gone & set(objects_in(raw))
    note = json.loads((first.folder_path / SOURCES).read_text())["purges"][0]
    assert note["files"][RAW_POSTS]["within_limit"] == len(gone)
    assert json.loads((run.folder_path / PURGE_REPORT).read_text())["upload"] == {}
    # Newly posted: the refresh adds them, and the collection is the same 105 less the gone ones.
    x_api.deleted_posts.difference_update(newest)
    services.refresh_search(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    refresh = services.execute_search(Search.objects.get(pk=search.pk))
    assert refresh.status == Status.FINISHED, refresh.error
    assert sorted(collected(refresh)) == sorted([*newest, *(i for i in collection if i not in gone)])


def test_the_uploaded_archive_goes_with_the_purge_and_cannot_be_collected_again(
    x_api, owner, owner_client, data_dir, real_data
):
    search, first = archive_search(owner, data_dir, real_data)
    deleted_on_x(x_api)
    rechecked(search)
    assert Path(search.archive_path).is_file()
    assert "Collect again</button>" in owner_client.get(search.get_absolute_url()).content.decode()

    purged(search)

    assert not Path(search.archive_path).parent.exists()
    with pytest.raises(services.ActionRefused, match="removed when the posts no longer on X were purged"):
        services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    # Nor does the page offer it (it did, and refused the click).
    assert "Collect again" not in owner_client.get(search.get_absolute_url()).content.decode()


@pytest.mark.parametrize("import_mode", ["copy", "link"])
def test_an_archive_on_the_server_is_never_touched(x_api, owner, tmp_path, real_data, settings, import_mode):
    """Not even when the raw posts are a hard link to it (DNFLOW_ARCHIVE_IMPORT=link): the purged
    file is a new one, moved into place, never the old one written over."""
    settings.DNFLOW_ARCHIVE_IMPORT = import_mode
    archive = tmp_path / "mine" / PAGES
    archive.parent.mkdir()
    shutil.copyfile(real_data / PAGES, archive)
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(archive), enqueue=False)
    first = services.execute_search(search)
    assert first.status == Status.FINISHED
    linked = (first.folder_path / RAW_POSTS).stat().st_ino == archive.stat().st_ino
    assert linked == (import_mode == "link")
    deleted_on_x(x_api)
    rechecked(search)

    run = purged(search)

    assert archive.read_bytes() == (real_data / PAGES).read_bytes()
    assert (first.folder_path / RAW_POSTS).read_bytes() != archive.read_bytes()
    assert json.loads((run.folder_path / PURGE_REPORT).read_text())["upload"]["why"] == "it is a file on the server"


def test_collecting_an_archive_on_the_server_again_leaves_the_purged_posts_out_again(
    x_api, owner, owner_client, tmp_path, real_data
):
    """What the tester found: the archive on the server still holds the purged posts, and "Collect
    again" (run_search --again) copied them back into every file, with no word, while the page said
    they were removed. The new copy is purged of them, within the same limit, and says so."""
    archive = tmp_path / "mine" / PAGES
    archive.parent.mkdir()
    shutil.copyfile(real_data / PAGES, archive)
    search = services.create_search(
        owner=owner, source=Source.ARCHIVE, archive_path=str(archive), count=300, enqueue=False
    )
    first = services.execute_search(search)
    collection = collected(first)
    gone = deleted_on_x(x_api)
    assert gone <= set(collection)
    rechecked(search)
    # The page that asks before purging says what collecting again will do.
    asking = owner_client.get(reverse("search_purge", args=[search.pk])).content.decode()
    assert "Collecting it again leaves these posts out again" in asking
    purge_run = purged(search)

    services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    again = services.execute_search(Search.objects.get(pk=search.pk))

    assert (again.kind, again.status) == (RunKind.COLLECT, Status.FINISHED), again.error
    assert collected(again) == [i for i in collection if i not in gone]  # the same 300, less the purged
    assert again.num_posts == 300 - len(gone)
    assert not gone & set(objects_in(again.folder_path / RAW_POSTS))
    for name in ("tweets.csv", "sample.csv", "retweeted-posts.csv"):
        assert not any(text_of(x_api, g).encode() in (again.folder_path / name).read_bytes() for g in gone), name
    # On record in the copy's sources.json (which the package holds), and said in the run's steps.
    [note] = json.loads((again.folder_path / SOURCES).read_text())["purges"]
    assert note["record"] == f"{purge_run.folder}/{PURGE_RECORD}"
    assert note["files"][RAW_POSTS]["posts_removed"] == len(gone)
    said = " ".join(again.events.values_list("message", flat=True))
    assert f"Left out again the {len(gone)} posts that the purge of " in said
    purged_at = json.loads((purge_run.folder_path / PURGE_REPORT).read_text())["purged_at"]
    assert f"the purge of {purged_at[:16].replace('T', ' ')} UTC (run {purge_run.number}) removed" in said
    assert f"removed ({len(gone)} copies in the archive): X no longer gave them." in said
    assert archive.read_bytes() == (real_data / PAGES).read_bytes()  # the archive itself, untouched


def test_a_purge_is_refused_while_a_run_is_queued_and_no_run_starts_while_it_is(x_api, owner, data_dir, real_data):
    search, _ = archive_search(owner, data_dir, real_data)
    deleted_on_x(x_api)
    rechecked(search)
    queued = services.collect_again(Search.objects.with_runs().get(pk=search.pk), enqueue=False)

    with pytest.raises(services.ActionRefused, match="has a run queued: a purge waits"):
        services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    assert not SearchRun.objects.filter(search=search, kind=RunKind.PURGE).exists()

    services.cancel_search(Search.objects.get(pk=search.pk))
    assert SearchRun.objects.get(pk=queued.pk).status == Status.CANCELLED
    purge = services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    for start in (services.collect_again, services.recheck_search, services.rerun_search):
        with pytest.raises(services.ActionRefused, match="queued"):
            start(Search.objects.with_runs().get(pk=search.pk), enqueue=False)
    assert SearchRun.objects.filter(search=search).order_by("-number").first() == purge


def test_a_purge_needs_a_recheck_that_found_posts_gone(x_api, owner, data_dir, real_data):
    search, _ = archive_search(owner, data_dir, real_data)
    with pytest.raises(services.ActionRefused, match="first: a purge removes the posts a recheck"):
        services.purge_unavailable(search, enqueue=False)
    rechecked(search)  # nothing deleted on X
    with pytest.raises(services.ActionRefused, match="found every post still on X: there is nothing to purge"):
        services.purge_unavailable(Search.objects.with_runs().get(pk=search.pk), enqueue=False)


def test_the_page_says_when_and_how_many_posts_were_purged(x_api, owner, owner_client, data_dir, real_data):
    search, _ = archive_search(owner, data_dir, real_data)
    gone = deleted_on_x(x_api)
    rechecked(search)
    services.publish_search(Search.objects.get(pk=search.pk))
    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
    assert "the raw posts on the server still hold them until you purge them" in page
    assert reverse("search_purge", args=[search.pk]) in page

    run = purged(search)

    for client in (owner_client, Client()):
        page = client.get(reverse("search_summary", args=[search.pk])).content.decode()
        assert f"Purged {run.finished:%Y-%m-%d}" in page
        assert f"the {len(gone)} posts X no longer gave were removed from the owner's copies" in page
        assert reverse("search_purge", args=[search.pk]) not in page
    assert "the raw posts on the server still hold them" not in page
    # The record of what went, for an ethics board: the owner downloads it from the page; nobody else can.
    record = reverse("search_purge_record", args=[search.pk, run.number])
    owner_page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert f'keeps <a href="{record}">the list of them</a>' in owner_page and record not in page
    response = owner_client.get(record)
    assert response.status_code == 200
    assert f'filename="search-{search.pk}-run-{run.number}-purged-posts.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(b"".join(response.streaming_content).decode().splitlines()))
    assert {row["tweet_id"] for row in rows} == gone and all(row["reason"] and row["purged_at"] for row in rows)
    assert Client().get(record).status_code == 404
    assert owner_client.get(reverse("search_purge_record", args=[search.pk, 1])).status_code == 404  # not a purge
