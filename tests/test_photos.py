"""Photos: fetched from a real local HTTP server with its failures recorded, then grouped by look."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re

import pytest

from pipeline.photos import (
    BKTree,
    PrivateAddressRefused,
    fetch_photos,
    group_similar,
    hamming,
    match_photos,
    refuse_private_peer,
)
from pipeline.runner import build_workflow

from .pipeline_helpers import PhotoServer, archive_search, near_duplicate_photos, photo_posts_archive

MAX_BYTES = 200_000


@pytest.fixture
def photo_server():
    photos = near_duplicate_photos()
    routes = {f"/media/{name}": (200, kind, body) for name, (kind, body) in photos.items()}
    routes["/media/page.jpg"] = (200, "text/html; charset=utf-8", b"<html>not a photo</html>")
    routes["/media/huge.jpg"] = (200, "image/jpeg", b"\xff\xd8" + b"x" * (MAX_BYTES + 10))
    routes["/media/endless.jpg"] = (200, "image/jpeg; x=stream-no-length", b"\xff\xd8" + b"x" * (MAX_BYTES * 3))
    server = PhotoServer(routes)
    server.photos = photos
    yield server
    server.stop()


def no_local(url):
    return None


def fetch_from_test_server(wanted, media, *, max_photos):
    """fetch_photos as the workflow calls it, with the test server's loopback address allowed."""
    return fetch_photos(
        wanted, media, max_photos=max_photos, max_bytes=MAX_BYTES, local_path=no_local, private_addresses=True
    )


def test_fetch_keeps_whole_images_and_records_why_others_failed(photo_server, tmp_path):
    names = ["a.png", "a-small.jpg", "missing.jpg", "page.jpg", "huge.jpg", "endless.jpg"]
    wanted = [(photo_server.url(f"/media/{name}"), name) for name in names]
    media = tmp_path / "media"

    results = fetch_from_test_server(wanted, media, max_photos=10)

    by_name = {r.file: r for r in results}
    assert [r.file for r in results] == names  # one result per photo, in the order asked
    for name in ("a.png", "a-small.jpg"):
        body = photo_server.photos[name][1]
        assert by_name[name].ok
        assert (media / name).read_bytes() == body
        assert by_name[name].md5 == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert by_name["missing.jpg"].reason == "HTTP 404 Not Found"
    assert by_name["page.jpg"].reason == "not an image (content type text/html)"
    assert by_name["huge.jpg"].reason.startswith("too large (200,012 bytes")  # refused by its Content-Length
    assert by_name["endless.jpg"].reason.startswith("too large (more than 200,000 bytes")  # stopped mid-stream
    # Nothing half-downloaded is left behind, and no failed photo has a file.
    assert sorted(p.name for p in media.iterdir()) == ["a-small.jpg", "a.png"]


def test_fetch_takes_the_most_shared_first_up_to_the_cap_and_reports_unreachable_hosts(photo_server, tmp_path):
    wanted = [(photo_server.url(f"/media/{name}"), name) for name in ("a.png", "b.png", "c.png")]
    results = fetch_from_test_server(wanted, tmp_path / "media", max_photos=2)
    assert [r.file for r in results] == ["a.png", "b.png"]
    assert not any("/media/c.png" in path for path in photo_server.requests)

    photo_server.stop()
    gone = fetch_from_test_server([(photo_server.url("/media/c.png"), "c.png")], tmp_path / "media", max_photos=5)
    assert (gone[0].ok, gone[0].reason) == (False, "could not connect: connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_fetch_refuses_hosts_that_are_not_public_addresses_unless_allowed(photo_server, tmp_path, host):
    """An uploaded archive chooses the photo URLs: by default nothing is sent to a loopback,
    private or link-local address, whether the URL names it or a name resolves to it."""
    url = photo_server.url("/media/a.png").replace("127.0.0.1", host)
    media = tmp_path / "media"
    refused = fetch_photos([(url, "a.png")], media, max_photos=5, max_bytes=MAX_BYTES, local_path=no_local)
    assert not refused[0].ok
    assert re.fullmatch(rf"refused: {host} is at (127\.0\.0\.1|::1), not a public address \(.+\)", refused[0].reason)
    assert "DNFLOW_PHOTO_PRIVATE_ADDRESSES=1" in refused[0].reason
    assert photo_server.requests == [], "the connection is closed before the request is sent"
    assert not media.exists() or not any(media.iterdir())

    allowed = fetch_from_test_server([(url, "a.png")], media, max_photos=5)
    assert allowed[0].ok and photo_server.requests == ["/media/a.png"]


def test_https_photos_are_refused_before_the_tls_handshake(photo_server, tmp_path):
    url = photo_server.url("/media/a.png").replace("http://", "https://")
    refused = fetch_photos([(url, "a.png")], tmp_path / "media", max_photos=1, max_bytes=MAX_BYTES, local_path=no_local)
    assert refused[0].reason.startswith("refused: 127.0.0.1 is at 127.0.0.1, not a public address")
    assert photo_server.requests == []


class _Peer:
    """A connected socket as refuse_private_peer sees it: its far end's address."""

    def __init__(self, address: str) -> None:
        self.address, self.closed = address, False

    def getpeername(self):
        return (self.address, 443)

    def close(self):
        self.closed = True


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::6810:84e5", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # a cloud's metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 -- an address to classify, nothing binds to it
        ("::1", False),
        ("::ffff:127.0.0.1", False),  # loopback written as IPv6
        ("::ffff:93.184.215.14", True),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
    ],
)
def test_which_addresses_count_as_public(address, public):
    peer = _Peer(address)
    if public:
        refuse_private_peer(peer, "example.org")
        assert not peer.closed
    else:
        with pytest.raises(PrivateAddressRefused, match="not a public address"):
            refuse_private_peer(peer, "example.org")
        assert peer.closed


