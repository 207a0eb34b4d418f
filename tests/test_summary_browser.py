"""The summary of a real recorded collection, as its owner reads it in headless Chromium: posts
over time, the most retweeted posts, the network view, Compare, and all of it on a phone.

The posts are the real fixtures v2-pages-twarc-network.jsonl (500 posts over about half an
hour) and v1-streaming-lines.jsonl (test data only), run through the real workflow in this
process; the pages come from the live test server. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import itertools
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from pipeline.contract import RETWEETED_POSTS
from searches import services
from searches.execute import execute_run
from searches.models import Search, Source, Status
from tests.browser_helpers import Watched, log_in, shot
from tests.pipeline_helpers import archive_search
from tests.web_helpers import add_events, make_search

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
NETWORK_TIMEOUT_MS = 20_000


@pytest.fixture
def collect(settings, owner, real_data):
    """Run a real fixture through the whole workflow as `owner`'s search."""
    settings.DNFLOW_FETCH_PHOTOS = False  # photos would be asked of pbs.twimg.com

    def run(name: str, **fields):
        run = archive_search(real_data / name, started=False, **fields)
        Search.objects.filter(pk=run.search_id).update(owner=owner)
        assert execute_run(run.pk).status == Status.FINISHED
        return Search.objects.with_runs().get(pk=run.search_id)

    return run


def foreign_requests(watched: Watched, live_server) -> list[str]:
    """Requests to anything but the test server (data: and blob: URLs stay in the browser)."""
    ours = urlsplit(live_server.url).netloc
    return [
        url
        for url in watched.requests
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != ours
    ]


def no_horizontal_scroll(page) -> None:
    widths = page.evaluate("({page: document.documentElement.scrollWidth, view: document.documentElement.clientWidth})")
    if widths["page"] > widths["view"]:
        # The outermost elements that stick out, to say what to fix.
        wide = page.evaluate(
            """(view) => [...document.querySelectorAll('body *')]
                .filter((el) => el.getBoundingClientRect().right > view + 1)
                .filter((el) => !el.parentElement || el.parentElement.getBoundingClientRect().right <= view + 1)
                .slice(0, 10).map((el) => `${el.tagName.toLowerCase()}.${el.getAttribute('class') || ''}#${el.id}`)""",
            widths["view"],
        )
        pytest.fail(f"the page is {widths['page']} px wide in a {widths['view']} px window: {wide}")


def labels_whole_and_apart(chart, width: int) -> None:
    """Every tick and axis title of a time chart inside its drawing, and no two x ticks on top of
    each other (the tester saw "2021-06-122021-06-25", and a y title cut off on a phone)."""
    box = chart.bounding_box()
    for label in [*chart.locator(".tick").all(), *chart.locator(".axis-label").all()]:
        edges = label.bounding_box()
        inside = (
            box["x"] - 1 <= edges["x"]
            and edges["x"] + edges["width"] <= box["x"] + box["width"] + 1
            and box["y"] - 1 <= edges["y"]
            and edges["y"] + edges["height"] <= box["y"] + box["height"] + 1
        )
        assert inside, f"{label.text_content()!r} is cut at the chart's edge at {width} px"
    ticks = [label.bounding_box() for label in chart.locator(".axis-x .tick").all()]
    for left, right in itertools.pairwise(ticks):
        assert left["x"] + left["width"] < right["x"], f"x labels run together at {width} px"


