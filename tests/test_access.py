"""Who sees what: every page and API endpoint as the owner, staff, another user and a visitor.

A private search is a 404 for anyone but its owner and staff (never a 403: its existence must
not leak); a published one shows its summary, counts, ids and package to anyone, but the files
holding the posts' text stay with the owner and staff.
"""

import pytest
from django.core.cache import caches
from django.urls import reverse

from searches.models import Search, Status
from tests.web_helpers import make_search

pytestmark = pytest.mark.django_db


OWNER, STAFF, OTHER, ANON = "owner", "staff", "other", "anonymous"
VISITORS = (OWNER, STAFF, OTHER, ANON)
MANAGERS = {OWNER, STAFF}


def _zip(search: Search) -> str:
    return f"{search.results_run.folder}.zip"


# (name, url builder, who may see it when private, who may see it when published, success status)
PAGES = [
    ("detail", lambda s: reverse("search_detail", args=[s.pk]), MANAGERS, set(VISITORS), 200),
    ("status fragment", lambda s: reverse("search_status", args=[s.pk]), MANAGERS, set(VISITORS), 286),
    ("status row", lambda s: reverse("search_status", args=[s.pk]) + "?part=row", MANAGERS, set(VISITORS), 286),
    ("summary", lambda s: reverse("search_summary", args=[s.pk]), MANAGERS, set(VISITORS), 200),
    ("counts file", lambda s: reverse("search_file", args=[s.pk, "count-hashtags.csv"]), MANAGERS, set(VISITORS), 200),
    ("ids file", lambda s: reverse("search_file", args=[s.pk, "tweet-ids.txt"]), MANAGERS, set(VISITORS), 200),
    ("photo", lambda s: reverse("search_file", args=[s.pk, "media/AAA.jpg"]), MANAGERS, set(VISITORS), 200),
    ("package", lambda s: reverse("search_file", args=[s.pk, _zip(s)]), MANAGERS, set(VISITORS), 200),
    ("posts csv", lambda s: reverse("search_file", args=[s.pk, "tweets.csv"]), MANAGERS, MANAGERS, 200),
    ("sample csv", lambda s: reverse("search_file", args=[s.pk, "sample.csv"]), MANAGERS, MANAGERS, 200),
    ("raw posts", lambda s: reverse("search_file", args=[s.pk, "tweets.jsonl"]), MANAGERS, MANAGERS, 200),
    ("delete confirm", lambda s: reverse("search_delete", args=[s.pk]), MANAGERS, MANAGERS, 200),
    ("api detail", lambda s: reverse("api_search_detail", args=[s.pk]), MANAGERS, set(VISITORS), 200),
    ("api counts", lambda s: reverse("api_search_counts", args=[s.pk, "hashtags"]), MANAGERS, set(VISITORS), 200),
]


@pytest.fixture
def visitors(client, owner, other_user, staff_user, django_user_model):
    """A logged-in client factory per kind of visitor."""
    from django.test import Client

    users = {OWNER: owner, STAFF: staff_user, OTHER: other_user, ANON: None}

    def as_visitor(kind: str) -> Client:
        c = Client()
        if users[kind] is not None:
            c.force_login(users[kind])
        return c

    return as_visitor


@pytest.mark.parametrize("published", [False, True], ids=["private", "published"])
@pytest.mark.parametrize("name,url,private_ok,published_ok,ok_status", PAGES, ids=[p[0] for p in PAGES])
def test_every_page_answers_the_right_visitors(
    visitors, owner, published, name, url, private_ok, published_ok, ok_status
):
    search = make_search(owner, published=published)
    allowed = published_ok if published else private_ok
    for kind in VISITORS:
        response = visitors(kind).get(url(search))
        expected = ok_status if kind in allowed else 404
        assert response.status_code == expected, f"{name} as {kind}: {response.status_code}, expected {expected}"


@pytest.mark.parametrize("published", [False, True], ids=["private", "published"])
def test_pages_show_the_search_to_those_allowed_and_nothing_to_others(visitors, owner, published):
    search = make_search(owner, term="melting glaciers", published=published)
    for kind in VISITORS:
        page = visitors(kind).get(reverse("search_detail", args=[search.pk])).content.decode()
        if kind in MANAGERS or published:
            assert "melting glaciers" in page
            assert "#climate" in page  # the summary's top hashtag
        else:
            assert "melting glaciers" not in page


def test_post_text_is_shown_to_the_owner_only_even_when_published(visitors, owner):
    search = make_search(owner, published=True)
    owner_page = visitors(OWNER).get(reverse("search_summary", args=[search.pk])).content.decode()
    public_page = visitors(ANON).get(reverse("search_summary", args=[search.pk])).content.decode()
    assert "Heat records again" in owner_page
    assert "Heat records again" not in public_page
    # Who posted the most retweeted post, and when, are public, with a link to read it on X.
    assert 'href="https://x.com/ada/status/1001" rel="noopener noreferrer" target="_blank"' in public_page
    assert ">@ada</a>" in public_page
    assert ">tweets.csv<" in owner_page and ">tweets.csv<" not in public_page


def test_home_lists_own_and_published_searches_but_never_others_private_ones(visitors, owner, other_user):
    make_search(owner, term="alice private")
    make_search(owner, term="alice shared", published=True)
    make_search(other_user, term="bob private")
    pages = {kind: visitors(kind).get(reverse("home")).content.decode() for kind in VISITORS}
    assert "alice private" in pages[OWNER] and "alice shared" in pages[OWNER]
    assert "bob private" not in pages[OWNER]
    assert "alice private" not in pages[OTHER] and "alice shared" in pages[OTHER]
    assert "alice private" not in pages[ANON] and "alice shared" in pages[ANON] and "bob private" not in pages[ANON]


