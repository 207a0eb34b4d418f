"""A search the X API would refuse is refused before anything is collected, in plain words."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from searches.models import Search, Source, Status
from searches.services import create_search

pytestmark = pytest.mark.django_db


def errors_of(**kwargs) -> dict[str, str]:
    """The messages of a refused search, each field's joined into one string."""
    before = Search.objects.count()
    with pytest.raises(ValidationError) as caught:
        create_search(enqueue=False, **kwargs)
    assert Search.objects.count() == before, "a refused search must not be saved"
    return {field: " ".join(messages) for field, messages in caught.value.message_dict.items()}


@pytest.fixture
def token(settings):
    settings.X_BEARER_TOKEN = "test-token-not-real"


def test_live_search_without_credentials_says_how_to_fix_it(settings):
    settings.X_BEARER_TOKEN = ""
    errors = errors_of(term="climate", source=Source.RECENT, count=10)
    assert "X_BEARER_TOKEN" in errors["source"]


def test_empty_query_is_refused_for_the_api(token):
    assert "Enter a search term" in errors_of(term="  ", source=Source.RECENT, count=10)["term"]


@pytest.mark.parametrize(("source", "limit"), [(Source.RECENT, 512), (Source.ALL, 1024)])
def test_query_length_limit_depends_on_the_endpoint(token, source, limit):
    assert create_search(term="a" * limit, source=source, count=10, enqueue=False).pk
    message = errors_of(term="a" * (limit + 1), source=source, count=10)["term"]
    assert f"at most {limit}" in message


@pytest.mark.parametrize("count", [0, -5, 100_001])
def test_impossible_counts_are_refused_for_the_api(token, count):
    assert "between 1 and 100,000" in errors_of(term="climate", source=Source.RECENT, count=count)["count"]


def test_the_count_ceiling_is_a_setting(token, settings):
    settings.DNFLOW_MAX_COUNT = 50
    assert "between 1 and 50" in errors_of(term="climate", source=Source.RECENT, count=51)["count"]


def test_archives_take_everything_when_no_count_is_given(tmp_path):
    archive = tmp_path / "posts.jsonl"
    archive.write_text("{}\n")
    search = create_search(source=Source.ARCHIVE, archive_path=str(archive), enqueue=False)
    assert search.count is None
    assert search.status == Status.QUEUED


def test_missing_archive_file_is_named(tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert str(missing) in errors_of(source=Source.ARCHIVE, archive_path=str(missing))["archive_path"]


def test_unknown_language_and_reversed_dates(token):
    errors = errors_of(
        term="climate",
        source=Source.RECENT,
        count=10,
        lang="klingon",
        start_time=datetime(2026, 1, 2, tzinfo=UTC),
        end_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "Unknown language code 'klingon'" in errors["lang"]
    assert "end time must come after" in errors["end_time"]


def test_a_recent_search_starting_before_its_7_days_is_refused_with_the_earliest_start(token):
    message = errors_of(term="climate", source=Source.RECENT, count=10, start_time=datetime(2020, 1, 1, tzinfo=UTC))[
        "start_time"
    ]
    earliest = timezone.now() - timedelta(days=7)
    assert message.startswith("A recent search covers only the last 7 days: the start must be on or after ")
    said = datetime.strptime(message.split("on or after ")[1][:16], "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert earliest <= said <= earliest + timedelta(minutes=1)  # the time said is one X accepts
    assert "Choose a later start, or a full-archive search for older posts." in message

    inside = timezone.now() - timedelta(days=6, hours=23)
    assert create_search(term="climate", source=Source.RECENT, count=10, start_time=inside, enqueue=False).pk
    old = datetime(2020, 1, 1, tzinfo=UTC)
    assert create_search(term="climate", source=Source.ALL, count=10, start_time=old, enqueue=False).pk


def test_a_saved_recent_search_is_not_refused_once_its_start_leaves_the_window(token):
    search = create_search(
        term="climate", source=Source.RECENT, count=10, start_time=timezone.now() - timedelta(days=1), enqueue=False
    )
    search.start_time -= timedelta(days=10)  # as if the search were ten days old: the window has moved on
    Search.objects.filter(pk=search.pk).update(start_time=search.start_time)
    search.title = "renamed in the admin"
    search.full_clean()  # the admin's change form checks the whole search again