def test_the_owner_reads_time_retweets_and_networks_of_a_real_collection(browser, live_server, owner, collect):
    search = collect("v2-pages-twarc-network.jsonl", term="blacklivesmatter")
    with search.results_dir.joinpath(RETWEETED_POSTS).open(newline="", encoding="utf-8") as handle:
        top = next(csv.DictReader(handle))
    watched = Watched(browser, width=1280, height=900)
    try:
        page = watched.page
        log_in(page, live_server, "alice", "alice-password-1")
        page.goto(live_server.url + reverse("search_summary", args=[search.pk]))

        # Posts over time: about half an hour in one-minute bars, with both axes titled and ticked.
        chart = page.locator(".timeline-chart svg")
        assert chart.locator(".bars rect").count() > 1
        assert chart.locator(".axis-x .axis-label").text_content().startswith("Time (UTC)")
        assert chart.locator(".axis-y .axis-label").text_content() == "Posts per minute"
        assert chart.locator(".axis-x .tick").count() >= 3 and chart.locator(".axis-y .tick").count() >= 2
        assert chart.bounding_box()["height"] > 100

        # Every key of the top lists is whole on the page: two sites that differ only at the end
        # (theglobalstructurenetwork.blogspot.com and .com, in this collection) looked the same.
        cut = page.evaluate(
            "[...document.querySelectorAll('.bars th')].filter((th) => th.scrollWidth > th.clientWidth + 1)"
            ".map((th) => th.textContent.trim())"
        )
        assert cut == []
        domains = page.locator("#chart-domains .bars th").all_inner_texts()
        assert "theglobalstructurenetwork.blogspot.com" in domains and "theglobalstructurenetwork.com" in domains

        # The most retweeted post: its text and its author, from the copy the archive holds.
        first = page.locator("#retweets ol.retweets > li").first
        assert top["user"] and top["text"]
        assert top["user"] in first.inner_text()
        assert first.locator("blockquote.post-text").inner_text().strip() == top["text"].strip()
        assert first.locator("a.on-x").get_attribute("href").endswith(f"/status/{top['tweet_id']}")

        # The network view draws nodes, from the vendored library and this server only.
        page.wait_for_function(
            "document.querySelectorAll('.network-view[data-network-ready=\"true\"]').length === 2",
            timeout=NETWORK_TIMEOUT_MS,
        )
        nodes = page.evaluate("document.querySelector('#network-mentions').dnflowNetwork.nodes().length")
        assert nodes > 5
        page.wait_for_load_state("networkidle")
        shot(page, "summary-real-desktop")

        assert foreign_requests(watched, live_server) == []
        assert watched.errors == []
    finally:
        watched.close()


def test_every_time_label_of_the_chart_is_whole_on_a_phone_and_a_desktop(browser, live_server, owner):
    from tests.web_helpers import make_search, write_outputs

    # 26 hours in 10-minute bars: 157 of them, and a tick on the last, at the chart's right edge.
    posts = [(str(1000 + hour), f"2024-03-01T{hour:02d}:00:00+00:00", "ada", "x", 0, "", "") for hour in range(24)]
    posts.append(("2000", "2024-03-02T02:00:00+00:00", "ada", "x", 0, "", ""))
    search = make_search(owner, outputs=False)
    write_outputs(search, posts=posts)
    for width, page in summary_on_a_phone_and_a_desktop(browser, live_server, search):
        chart = page.locator(".timeline-chart svg")
        assert "157 bars of 10 minutes" in page.locator(".timeline-chart figcaption").inner_text()
        assert chart.locator(".axis-x .tick").last.text_content() == "02:00"
        labels_whole_and_apart(chart, width)


def test_the_summary_and_compare_fit_a_phone_even_with_a_very_long_query(browser, live_server, owner, collect):
    real = collect("v2-pages-twarc-network.jsonl", term="blacklivesmatter")
    long = collect("v1-streaming-lines.jsonl", term="x" * 2000)
    watched = Watched(browser, **PHONE)
    try:
        page = watched.page
        log_in(page, live_server, "alice", "alice-password-1")
        for search, name in ((real, "summary-real-phone"), (long, "summary-long-query-phone")):
            page.goto(live_server.url + reverse("search_detail", args=[search.pk]))
            # Drawn, or left empty because there is nothing to draw: either way the page has settled.
            page.wait_for_function(
                "[...document.querySelectorAll('.network-view')].every("
                "  (view) => view.dataset.networkReady === 'true' || view.dataset.networkStarted === 'true')",
                timeout=NETWORK_TIMEOUT_MS,
            )
            page.wait_for_load_state("networkidle")
            no_horizontal_scroll(page)
            assert len(page.title()) < 120
            shot(page, name)

        page.goto(live_server.url + reverse("compare") + f"?ids={real.pk},{long.pk}")
        lines = page.locator("#compare-over-time polyline")
        assert lines.count() == 2
        no_horizontal_scroll(page)
        labels_whole_and_apart(page.locator("#compare-over-time svg[role=img]"), PHONE["width"])
        shot(page, "compare-phone")

        assert foreign_requests(watched, live_server) == []
        assert watched.errors == []
    finally:
        watched.close()


