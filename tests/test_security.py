"""Security promises, each tested against the real thing: CSRF on every POST, markup from archives
shown as text everywhere, CSV cells a spreadsheet cannot run, no file served from outside its
search, private files unreachable by guessing, and the bearer token nowhere it could leak.

The rest of SECURITY.md's promises are kept by tests elsewhere (access rules per visitor in
tests/test_access.py, the admin in tests/test_admin.py, the deploy checks in tests/test_settings.py).
"""

from __future__ import annotations

import csv
import html
import json
import logging
import re
import secrets
from pathlib import Path

import django_rq
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from searches import run_files, services
from searches.models import Search, SearchRun, Source, Status, TaskEvent
from searches.urls import urlpatterns

from .hardening_helpers import files_contents, redis_contents, synthetic_tweet, write_jsonl
from .web_helpers import make_search
from .worker_helpers import worker_pool
from .x_emulator import Fault, XApiEmulator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def photos_off(no_photo_downloads):
    pass


@pytest.fixture(autouse=True)
def queue(empty_queue):
    return empty_queue


def run_archive_search(path: Path, owner, **fields) -> Search:
    """An archive search run through the real workflow, in this process."""
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(path), enqueue=False, **fields)
    run = services.execute_search(search)
    assert run.status == Status.FINISHED, run.error
    return Search.objects.with_runs().get(pk=search.pk)


# --- CSRF ------------------------------------------------------------------------------------------


def _url_of(pattern, search: Search) -> str:
    values = {"pk": search.pk, "name": "count-hashtags.csv", "kind": "hashtags", "number": 1}
    return reverse(pattern.name, kwargs={name: values[name] for name in pattern.pattern.converters})


def _state(data_dir: Path) -> tuple:
    """Everything a POST could change: every search row, every event, every file."""
    rows = list(Search.objects.order_by("pk").values())
    files = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in data_dir.rglob("*") if p.is_file())
    return rows, TaskEvent.objects.count(), files


def test_every_post_without_the_csrf_token_is_refused_and_changes_nothing(owner, data_dir):
    finished = make_search(owner)
    failed = make_search(owner, status=Status.FAILED, term="failed one")
    running = make_search(owner, status=Status.RUNNING, term="running one")
    make_search(owner, term="second finished")  # so compare has two to compare
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    data = {"term": "new", "source": "sample", "size": "1", "ids": [finished.pk, failed.pk], "top": "5"}
    before = _state(data_dir)

    posted = []
    for pattern in urlpatterns:
        for search in (finished, failed, running):
            url = _url_of(pattern, search)
            response = strict.post(url, data)
            assert response.status_code == 403, f"POST {url} without a CSRF token answered {response.status_code}"
            posted.append(url)
    for url in ("/accounts/logout/", "/accounts/password_change/", reverse("admin:searches_search_changelist")):
        assert strict.post(url, {"action": "delete_with_files", "_selected_action": [finished.pk]}).status_code == 403

    assert _state(data_dir) == before
    assert len(set(posted)) >= len(urlpatterns)  # every route of searches/urls.py was tried
    # The refusals were about the token: with it, the same client may publish.
    page = strict.get(finished.get_absolute_url()).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert strict.post(reverse("search_publish", args=[finished.pk]), {"csrfmiddlewaretoken": token}).status_code == 302
    finished.refresh_from_db()
    assert finished.is_published


def test_the_whole_admin_is_refused_to_visitors_and_to_users_who_are_not_staff(client, owner):
    search = make_search(owner)
    urls = [
        reverse("admin:index"),
        reverse("admin:searches_search_changelist"),
        reverse("admin:searches_search_add"),
        reverse("admin:searches_search_change", args=[search.pk]),
        reverse("admin:searches_search_delete", args=[search.pk]),
        reverse("admin:searches_search_history", args=[search.pk]),
        reverse("admin:auth_user_changelist"),
    ]
    for who in (None, owner):
        visitor = Client()
        if who is not None:
            visitor.force_login(who)
        for url in urls:
            response = visitor.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (who, url)
        action = {"action": "delete_with_files", "_selected_action": [search.pk], "delete": "yes"}
        visitor.post(reverse("admin:searches_search_changelist"), action)
    assert Search.objects.filter(pk=search.pk).exists()


# --- markup from an archive is text wherever it is shown -----------------------------------------

XSS = {
    "text": '<script>alert("dnflow-text")</script> heat',
    "user": '<script>alert("dnflow-user")</script>',
    "tag": '<script>alert("dnflow-tag")</script>',
    "mention": '<img src=x onerror=alert("dnflow-mention")>',
    "url": 'javascript:alert("dnflow-url")',
}
ARCHIVE_WITH_MARKUP = "<img src=x onerror=alert(1)>.jsonl"


