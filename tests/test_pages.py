"""The home page's form, the buttons on a search, compare, the Atom feed and robots.txt."""

import html
import os
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pipeline.events import step_range
from searches import paging, services
from searches.models import EventKind, Search, SearchRun, Source, Status, TaskEvent
from searches.uploads import TemporaryFileOrDiskFull
from tests.web_helpers import POSTS, field_errors, make_search, older_links, write_csv, write_outputs
from tests.x_emulator import x_api  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queue(empty_queue):
    return empty_queue


# --- Home and starting a search ----------------------------------------------------------------


def test_visitors_see_published_searches_and_a_log_in_link_but_no_form(client, owner):
    make_search(owner, term="shared one", published=True)
    page = client.get(reverse("home")).content.decode()
    assert "shared one" in page
    assert "to start a search" in page
    assert 'id="search-form"' not in page


def test_a_person_whose_own_search_is_published_is_not_told_nothing_is_published(owner_client, owner):
    make_search(owner, term="my shared one", published=True)
    page = owner_client.get(reverse("home")).content.decode()
    # Their own search is in their list, marked published; the other list says whose it holds.
    own = re.search(r'<section aria-labelledby="own-heading">.*?</section>', page, re.S).group(0)
    assert "my shared one" in own and ">published<" in own
    others = re.search(r'<section aria-labelledby="published-heading">.*?</section>', page, re.S).group(0)
    assert "Published by others" in others
    assert "No one else has published a search yet." in others
    assert "Nothing published yet" not in page


# These two commit for real: the page reads what jobs.enqueue recorded once the search was saved,
# which is how it happens outside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_starting_a_sample_search_queues_it_and_shows_its_status_page(owner_client, owner, empty_queue):
    response = owner_client.post(reverse("home"), {"term": "climate", "source": "sample"})
    search = Search.objects.get()
    assert response.status_code == 302 and response["Location"] == search.get_absolute_url()
    assert (search.owner, search.term, search.source, search.status) == (owner, "climate", "sample", Status.QUEUED)
    assert search.published_at is None  # private by default
    assert empty_queue.count == 1 and empty_queue.jobs[0].args == (search.latest_run_id,)
    page = owner_client.get(response["Location"]).content.decode()
    assert f"Search {search} started." in page


def test_anonymous_post_is_sent_to_log_in_and_creates_nothing(client):
    response = client.post(reverse("home"), {"term": "climate", "source": "sample"})
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert not Search.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_form_sent_by_htmx_sends_the_browser_on_or_comes_back_with_its_errors(owner_client, empty_queue):
    # upload.js shows an upload's progress only when htmx sends the form (JavaScript on); a redirect
    # would be followed in the background, so the browser is told where to go instead.
    htmx = {"HTTP_HX_REQUEST": "true"}
    refused = owner_client.post(reverse("home"), {"term": "climate", "source": "sample", "lang": "xx"}, **htmx)
    assert refused.status_code == 200 and "HX-Redirect" not in refused
    page = refused.content.decode()
    assert 'id="new-search"' in page  # what htmx puts in place of the form
    assert "Unknown language code 'xx'" in field_errors(page, "lang")

    started = owner_client.post(reverse("home"), {"term": "climate", "source": "sample"}, **htmx)
    search = Search.objects.get()
    assert started["HX-Redirect"] == search.get_absolute_url()
    assert f"Search {search} started." in owner_client.get(started["HX-Redirect"]).content.decode()

    # Logged out meanwhile: sent to log in, not a log-in form inside the search form.
    anonymous = Client().post(reverse("home"), {"term": "climate", "source": "sample"}, **htmx)
    assert anonymous["HX-Redirect"].startswith(reverse("login") + "?next=")
    assert Search.objects.count() == 1