def test_on_a_phone_the_steps_and_files_tables_say_they_scroll_and_every_column_can_be_read(
    browser, live_server, owner
):
    search = make_search(owner)
    add_events(search, ("CollectPosts", "SummarisePosts", "PackageOutputs"), fail_last=True)
    watched = Watched(browser, **PHONE)
    try:
        page = watched.page
        log_in(page, live_server, "alice", "alice-password-1")
        page.goto(live_server.url + reverse("search_detail", args=[search.pk]))
        no_horizontal_scroll(page)
        for table, last_column, region_name in (
            (".timeline", "State", f"Steps of run {search.latest_run.number}"),
            (".files", "Who can download", "Table of the files"),
        ):
            # The table is wider than the screen: a line says so, and scrolling its box shows the rest.
            hint = page.locator(f".scroll-hint:near({table})").first
            assert hint.is_visible() and "Scroll" in hint.inner_text()
            scroller = page.locator(f".table-scroll:has({table})")
            # A named region a keyboard reaches and scrolls, in every browser, not only in those that
            # make any scroller focusable (axe-core's scrollable-region-focusable).
            region = page.get_by_role("region", name=region_name)
            assert region.get_attribute("tabindex") == "0"
            region.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_function("(box) => box.scrollLeft > 0", arg=scroller.element_handle())
            scroller.evaluate("(box) => { box.scrollLeft = box.scrollWidth; }")
            header = scroller.locator("thead th").last
            assert header.inner_text() == last_column
            box, cell = scroller.bounding_box(), header.bounding_box()
            assert box["x"] <= cell["x"] and cell["x"] + cell["width"] <= box["x"] + box["width"] + 1
        # The steps' error reads in lines, not a word a line; file names each on one line.
        state = page.locator(".timeline tbody tr").last.locator("td").last
        assert "The archive ended in the middle of a post." in state.inner_text()
        assert state.bounding_box()["width"] > 200
        names = page.locator(".files tbody td:first-child a")
        assert names.count() > 5
        for name in names.all():
            assert name.evaluate("(link) => link.getClientRects().length") == 1, name.inner_text()
        shot(page, "tables-phone")
        assert watched.errors == []
    finally:
        watched.close()


def test_the_bundled_sample_s_summary_on_a_desktop_and_a_phone(browser, live_server, owner, settings):
    """The README's screenshots (docs/summary-desktop.png, docs/summary-phone.png) come from here:
    the bundled sample is SYNTHETIC, so they show no real person's posts."""
    settings.DNFLOW_FETCH_PHOTOS = False
    search = services.create_search(owner=owner, term="climate", source=Source.SAMPLE, count=300, enqueue=False)
    assert execute_run(search.latest_run_id).status == Status.FINISHED
    for name, viewport in (("docs-summary-desktop", {"width": 1280, "height": 900}), ("docs-summary-phone", PHONE)):
        watched = Watched(browser, **viewport)
        try:
            page = watched.page
            log_in(page, live_server, "alice", "alice-password-1")
            page.goto(live_server.url + reverse("search_summary", args=[search.pk]))
            page.wait_for_function(
                "document.querySelectorAll('.network-view[data-network-ready=\"true\"]').length === 2",
                timeout=NETWORK_TIMEOUT_MS,
            )
            page.wait_for_load_state("networkidle")
            assert page.locator(".timeline-chart .bars rect").count() > 1
            no_horizontal_scroll(page)
            shot(page, name)
            assert foreign_requests(watched, live_server) == []
            assert watched.errors == []
        finally:
            watched.close()


def test_long_photo_names_stay_within_their_tiles(browser, live_server, owner):
    from tests.web_helpers import COUNTS, make_search, write_outputs

    names = ["E41FJO0WEAUR0Ro.png", "E41J7CuWYAMPlRL.jpg", "FxQ2yZ8WYAEc3kP_abcdefghijklmnopqrstuvwxyz.jpg"]
    media = (["url", "file", "count"], [(f"https://pbs.example.com/media/{name}", name, 3) for name in names])
    search = make_search(owner, outputs=False)
    write_outputs(search, counts={**COUNTS, "count-media.csv": media})
    for _width, page in summary_on_a_phone_and_a_desktop(browser, live_server, search):
        tiles = page.locator("#photos ul.photos:not(.group) > li")
        assert tiles.count() == len(names)
        for tile, name in zip(tiles.all(), names, strict=True):
            caption = tile.locator(":scope > .meta")
            assert name in caption.inner_text().replace("\n", "")
            outer, inner = tile.bounding_box(), caption.bounding_box()
            assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5, f"{name} runs out of its tile"
            assert caption.evaluate("(el) => el.scrollWidth <= el.clientWidth"), f"{name} runs past its caption"


def summary_on_a_phone_and_a_desktop(browser, live_server, search):
    """(viewport width, the owner's summary page of `search`) at phone width, then at desktop width."""
    for viewport in (PHONE, {"width": 1280, "height": 900}):
        watched = Watched(browser, **viewport)
        try:
            page = watched.page
            log_in(page, live_server, "alice", "alice-password-1")
            page.goto(live_server.url + reverse("search_summary", args=[search.pk]))
            yield viewport["width"], page
        finally:
            watched.close()