def _assert_no_live_markup(body: str, where: str) -> None:
    assert "<script>alert" not in body, where
    assert "<img src=x" not in body, where
    assert 'href="javascript:' not in body, where


def test_markup_in_posts_names_and_file_names_is_escaped_in_pages_admin_and_feed(tmp_path, owner, staff_user, client):
    posts = [
        synthetic_tweet(
            5001, XSS["text"], user=XSS["user"], hashtags=[XSS["tag"]], mentions=[XSS["mention"]], urls=[XSS["url"]]
        ),
        synthetic_tweet(5002, f"RT again {XSS['text']}", user=XSS["user"], hashtags=[XSS["tag"]], retweet_count=3),
    ]
    archive = write_jsonl(tmp_path / ARCHIVE_WITH_MARKUP, posts, extra_lines=['{"broken": '])
    search = run_archive_search(archive, owner)
    other = run_archive_search(write_jsonl(tmp_path / "plain.jsonl", posts[1:]), owner)
    services.publish_search(search)
    owner_client, staff_client = Client(), Client()
    owner_client.force_login(owner)
    staff_client.force_login(staff_user)

    pages = {
        "home": owner_client.get(reverse("home")),
        "detail": owner_client.get(search.get_absolute_url()),
        "status": owner_client.get(reverse("search_status", args=[search.pk])),
        "summary": owner_client.get(reverse("search_summary", args=[search.pk])),
        "public summary": client.get(reverse("search_summary", args=[search.pk])),
        "compare": owner_client.get(reverse("compare"), {"ids": [search.pk, other.pk]}),
        "admin list": staff_client.get(reverse("admin:searches_search_changelist")),
        "admin change": staff_client.get(reverse("admin:searches_search_change", args=[search.pk])),
        "admin run": staff_client.get(reverse("admin:searches_searchrun_change", args=[search.latest_run_id])),
        "feed": client.get(reverse("feed")),
    }
    for where, response in pages.items():
        assert response.status_code in (200, 286), where
        _assert_no_live_markup(response.content.decode(), where)

    # The markup is there, as text: escaped, not dropped.
    summary = pages["summary"].content.decode()
    for value in (XSS["text"], XSS["user"], XSS["tag"], XSS["mention"]):
        assert html.escape(value) in summary, value
    assert html.escape(ARCHIVE_WITH_MARKUP) in pages["detail"].content.decode()
    assert html.escape(ARCHIVE_WITH_MARKUP) in pages["admin change"].content.decode()
    # The import note names the archive (with its broken line 3) on the timeline and in the admin.
    note = TaskEvent.objects.get(run__search=search, event="note").message
    assert ARCHIVE_WITH_MARKUP in note and "line 3" in note
    assert html.escape(note) in pages["admin run"].content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages["feed"].content.decode()
    api = client.get(reverse("api_search_detail", args=[search.pk]))
    assert api["Content-Type"] == "application/json"


# --- CSV cells a spreadsheet would run are neutralised ----------------------------------------------

