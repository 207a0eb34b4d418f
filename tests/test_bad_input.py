"""Bad input, case by case, through each door a person uses: the command line (`manage.py
run_search` in a real process), the web form, and the JSON API where it takes input.

Each case ends in a clear refusal that names the problem and the fix: a non-zero exit code (2 for
input refused before anything runs, 1 for a search that ran and failed), an error on the form's
field with nothing saved, or a 400 naming the allowed values. An archive whose problem shows only
when the workflow reads it ends as a FAILED search with the reason, and its output folder holds
nothing that looks complete (no summary.json, no package, no count files).

Already covered elsewhere, not repeated here: the API's `?limit=` (tests/test_api.py::
test_a_bad_limit_is_a_400_that_says_what_is_allowed), and on the web form an unknown language,
missing credentials, reversed dates and count 0 (tests/test_pages.py::
test_refused_searches_show_the_reason_on_the_field).
"""

from __future__ import annotations

import html

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from searches import services
from searches.models import Search, Source, Status

from .hardening_helpers import BAD_ARCHIVES, assert_no_complete_outputs, run_cli
from .web_helpers import field_errors
from .x_emulator import XApiEmulator

pytestmark = pytest.mark.django_db(transaction=True)

BAD_INPUT, FAILED = 2, 1


@pytest.fixture(autouse=True)
def queue(empty_queue):
    return empty_queue


def shown(page: str) -> str:
    """A page's text as a person reads it (entities decoded), for checking messages."""
    return html.unescape(page)


# --- archives: refused before anything runs, or by the workflow (the search ends FAILED) ----------

# What only reading the whole archive shows; everything else is refused on the archive's first
# bytes, when the search is asked for (pipeline.formats.check_archive_start).
FOUND_LATE = {"a line over 10 MB"}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_a_bad_archive_on_the_command_line_is_refused_with_the_reason(case, tmp_path, data_dir):
    name, make, says = BAD_ARCHIVES[case]
    archive = tmp_path / name
    archive.write_bytes(make())

    done = run_cli(data_dir, "--archive", str(archive))

    for words in says:
        assert words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    if case not in FOUND_LATE:
        assert done.returncode == BAD_INPUT, done.stderr
        assert not Search.objects.exists()  # refused before anything was saved or run
        return
    assert done.returncode == FAILED, done.stderr
    run = Search.objects.get().latest_run
    assert run.status == Status.FAILED
    assert all(words in run.error for words in says), run.error
    assert_no_complete_outputs(run.folder_path)


@pytest.mark.parametrize("case", [c for c in BAD_ARCHIVES if c != "empty"])
def test_a_bad_archive_uploaded_on_the_form_is_refused_there_or_fails_with_the_reason(case, owner_client, data_dir):
    name, make, says = BAD_ARCHIVES[case]
    upload = SimpleUploadedFile(name, make())

    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": upload})
    if case not in FOUND_LATE:
        assert response.status_code == 200
        assert all(words in field_errors(response.content.decode(), "archive") for words in says)
        assert not Search.objects.exists()
        assert not (data_dir / "uploads").exists() or not list((data_dir / "uploads").iterdir())
        return
    assert response.status_code == 302
    run = services.execute_search(Search.objects.get())  # what the worker does with the job

    assert run.status == Status.FAILED
    assert all(words in run.error for words in says), run.error
    page = shown(owner_client.get(run.search.get_absolute_url()).content.decode())
    assert "Failed" in page
    assert says[0] in page and says[1] in page
    assert_no_complete_outputs(run.folder_path)


def test_an_empty_upload_is_refused_on_the_form_and_nothing_is_saved(owner_client, data_dir):
    upload = SimpleUploadedFile("empty.jsonl", b"")
    response = owner_client.post(reverse("home"), {"term": "", "source": "archive", "archive": upload})
    assert response.status_code == 200
    assert "The submitted file is empty." in field_errors(response.content.decode(), "archive")
    assert not Search.objects.exists()
    assert not (data_dir / "uploads").exists() or not list((data_dir / "uploads").iterdir())


# --- parameters: refused before anything is saved or any quota spent --------------------------------

LONG_QUERY = "climate " * 64 + "x"  # 513 characters: one more than recent search allows
# (case, CLI arguments, extra environment, words the CLI must print)
PARAMETER_CASES = {
    "empty query": (["", "--source", "recent"], {"X_BEARER_TOKEN": "t"}, ["Enter a search term"]),
    "over-long query": (
        [LONG_QUERY, "--source", "recent"],
        {"X_BEARER_TOKEN": "t"},
        ["The query is 513 characters", "at most 512", "Shorten it"],
    ),
    "query over any X limit": (
        ["y" * 4097, "--source", "sample"],
        {},
        ["The query is 4097 characters", "the most any X query can have is 4,096"],
    ),
    "a quote not closed": (['"talks resume', "--source", "sample"], {}, ["quote is not closed"]),
    "an operator archives cannot answer": (["climate place:paris", "--source", "sample"], {}, ["place:"]),
    "count 0": (["climate", "--source", "sample", "--count", "0"], {}, ["--count: Ask for at least 1 post (got 0)"]),
    "negative count": (["climate", "--source", "sample", "--count", "-5"], {}, ["--count: Ask for at least 1 post"]),
    "huge count": (
        ["climate", "--source", "recent", "--count", "1000000000000"],
        {"X_BEARER_TOKEN": "t"},
        ["--count: Ask for between 1 and 100,000 posts", "DNFLOW_MAX_COUNT"],
    ),
    "count beyond any integer": (
        ["climate", "--source", "sample", "--count", "9" * 30],
        {},
        ["--count", "less than or equal to"],
    ),
    "unknown lang": (
        ["climate", "--source", "sample", "--lang", "klingon"],
        {},
        ["--lang: Unknown language code 'klingon'", "such as en, fr or ja"],
    ),
    "reversed dates": (
        ["climate", "--source", "sample", "--start", "2024-05-02", "--end", "2024-05-01"],
        {},
        ["--end: The end time must come after the start time."],
    ),
    "a recent search starting before its 7 days": (
        ["climate", "--source", "recent", "--start", "2020-01-01"],
        {"X_BEARER_TOKEN": "t"},
        ["--start: A recent search covers only the last 7 days", "or a full-archive search for older posts"],
    ),
    "missing bearer token": (
        ["climate", "--source", "recent"],
        {"X_BEARER_TOKEN": ""},
        ["No X API credentials: set X_BEARER_TOKEN"],
    ),
}


