"""A real browser against the live server and a real rq worker running the real workflow.

Headless Debian Chromium through Playwright; screenshots go to test-artifacts/ for a person to look at.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.urls import reverse

from searches.models import Search, Source, Status
from tests.browser_helpers import ARTIFACTS, log_in, shot
from tests.conftest import TEST_REDIS_URL
from tests.web_helpers import make_search
from tests.worker_helpers import worker_database_url
from tests.x_emulator import x_api  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROJECT_DIR = Path(__file__).resolve().parent.parent
SEARCH_TIMEOUT_MS = 60_000


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def shared_data_dir(tmp_path_factory) -> Path:
    """One data folder for the module, so the worker (started once) and the live server agree."""
    return tmp_path_factory.mktemp("browser-data")


@pytest.fixture(autouse=True)
def use_shared_data_dir(data_dir, settings, shared_data_dir):
    settings.DNFLOW_DATA_DIR = shared_data_dir


class Worker:
    """A real `manage.py rqworker` on the test database, this Redis and the shared data folder,
    started when a test asks (so a page can be seen waiting for it first) and stopped at the end."""

    def __init__(self, env: dict):
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log = None

    def start(self) -> subprocess.Popen:
        if self.process is None:
            ARTIFACTS.mkdir(exist_ok=True)
            self.log = (ARTIFACTS / "browser-worker.log").open("w")
            self.process = subprocess.Popen(
                [sys.executable, str(PROJECT_DIR / "manage.py"), "rqworker", "default"],
                cwd=PROJECT_DIR,
                env=self.env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)  # rq's warm shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.log.close()


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, shared_data_dir):
    import redis
    from rq import Queue

    with django_db_blocker.unblock():
        env = {
            **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
            "DATABASE_URL": worker_database_url(),
            "REDIS_URL": TEST_REDIS_URL,
            "DNFLOW_DATA_DIR": str(shared_data_dir),
        }
    queue = Queue("default", connection=redis.Redis.from_url(TEST_REDIS_URL))
    queue.empty()
    worker = Worker(env)
    yield worker
    worker.stop()
    queue.empty()


def test_start_a_sample_search_watch_it_finish_live_and_read_its_summary(page, live_server, owner, worker):
    log_in(page, live_server, "alice", "alice-password-1")
    page.fill("#id_term", "climate")
    page.select_option("#id_source", "sample")
    shot(page, "home")
    page.click("button.primary:has-text('Start')")
    page.wait_for_url(f"{live_server.url}/searches/*/")
    search = Search.objects.get(owner=owner)
    assert page.locator(".message-success").inner_text() == f"Search {search} started."

    # No worker yet: the page shows the search waiting, and polls.
    assert page.locator("#status .badge-queued").count() == 1
    assert page.locator("#status-live[hx-trigger='every 2s']").count() == 1
    # Mark this page: a reload or navigation would lose the mark, so it proves htmx did the updates.
    page.evaluate("window.dnflowNoReload = true")
    process = worker.start()
    page.wait_for_selector(
        "#status .badge-finished, #status .badge-failed, #status .badge-cancelled", timeout=SEARCH_TIMEOUT_MS
    )
    assert page.evaluate("window.dnflowNoReload") is True, "the page reloaded instead of updating in place"
    shot(page, "status-done")
    status = page.locator("#status")
    assert status.locator(".badge-finished").count() == 1, f"the search did not finish: {status.inner_text()}"
    assert process.poll() is None, "the worker died"
    assert "100%" in status.inner_text()
    assert status.locator("table.timeline tbody tr").count() >= 1
    search.refresh_from_db()
    assert search.status == Status.FINISHED and search.results_run.num_posts
    # The summary came with the last update: the live page is what a reload shows.
    assert page.locator("#results #summary").count() == 1
    # "Search ... started" was about a run that has ended: it goes (the check found it stayed).
    assert page.locator(".message").count() == 0
    # ...networks drawn too: the script that draws them runs on what htmx put in.
    page.wait_for_function("document.querySelectorAll('.network-view[data-network-ready=\"true\"]').length === 2")

    page.click("a:has-text('Read the summary')")
    page.wait_for_url(f"{live_server.url}{reverse('search_summary', args=[search.pk])}")
    assert page.locator(".timeline-chart svg rect").count() >= 1
    hashtag_bars = page.locator("#chart-hashtags .bar")
    assert hashtag_bars.count() >= 1
    assert hashtag_bars.first.bounding_box()["width"] > 50  # the top bar is drawn at full width
    assert page.locator("#files a:has-text('tweet-ids.txt')").count() == 1
    photo = page.locator("#photos img").first
    photo.scroll_into_view_if_needed()  # photos load lazily
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_load_state("networkidle")
    shot(page, "summary")


def test_an_upload_shows_how_far_it_has_gone_and_a_refused_form_comes_back_in_place(
    page, live_server, owner, real_data
):
    """Several GiB take a while to upload: the form shows the upload as it goes. The network is
    slowed to about 0.6 MB/s so that the 1.8 MB real archive takes three seconds."""
    archive = real_data / "v2-pages-twarc-network.jsonl"
    log_in(page, live_server, "alice", "alice-password-1")
    # Nothing is uploading: no empty bar under Start (its stylesheet's display rule showed it).
    assert page.locator("#upload-progress").is_hidden()

    # Refused: no file for an archive search. The errors come back in the form, the page stays.
    page.select_option("#id_source", "archive")
    page.fill("#id_title", "kept as typed")
    page.click("button.primary:has-text('Start')")
    page.wait_for_selector("#id_archive-errors")
    assert "Choose an archive file" in page.locator("#id_archive-errors").inner_text()
    assert page.url == f"{live_server.url}/" and page.input_value("#id_title") == "kept as typed"
    assert not Search.objects.exists()

    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 600_000},
    )
    page.set_input_files("#id_archive", str(archive))
    page.click("button.primary:has-text('Start')")
    page.wait_for_function(
        "() => { const bar = document.querySelector('#upload-progress progress');"
        " return bar && bar.value > 0 && bar.value < 100; }"
    )
    said = page.locator("#upload-progress").inner_text()
    shot(page, "upload-progress")
    assert re.fullmatch(
        r"Uploading v2-pages-twarc-network\.jsonl: [\d.]+ MiB of 1\.8 MiB \(\d+%\)\. "
        r"Keep this page open until the search's page appears\.",
        said.strip(),
    ), said
    assert page.locator("button.primary:has-text('Start')").is_disabled(), "one click, one search"
    assert not page.locator("#id_archive-errors").is_visible(), "the last refusal no longer applies"

    page.wait_for_url(f"{live_server.url}/searches/*/", timeout=30_000)
    search = Search.objects.get(owner=owner)
    assert page.locator(".message").inner_text().startswith(f"Search {search}")
    assert Path(search.archive_path).read_bytes() == archive.read_bytes()


def test_what_the_server_would_refuse_after_the_whole_upload_is_refused_before_sending(
    page, live_server, owner, real_data, settings
):
    """A file for a source that takes none, or over the upload limit, was sent whole (hours for a
    big one) and then refused. During an upload every button waits, and leaving asks first."""
    archive = real_data / "v2-pages-twarc-network.jsonl"  # 1.8 MB
    settings.X_BEARER_TOKEN = "token"  # the Estimate button shows
    sent = []
    page.on("request", lambda request: sent.append(request.url) if request.method == "POST" else None)
    log_in(page, live_server, "alice", "alice-password-1")
    said = page.locator("#upload-progress")

    page.select_option("#id_source", "sample")
    page.set_input_files("#id_archive", str(archive))
    page.click("button.primary:has-text('Start')")
    said.wait_for()
    assert said.inner_text().strip().startswith("To use this file, choose “Archive file” or “Tweet ids” as the source")

    settings.DNFLOW_MAX_UPLOAD_BYTES = 1_000_000  # the page says it to the script as it loads
    page.reload()
    page.select_option("#id_source", "archive")
    page.set_input_files("#id_archive", str(archive))
    page.click("button.primary:has-text('Start')")
    said.wait_for()
    too_big = "v2-pages-twarc-network.jsonl is 1.8 MiB, larger than the upload limit of 1.0 MiB"
    assert said.inner_text().strip().startswith(f"{too_big} (DNFLOW_MAX_UPLOAD_BYTES): nothing was sent.")
    assert sent == [f"{live_server.url}/accounts/login/"] and not Search.objects.exists()

    settings.DNFLOW_MAX_UPLOAD_BYTES = 0
    page.reload()
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )
    page.select_option("#id_source", "archive")
    page.set_input_files("#id_archive", str(archive))
    page.click("button.primary:has-text('Start')")
    page.wait_for_function("() => document.querySelector('#upload-progress progress').value > 0")
    assert page.locator("button:has-text('Estimate posts and cost')").is_disabled(), "it would send the file again"
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.evaluate("() => { location.href = '/compare/'; }")
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"] and page.url == f"{live_server.url}/"
    page.evaluate("() => htmx.trigger('#search-form', 'htmx:abort')")  # not to end after the test
    page.wait_for_function("() => !document.querySelector('button.primary').disabled")


def test_without_javascript_the_form_uploads_as_a_plain_form(browser, live_server, owner, real_data):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, live_server, "alice", "alice-password-1")
        page.select_option("#id_source", "archive")
        page.click("button.primary:has-text('Start')")
        page.wait_for_selector("#id_archive-errors")  # refused by the server, the whole page again
        page.set_input_files("#id_archive", str(real_data / "v1-streaming-lines.jsonl"))
        page.click("button.primary:has-text('Start')")
        page.wait_for_url(f"{live_server.url}/searches/*/")
        search = Search.objects.get(owner=owner)
        assert page.locator(".message").inner_text() == f"Search {search} started."
        assert Path(search.archive_path).read_bytes() == (real_data / "v1-streaming-lines.jsonl").read_bytes()
    finally:
        context.close()


def test_the_live_status_leaves_alone_the_controls_a_person_is_using(page, live_server, owner):
    """Polled every two seconds, the status must not reset a half-made choice or move the focus."""
    search = make_search(owner, status=Status.RUNNING, source="recent", step="Collecting posts", progress=30.0)
    log_in(page, live_server, "alice", "alice-password-1")
    page.goto(f"{live_server.url}{search.get_absolute_url()}")
    schedule = page.locator(".schedule-form select")
    schedule.select_option(index=2)
    chosen = schedule.input_value()
    page.focus("#status button:has-text('Cancel')")
    with page.expect_response(lambda answer: "/status/" in answer.url):
        pass  # a poll came back...
    with page.expect_response(lambda answer: "/status/" in answer.url):
        pass  # ... and another
    assert schedule.input_value() == chosen
    assert page.evaluate("document.activeElement.textContent") == "Cancel"

    # Once the run is done, the actions a finished run offers replace Cancel by themselves.
    search.latest_run.runs().finish()
    page.wait_for_selector("#status button:has-text('Collect again')")
    assert page.locator("#status button:has-text('Cancel')").count() == 0
    assert schedule.input_value() == chosen, "a choice not yet saved stays when the actions change"


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-javascript"])
def test_the_estimate_button_shows_the_estimate_under_the_form_as_filled(
    browser,
    live_server,
    owner,
    x_api,  # noqa: F811
    javascript,
):
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(15_000)
    navigations = []
    try:
        log_in(page, live_server, "alice", "alice-password-1")
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
        page.fill("#id_term", "climate")
        page.select_option("#id_source", "recent")
        page.fill("#id_count", "100")
        page.click("button:has-text('Estimate posts and cost')")
        page.wait_for_selector("#estimate p")
        said = page.locator("#estimate").inner_text()
        assert "about 500 posts match" in said, said
        assert page.input_value("#id_term") == "climate" and page.input_value("#id_count") == "100"
        assert page.input_value("#id_source") == "recent"
        # With htmx only #estimate changes; without JavaScript the whole page comes back.
        assert navigations == ([] if javascript else [f"{live_server.url}{reverse('estimate')}"])
        assert not Search.objects.exists() and not x_api.search_requests()
    finally:
        context.close()


def test_upload_a_real_archive_on_the_form_and_the_worker_counts_every_post(
    page, live_server, owner, worker, real_data, settings, shared_data_dir
):
    """The archive route, as a person takes it: choose the file in the browser, start, wait. Bigger
    than FILE_UPLOAD_MAX_MEMORY_SIZE, it arrives through uploads/.incoming/ as a real one does."""
    archive = real_data / "v2-pages-twarc-network.jsonl"  # 500 posts in 5 response pages
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    log_in(page, live_server, "alice", "alice-password-1")
    page.select_option("#id_source", "archive")
    page.set_input_files("#id_archive", str(archive))
    page.click("button.primary:has-text('Start')")
    page.wait_for_url(f"{live_server.url}/searches/*/")
    search = Search.objects.get(owner=owner)
    assert Path(search.archive_path).read_bytes() == archive.read_bytes()
    assert list((shared_data_dir / "uploads" / ".incoming").iterdir()) == []

    worker.start()
    page.wait_for_selector(
        "#status .badge-finished, #status .badge-failed, #status .badge-cancelled", timeout=SEARCH_TIMEOUT_MS
    )
    shot(page, "upload-done")
    assert page.locator("#status .badge-finished").count() == 1, page.locator("#status").inner_text()
    search.refresh_from_db()
    assert search.results_run.num_posts == 500
    assert "500" in page.locator("#results").inner_text()


def test_x_s_archive_zip_uploaded_as_it_comes_is_counted_under_its_owner(page, live_server, owner, worker, tmp_path):
    """X's "download your archive" is one ZIP, and the form takes one file: it goes in as it is."""
    from tests.test_archive_zip import twitter_archive_zip  # SYNTHETIC posts in X's layout

    zipped = twitter_archive_zip(tmp_path / "twitter-2023-01-31-abc.zip")
    log_in(page, live_server, "alice", "alice-password-1")
    page.select_option("#id_source", "archive")
    page.set_input_files("#id_archive", str(zipped))
    page.click("button.primary:has-text('Start')")
    page.wait_for_url(f"{live_server.url}/searches/*/")
    worker.start()
    page.wait_for_selector(
        "#status .badge-finished, #status .badge-failed, #status .badge-cancelled", timeout=SEARCH_TIMEOUT_MS
    )
    assert page.locator("#status .badge-finished").count() == 1, page.locator("#status").inner_text()
    page.click("text=Read the summary")
    authors = page.locator("#summary dt:has-text('Authors') + dd").inner_text()
    assert authors == "1", authors  # not 0: account.js in the ZIP names them
    search = Search.objects.get(owner=owner)
    assert (search.results_run.folder_path / "count-authors.csv").read_text().splitlines() == [
        "user,posts",
        "owner_name,2",
    ]