FORMULAS = ['=HYPERLINK("https://evil.example","x")', "+1+2", "-3+4", "@SUM(1,2)", "\tcmd", "\rcmd"]
PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?(e[+-]?\d+)?$")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_cells(folder: Path) -> list[tuple[str, int, str]]:
    """(file, row, cell) of every CSV cell a spreadsheet would take for a formula."""
    found = []
    for path in sorted(folder.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                for cell in row:
                    if cell.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(cell):
                        found.append((path.name, number, cell))
    return found


def test_csv_cells_from_hostile_posts_never_start_a_formula(tmp_path, owner):
    posts = []
    for number, formula in enumerate(FORMULAS):
        tweet = synthetic_tweet(
            6000 + number,
            formula,
            user=f"{formula[0]}user{number}",
            hashtags=[f"{formula[0]}tag{number}"],
            mentions=[f"{formula[0]}name{number}"],
            urls=[f"{formula}/{number}"],
            followers=-5,  # a negative number stays a number
            retweet_count=number + 1,
        )
        tweet["lang"] = f"{formula[0]}en"
        tweet["extended_entities"] = {"media": [{"type": "photo", "media_url_https": f"=cmd|' /C calc'!A{number}"}]}
        posts.append(tweet)
    search = run_archive_search(write_jsonl(tmp_path / "formulas.jsonl", posts), owner)
    folder = search.results_dir

    assert _formula_cells(folder) == []
    # ... and the text is all there, behind a quote, for a spreadsheet to show.
    with (folder / "tweets.csv").open(newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    assert sorted(texts) == sorted("'" + formula for formula in FORMULAS)
    hashtags = (folder / "count-hashtags.csv").read_text(encoding="utf-8")
    assert "'=tag0" in hashtags and "'@tag3" in hashtags
    for name in ("tweets.csv", "sample.csv", "count-mentions.csv", "count-urls.csv", "count-media.csv"):
        assert (folder / name).stat().st_size > 0


def test_csv_cells_from_posts_with_hostile_ids_never_start_a_formula(tmp_path, owner):
    """Ids come from the archive too: X's are numbers, a hand-made file's may be anything."""
    original = synthetic_tweet(7001, "the original", retweet_count=9)
    original["id"] = original["id_str"] = '=HYPERLINK("https://evil.example","id")'
    retweet = synthetic_tweet(7002, "RT @ann: the original", retweet_count=9)
    retweet["retweeted_status"] = dict(original)
    retweet["quoted_status_id_str"] = "-1+1"
    retweet["in_reply_to_status_id_str"] = "@reply"
    plain = synthetic_tweet(7003, "a plain post with a plain id")
    archive = write_jsonl(tmp_path / "ids.jsonl", [original, retweet, plain])
    search = services.create_search(owner=owner, source=Source.ARCHIVE, archive_path=str(archive), enqueue=False)
    run = services.execute_search(search)

    assert run.status == Status.FINISHED, run.error
    assert _formula_cells(run.folder_path) == []
    ids = (run.folder_path / "tweet-ids.txt").read_text().split()
    assert ids == ["7002", "7003"]
    # The post whose own id was a formula is no post: it was skipped, and the import says where.
    note = run.events.get(event="note").message
    assert "ids.jsonl line 1: a post without an id" in note, note


# --- files: only a search's own, only by their known names ---------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "media/%2e%2e/tweets.csv",
        "media%2f..%2ftweets.csv",
        "%252e%252e/%252e%252e/etc/passwd",
        "..%5c..%5ctweets.csv",
        "media/..%5ctweets.csv",
        "//etc/passwd",
        "media//etc/hosts.png",
        "tweets.csv%00.png",
        "media/AAA.jpg/../../tweets.csv",
        "./tweets.csv",
        "TWEETS.CSV",
        "sources.json",
        "collect-state.json",
    ],
)
def test_encoded_and_disguised_paths_never_reach_a_file(client, owner, name):
    search = make_search(owner, published=True)
    response = client.get(f"/searches/{search.pk}/files/{name}")
    assert response.status_code == 404, name


def test_symlinks_in_a_search_folder_never_serve_what_they_point_at(client, owner, other_user, tmp_path):
    search = make_search(owner, published=True)
    private = make_search(other_user, term="someone else's")
    secret = private.results_dir / "tweets.csv"
    folder = search.results_dir
    outside = tmp_path / "outside.txt"
    outside.write_text("a file outside the data folder")
    links = {
        "count-hashtags.csv": outside,
        "count-mentions.csv": secret,
        "media/stolen.png": secret,
        f"{folder.name}.zip": private.results_dir / f"{private.results_run.folder}.zip",
    }
    for name, target in links.items():
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(target)
    (folder / "media" / "AAA.jpg").unlink()
    (folder / "media" / "AAA.jpg").symlink_to(private.results_dir / "media" / "BBB.png")

    for name in [*links, "media/AAA.jpg"]:
        response = client.get(reverse("search_file", args=[search.pk, name]))
        assert response.status_code == 404, name
    owner_client = Client()
    owner_client.force_login(owner)
    assert owner_client.get(reverse("search_file", args=[search.pk, "count-mentions.csv"])).status_code == 404
    # A real file beside them is still served.
    assert client.get(reverse("search_file", args=[search.pk, "tweet-ids.txt"])).status_code == 200


def test_a_link_inside_a_folder_to_its_own_private_file_is_as_private_as_that_file(client, owner):
    """Publicity is decided on the file a name leads to: a photo's name that leads to the posts'
    table is the posts' table, for the owner only."""
    search = make_search(owner, published=True)
    folder = search.results_dir
    (folder / "media" / "x.jpg").symlink_to(folder / "tweets.csv")
    (folder / "tweet-ids.txt").unlink()
    (folder / "tweet-ids.txt").symlink_to(folder / "sample.csv")
    for name in ("media/x.jpg", "tweet-ids.txt"):
        assert client.get(reverse("search_file", args=[search.pk, name])).status_code == 404, name
    owner_client = Client()
    owner_client.force_login(owner)
    response = owner_client.get(reverse("search_file", args=[search.pk, "media/x.jpg"]))
    assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"id,created_at")


