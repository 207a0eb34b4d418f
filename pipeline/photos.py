"""Downloading a search's photos and grouping the ones that look alike.

Fetching (`fetch_photos`): the most shared photos first (count-media.csv is sorted that way), at
most DNFLOW_MAX_PHOTOS of them, through one pooled `requests.Session` with connect and read
timeouts. Photo URLs come from the posts, and an uploaded archive can name any address: unless
DNFLOW_PHOTO_PRIVATE_ADDRESSES allows it, a connection whose far end is not a public address
(loopback, private, link-local such as a cloud's metadata service, ...) is closed before anything
is sent. The address checked is the one connected to, after DNS and after every redirect, so
neither a redirect nor a name that resolves differently the second time gets round it. A photo
must answer 200 with an image/* content type and stay under DNFLOW_PHOTO_MAX_BYTES (streamed; the
download stops as soon as it passes the cap). A photo that cannot be fetched is written to
`media/failures.csv` with the reason and never fails the search. After GIVE_UP_AFTER connection
failures in a row (a name that does not resolve, a refused connection, a timeout) to one host,
the host's other photos are not tried: without a network, 500 photos would each wait for their
own failure. `summarise_failures` groups the reasons in plain words for the page.

Names: a photo is saved under the URL's last segment when that is a plain image name
(contract.PHOTO_NAME: no leading "-" or ".", which command-line tools would take for an option or
hide), else under a name derived from the URL (`photo-<hash>.<ext>`); media/photos.json maps each
URL to its file, and is what says where a photo is. count-media.csv's `file` column is a CSV
cell, neutralised for spreadsheets: it is read through outputs.unneutralise.
Each photo is written under a temporary name and renamed when complete, so a file in `media/` is
always whole, and a re-run keeps what it already has. `media/checksums.md5` (the format of
`md5sum -c`) lists every photo; `media/photos.json`, written last, says what happened.

Photos of the bundled synthetic sample live on a host that does not exist; they are read from the
sample's folder on disk (`pipeline.sample.local_photo_path`).

Matching (`match_photos`): each photo gets an average, a difference and a perceptual hash
(64 bits each, `imagehash`). Two photos look alike when the three hashes together differ in at
most MATCH_DISTANCE of their 192 bits. Candidates come from a BK-tree over that Hamming distance
(a metric), so grouping needs far fewer comparisons than all pairs; groups are the connected
components of the "looks alike" relation.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
import json
import logging
import mimetypes
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

from .contract import PHOTO_FAILURES, PHOTO_NAME, PHOTOS_RECORD
from .outputs import new_temp_path, unneutralise

log = logging.getLogger("dnflow.photos")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
PHOTO_DEADLINE = 120.0  # seconds for one whole photo
PARALLEL_DOWNLOADS = 4
CHUNK = 64 * 1024
# Connection failures in a row to one host before its other photos are given up.
GIVE_UP_AFTER = 3
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
USER_AGENT = "dnflow photo fetcher (+https://github.com/DocNow/dnflow)"
# Of 192 hash bits (three 64-bit hashes): resized, re-encoded or lightly edited copies stay well
# under this; unrelated pictures differ in about half the bits.
MATCH_DISTANCE = 30


class PhotoRefused(Exception):
    """One photo that will not be kept; the message is the reason recorded in failures.csv."""


class PrivateAddressRefused(OSError):
    """A photo's host is not a public address. An OSError, so that urllib3 and requests pass it
    on as a connection error; fetch() finds it again to give its reason."""


@dataclass
class PhotoResult:
    url: str
    file: str
    ok: bool
    size: int = 0
    md5: str = ""
    reason: str = ""


def photo_file_name(url: str, file: str) -> str:
    """The name a photo gets in media/: the URL's last segment when it is a plain image name
    (what count-media.csv's `file` column says), else a name derived from the URL."""
    if PHOTO_NAME.match(file or ""):
        return file
    suffix = Path(urlsplit(url).path).suffix.lower()
    if suffix not in (".jpg", ".jpeg", ".png", ".gif", ".webp"):
        suffix = ".jpg"
    return f"photo-{hashlib.sha1(url.encode('utf-8')).hexdigest()[:16]}{suffix}"  # noqa: S324 -- a name, not security


def make_session(pool_size: int = PARALLEL_DOWNLOADS, *, private_addresses: bool = False) -> requests.Session:
    """A session for photos: pooled, no retries, and refusing hosts that are not public
    addresses unless `private_addresses` (DNFLOW_PHOTO_PRIVATE_ADDRESSES) allows them."""
    session = requests.Session()
    adapter_class = HTTPAdapter if private_addresses else PublicAddressAdapter
    adapter = adapter_class(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def refuse_private_peer(sock, host: str) -> None:
    """Close `sock` and raise PrivateAddressRefused unless its far end is a public address."""
    peer = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    if not peer.is_global:
        sock.close()
        raise PrivateAddressRefused(
            f"refused: {host} is at {peer}, not a public address "
            "(DNFLOW_PHOTO_PRIVATE_ADDRESSES=1 allows it, for archives from people you trust)"
        )


class _PublicHTTPConnection(HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        refuse_private_peer(sock, self.host)
        return sock


class _PublicHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()  # checked before the TLS handshake: nothing is sent first
        refuse_private_peer(sock, self.host)
        return sock


class _PublicHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PublicHTTPConnection


class _PublicHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PublicHTTPSConnection


class PublicAddressAdapter(HTTPAdapter):
    """Connects only to public addresses. Through a proxy (HTTPS_PROXY, ...) the proxy connects
    to the host, and which addresses it reaches is its own setting."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _PublicHTTPPool, "https": _PublicHTTPSPool}


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # a checksum for people to verify copies
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def host_of(url: str) -> str:
    """The host (and port, if the URL names one) a photo comes from, lower-cased; "" if none."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return f"{host}:{parts.port}" if host and parts.port else host
    except ValueError:
        return ""


class HostGate:
    """Counts connection failures in a row per host (the download threads share it) and says when
    to stop trying a host."""

    def __init__(self, limit: int = GIVE_UP_AFTER) -> None:
        self.limit = limit
        self._failures: Counter = Counter()
        self._lock = threading.Lock()

    def given_up(self, host: str) -> bool:
        with self._lock:
            return self._failures[host] >= self.limit

    def failed(self, host: str) -> None:
        with self._lock:
            self._failures[host] += 1

    def answered(self, host: str) -> None:
        with self._lock:
            if self._failures[host] < self.limit:
                self._failures[host] = 0

    def reason(self, host: str) -> str:
        return f"gave up on {host} after {self.limit} connection failures"


class PhotoFetcher:
    def __init__(
        self,
        session: requests.Session,
        *,
        max_bytes: int,
        local_path: Callable[[str], Path | None],
        gate: HostGate | None = None,
    ) -> None:
        self.session = session
        self.max_bytes = max_bytes
        self.local_path = local_path
        self.gate = gate or HostGate()

    def fetch(self, url: str, dest: Path) -> PhotoResult:
        """Download one photo to dest (whole or not at all); never raises for a bad photo."""
        if dest.is_file():  # a previous run finished it: files appear only when complete
            return PhotoResult(url, dest.name, True, dest.stat().st_size, _md5_of(dest))
        host = host_of(url)
        if host and self.gate.given_up(host):
            return PhotoResult(url, dest.name, False, reason=self.gate.reason(host))
        fd, temp = new_temp_path(dest)
        try:
            with os.fdopen(fd, "wb") as out:
                size, md5 = self._download(url, out)
            os.replace(temp, dest)
        except PhotoRefused as exc:
            self.gate.answered(host)
            return PhotoResult(url, dest.name, False, reason=str(exc))
        except requests.RequestException as exc:
            if _is_connection_failure(exc):
                self.gate.failed(host)
            return PhotoResult(url, dest.name, False, reason=_network_reason(exc))
        except OSError as exc:
            return PhotoResult(url, dest.name, False, reason=f"could not save it: {exc.strerror or exc}")
        finally:
            temp.unlink(missing_ok=True)
        self.gate.answered(host)
        return PhotoResult(url, dest.name, True, size, md5)

    def _download(self, url: str, out) -> tuple[int, str]:
        local = self.local_path(url)
        if local is not None:
            return self._copy_local(local, out)
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise PhotoRefused(f"not a web address ({scheme or 'no'} scheme)")
        with self.session.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
            if response.status_code != 200:
                raise PhotoRefused(f"HTTP {response.status_code} {response.reason or ''}".strip())
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise PhotoRefused(f"not an image (content type {kind or 'missing'})")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise PhotoRefused(f"too large ({int(declared):,} bytes; the limit is {self.max_bytes:,})")
            return self._stream(response.iter_content(CHUNK), out)

    def _copy_local(self, path: Path, out) -> tuple[int, str]:
        kind = mimetypes.guess_type(path.name)[0] or ""
        if not kind.startswith("image/"):
            raise PhotoRefused(f"not an image ({path.name})")
        with path.open("rb") as handle:
            return self._stream(iter(lambda: handle.read(CHUNK), b""), out)

    def _stream(self, chunks: Iterable[bytes], out) -> tuple[int, str]:
        size = 0
        digest = hashlib.md5(usedforsecurity=False)
        deadline = time.monotonic() + PHOTO_DEADLINE
        for chunk in chunks:
            if time.monotonic() > deadline:  # the read timeout is per read: a slow drip passes it
                raise PhotoRefused(f"took longer than {PHOTO_DEADLINE:.0f} s")
            size += len(chunk)
            if size > self.max_bytes:
                raise PhotoRefused(f"too large (more than {self.max_bytes:,} bytes)")
            digest.update(chunk)
            out.write(chunk)
        if size == 0:
            raise PhotoRefused("empty answer")
        return size, digest.hexdigest()


def _is_connection_failure(exc: requests.RequestException) -> bool:
    """A failure to reach the host at all (no name, refused, timed out), not a refusal of ours."""
    if _cause_of_kind(exc, PrivateAddressRefused) is not None:
        return False
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _network_reason(exc: requests.RequestException) -> str:
    refused = _cause_of_kind(exc, PrivateAddressRefused)
    if refused is not None:
        return str(refused)
    # NameResolutionError is a kind of connect timeout in urllib3: asked first.
    if _cause_of_kind(exc, NameResolutionError) is not None:
        return "could not connect: the host name does not resolve"
    if _cause_of_kind(exc, ConnectionRefusedError) is not None:
        return "could not connect: connection refused"
    if isinstance(exc, requests.ConnectTimeout):
        return "could not connect: timed out"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return f"download failed ({type(exc).__name__})"


def _cause_of_kind(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The exception of `kind` that `exc` wraps, however requests and urllib3 nested it."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if isinstance(current, kind):
            return current
        if id(current) in seen:
            continue
        seen.add(id(current))
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return None


def read_media_counts(path: Path) -> list[tuple[str, str]]:
    """(url, file) of count-media.csv, most shared first, as the posts gave them (the cells'
    spreadsheet guard undone)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            (unneutralise(row["url"]), unneutralise(row["file"] or ""))
            for row in csv.DictReader(handle)
            if row.get("url")
        ]


def photo_files(folder: Path) -> dict[str, str]:
    """URL -> the file in media/ that holds it, from media/photos.json ({} before the photo step,
    or when it is unreadable): the names to serve, whatever count-media.csv's `file` says."""
    try:
        record = json.loads((Path(folder) / PHOTOS_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return {}
    return {url: name for url, name in files.items() if isinstance(name, str) and PHOTO_NAME.match(name)}


# --- Failures, for the page ------------------------------------------------------------------------

_HTTP = re.compile(r"^HTTP (\d{3})")


def failure_group(url: str, reason: str) -> str:
    """A failure's reason in plain words, naming the host: what the page groups and counts."""
    host = host_of(url) or "a local file"
    if reason.startswith("gave up on "):
        return "not tried: " + reason
    if reason.startswith("could not connect"):
        detail = reason.partition(": ")[2]
        return f"could not connect to {host}" + (f" ({detail})" if detail else "")
    if reason.startswith("timed out"):
        return f"{host} took too long to answer"
    if reason.startswith("refused: "):
        return f"refused: {host} is not a public address"
    status = _HTTP.match(reason)
    if status:
        code = int(status.group(1))
        if code == 404 or code == 410:
            return f"no longer on {host} (HTTP {code})"
        if code in (401, 403):
            return f"{host} refused access (HTTP {code})"
        if code == 429:
            return f"{host} asked to slow down (HTTP 429)"
        if code >= 500:
            return f"{host} had a server error (HTTP {code})"
        return f"{host} answered HTTP {code}"
    if reason.startswith("not an image"):
        return f"{host} sent something that is not an image"
    if reason.startswith("too large"):
        return f"too large, from {host}"
    if reason.startswith("took longer than"):
        return f"too slow, from {host}"
    if reason == "empty answer":
        return f"{host} sent an empty answer"
    if reason.startswith("not a web address"):
        return reason
    return f"{reason} ({host})"


def summarise_failures(path: Path) -> list[tuple[str, int]]:
    """The photos of media/failures.csv grouped by what went wrong, in plain words naming the
    host, most common first (ties by text); [] when the file is missing or unreadable."""
    groups: Counter = Counter()
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                url, reason = unneutralise(row.get("url") or ""), unneutralise(row.get("reason") or "")
                groups[failure_group(url, reason)] += 1
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    return sorted(groups.items(), key=lambda item: (-item[1], item[0]))


def failures_of(folder: Path) -> list[tuple[str, int]]:
    """summarise_failures of a run's folder."""
    return summarise_failures(Path(folder) / PHOTO_FAILURES)


def fetch_photos(
    photos: list[tuple[str, str]],
    media_dir: Path,
    *,
    max_photos: int,
    max_bytes: int,
    local_path: Callable[[str], Path | None],
    on_progress: Callable[[int, int], None] | None = None,
    session: requests.Session | None = None,
    private_addresses: bool = False,
) -> list[PhotoResult]:
    """Fetch up to max_photos of `photos` (url, file) into media_dir, in that order; returns one result each."""
    media_dir.mkdir(parents=True, exist_ok=True)
    wanted = photos[: max(max_photos, 0)]
    names: set[str] = set()
    jobs = []
    for url, file in wanted:
        name = photo_file_name(url, file)
        if name.lower() in names:  # two URLs ending in the same name: the second gets its own
            name = photo_file_name(url, "")
        names.add(name.lower())
        jobs.append((url, media_dir / name))
    own_session = session is None
    session = session or make_session(private_addresses=private_addresses)
    fetcher = PhotoFetcher(session, max_bytes=max_bytes, local_path=local_path, gate=HostGate())
    results: list[PhotoResult] = []
    pool = ThreadPoolExecutor(max_workers=PARALLEL_DOWNLOADS, thread_name_prefix="dnflow-photo")
    try:
        for result in pool.map(lambda job: fetcher.fetch(*job), jobs):
            results.append(result)
            if on_progress is not None:
                on_progress(len(results), len(jobs))  # may raise: the search was cancelled
    finally:
        # On an error, downloads not yet started are dropped rather than run to the end.
        pool.shutdown(wait=True, cancel_futures=True)
        if own_session:
            session.close()
    return results


def keep_only_photos(media_dir: Path, names: set[str]) -> int:
    """Remove the photo files of media_dir not named in `names` (the folder's records stay).
    Returns how many went."""
    removed = 0
    if not media_dir.is_dir():
        return 0
    for path in media_dir.iterdir():
        if path.name not in names and path.is_file() and PHOTO_NAME.match(path.name):
            path.unlink()
            removed += 1
    return removed


# --- Matching ------------------------------------------------------------------------------


def photo_hash(path: Path) -> int | None:
    """The average, difference and perceptual hashes of an image as one 192-bit number, or None."""
    import imagehash
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            bits = [imagehash.average_hash(image), imagehash.dhash(image), imagehash.phash(image)]
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        log.info("cannot hash %s: %s", path.name, exc)
        return None
    value = 0
    for one in bits:
        for bit in one.hash.flatten():
            value = (value << 1) | int(bit)
    return value


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class BKTree:
    """Points under the Hamming distance; `near(x, d)` finds those within d without scanning all."""

    def __init__(self) -> None:
        self._root: tuple[int, int, dict] | None = None  # (value, item, children by distance)

    def add(self, value: int, item: int) -> None:
        if self._root is None:
            self._root = (value, item, {})
            return
        node = self._root
        while True:
            distance = hamming(value, node[0])
            child = node[2].get(distance)
            if child is None:
                node[2][distance] = (value, item, {})
                return
            node = child

    def near(self, value: int, limit: int) -> list[int]:
        found = []
        pending = [self._root] if self._root is not None else []
        while pending:
            node_value, item, children = pending.pop()
            distance = hamming(value, node_value)
            if distance <= limit:
                found.append(item)
            # The triangle inequality: only children at distance-limit..distance+limit can hold matches.
            for child_distance, child in children.items():
                if distance - limit <= child_distance <= distance + limit:
                    pending.append(child)
        return found


def group_similar(hashes: dict[str, int], limit: int = MATCH_DISTANCE) -> list[list[str]]:
    """Groups (of two or more names) whose hashes are linked by distances of at most `limit`."""
    names = sorted(hashes)
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    tree = BKTree()
    for i, name in enumerate(names):
        for j in tree.near(hashes[name], limit):
            parent[root(i)] = root(j)
        tree.add(hashes[name], i)
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        groups.setdefault(root(i), []).append(name)
    found = [sorted(group) for group in groups.values() if len(group) >= 2]
    return sorted(found, key=lambda group: (-len(group), group[0]))


def match_photos(media_dir: Path, names: Iterable[str]) -> tuple[list[list[str]], dict[str, int]]:
    """Groups of photos in media_dir that look alike, and the hash of each photo that could be read."""
    hashes = {}
    for name in names:
        value = photo_hash(media_dir / name)
        if value is not None:
            hashes[name] = value
    return group_similar(hashes), hashes
