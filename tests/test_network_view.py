"""The summary page's network view (static/dnflow/network.js on the vendored Cytoscape.js), in
headless Chromium: nodes drawn from a networks.json built from a real fixture, hover and click,
nothing asked of another host, no console error, and nothing drawn without JavaScript.

The page is tests/fixtures/network-view.html, served with the project's static files by a local
http.server on 127.0.0.1. The posts are the real fixture v2-pages-twarc-network.jsonl (test data only).
"""

from __future__ import annotations

import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.contract import NETWORKS_VIEW
from pipeline.networks import write_networks

from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from .test_parallel_summarise import imported, serial

pytestmark = pytest.mark.browser

PROJECT_DIR = Path(__file__).resolve().parent.parent
PAGE = Path(__file__).resolve().parent / "fixtures" / "network-view.html"


class _Handler(SimpleHTTPRequestHandler):
    """/ is the test page, /static/ the project's static files, /data/ the run's folder."""

    def __init__(self, *args, data: Path, **kwargs) -> None:
        self.data = data
        super().__init__(*args, directory=str(PROJECT_DIR / "static"), **kwargs)

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            return str(PAGE)
        if path.startswith("/data/"):
            return str(self.data / Path(path).name)
        if path.startswith("/static/"):
            return super().translate_path(path[len("/static") :])
        return str(PROJECT_DIR / "missing")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory, real_data_module):
    folder = tmp_path_factory.mktemp("network-view")
    raw = imported(folder, real_data_module / "v2-pages-twarc-network.jsonl")
    serial(raw, folder / "out")
    write_networks(folder / "out")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, data=folder / "out"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", json.loads((folder / "out" / NETWORKS_VIEW).read_text())
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def real_data_module():
    from .conftest import REAL_DATA

    return REAL_DATA


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: run scripts/ensure-chromium.sh (make services).")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page whose requests and console errors are recorded."""

    def __init__(self, browser, *, javascript: bool = True) -> None:
        self.context = browser.new_context(viewport={"width": 1200, "height": 1000}, java_script_enabled=javascript)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
def watched(browser):
    watched = Watched(browser)
    yield watched
    watched.context.close()


def node_point(page, container: str, node_id: str) -> tuple[float, float]:
    """Where a node is drawn, in the viewport (from Cytoscape's own API), its view scrolled into sight."""
    page.locator(f"#{container} .network-canvas").scroll_into_view_if_needed()
    return page.evaluate(
        """([container, id]) => {
            const element = document.getElementById(container);
            const cy = element.dnflowNetwork;
            const at = cy.getElementById(id).renderedPosition();
            const box = cy.container().getBoundingClientRect();
            return [box.left + at.x, box.top + at.y];
        }""",
        [container, node_id],
    )


def hover(page, x: float, y: float) -> None:
    """Move onto a point as a hand does: Cytoscape finds what is under the pointer as it moves."""
    page.mouse.move(x - 25, y - 25)
    page.mouse.move(x, y, steps=5)


def test_the_view_draws_the_network_and_hover_and_click_work(site, watched):
    base, view = site
    page = watched.page
    page.goto(base + "/")
    for container in ("mentions", "hashtags", "inline"):
        page.wait_for_selector(f"#{container}[data-network-ready='true']")

    # Nodes drawn: the library's own count, and canvases in the container.
    for name in ("mentions", "hashtags"):
        drawn = page.evaluate(f"document.getElementById('{name}').dnflowNetwork.nodes().length")
        assert drawn == len(view[name]["nodes"]) > 20
        assert page.locator(f"#{name} canvas").count() >= 1
    assert page.evaluate("document.getElementById('inline').dnflowNetwork.nodes().length") == 4
    legend = page.locator("#hashtags .network-legend").inner_text()
    assert "hashtag" in legend and "account" in legend and "connections" in legend

    # Hover the best-connected hashtag: its name and attributes show.
    hub = view["hashtags"]["nodes"][0]
    x, y = node_point(page, "hashtags", hub["id"])
    hover(page, x, y)
    tip = page.locator("#hashtags .network-tooltip")
    tip.wait_for(state="visible")
    assert f"#{hub['label']}" in tip.inner_text() and f"used {hub['uses']:,} times" in tip.inner_text()

    # Click it: it and its neighbours are highlighted, the rest faded.
    page.mouse.click(x, y)
    classes = page.evaluate(
        """(id) => {
            const cy = document.getElementById('hashtags').dnflowNetwork;
            const node = cy.getElementById(id);
            const neighbours = node.neighborhood('node');
            return {
                chosen: node.hasClass('chosen'),
                neighbours: neighbours.length,
                lit: neighbours.filter((n) => n.hasClass('neighbour')).length,
                faded: cy.nodes('.faded').length,
                others: cy.nodes().length - neighbours.length - 1,
            };
        }""",
        hub["id"],
    )
    assert classes["chosen"] and classes["neighbours"] > 0 and classes["lit"] == classes["neighbours"]
    assert classes["faded"] == classes["others"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "network-view.png"), full_page=True)

    # A click on empty space clears the highlight.
    box = page.locator("#hashtags .network-canvas").bounding_box()
    page.mouse.click(box["x"] + 4, box["y"] + 4)
    assert page.evaluate("document.getElementById('hashtags').dnflowNetwork.elements('.faded, .chosen').length") == 0

    # Hover and click on the inline network too: alice's neighbours are Bob and carol.
    x, y = node_point(page, "inline", "@alice")
    hover(page, x, y)
    assert "120 followers" in page.locator("#inline .network-tooltip").inner_text()
    page.mouse.click(x, y)
    lit = page.evaluate("document.getElementById('inline').dnflowNetwork.nodes('.neighbour').map((n) => n.id()).sort()")
    assert lit == ["@bob", "@carol"]

    assert all(url.startswith(base + "/") for url in watched.requests), watched.requests
    assert watched.errors == []


def test_without_javascript_nothing_is_drawn_and_the_table_stays(site, browser):
    base, _view = site
    watched = Watched(browser, javascript=False)
    try:
        watched.page.goto(base + "/")
        assert watched.page.locator("#mentions").inner_html() == ""
        assert watched.page.locator("canvas").count() == 0
        assert watched.page.locator("table.network-fallback").is_visible()
        assert all(url.startswith(base + "/") for url in watched.requests)
    finally:
        watched.context.close()


def test_an_unreadable_network_leaves_the_element_empty_without_errors(site, watched):
    base, _view = site
    page = watched.page
    page.route(base + "/data/networks.json", lambda route: route.fulfill(status=404, body="gone"))
    page.goto(base + "/")
    page.wait_for_selector("#inline[data-network-ready='true']")
    page.wait_for_load_state("networkidle")
    assert page.locator("#mentions").inner_html() == ""
    assert [error for error in watched.errors if "404" not in error] == []
