"""Photos whose names a spreadsheet guard touched, hosts given up after a few connection
failures, and the failures summed up in plain words for the page.

A real local HTTP server on 127.0.0.1 (allowed with private_addresses=True), a closed local port
and a `.invalid` name (RFC 6761: never resolves). Posts are SYNTHETIC.
"""

from __future__ import annotations

import csv
import json
import socket
import time

import pytest

from pipeline.contract import PHOTO_FAILURES, PHOTO_NAME, is_photo
from pipeline.outputs import neutralise, unneutralise
from pipeline.photos import (
    GIVE_UP_AFTER,
    failure_group,
    failures_of,
    fetch_photos,
    photo_files,
    read_media_counts,
    summarise_failures,
)
from pipeline.runner import build_workflow

from .pipeline_helpers import PhotoServer, archive_search, near_duplicate_photos, photo_posts_archive, read_rows

MAX_BYTES = 200_000


def no_local(url):
    return None


@pytest.fixture
def photo_server():
    photos = near_duplicate_photos()
    routes = {"/media/-x.jpg": (200, "image/jpeg", photos["a-small.jpg"][1])}
    routes.update({f"/media/{name}": (200, kind, body) for name, (kind, body) in photos.items()})
    server = PhotoServer(routes)
    yield server
    server.stop()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "cell", ["-x.jpg", "=SUM(A1)", "+1", "@bob", "\tx", "\rx", "plain.jpg", "'quoted", "'", "", "x'-y"]
)
def test_unneutralise_undoes_exactly_what_neutralise_did(cell):
    assert unneutralise(neutralise(cell)) == cell