@pytest.mark.parametrize(
    "data,field,message",
    [
        ({"term": "climate", "source": "sample", "lang": "xx"}, "lang", "Unknown language code 'xx'"),
        ({"term": "climate", "source": "recent"}, "source", "No X API credentials"),
        (
            {"term": "c", "source": "sample", "start_time": "2024-03-02T10:00", "end_time": "2024-03-01T10:00"},
            "end_time",
            "The end time must come after the start time.",
        ),
        ({"term": "c", "source": "sample", "count": "0"}, "count", "greater than or equal to 1"),
        ({"term": "c", "source": "archive"}, "archive", "Choose an archive file to upload."),
        ({"term": "c", "source": "nowhere"}, "source", "Select a valid choice"),
    ],
)
def test_refused_searches_show_the_reason_on_the_field(owner_client, settings, data, field, message):
    settings.X_BEARER_TOKEN = ""
    response = owner_client.post(reverse("home"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert message in field_errors(page, field), page
    assert not Search.objects.exists()
    # What was typed is kept, so it can be corrected.
    assert f'value="{data["term"]}"' in page


def test_uploading_an_archive_saves_it_under_uploads_and_imports_it(owner_client, data_dir):
    upload = SimpleUploadedFile("../../my tweets.jsonl", b'{"id": "1", "text": "hello"}\n')
    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": upload})
    assert response.status_code == 302
    search = Search.objects.get()
    path = Path(search.archive_path)
    assert search.source == Source.ARCHIVE
    assert path.parent.parent == data_dir / "uploads"
    assert path.name == "my_tweets.jsonl"  # no directories, no spaces: the name cannot go anywhere else
    assert path.read_bytes() == b'{"id": "1", "text": "hello"}\n'


def test_a_big_upload_is_moved_into_uploads_not_copied_and_readable_by_a_worker(owner_client, data_dir, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # anything bigger goes to a temporary file, as a real archive would
    body = b'{"id": "1", "text": "hello"}\n' * 100
    upload = SimpleUploadedFile("big.jsonl", body)
    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": upload})
    assert response.status_code == 302
    path = Path(Search.objects.get().archive_path)
    assert path.read_bytes() == body
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_big_upload_is_written_on_the_data_disk_not_in_the_system_s_temporary_folder(
    owner_client, data_dir, settings, rf
):
    """/tmp is often a RAM disk far smaller than an archive: a big upload is written to
    uploads/.incoming/, on the disk it ends up on, and renamed into its folder from there; what a
    killed server left there is removed, an upload still being written is not."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10
    handler = TemporaryFileOrDiskFull(rf.post("/"))
    handler.new_file("archive", "big.jsonl", "application/x-ndjson", None)
    handler.receive_data_chunk(b"{}\n", 0)
    written = Path(handler.file_complete(3).temporary_file_path())
    incoming = data_dir / "uploads" / ".incoming"
    assert written.parent == incoming and written.read_bytes() == b"{}\n"

    left = incoming / "tmpleft.upload.jsonl"  # a killed server's upload, two days old
    left.write_bytes(b"{}\n")
    os.utime(left, (time.time() - 2 * 86400,) * 2)
    body = b'{"id": "1", "text": "hello"}\n' * 100
    response = owner_client.post(
        reverse("home"), {"term": "", "source": "archive", "archive": SimpleUploadedFile("big.jsonl", body)}
    )
    assert response.status_code == 302
    assert Path(Search.objects.get().archive_path).read_bytes() == body
    assert list(incoming.iterdir()) == [written], "the left file is removed, the one in progress kept"


def test_an_estimate_of_ids_over_the_upload_limit_says_why_as_starting_it_does(owner_client, settings):
    settings.X_BEARER_TOKEN = "token"
    settings.DNFLOW_MAX_UPLOAD_BYTES = 1000
    upload = SimpleUploadedFile("ids.txt", b"1380242611781386245\n" * 100)
    answer = owner_client.post(reverse("estimate"), {"source": "ids", "archive": upload}, HTTP_HX_REQUEST="true")
    assert "ids.txt is larger than the upload limit of 1000" in answer.content.decode()


def test_an_upload_over_the_limit_is_refused_with_what_to_do_instead(owner_client, data_dir, settings):
    settings.DNFLOW_MAX_UPLOAD_BYTES = 1000
    upload = SimpleUploadedFile("huge.jsonl", b'{"id": "1", "text": "hello"}\n' * 100)
    response = owner_client.post(reverse("home"), {"term": "kept", "source": "archive", "archive": upload})
    assert response.status_code == 200
    errors = field_errors(response.content.decode(), "archive")
    assert "huge.jsonl is larger than the upload limit of 1000" in errors, errors
    assert "DNFLOW_MAX_UPLOAD_BYTES" in errors and "manage.py run_search --archive FILE" in errors
    assert "Choose an archive file" not in errors  # one reason, the real one
    assert 'value="kept"' in response.content.decode()
    assert not Search.objects.exists()
    assert not (data_dir / "uploads").exists() or list((data_dir / "uploads").iterdir()) == []

    settings.DNFLOW_MAX_UPLOAD_BYTES = 3000  # the same file under the limit is taken
    upload = SimpleUploadedFile("huge.jsonl", b'{"id": "1", "text": "hello"}\n' * 100)
    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": upload})
    assert response.status_code == 302


def test_a_refused_upload_is_not_kept(owner_client, data_dir, real_data):
    upload = SimpleUploadedFile("tweets.jsonl", (real_data / "v1-streaming-lines.jsonl").read_bytes())
    response = owner_client.post(reverse("home"), {"source": "archive", "lang": "xx", "archive": upload})
    assert "Unknown language code" in field_errors(response.content.decode(), "lang")
    assert not Search.objects.exists()
    assert list((data_dir / "uploads").iterdir()) == []


def test_an_upload_with_another_source_is_refused(owner_client):
    upload = SimpleUploadedFile("tweets.jsonl", b"{}\n")
    response = owner_client.post(reverse("home"), {"term": "c", "source": "sample", "archive": upload})
    assert "choose “Archive file” or “Tweet ids” as the source" in field_errors(response.content.decode(), "archive")
    assert not Search.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_search_saved_while_redis_is_down_says_so(owner_client, settings):
    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:1/0", "DEFAULT_TIMEOUT": 60}}
    response = owner_client.post(reverse("home"), {"term": "climate", "source": "sample"}, follow=True)
    search = Search.objects.get()
    assert search.status == Status.QUEUED
    page = response.content.decode()
    assert "Search saved but not started yet." in page
    assert "Redis could not be reached" in page


def test_estimate_button_is_hidden_without_credentials(owner_client, settings):
    settings.X_BEARER_TOKEN = ""
    assert "Estimate posts and cost" not in owner_client.get(reverse("home")).content.decode()


def test_estimate_asks_the_x_api_counts_and_describes_them(owner_client, x_api):  # noqa: F811
    page = owner_client.get(reverse("home")).content.decode()
    assert f'hx-post="{reverse("estimate")}"' in page
    response = owner_client.post(
        reverse("estimate"),
        {"term": "climate", "source": "recent"},
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.strip().startswith('<div id="estimate"')
    assert re.search(r"about [\d,]+ posts? match", body), body
    assert any("/2/tweets/counts/recent" in r.path for r in x_api.requests)
    assert not x_api.search_requests(), "an estimate spends no reads"


def test_a_full_archive_estimate_on_the_page_names_the_forms_field_not_the_commands_option(
    owner_client,
    x_api,  # noqa: F811
):
    said = owner_client.post(reverse("estimate"), {"term": "climate", "source": "all"}).content.decode()
    assert "give a start time (From) to reach further back" in said
    assert "--start" not in said


def test_estimate_prices_only_the_posts_the_count_lets_the_search_read(owner_client, x_api):  # noqa: F811
    capped = owner_client.post(reverse("estimate"), {"term": "climate", "source": "recent", "count": "100"})
    said = capped.content.decode()
    assert "about 500 posts match" in said  # the recorded posts, all of them matching
    assert "the search reads at most 100" in said and "at most $0.50" in said
    assert "$2.50" not in said

    # No count: the default count (1,000 here) is the limit, and all 500 fit under it.
    default = owner_client.post(reverse("estimate"), {"term": "climate", "source": "recent", "count": ""})
    assert "with count 1,000 the search reads them all -- about $2.50" in default.content.decode()


def test_without_javascript_the_estimate_button_shows_the_page_again_with_the_form_as_filled(
    owner_client,
    x_api,  # noqa: F811
):
    page = owner_client.get(reverse("home")).content.decode()
    button = re.search(r"<button[^>]*>Estimate posts and cost</button>", page).group(0)
    assert 'type="submit"' in button and f'formaction="{reverse("estimate")}"' in button

    filled = {"title": "kept", "term": "climate", "source": "recent", "count": "100", "lang": "en"}
    response = owner_client.post(reverse("estimate"), filled)  # as a browser without JavaScript sends it

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="search-form"' in page and 'id="own-heading"' in page  # the whole home page
    assert 'value="climate"' in page and 'value="100"' in page and 'value="kept"' in page
    assert '<option value="recent" selected>' in page
    estimate = re.search(r'<div id="estimate".*?</div>', page, re.S).group(0)
    assert "about 222 posts match" in estimate  # the recorded posts in English
    assert not x_api.search_requests() and not Search.objects.exists()  # nothing started, nothing read


def test_the_estimates_address_opened_without_a_form_is_the_home_page(owner_client):
    response = owner_client.get(reverse("estimate") + "?mine=2&mine_after=40")
    assert response.status_code == 302 and response["Location"] == reverse("home") + "?mine=2&mine_after=40"


def test_estimate_of_a_query_x_would_refuse_says_why(owner_client, x_api):  # noqa: F811
    body = owner_client.post(reverse("estimate"), {"term": "", "source": "recent"}).content.decode()
    assert "Enter a search term" in body
    assert not x_api.requests


# --- Buttons ---------------------------------------------------------------------------------------


def test_publish_and_unpublish(owner_client, owner):
    visitor = Client()
    search = make_search(owner)
    assert visitor.get(search.get_absolute_url()).status_code == 404
    owner_client.post(reverse("search_publish", args=[search.pk]))
    search.refresh_from_db()
    assert search.is_published
    assert visitor.get(search.get_absolute_url()).status_code == 200
    owner_client.post(reverse("search_unpublish", args=[search.pk]))
    assert visitor.get(search.get_absolute_url()).status_code == 404


def test_publishing_an_unfinished_search_is_refused_with_a_reason(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING)
    response = owner_client.post(reverse("search_publish", args=[search.pk]), follow=True)
    assert "Only a search with a finished run can be published" in response.content.decode()
    search.refresh_from_db()
    assert not search.is_published


def test_run_again_requeues_a_failed_search(owner_client, owner, empty_queue, django_capture_on_commit_callbacks):
    search = make_search(owner, status=Status.FAILED, error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("search_rerun", args=[search.pk]))
    search.refresh_from_db()
    assert search.status == Status.QUEUED and search.latest_run.error == ""
    assert search.latest_run.number == 1  # the failed run resumes: it is not a new collection
    assert empty_queue.count == 1


def test_delete_asks_first_and_then_removes_the_search_and_its_files(owner_client, owner):
    search = make_search(owner)
    folder = search.results_dir
    page = owner_client.get(reverse("search_delete", args=[search.pk])).content.decode()
    assert "This cannot be undone." in page
    assert f'<form method="post" action="{reverse("search_delete", args=[search.pk])}"' in page
    assert Search.objects.filter(pk=search.pk).exists() and folder.is_dir()
    response = owner_client.post(reverse("search_delete", args=[search.pk]), follow=True)
    assert not Search.objects.filter(pk=search.pk).exists()
    assert not folder.exists()
    assert f"Deleted {search}" in response.content.decode()


# --- Compare -------------------------------------------------------------------------------------


def _compare_pair(owner):
    first = make_search(owner, term="first")
    second = make_search(owner, term="second")
    write_csv(
        second.results_dir / "count-hashtags.csv", ["hashtag", "count"], [("energy", 5), ("heat", 4), ("climate", 1)]
    )
    return first, second


def test_compare_puts_counts_side_by_side_with_their_overlap(owner_client, owner):
    first, second = _compare_pair(owner)
    page = owner_client.get(reverse("compare") + f"?ids={first.pk},{second.pk}").content.decode()
    section = re.search(r'<section class="panel" id="compare-hashtags".*?</section>', page, re.S).group(0)
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td class="num[^"]*">([^<]*)</td><td class="num[^"]*">([^<]*)</td></tr>',
        section,
    )
    # Totals: energy 2+5=7, climate 3+1=4, heat 0+4=4 (ties by name).
    assert rows == [("#energy", "2", "5"), ("#climate", "3", "1"), ("#heat", "0", "4")]
    # {climate, energy} and {energy, heat, climate}: 2 shared of 3, Jaccard 0.67.
    assert "2 of 3 hashtags appear in every search" in section and "Jaccard 0.67" in section


def _over_time_rows(page: str) -> list[list[str]]:
    section = re.search(r'<section class="panel" id="compare-over-time".*?</section>', page, re.S).group(0)
    body = re.search(r"<tbody>(.*?)</tbody>", section, re.S).group(1)
    return [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def _ten_minutes(when: str) -> str:
    moment = datetime.fromisoformat(when)
    return moment.replace(minute=moment.minute - moment.minute % 10).strftime("%Y-%m-%d %H:%M")


def test_compare_draws_searches_of_a_size_on_one_time_axis_in_posts(owner_client, owner):
    first = make_search(owner, term="first")
    later = [(f"2{pid}", when.replace("T10:", "T11:"), *rest) for pid, when, *rest in POSTS]
    second = make_search(owner, term="second", outputs=False)
    write_outputs(second, posts=later)
    page = owner_client.get(reverse("compare") + f"?ids={first.pk},{second.pk}").content.decode()

    assert page.count('<polyline class="series-') == 2 and "Posts per 10 minutes" in page
    assert "in each 10 minutes" not in page  # the caption says it as the table does
    rows = _over_time_rows(page)
    # One grid for both, every ten minutes from the first post of either to the last of either.
    assert rows[0][0] == "2024-03-01 10:00" and rows[-1][0] == "2024-03-02 09:30"
    expected_first = Counter(_ten_minutes(when) for _, when, *_ in POSTS)
    expected_second = Counter(_ten_minutes(when) for _, when, *_ in later)
    for label, in_first, in_second in rows:
        assert (int(in_first), int(in_second)) == (expected_first[label], expected_second[label]), label


def test_compare_shows_shares_when_one_search_is_much_bigger(owner_client, owner):
    big = make_search(owner, term="big")
    small = make_search(owner, term="small", outputs=False)
    write_outputs(small, posts=POSTS[:1])
    page = owner_client.get(reverse("compare") + f"?ids={big.pk},{small.pk}").content.decode()

    assert "% of its posts per 10 minutes" in page and "each line is its share" in page
    rows = {row[0]: row[1:] for row in _over_time_rows(page)}
    assert rows["2024-03-01 10:00"] == ["1 (20.0%)", "1 (100.0%)"]
    assert rows["2024-03-02 09:30"] == ["1 (20.0%)", "0 (0.0%)"]


def test_compare_cuts_a_long_query_in_its_headers_and_keeps_it_whole_on_hover(owner_client, owner):
    term = "x" * 2000
    first = make_search(owner, term=term)
    second = make_search(owner, term="second")
    page = owner_client.get(reverse("compare") + f"?ids={first.pk},{second.pk}").content.decode()
    assert f">#{first.pk} {'x' * 70}" in page and f">#{first.pk} {'x' * 100}" not in page
    assert f'title="#{first.pk} {term}"' in page


def test_compare_takes_the_form_s_repeated_ids_too(owner_client, owner):
    first, second = _compare_pair(owner)
    page = owner_client.get(reverse("compare"), {"ids": [first.pk, second.pk], "top": 1}).content.decode()
    section = re.search(r'<section class="panel" id="compare-hashtags".*?</section>', page, re.S).group(0)
    assert section.count('<th scope="row">') == 1


def test_compare_refuses_searches_the_visitor_cannot_see(owner_client, owner, other_user):
    first, _ = _compare_pair(owner)
    hidden = make_search(other_user, term="bob's private")
    page = owner_client.get(reverse("compare") + f"?ids={first.pk},{hidden.pk}").content.decode()
    assert f"Search #{hidden.pk} is not one you can compare" in page
    assert "bob&#x27;s private" not in page and "compare-hashtags" not in page


def test_compare_needs_two_searches(owner_client, owner):
    first, _ = _compare_pair(owner)
    page = owner_client.get(reverse("compare") + f"?ids={first.pk}").content.decode()
    assert "Pick between 2 and 6 searches to compare (you picked 1)." in page


def test_compare_picker_lists_only_finished_visible_searches(client, owner, other_user):
    make_search(owner, term="alice shared", published=True)
    make_search(owner, term="alice private")
    make_search(other_user, term="bob running", status=Status.RUNNING, published=True)
    page = client.get(reverse("compare")).content.decode()
    assert "alice shared" in page
    assert "alice private" not in page and "bob running" not in page


# --- Feed and robots.txt ------------------------------------------------------------------------------


def test_feed_lists_published_searches_only_with_markup_escaped(client, owner):
    make_search(owner, term="<script>alert(1)</script> climate", published=True)
    make_search(owner, term="secret plans")
    response = client.get(reverse("feed"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = response.content.decode()
    assert "secret plans" not in feed
    assert "<script>" not in feed
    # The title is text (escaped once); the summary is HTML for feed readers (escaped twice).
    assert "&lt;script&gt;alert(1)&lt;/script&gt; climate</title>" in feed
    assert '<summary type="html">Bundled sample (synthetic): &amp;lt;script&amp;gt;alert(1)' in feed


def test_robots_txt_keeps_crawlers_out_of_files_and_admin(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "Disallow: /searches/*/files/" in text and "Disallow: /admin/" in text


def test_home_filters_and_pages_the_lists(owner_client, owner, other_user):
    for i in range(30):
        make_search(owner, term=f"flood {i}", outputs=False)
    make_search(owner, term="drought", title="Dry summer 2026", outputs=False)
    make_search(other_user, term="flood elsewhere", published=True, outputs=False)

    page = owner_client.get(reverse("home")).content.decode()
    assert page.count('class="search-row"') == 25 + 1  # a page of mine, and the published one
    assert "Page 1 of 2 · 31 searches" in page and 'rel="next"' in page

    second = owner_client.get(reverse("home"), {"mine": 2}).content.decode()
    assert second.count('class="search-row"') == 6 + 1 and "Page 2 of 2" in second

    found = owner_client.get(reverse("home"), {"q": "dry SUMMER"}).content.decode()
    assert "Dry summer 2026" in found and "flood 3" not in found
    assert "Nothing published yet" not in found and "None matches." in found
    # The filter is text, shown escaped.
    markup = owner_client.get(reverse("home"), {"q": "<b>x</b>"}).content.decode()
    assert "<b>x</b>" not in markup and "&lt;b&gt;x&lt;/b&gt;" in markup


def test_a_list_longer_than_the_count_says_more_than_until_its_last_page(owner_client, owner, monkeypatch):
    """Counting stops at paging.COUNT_UP_TO (1,000; 30 here): past it a page says "more than",
    and the last page, which knows its place, says exactly how many."""
    monkeypatch.setattr(paging, "COUNT_UP_TO", 30)
    for i in range(2 * paging.PAGE_SIZE + 3):
        make_search(owner, term=f"flood {i}", outputs=False)

    first = owner_client.get(reverse("home")).content.decode()
    assert "Page 1 · more than 30 searches" in first and 'rel="next"' in first and "Page 1 of" not in first
    last = owner_client.get(reverse("home"), {"mine": 3}).content.decode()
    assert "Page 3 of 3 · 53 searches" in last and 'rel="next"' not in last
    assert last.count('class="search-row"') == 3 and "flood 0<" in last  # the oldest
    # A page past the end (an old link, a typed number) shows the last one; nonsense shows the first.
    for asked, shown in (("99", "Page 3 of 3"), ("9" * 40, "Page 3 of 3"), ("-2", "Page 1 ·"), ("two", "Page 1 ·")):
        assert shown in owner_client.get(reverse("home"), {"mine": asked}).content.decode(), asked


def _older_link(page: str) -> str | None:
    links = older_links(page)
    return links[0] if links else None


def test_older_links_walk_a_long_list_once_even_when_searches_start_meanwhile(owner_client, owner, monkeypatch):
    """The "Older" link starts the next page after the last row shown (not at an offset): walking
    the links shows every search once, newest first, however many start while one reads."""
    monkeypatch.setattr(paging, "COUNT_UP_TO", 30)
    for i in range(2 * paging.PAGE_SIZE + 3):
        make_search(owner, term=f"flood {i}", outputs=False)

    seen, link, pages = [], "", 0
    while link is not None:
        page = owner_client.get(reverse("home") + "?" + link).content.decode()
        pages += 1
        seen += re.findall(r'class="search-name"[^>]*>#\d+ (flood \d+)<', page)
        if pages == 1:
            make_search(owner, term="started meanwhile", outputs=False)  # an offset would show flood 27 twice
        link = _older_link(page)
        assert pages < 5
    assert seen == [f"flood {i}" for i in range(52, -1, -1)]
    assert pages == 3 and "Page 3 ·" in page and "← Newer" in page and "mine_after" not in page
    # A link from a search that is gone (or was never in this list) goes by the page number instead.
    gone = Search.objects.get(term="flood 27").pk
    Search.objects.filter(pk=gone).delete()
    again = owner_client.get(reverse("home"), {"mine": 2, "mine_after": gone}).content.decode()
    assert "Page 2 ·" in again and again.count('class="search-row"') == paging.PAGE_SIZE
    for nonsense in ("x", "-1", "9" * 30):
        assert "Page 2 ·" in owner_client.get(reverse("home"), {"mine": 2, "mine_after": nonsense}).content.decode()


def test_older_links_that_no_longer_fit_the_list_still_show_a_sensible_page(owner_client, owner, other_user):
    for i in range(60):
        make_search(owner, term=f"flood {i}", outputs=False)
    for i in range(30):
        make_search(other_user, term=f"shared {i}", published=True, outputs=False)
    home = reverse("home")
    third = _older_link(owner_client.get(home, {"mine": 2}).content.decode())
    assert third.startswith("mine=3&mine_after=")
    # Searches deleted since: the link's page number is more than the list now has.
    Search.objects.filter(term__in=[f"flood {i}" for i in range(30, 60)]).delete()
    page = owner_client.get(f"{home}?{third}").content.decode()
    assert "Page 2 of 2 · 30 searches" in page and page.count("flood ") >= 5
    # A link without a page number, or with an id no one could mean, still shows searches.
    oldest = Search.objects.get(term="flood 0").pk
    assert "None yet" not in owner_client.get(home, {"mine_after": oldest}).content.decode()
    for nonsense in ("²", "１２", "0x1f"):
        response = owner_client.get(home, {"mine": 2, "mine_after": nonsense})
        assert response.status_code == 200 and "Page 2 of 2" in response.content.decode(), nonsense
    # Paging one list keeps where the other one is, link and all.
    published_link = older_links(owner_client.get(home).content.decode())[-1]
    page = owner_client.get(f"{home}?{published_link}").content.decode()
    assert "published=2&amp;published_after=" in page and "Page 2 of 2 · 30 searches" in page
    own_link = _older_link(page)
    assert own_link.startswith("mine=2&mine_after=") and "&published=2&published_after=" in own_link


def test_a_list_row_writes_numbers_and_times_as_django_would(owner_client, owner, settings):
    """The row's own number and minute filters (cheaper than intcomma and date) write the same text."""
    settings.TIME_ZONE = "Asia/Kolkata"  # +05:30: the time shown is the site's, not UTC
    created = datetime(2026, 3, 1, 23, 50, tzinfo=UTC)
    make_search(owner, term="counted", num_posts=1234567, created=created, outputs=False)
    page = owner_client.get(reverse("home")).content.decode()
    shown = Template('{% load humanize %}{{ n|intcomma }} · {{ t|date:"Y-m-d H:i" }}').render(
        Context({"n": 1234567, "t": created})
    )
    assert shown == "1,234,567 · 2026-03-02 05:20"
    assert "1,234,567 posts" in page and "· 2026-03-02 05:20" in page


def test_the_owner_changes_title_and_notes_but_never_the_query(owner_client, owner):
    client = Client()  # a visitor
    search = make_search(owner, published=True)
    page = owner_client.get(search.get_absolute_url()).content.decode()
    assert f'action="{reverse("search_describe", args=[search.pk])}"' in page
    owner_client.post(
        reverse("search_describe", args=[search.pk]),
        {"title": "Heat wave, March", "notes": "For the <b>archive</b> team.", "term": "brexit"},
    )
    search.refresh_from_db()
    assert (search.title, search.notes, search.term) == ("Heat wave, March", "For the <b>archive</b> team.", "climate")
    assert "the &lt;b&gt;archive&lt;/b&gt; team" in owner_client.get(search.get_absolute_url()).content.decode()
    public = client.get(search.get_absolute_url()).content.decode()
    assert f">#{search.pk} Heat wave, March</h1>" in public and "team" not in public  # the notes are the owner's
    assert f'action="/searches/{search.pk}/describe/"' not in public
    assert client.post(reverse("search_describe", args=[search.pk]), {"title": "x"}).status_code in (302, 404)
    search.refresh_from_db()
    assert search.title == "Heat wave, March"  # a visitor changes nothing


def test_the_running_step_says_where_it_is_now_as_the_line_above_the_table_does(owner_client, owner):
    """Progress events are kept every quarter of a step; between them the step's row showed the
    last one ("25%: 1,000 posts") under a status line that already said 2,000."""
    search = make_search(owner, status=Status.RUNNING)
    run = search.latest_run
    start, end = step_range("SummarisePosts", False)
    TaskEvent.objects.create(run=run, task_family="CollectPosts", task_id="c", event=EventKind.START)
    TaskEvent.objects.create(run=run, task_family="CollectPosts", task_id="c", event=EventKind.SUCCESS)
    TaskEvent.objects.create(run=run, task_family="SummarisePosts", task_id="s", event=EventKind.START)
    TaskEvent.objects.create(
        run=run,
        task_family="SummarisePosts",
        task_id="s",
        event=EventKind.PROGRESS,
        message="25% of this step: Counting: 1,000 posts so far",
    )
    SearchRun.objects.filter(pk=run.pk).update(
        progress=start + (end - start) * 0.6, step="Counting: 2,000 posts so far"
    )

    page = owner_client.get(reverse("search_status", args=[search.pk])).content.decode()

    assert page.count("Counting: 2,000 posts so far") == 2, "the status line and the step's row"
    assert 'running<span class="meta"> — 60% of this step: Counting: 2,000 posts so far' in page
    assert "1,000 posts" not in page


def test_a_step_cut_short_and_run_again_says_stopped_not_how_the_run_ended(owner_client, owner):
    """Cancelled while counting, then run again to the end: the first attempt never finished."""
    search = make_search(owner)
    run = search.latest_run
    for task_id, event in (("first", EventKind.START), ("again", EventKind.START), ("again", EventKind.SUCCESS)):
        TaskEvent.objects.create(run=run, task_family="SummarisePosts", task_id=task_id, event=event)

    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()

    rows = re.findall(r'<tr class="task-(\w+)">\s*<th scope="row">SummarisePosts</th>', page)
    assert rows == ["stopped", "finished"]


def test_a_cancelled_step_says_how_long_it_ran_and_stays_stopped_while_run_again_waits(owner_client, owner):
    search = make_search(owner, status=Status.RUNNING, progress=40.0)
    run = search.latest_run
    started = timezone.now() - timedelta(seconds=95)
    TaskEvent.objects.create(run=run, task_family="SummarisePosts", task_id="t", event=EventKind.START)
    TaskEvent.objects.filter(run=run).update(created=started)
    TaskEvent.objects.create(
        run=run, task_family="SummarisePosts", event=EventKind.PROGRESS, message="60% of this step"
    )
    run.runs().cancel()

    def summarise_row() -> str:
        page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
        return re.search(r'<tr class="task-\w+">\s*<th scope="row">SummarisePosts</th>.*?</tr>', page, re.S).group(0)

    cancelled = summarise_row()
    assert 'class="task-cancelled"' in cancelled and "1 min 35 s" in cancelled.replace("\xa0", " ")
    services.rerun_search(Search.objects.with_runs().get(pk=search.pk), enqueue=False)  # queued again
    waiting = summarise_row()
    assert 'class="task-stopped"' in waiting and "60% of this step" not in waiting


def test_a_form_refused_for_another_field_says_to_choose_the_file_again(owner_client, real_data, empty_queue):
    """What the tester found: a term error brought the form back with "No file chosen", and nothing
    said the file had to be chosen again (the estimate said so, the form did not)."""
    again = "Choose the file again: the form came back to be corrected"
    archive = (real_data / "twarc2-flat.jsonl").read_bytes()

    def start(**fields) -> str:
        data = {"source": "archive", **fields}
        return owner_client.post(reverse("home"), data).content.decode()

    refused = start(term="obama (", archive=SimpleUploadedFile("flat.jsonl", archive))
    assert "A &#x27;(&#x27; is not closed" in refused and again in refused
    assert again not in start(term="obama (")  # no file was chosen: nothing to choose again
    bad_file = start(term="obama", archive=SimpleUploadedFile("empty.jsonl", b""))
    assert again not in bad_file  # the file itself was refused, and its own error says why
    assert not Search.objects.exists()


def test_a_cancel_and_a_run_again_stay_in_the_runs_history(owner_client, owner, empty_queue):
    """What the tester found: once run again, nothing said the run had been cancelled, or when."""
    search = make_search(owner, status=Status.RUNNING, progress=40.0)
    run = search.latest_run
    SearchRun.objects.filter(pk=run.pk).update(step="Counting: 10,000 posts so far")
    TaskEvent.objects.create(run=run, task_family="SummarisePosts", task_id="t", event=EventKind.START)

    services.cancel_search(Search.objects.with_runs().get(pk=search.pk))
    cancelled_at = SearchRun.objects.get(pk=run.pk).finished
    services.rerun_search(Search.objects.with_runs().get(pk=search.pk), enqueue=False)

    page = owner_client.get(reverse("search_detail", args=[search.pk])).content.decode()
    notes = re.search(r'<ul class="notes">(.*?)</ul>', page, re.S).group(1)
    assert "(Cancel): Cancelled at “Counting: 10,000 posts so far” (40%)." in html.unescape(notes)
    when = timezone.localtime(cancelled_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f"(Run again): Resumed: the run was cancelled at {when}" in html.unescape(notes)


def test_a_search_that_matched_nothing_says_so_above_its_empty_sections(owner_client, owner, data_dir):
    search = Search.objects.create(owner=owner, term="zqxj", source=Source.SAMPLE)
    search.start_run()
    run = services.execute_search(search)
    assert run.status == Status.FINISHED and run.num_posts == 0

    page = owner_client.get(search.get_absolute_url()).content.decode()

    assert "No post matched <q>zqxj</q> among the 3,000 posts read, so every section below is empty." in page
    assert "Check the query's words and operators, then start a new search." in page
    matched = make_search(owner)  # POSTS, the other searches of these tests
    assert "No post matched" not in owner_client.get(matched.get_absolute_url()).content.decode()
    # A visitor of a published one is told what it holds, not what to do about it.
    services.publish_search(Search.objects.get(pk=search.pk))
    visitor = Client().get(search.get_absolute_url()).content.decode()
    assert "No post matched <q>zqxj</q>" in visitor and "start a new search" not in visitor


def test_a_new_schedule_counts_from_now_and_its_former_slot_is_dropped(owner_client, owner, empty_queue):
    search = make_search(owner, source=Source.RECENT)
    url = reverse("search_schedule", args=[search.pk])
    scheduled = empty_queue.scheduled_job_registry

    owner_client.post(url, {"refresh_every": "168"})
    weekly = Search.objects.get(pk=search.pk).next_refresh_at
    owner_client.post(url, {"refresh_every": "1"})

    hourly = Search.objects.get(pk=search.pk).next_refresh_at
    assert hourly - weekly < -timedelta(days=6), "every hour is due within the hour, not a week away"
    assert scheduled.get_job_ids() == [f"refresh-{search.pk}-{hourly:%Y%m%dT%H%M%S}"]
    page = owner_client.get(search.get_absolute_url()).content.decode()
    assert f"Next: {timezone.localtime(hourly):%Y-%m-%d %H:%M}" in page

    # Saving the same interval again keeps the slot; an archive search has no schedule to change.
    owner_client.post(url, {"refresh_every": "1"})
    assert Search.objects.get(pk=search.pk).next_refresh_at == hourly
    archive = make_search(owner, source=Source.ARCHIVE, term="x")
    answer = owner_client.post(reverse("search_schedule", args=[archive.pk]), {"refresh_every": ""}, follow=True)
    assert "Only a live X search can collect new posts on a schedule." in answer.content.decode()


@pytest.mark.parametrize(
    ("source", "kind", "asks_x"),
    [
        ("ids", "collect", True),
        ("recent", "collect", True),
        ("archive", "recheck", True),
        ("archive", "collect", False),
    ],
)
def test_a_run_whose_first_step_asks_x_weighs_it_as_most_of_the_bar(owner_client, owner, source, kind, asks_x):
    """An id lookup or a recheck was weighed as an archive's copy: 10% of the bar, so the paid
    lookups sat at 2-8% while most of the work was done."""
    from pipeline.tasks import CollectPosts
    from searches.models import Source

    search = make_search(owner, status=Status.RUNNING, source=Source(source), count=100 if source == "recent" else None)
    run = search.latest_run
    SearchRun.objects.filter(pk=run.pk).update(kind=kind)
    task = CollectPosts(run_id=run.pk, folder=run.folder, claim="c")
    assert task.is_live is asks_x  # the weights its progress reports are written with
    start, end = step_range("CollectPosts", asks_x)
    family = "CheckAvailability" if kind == "recheck" else "CollectPosts"
    TaskEvent.objects.create(run=run, task_family=family, task_id="c", event=EventKind.START)
    SearchRun.objects.filter(pk=run.pk).update(progress=start + (end - start) * 0.5, step="Looking up ids on X")

    page = owner_client.get(reverse("search_status", args=[search.pk])).content.decode()

    assert "50% of this step" in page
