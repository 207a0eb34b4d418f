"""Every kind of page, checked in Chromium by axe-core (tests/vendor/axe.min.js) at desktop and
phone width: labels, names, roles, headings, contrast, keyboard reach. A rule axe finds broken on
any page fails the test with the page, the rule and where.

The searches are made by tests.web_helpers (hand-made outputs); the summary's numbers are theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from searches.models import Status
from tests.browser_helpers import Watched, log_in
from tests.web_helpers import add_events, make_search

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).resolve().parent / "vendor" / "axe.min.js").read_text()
WIDTHS = (1280, 390)


def violations(page) -> list[str]:
    """axe-core's findings on the page as it is now, one line each."""
    page.add_script_tag(content=AXE)
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{rule['id']} ({rule['impact']}): {rule['help']} at {[node['target'] for node in rule['nodes'][:3]]}"
        for rule in found
    ]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_kind_of_page_passes_axe_core(browser, live_server, owner, width):
    finished = make_search(owner, term="heat wave")
    add_events(finished, ("CollectPosts", "SummarisePosts", "PackageOutputs"))
    other = make_search(owner, term="drought")
    live = make_search(owner, term="#kpop", source="recent", count=100)
    running = make_search(owner, term="flood", status=Status.RUNNING, step="Counting: 2,000 posts", progress=40.0)
    add_events(running, ("CollectPosts", "SummarisePosts"))
    visitor = Watched(browser, width=width, height=900)
    person = Watched(browser, width=width, height=900)
    try:
        pages = {}
        for name, url in (("home, logged out", reverse("home")), ("log-in", reverse("login"))):
            visitor.page.goto(live_server.url + url)
            pages[name] = violations(visitor.page)

        page = person.page
        log_in(page, live_server, "alice", "alice-password-1")
        for name, url in (
            ("home with the form", reverse("home")),
            ("a running search", running.get_absolute_url()),
            ("a summary", reverse("search_summary", args=[finished.pk])),
            ("compare", reverse("compare") + f"?ids={finished.pk},{other.pk}"),
            ("compare's picker", reverse("compare")),
            ("delete?", reverse("search_delete", args=[finished.pk])),
            ("collect again, at a cost?", reverse("search_collect_again", args=[live.pk])),
            ("not found", "/no-such-page/"),
        ):
            page.goto(live_server.url + url)
            pages[name] = violations(page)
        # A finished search, with the message its publishing leaves.
        page.goto(live_server.url + finished.get_absolute_url())
        page.click("button:has-text('Publish')")
        page.wait_for_selector(".message-success")
        pages["a finished search, just published"] = violations(page)
        # The form refused in place (htmx), its errors shown.
        page.goto(live_server.url + reverse("home"))
        page.select_option("#id_source", "archive")
        page.click("button.primary:has-text('Start')")
        page.wait_for_selector("#id_archive-errors")
        pages["the form, refused"] = violations(page)
    finally:
        visitor.close()
        person.close()

    found = {name: rules for name, rules in pages.items() if rules}
    assert found == {}, "\n".join(f"{name}: {rule}" for name, rules in found.items() for rule in rules)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_admin_pages_pass_axe_core(browser, live_server, owner, staff_user, width):
    """The admin is where searches are managed: its pages, as dnflow's models and actions shape them."""
    finished = make_search(owner, term="heat wave")
    add_events(finished, ("CollectPosts", "SummarisePosts", "PackageOutputs"))
    make_search(owner, term="flood", status=Status.RUNNING, step="Counting: 2,000 posts", progress=40.0)
    visitor = Watched(browser, width=width, height=900)
    try:
        page = visitor.page
        pages = {}
        page.goto(live_server.url + reverse("admin:login"))
        pages["admin log-in"] = violations(page)
        page.fill("#id_username", "carol")
        page.fill("#id_password", "carol-password-1")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}{reverse('admin:index')}")
        run = finished.latest_run
        for name, url in (
            ("admin index", reverse("admin:index")),
            ("searches", reverse("admin:searches_search_changelist")),
            ("a search", reverse("admin:searches_search_change", args=[finished.pk])),
            ("add a search", reverse("admin:searches_search_add")),
            ("runs", reverse("admin:searches_searchrun_changelist")),
            ("a run", reverse("admin:searches_searchrun_change", args=[run.pk])),
            ("delete a search?", reverse("admin:searches_search_delete", args=[finished.pk])),
        ):
            page.goto(live_server.url + url)
            pages[name] = violations(page)
        # A bulk action's confirmation, dnflow's own page.
        page.goto(live_server.url + reverse("admin:searches_search_changelist"))
        page.check(f"input[name=_selected_action][value='{finished.pk}']")
        page.select_option("select[name=action]", "delete_with_files")
        page.click("button[name=index]")
        page.wait_for_selector("input[name=delete][value=yes]", state="attached")
        pages["bulk delete?"] = violations(page)
    finally:
        visitor.close()

    found = {name: rules for name, rules in pages.items() if rules}
    assert found == {}, "\n".join(f"{name}: {rule}" for name, rules in found.items() for rule in rules)