def test_a_published_search_is_visible_logged_out_and_a_private_one_is_404(page, live_server, owner):
    shared = make_search(owner, term="shared with everyone", published=True)
    private = make_search(owner, term="kept private")
    response = page.goto(f"{live_server.url}{shared.get_absolute_url()}")
    assert response.status == 200
    assert "shared with everyone" in page.locator("h1").inner_text()
    assert page.locator("#chart-hashtags .bar").count() == 2
    assert page.locator("text=Log in").count() >= 1
    shot(page, "published-logged-out")
    response = page.goto(f"{live_server.url}{private.get_absolute_url()}")
    assert response.status == 404
    assert "kept private" not in page.content()
    response = page.goto(f"{live_server.url}/searches/{private.pk}/files/tweet-ids.txt")
    assert response.status == 404


def test_a_running_search_row_on_the_home_page_updates_in_place(page, live_server, owner):
    search = make_search(owner, term="slowly going", status=Status.RUNNING, step="Collecting posts", progress=20.0)
    log_in(page, live_server, "alice", "alice-password-1")
    row = page.locator(f"#search-row-{search.pk}")
    assert row.locator(".badge-running").count() == 1
    page.evaluate("window.dnflowNoReload = true")
    search.latest_run.runs().finish()
    search.latest_run.runs().update(num_posts=7)
    deadline = time.monotonic() + 10
    while row.locator(".badge-finished").count() == 0 and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert row.locator(".badge-finished").count() == 1 and "7 posts" in row.inner_text()
    assert page.evaluate("window.dnflowNoReload") is True


def test_collecting_now_and_the_schedule_have_their_own_names_and_a_full_size_select(page, live_server, owner):
    search = make_search(owner, source=Source.RECENT)
    log_in(page, live_server, "alice", "alice-password-1")
    page.goto(f"{live_server.url}{search.get_absolute_url()}")
    collect_now = page.get_by_role("button", name="Collect new posts", exact=True)
    schedule = page.get_by_label("Collect new posts automatically", exact=True)
    assert collect_now.count() == 1 and schedule.count() == 1
    assert page.get_by_label("Collect new posts", exact=True).count() == 0  # no control shares the button's name
    # The select is about as tall as the button beside it (as the new-search form's selects are),
    # not the browser's small default.
    save = page.locator(".schedule-form button[type=submit]")
    assert schedule.bounding_box()["height"] >= 0.9 * save.bounding_box()["height"]