def test_api_list_shows_only_what_the_visitor_may_see(visitors, owner, other_user):
    private = make_search(owner, term="alice private")
    shared = make_search(owner, term="alice shared", published=True)
    bobs = make_search(other_user, term="bob private")
    url = reverse("api_search_list")

    def ids(kind):
        return {s["id"] for s in visitors(kind).get(url).json()["searches"]}

    assert ids(OWNER) == {private.pk, shared.pk}
    assert ids(OTHER) == {shared.pk, bobs.pk}
    assert ids(ANON) == {shared.pk}
    assert ids(STAFF) == {private.pk, shared.pk, bobs.pk}


def test_missing_and_private_searches_answer_alike(visitors, owner):
    search = make_search(owner)
    missing = Search.objects.order_by("-pk").first().pk + 100
    for url in ("search_detail", "api_search_detail"):
        private = visitors(OTHER).get(reverse(url, args=[search.pk]))
        absent = visitors(OTHER).get(reverse(url, args=[missing]))
        assert private.status_code == absent.status_code == 404
    assert visitors(OTHER).get(reverse("api_search_detail", args=[search.pk])).json()["error"].replace(
        str(search.pk), "N"
    ) == visitors(OTHER).get(reverse("api_search_detail", args=[missing])).json()["error"].replace(str(missing), "N")


ACTIONS = [
    "search_publish",
    "search_unpublish",
    "search_rerun",
    "search_cancel",
    "search_delete",
    "search_sample",
    "search_purge",
]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("published", [False, True], ids=["private", "published"])
def test_only_the_owner_and_staff_can_act_on_a_search(visitors, owner, action, published):
    search = make_search(owner, published=published)
    before = Search.objects.values().get(pk=search.pk)
    for kind in (OTHER, ANON):
        response = visitors(kind).post(reverse(action, args=[search.pk]), {"size": 3})
        assert response.status_code == 404, f"{action} as {kind}"
    assert Search.objects.values().get(pk=search.pk) == before, "a refused action changed nothing"


def test_actions_refuse_get(visitors, owner):
    search = make_search(owner)
    for action in ("search_publish", "search_unpublish", "search_rerun", "search_cancel", "search_sample"):
        assert visitors(OWNER).get(reverse(action, args=[search.pk])).status_code == 405


def test_staff_can_publish_someone_elses_search(visitors, owner):
    search = make_search(owner)
    response = visitors(STAFF).post(reverse("search_publish", args=[search.pk]))
    assert response.status_code == 302
    search.refresh_from_db()
    assert search.is_published


def test_actions_need_the_csrf_token(owner):
    from django.test import Client

    search = make_search(owner)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(reverse("search_publish", args=[search.pk])).status_code == 403
    search.refresh_from_db()
    assert not search.is_published


@pytest.fixture
def fresh_cache():
    caches["logins"].clear()  # the log-in brake's counts (more in tests/test_login_brake.py)
    yield
    caches["logins"].clear()


def test_login_is_refused_after_five_failures_even_with_the_right_password(client, owner, fresh_cache):
    url = reverse("login")
    for _ in range(5):
        response = client.post(url, {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    response = client.post(url, {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 200
    assert "Too many failed log-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_brake_is_per_username_and_address_and_a_success_resets_it(client, owner, other_user, fresh_cache):
    url = reverse("login")
    for _ in range(4):
        client.post(url, {"username": "alice", "password": "wrong"})
    # Another address is not slowed by alice's guesser, and another username is not either.
    for _ in range(5):
        client.post(url, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    assert client.post(url, {"username": "bob", "password": "bob-password-1"}).status_code == 302
    client.logout()
    assert client.post(url, {"username": "alice", "password": "alice-password-1"}).status_code == 302
    client.logout()
    # The success reset alice's count from this address: four more failures are not yet a block.
    for _ in range(4):
        client.post(url, {"username": "alice", "password": "wrong"})
    assert client.post(url, {"username": "alice", "password": "alice-password-1"}).status_code == 302


def test_admin_login_has_the_same_brake(client, staff_user, fresh_cache):
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "carol", "password": "wrong"})
    response = client.post(url, {"username": "carol", "password": "carol-password-1"})
    assert "Too many failed log-in attempts" in response.content.decode()


def test_running_search_status_is_200_while_it_runs(visitors, owner):
    search = make_search(owner, status=Status.RUNNING)
    assert visitors(OWNER).get(reverse("search_status", args=[search.pk])).status_code == 200


def test_a_private_search_s_404_page_says_nothing_about_it(client, owner, settings):
    settings.DEBUG = False
    search = make_search(owner, term="very secret topic")
    response = client.get(reverse("search_detail", args=[search.pk]))
    page = response.content.decode()
    assert response.status_code == 404
    assert "very secret topic" not in page
    assert "There is nothing here that you can see." in page


def test_a_package_holding_the_posts_text_stays_with_the_owner(visitors, owner):
    from tests.web_helpers import write_package

    search = make_search(owner, published=True)
    write_package(search.results_dir, ["count-hashtags.csv", "tweets.csv"])
    url = reverse("search_file", args=[search.pk, f"{search.results_run.folder}.zip"])
    assert visitors(OWNER).get(url).status_code == 200
    assert visitors(ANON).get(url).status_code == 404
    assert visitors(OTHER).get(url).status_code == 404
    public_page = visitors(ANON).get(reverse("search_summary", args=[search.pk])).content.decode()
    owner_page = visitors(OWNER).get(reverse("search_summary", args=[search.pk])).content.decode()
    assert f"{search.results_run.folder}.zip" not in public_page
    assert f"{search.results_run.folder}.zip" in owner_page