@pytest.mark.django_db(transaction=True)
def test_a_photo_named_with_a_leading_dash_is_fetched_under_a_name_the_web_can_serve(photo_server, tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = True
    settings.DNFLOW_PHOTO_PRIVATE_ADDRESSES = True  # the test server is on 127.0.0.1
    settings.DNFLOW_PHOTO_MAX_BYTES = MAX_BYTES
    url = photo_server.url("/media/-x.jpg")
    search = archive_search(
        photo_posts_archive(tmp_path / "photos.jsonl", [[url], [url, photo_server.url("/media/b.png")]])
    )

    assert build_workflow(search).ok

    folder = search.folder_path
    # count-media.csv is for spreadsheets: its cell is guarded...
    assert read_rows(folder / "count-media.csv")[1] == [url, "'-x.jpg", "2"]
    # ...and whoever uses it as a name reads it back as the post gave it.
    assert read_media_counts(folder / "count-media.csv")[0] == (url, "-x.jpg")
    # "-x.jpg" is no name for the folder (a command line takes it for an option): it is saved
    # under a name derived from the URL, which media/photos.json records.
    files = photo_files(folder)
    name = files[url]
    assert name.startswith("photo-") and name.endswith(".jpg") and PHOTO_NAME.match(name)
    assert is_photo(f"media/{name}") and (folder / "media" / name).is_file()
    assert files[photo_server.url("/media/b.png")] == "b.png"
    assert "/media/-x.jpg" in photo_server.requests
    assert read_rows(folder / PHOTO_FAILURES) == [["url", "file", "reason"]]
    assert json.loads((folder / "media" / "photos.json").read_text())["fetched"] == 2


def test_a_host_that_refuses_connections_is_given_up_after_a_few_failures(photo_server, tmp_path):
    port = closed_port()
    dead = [(f"http://127.0.0.1:{port}/media/p{n}.jpg", f"p{n}.jpg") for n in range(60)]
    alive = [(photo_server.url("/media/a.png"), "a.png"), (photo_server.url("/media/b.png"), "b.png")]
    started = time.monotonic()
    results = fetch_photos(
        dead[:30] + alive + dead[30:], tmp_path / "media", max_photos=100, max_bytes=MAX_BYTES,
        local_path=no_local, private_addresses=True,
    )  # fmt: skip
    took = time.monotonic() - started

    reasons = [r.reason for r in results if not r.ok]
    tried = [reason for reason in reasons if reason == "could not connect: connection refused"]
    skipped = [reason for reason in reasons if reason.startswith("gave up")]
    # Four downloads run at once: up to three more may be on their way when the third fails.
    assert GIVE_UP_AFTER <= len(tried) <= GIVE_UP_AFTER + 3
    assert len(tried) + len(skipped) == 60
    assert set(skipped) == {f"gave up on 127.0.0.1:{port} after 3 connection failures"}
    assert [r.file for r in results if r.ok] == ["a.png", "b.png"]  # another host is not affected
    assert took < 5, f"60 photos of a dead host took {took:.1f} s"


def test_a_host_name_that_does_not_resolve_is_given_up_fast(tmp_path):
    urls = [(f"http://photos.dnflow-test.invalid/media/p{n}.jpg", f"p{n}.jpg") for n in range(100)]
    started = time.monotonic()
    results = fetch_photos(urls, tmp_path / "media", max_photos=100, max_bytes=MAX_BYTES, local_path=no_local)
    took = time.monotonic() - started
    reasons = [r.reason for r in results]
    assert GIVE_UP_AFTER <= reasons.count("could not connect: the host name does not resolve") <= GIVE_UP_AFTER + 3
    assert reasons.count("gave up on photos.dnflow-test.invalid after 3 connection failures") >= 94
    assert took < 15, f"100 photos of a name that does not resolve took {took:.1f} s"


def test_failures_are_summed_up_in_plain_words_naming_hosts_most_common_first(tmp_path):
    gave_up = "gave up on pbs.twimg.com after 3 connection failures"
    no_name = "could not connect: the host name does not resolve"
    rows = (
        [(f"https://pbs.twimg.com/media/p{n}.jpg", no_name) for n in range(3)]
        + [(f"https://pbs.twimg.com/media/q{n}.jpg", gave_up) for n in range(67)]
        + [("https://pbs.twimg.com/media/gone.jpg", "HTTP 404 Not Found")] * 2
        + [("http://example.org/-a.jpg", "not an image (content type text/html)")]
        + [("http://10.0.0.1/x.jpg", "refused: 10.0.0.1 is at 10.0.0.1, not a public address (...)")]
        + [("https://media.example:8443/y.jpg", "timed out")]
    )  # fmt: skip
    path = tmp_path / "media" / "failures.csv"
    path.parent.mkdir()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["url", "file", "reason"])
        writer.writerows((neutralise(url), neutralise(url.rsplit("/", 1)[1]), neutralise(r)) for url, r in rows)

    assert summarise_failures(path) == [
        ("not tried: gave up on pbs.twimg.com after 3 connection failures", 67),
        ("could not connect to pbs.twimg.com (the host name does not resolve)", 3),
        ("no longer on pbs.twimg.com (HTTP 404)", 2),
        ("example.org sent something that is not an image", 1),
        ("media.example:8443 took too long to answer", 1),
        ("refused: 10.0.0.1 is not a public address", 1),
    ]
    assert failures_of(tmp_path) == summarise_failures(path)
    assert summarise_failures(tmp_path / "missing.csv") == []


def test_each_reason_the_fetcher_gives_reads_as_plain_words():
    url = "https://pbs.twimg.com/media/a.jpg"
    assert failure_group(url, "could not connect") == "could not connect to pbs.twimg.com"
    assert failure_group(url, "could not connect: connection refused") == (
        "could not connect to pbs.twimg.com (connection refused)"
    )
    assert failure_group(url, "HTTP 503 Service Unavailable") == "pbs.twimg.com had a server error (HTTP 503)"
    assert failure_group(url, "HTTP 403 Forbidden") == "pbs.twimg.com refused access (HTTP 403)"
    assert failure_group(url, "too large (more than 200,000 bytes)") == "too large, from pbs.twimg.com"
    assert failure_group("file:///etc/passwd", "not a web address (file scheme)") == "not a web address (file scheme)"