def test_fetch_refuses_addresses_that_are_not_web_addresses(tmp_path):
    results = fetch_photos(
        [("file:///etc/passwd", "passwd.jpg")], tmp_path / "media", max_photos=5, max_bytes=MAX_BYTES,
        local_path=no_local,
    )  # fmt: skip
    assert results[0].reason == "not a web address (file scheme)"


def test_near_duplicates_are_grouped_and_different_pictures_are_not(tmp_path):
    for name, (_kind, body) in near_duplicate_photos().items():
        (tmp_path / name).write_bytes(body)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")

    groups, hashes = match_photos(tmp_path, sorted(p.name for p in tmp_path.iterdir()))

    assert groups == [["a-bright.jpg", "a-small.jpg", "a.png"]]
    assert "broken.jpg" not in hashes and len(hashes) == 5


def test_bk_tree_finds_exactly_what_comparing_all_pairs_finds():
    rng = random.Random(7)
    base = [rng.getrandbits(64) for _ in range(40)]
    # Clusters: each base value with a few variants a few bits away.
    values = [b ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for b in base for _ in range(3)] + base
    tree = BKTree()
    for i, value in enumerate(values):
        tree.add(value, i)
    for probe in values[:30] + [rng.getrandbits(64) for _ in range(10)]:
        for limit in (0, 3, 12):
            expected = {i for i, value in enumerate(values) if hamming(probe, value) <= limit}
            assert set(tree.near(probe, limit)) == expected


def test_grouping_links_chains_of_near_matches():
    # a~b and b~c, though a and c are further apart than the limit: one group.
    assert group_similar({"a": 0b0000, "b": 0b0011, "c": 0b1111, "z": (1 << 60) - 1}, limit=2) == [["a", "b", "c"]]


@pytest.mark.django_db(transaction=True)
def test_workflow_downloads_photos_records_failures_and_groups_lookalikes(photo_server, tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = True
    settings.DNFLOW_PHOTO_PRIVATE_ADDRESSES = True  # the test server is on 127.0.0.1
    settings.DNFLOW_MAX_PHOTOS = 6
    settings.DNFLOW_PHOTO_MAX_BYTES = MAX_BYTES
    url = photo_server.url
    # a.png is shared 3 times, c.png once, the others twice; page.jpg and missing.jpg fail.
    posts = [
        [url("/media/a.png"), url("/media/a-small.jpg")],
        [url("/media/a.png"), url("/media/a-bright.jpg"), url("/media/b.png")],
        [url("/media/a.png"), url("/media/a-small.jpg"), url("/media/page.jpg")],
        [url("/media/missing.jpg"), url("/media/a-bright.jpg"), url("/media/b.png")],
        [url("/media/c.png")],
        [url("/media/page.jpg"), url("/media/missing.jpg")],
    ]
    search = archive_search(photo_posts_archive(tmp_path / "photos.jsonl", posts))

    assert build_workflow(search).ok

    folder = search.folder_path
    media = folder / "media"
    assert sorted(p.name for p in media.glob("*.*g")) == ["a-bright.jpg", "a-small.jpg", "a.png", "b.png"]
    with (media / "failures.csv").open(newline="") as handle:
        failures = {row["file"]: row["reason"] for row in csv.DictReader(handle)}
    assert failures == {"missing.jpg": "HTTP 404 Not Found", "page.jpg": "not an image (content type text/html)"}
    checksums = dict(line.split("  ")[::-1] for line in (media / "checksums.md5").read_text().splitlines())
    assert checksums["a.png"] == hashlib.md5(photo_server.photos["a.png"][1], usedforsecurity=False).hexdigest()
    # c.png is the least shared and the 7th photo: beyond DNFLOW_MAX_PHOTOS = 6, never asked for.
    assert not any(path.endswith("/c.png") for path in photo_server.requests)
    marker = json.loads((media / "photos.json").read_text())
    assert (marker["photos"], marker["fetched"], marker["failed"], marker["beyond_limit"]) == (7, 4, 2, 1)
    assert json.loads((folder / "media-graph.json").read_text()) == [["a-bright.jpg", "a-small.jpg", "a.png"]]
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["photos_fetched"], summary["photos_failed"], summary["photo_groups"]) == (4, 2, 1)


@pytest.mark.django_db(transaction=True)
def test_a_search_from_an_archive_naming_a_local_address_records_the_refusal(photo_server, tmp_path, settings):
    settings.DNFLOW_FETCH_PHOTOS = True  # and DNFLOW_PHOTO_PRIVATE_ADDRESSES left as it ships: off
    posts = [[photo_server.url("/media/a.png")], [photo_server.url("/media/b.png")]]
    search = archive_search(photo_posts_archive(tmp_path / "photos.jsonl", posts))

    assert build_workflow(search).ok  # a refused photo is recorded, never fatal

    media = search.folder_path / "media"
    with (media / "failures.csv").open(newline="") as handle:
        reasons = {row["file"]: row["reason"] for row in csv.DictReader(handle)}
    assert set(reasons) == {"a.png", "b.png"}
    assert all(reason.startswith("refused: 127.0.0.1 is at 127.0.0.1") for reason in reasons.values())
    assert photo_server.requests == []