@pytest.mark.parametrize("case", list(PARAMETER_CASES))
def test_bad_parameters_on_the_command_line_exit_2_and_save_nothing(case, data_dir):
    args, env, says = PARAMETER_CASES[case]

    done = run_cli(data_dir, *args, **env)

    assert done.returncode == BAD_INPUT, (done.stdout, done.stderr)
    for words in says:
        assert words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not Search.objects.exists()


# (case, form data, the field that says why, words it must say); the token is set for these.
FORM_CASES = {
    "empty query": ({"term": "", "source": "recent"}, "term", "Enter a search term"),
    "over-long query": ({"term": LONG_QUERY, "source": "recent"}, "term", "The query is 513 characters"),
    "query over any X limit": ({"term": "y" * 4097, "source": "sample"}, "term", "at most 4096 characters"),
    "a quote not closed": ({"term": '"talks resume', "source": "sample"}, "term", "quote is not closed"),
    "parentheses not closed": ({"term": "climate (((", "source": "sample"}, "term", "3 '(' are not closed"),
    "a recent search starting before its 7 days": (
        {"term": "climate", "source": "recent", "start_time": "2020-01-01T00:00"},
        "start_time",
        "A recent search covers only the last 7 days",
    ),
    "negative count": ({"term": "c", "source": "sample", "count": "-5"}, "count", "greater than or equal to 1"),
    "huge count": ({"term": "c", "source": "recent", "count": "10" + "0" * 12}, "count", "between 1 and 100,000"),
    "count beyond any integer": ({"term": "c", "source": "sample", "count": "9" * 30}, "count", "less than or equal"),
    "count that is not a number": ({"term": "c", "source": "sample", "count": "many"}, "count", "whole number"),
    "date that is not a date": ({"term": "c", "source": "sample", "start_time": "soon"}, "start_time", "valid date"),
}


@pytest.mark.parametrize("case", list(FORM_CASES))
def test_bad_parameters_on_the_form_show_the_reason_on_the_field_and_save_nothing(case, owner_client, settings):
    settings.X_BEARER_TOKEN = "a-token-for-validation-only"
    data, field, says = FORM_CASES[case]

    response = owner_client.post(reverse("home"), data)

    assert response.status_code == 200
    assert says in field_errors(response.content.decode(), field), response.content.decode()
    assert not Search.objects.exists()


# --- a wrong bearer token: X answers 401, the search fails in plain words -------------------------

WRONG_TOKEN = "wrong-token-5f0c1e2d"


@pytest.fixture
def x_api_with_another_token(settings):
    emulator = XApiEmulator(token="the-right-token-only-x-knows")
    settings.DNFLOW_X_API_URL = emulator.url
    settings.X_BEARER_TOKEN = WRONG_TOKEN
    try:
        yield emulator
    finally:
        emulator.stop()


def _says_the_token_is_wrong(text: str) -> None:
    assert "did not accept the bearer token (HTTP 401 Unauthorized)" in text, text
    assert "X_BEARER_TOKEN" in text and "developer portal" in text
    assert WRONG_TOKEN not in text


def test_a_wrong_token_on_the_command_line_fails_the_search_in_plain_words(x_api_with_another_token, data_dir):
    done = run_cli(
        data_dir,
        "#kpop",
        "--source",
        "recent",
        "--count",
        "20",
        X_BEARER_TOKEN=WRONG_TOKEN,
        DNFLOW_X_API_URL=x_api_with_another_token.url,
    )

    assert done.returncode == FAILED
    _says_the_token_is_wrong(done.stderr)
    assert "Traceback" not in done.stderr
    run = Search.objects.get().latest_run
    assert run.status == Status.FAILED
    _says_the_token_is_wrong(run.error)
    assert [r.status for r in x_api_with_another_token.requests] == [401]  # no retrying a refusal
    assert_no_complete_outputs(run.folder_path)


def test_a_wrong_token_from_the_form_fails_the_search_and_its_page_says_why(x_api_with_another_token, owner_client):
    response = owner_client.post(reverse("home"), {"term": "#kpop", "source": "recent", "count": "20"})
    assert response.status_code == 302
    run = services.execute_search(Search.objects.get())

    assert (run.search.source, run.status) == (Source.RECENT, Status.FAILED)
    _says_the_token_is_wrong(run.error)
    _says_the_token_is_wrong(shown(owner_client.get(run.search.get_absolute_url()).content.decode()))
    assert_no_complete_outputs(run.folder_path)