def test_a_private_search_s_files_cannot_be_found_by_guessing(client, owner, other_user):
    private = make_search(owner)
    published = make_search(owner, published=True, term="shared")
    stranger = Client()
    stranger.force_login(other_user)
    guesses = [
        *run_files.PUBLIC_FILES,
        *run_files.PRIVATE_FILES,
        "media/AAA.jpg",
        "media/BBB.png",
        f"{private.results_run.folder}.zip",
        f"search-{private.pk}.zip",
        "sources.json",
        "collect-state.json",
        "tweets.jsonl.part",
        "media/photos.json",
    ]
    for visitor in (client, stranger):
        for name in guesses:
            assert visitor.get(reverse("search_file", args=[private.pk, name])).status_code == 404, name
            if name in run_files.PRIVATE_FILES:
                assert visitor.get(reverse("search_file", args=[published.pk, name])).status_code == 404, name
        assert visitor.get(reverse("search_file", args=[published.pk + 1000, "summary.json"])).status_code == 404
    # The guesses were good ones: the owner gets each file that exists.
    owner_client = Client()
    owner_client.force_login(owner)
    assert owner_client.get(reverse("search_file", args=[private.pk, "tweets.csv"])).status_code == 200
    package = f"{private.results_run.folder}.zip"
    assert owner_client.get(reverse("search_file", args=[private.pk, package])).status_code == 200


# --- the bearer token goes nowhere it could leak -------------------------------------------------


@pytest.mark.worker
def test_the_bearer_token_is_in_no_job_task_id_event_log_file_or_page(settings, tmp_path, owner, caplog, monkeypatch):
    token = "dnflow-leak-canary-" + secrets.token_hex(16)
    emulator = XApiEmulator(token=token)
    settings.X_BEARER_TOKEN = token
    settings.DNFLOW_X_API_URL = emulator.url
    caplog.set_level(logging.DEBUG)
    # A retry and a rate-limit wait for the first search, a refusal for the second: the paths that
    # write logs, events and messages.
    emulator.fail_next(
        Fault.server_error(503), Fault.normal(), Fault.rate_limit(reset_in=1), Fault.normal(), Fault.bad_request("No")
    )
    try:
        with worker_pool(settings, tmp_path) as pool:
            conn = django_rq.get_connection("default")
            search = services.create_search(owner=owner, term="#kpop", source=Source.RECENT, count=150)
            refused = services.create_search(owner=owner, term="#kpop lang:fr", source=Source.RECENT, count=20)
            job = django_rq.get_queue("default", connection=conn).fetch_job(search.latest_run.rq_job_id)
            assert (job.args, job.kwargs) == ((search.latest_run_id,), {})
            assert token.encode() not in redis_contents(conn)

            env = {"X_BEARER_TOKEN": token, "DNFLOW_X_API_URL": emulator.url, "LOG_LEVEL": "DEBUG"}
            pool.start(1, DNFLOW_LOG_LEVEL="DEBUG", **env)
            pool.wait_for(
                lambda: SearchRun.objects.filter(
                    search__in=[search.pk, refused.pk], status__in=["finished", "failed"]
                ).count()
                == 2,
                timeout=90,
                what="both live searches ended",
            )
            redis_after = redis_contents(conn)
            worker_log = pool.logs()
    finally:
        emulator.stop()

    search.refresh_from_db()
    refused.refresh_from_db()
    assert search.status == Status.FINISHED, search.latest_run.error
    assert refused.status == Status.FAILED and "refused the search" in refused.latest_run.error
    assert any(r.status == 503 for r in emulator.requests) and any(r.status == 429 for r in emulator.requests)
    assert all(r.authorized for r in emulator.requests if r.status == 200)  # the worker did use the token
    assert "X API" in worker_log and "Bearer [redacted]" in worker_log  # its X API traffic was logged ...
    assert token not in worker_log  # ... never the token
    assert token.encode() not in redis_after
    assert token not in caplog.text

    stored = "".join(json.dumps(list(model.objects.values()), default=str) for model in (Search, SearchRun, TaskEvent))
    assert "PackageOutputs_" in stored and "CollectPosts_" in stored  # Luigi task ids are in there
    assert token not in stored
    for name, data in files_contents(settings.DNFLOW_DATA_DIR):
        assert token.encode() not in data, name

    owner_client = Client(raise_request_exception=False)
    owner_client.force_login(owner)
    for url in (search.get_absolute_url(), reverse("search_summary", args=[search.pk])):
        assert token not in owner_client.get(url).content.decode()
    assert token not in owner_client.get(reverse("api_search_detail", args=[search.pk])).content.decode()
    assert token not in call_command_output("dumpdata", "searches")

    # An error page, even Django's debug one, masks the setting.
    settings.DEBUG = True
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False

    def broken(folder):
        raise RuntimeError("the summary could not be read")

    monkeypatch.setattr(run_files, "read_summary", broken)
    debug_page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    settings.DEBUG = False
    plain_page = owner_client.get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "X_BEARER_TOKEN" in debug_page and "RuntimeError" in debug_page
    assert token not in debug_page and token not in plain_page


def call_command_output(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
