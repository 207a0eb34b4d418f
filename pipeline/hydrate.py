"""Looking posts up by id ("hydrating" a shared dataset) and rechecking which are still there.

A collection from an id dataset, in a run's folder (names from pipeline.contract):

    report = read_ids(upload, folder / IDS_REQUESTED, name=original_name)     # pipeline.ids
    if report.should_refuse: ...                                               # the caller decides
    estimate = estimate_lookup(folder / IDS_REQUESTED, price_per_post=settings.DNFLOW_PRICE_PER_POST,
                               state_path=folder / LOOKUP_STATE)               # show before spending
    api = ApiConfig.from_django_settings()                                     # where the work runs
    result = hydrate(ids_path=folder / IDS_REQUESTED, raw_path=folder / LIVE_PARTIAL,
                     state_path=folder / LOOKUP_STATE, missing_path=folder / MISSING_IDS, api=api,
                     on_progress=..., on_wait=...)
    (folder / LIVE_PARTIAL).replace(folder / RAW_POSTS)                         # then summarise as usual

`hydrate` asks GET /2/tweets (tweepy's `Client.get_tweets`) for LOOKUP_BATCH ids at a time, with
the fields and expansions a search asks for, and stores every response page exactly as received,
one a line, with the rules of pipeline.rawpages (append, flush, fsync, then the state; a
half-written tail is cut on resume), so the summary pass reads the file like a search's. One page
per batch, in order: page n answers the ids on lines 100n+1..100n+100 of the id list, which is how
`missing-ids.csv` is derived from the pages at the end (the raw pages stay the one original).

The state (JSON, replaced atomically) records the id list it belongs to (size and sha256, so a
changed list is refused), `ids_total`, `position` (ids done: always a whole number of batches),
`ids_offset` (where the next batch starts in the list), `pages`, `raw_bytes` and `done`; once done,
`ids_found` and `missing` (reason -> ids). A kill at any point loses at most the batch in flight,
which the next run asks again; a finished batch is never asked twice.

Why an id is missing: the per-id problem X puts in the page's `errors`, named by the last part of
its `type` (REASONS lists the ones X sends), or NOT_RETURNED when X says nothing of the id. X gives
one answer for a post whose author protects their posts and for one whose author is suspended
("Authorization Error", not-authorized-for-resource): the two cannot be told apart from a lookup.

`recheck` looks a finished collection's ids up again (its tweet-ids.txt) and writes which are still
there, `tweet_id,status,reason,checked_at`, to a dated file (`recheck_paths`). It keeps no pages:
they would be fresh copies of the posts' text, and what a recheck is for (which posts are gone, and
why) is in the file; the collection's raw file stays the archival original (until its owner purges
the posts found gone: pipeline.purge). It asks only for the ids (no fields or expansions: X still
sends each post's text, which is read and dropped).

Both are billed by X per post read. Framework-free: no Django; the caller passes an ApiConfig
(pipeline.xapi_client) built where the work runs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO

from .contract import RECHECK_STAMP, RECHECK_STATE_NAME, recheck_names
from .outputs import write_csv
from .rawpages import StateError, append_durably, append_line, one_line, read_state, truncate_to_recorded, write_state
from .words import counted
from .xapi_client import (
    EXPANSIONS,
    MEDIA_FIELDS,
    TWEET_FIELDS,
    USER_FIELDS,
    ApiConfig,
    WaitCallback,
    XApiError,
    call_api,
    raw_client,
)

LOOKUP_BATCH = 100  # the most ids GET /2/tweets takes in one request
NOT_RETURNED = "not-returned"
# The reasons, keyed as X names them: the last part of the problem's `type`. Problems X may add
# later get the same treatment (their type's last part, else their title); these are the ones it
# sends for a post it will not give.
REASONS = {
    "resource-not-found": 'X could not find the post: it was deleted, or never existed ("Not Found Error").',
    "not-authorized-for-resource": (
        "X will not show the post: its author protects their posts, or is suspended "
        '("Authorization Error"; X answers both the same way).'
    ),
    NOT_RETURNED: "X returned neither the post nor a reason for it.",
}
MISSING_HEADER = ("tweet_id", "reason")
AVAILABILITY_HEADER = ("tweet_id", "status", "reason", "checked_at")
AVAILABLE, UNAVAILABLE = "available", "unavailable"

ProgressCallback = Callable[[int, int], None]


def missing_reason(problem: dict) -> str:
    """The reason key for one per-id problem of a lookup's `errors`.

    https://api.twitter.com/2/problems/resource-not-found -> "resource-not-found" (api.x.com alike);
    a problem without a type (or "about:blank") is named by its title, lower-cased and dashed.
    """
    kind = str(problem.get("type") or "")
    if kind and kind != "about:blank":
        return kind.rstrip("/").rsplit("/", 1)[-1]
    title = "-".join(str(problem.get("title") or "").lower().split())
    return title or "unknown-problem"


# --- The estimate -----------------------------------------------------------------------------------


@dataclass
class LookupEstimate:
    ids: int  # in the list
    remaining: int  # not looked up yet (all of them before a start)
    requests: int  # lookups still to send
    price_per_post: float

    @property
    def cost_at_most(self) -> float:
        # X bills the posts it returns: ids that are gone cost nothing, so this is an upper bound.
        return self.remaining * self.price_per_post

    def describe(self) -> str:
        cost = Decimal(self.remaining) * Decimal(str(self.price_per_post))
        price = f"{Decimal(str(self.price_per_post)):f}".rstrip("0").rstrip(".") if self.price_per_post else "0"
        done = f" ({self.ids - self.remaining:,} of {self.ids:,} done already)" if self.remaining < self.ids else ""
        return (
            f"at most {counted(self.remaining, 'post')} to read in {counted(self.requests, 'request')}{done}"
            " -- at most "
            f"${cost.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,} at ${price} per post read (posts that "
            "are gone are not billed, so it may cost less)"
        )


def estimate_lookup(ids_path: Path, *, price_per_post: float, state_path: Path | None = None) -> LookupEstimate:
    """What looking up the ids in ids_path (one a line) would cost at most; spends nothing.

    With the state_path of a lookup or recheck under way, only what is left is counted. dnflow
    passes price_per_post = DNFLOW_PRICE_PER_POST.
    """
    total = _count_ids(Path(ids_path))
    state = read_state(Path(state_path), required=("position",), what="lookup") if state_path else None
    done = 0 if state is None else (total if state.get("done") else min(int(state["position"]), total))
    remaining = total - done
    return LookupEstimate(
        ids=total,
        remaining=remaining,
        requests=-(-remaining // LOOKUP_BATCH),
        price_per_post=float(price_per_post),
    )


# --- Hydration --------------------------------------------------------------------------------------


@dataclass
class HydrateResult:
    ids_requested: int
    ids_found: int
    ids_missing_by_reason: dict[str, int]
    pages: int
    resumed: bool

    @property
    def ids_missing(self) -> int:
        return sum(self.ids_missing_by_reason.values())


def hydrate(
    *,
    ids_path: Path,
    raw_path: Path,
    state_path: Path,
    missing_path: Path,
    api: ApiConfig,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
) -> HydrateResult:
    """Look up every id of ids_path (one a line, each once: pipeline.ids.read_ids writes such a
    file) and store the response pages in raw_path, resumably; then write missing_path.

    on_progress(ids looked up, ids in the list) follows each stored page. on_wait(until, reason)
    starts each wait (a rate limit, a retry) and on_wait(None, "") ends it. Running it again with
    the same files resumes (or returns at once when done). Raises XApiError when X cannot give the
    posts (what was stored stays valid for a resume), and StateError (an XApiError) when the files
    do not belong together.
    """
    ids_path, raw_path, state_path, missing_path = map(Path, (ids_path, raw_path, state_path, missing_path))
    state, resumed = _start(ids_path, state_path, kind="lookup", fresh={"pages": 0, "raw_bytes": 0})
    if state.get("done"):
        return _hydrate_result(state, resumed=True)
    client = raw_client(api)  # before touching any file: a missing token changes nothing on disk
    truncate_to_recorded(raw_path, state["raw_bytes"], state_path)

    def send(batch: list[str]):
        return client.get_tweets(
            ids=batch,
            expansions=EXPANSIONS,
            tweet_fields=TWEET_FIELDS,
            user_fields=USER_FIELDS,
            media_fields=MEDIA_FIELDS,
        )

    for _batch, response, _page in _batches(ids_path, state, send, api=api, on_wait=on_wait):
        state["raw_bytes"] = append_line(raw_path, one_line(response.content))
        state["pages"] += 1
        _record(state_path, state, on_progress)

    counts: dict[str, int] = {}
    found = 0

    def missing_rows() -> Iterator[tuple[str, str]]:
        nonlocal found
        for batch, page in _stored_pages(ids_path, raw_path, state, state_path):
            answers = _answers(batch, page)
            for post_id in batch:
                reason = answers[post_id]
                if reason is None:
                    found += 1
                    continue
                counts[reason] = counts.get(reason, 0) + 1
                yield post_id, reason

    write_csv(missing_path, MISSING_HEADER, missing_rows())
    state.update(done=True, ids_found=found, missing=counts)
    write_state(state_path, state)
    return _hydrate_result(state, resumed=resumed)


def lookup_outcome(state_path: Path) -> HydrateResult | None:
    """What a finished lookup found, read back from its state; None before it finished."""
    state = read_state(Path(state_path), required=(), what="lookup")
    if not state or not state.get("done"):
        return None
    return _hydrate_result(state, resumed=False)


def _hydrate_result(state: dict, *, resumed: bool) -> HydrateResult:
    return HydrateResult(
        ids_requested=state["ids_total"],
        ids_found=state["ids_found"],
        ids_missing_by_reason=dict(state["missing"]),
        pages=state["pages"],
        resumed=resumed,
    )


def _stored_pages(ids_path: Path, raw_path: Path, state: dict, state_path: Path) -> Iterator[tuple[list[str], dict]]:
    """Each batch of the id list beside the page that answered it (one page per batch, in order)."""
    with open(ids_path, "rb") as ids, open(raw_path, "rb") as raw:
        for number in range(state["pages"]):
            batch = _read_batch(ids, ids_path)
            line = raw.readline()
            if not batch or not line.endswith(b"\n"):
                raise StateError(
                    f"{raw_path.name} and {ids_path.name} do not match ({state_path.name} records {state['pages']} "
                    f"pages; page {number + 1} has no batch of ids or no line): delete {state_path.name} and "
                    f"{raw_path.name} to look the ids up again from the start."
                )
            yield batch, json.loads(line)


def _answers(batch: list[str], page: dict) -> dict[str, str | None]:
    """For each id of the batch: None if the page has the post, else the reason it is missing."""
    asked = set(batch)
    found = {str(post.get("id")) for post in page.get("data") or [] if isinstance(post, dict)}
    reasons: dict[str, str] = {}
    for problem in page.get("errors") or []:
        if not isinstance(problem, dict) or problem.get("parameter", "ids") != "ids":
            continue  # a problem with an expansion (a mentioned user suspended...), not with an id asked
        key = str(problem.get("resource_id") or problem.get("value") or "")
        if key in asked and key not in found:
            reasons.setdefault(key, missing_reason(problem))
    return {post_id: None if post_id in found else reasons.get(post_id, NOT_RETURNED) for post_id in batch}


# --- Recheck -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecheckPaths:
    availability: Path  # rechecks/availability-<UTC stamp>.csv: appears once the recheck is done
    partial: Path  # the same, .part, while it runs
    state: Path


def recheck_paths(folder: Path, started: datetime | None = None) -> RecheckPaths:
    """The files of a new recheck of the run in `folder`, named by its UTC start (default: now)."""
    folder = Path(folder)
    availability, partial, state = recheck_names(started or datetime.now(UTC))
    return RecheckPaths(folder / availability, folder / partial, folder / state)


def unfinished_rechecks(folder: Path) -> list[RecheckPaths]:
    """Rechecks of the run in `folder` that started and did not finish (a killed worker), oldest
    first: pass one to `recheck` to resume it rather than starting another."""
    folder = Path(folder)
    found = []
    for path in sorted(folder.glob("rechecks/*.state.json")):
        match = RECHECK_STATE_NAME.match(path.relative_to(folder).as_posix())
        if not match:
            continue
        state = read_state(path, required=("position",), what="recheck")
        if state is not None and not state.get("done"):
            started = datetime.strptime(match.group(1), RECHECK_STAMP).replace(tzinfo=UTC)
            found.append(recheck_paths(folder, started))
    return found


@dataclass
class RecheckResult:
    ids_checked: int
    available: int
    unavailable_by_reason: dict[str, int]
    path: Path  # the availability file
    resumed: bool

    @property
    def unavailable(self) -> int:
        return sum(self.unavailable_by_reason.values())


def recheck(
    *,
    ids_path: Path,
    paths: RecheckPaths,
    api: ApiConfig,
    on_progress: ProgressCallback | None = None,
    on_wait: WaitCallback | None = None,
) -> RecheckResult:
    """Look the ids of a finished collection (its tweet-ids.txt) up again; write which X still gives.

    paths: from recheck_paths(folder) for a new recheck, or unfinished_rechecks(folder) to resume
    one. Writes paths.partial as it goes (a row per id, appended durably before the state records
    the batch), and moves it to paths.availability when done. Callbacks as for `hydrate`. Keeps no
    response pages (see the module's docstring).
    """
    ids_path = Path(ids_path)
    state, resumed = _start(ids_path, paths.state, kind="recheck", fresh={"csv_bytes": 0, "counts": {}})
    if state.get("done"):
        _finish_recheck(paths)
        return _recheck_result(state, paths, resumed=True)
    client = raw_client(api)
    paths.partial.parent.mkdir(parents=True, exist_ok=True)
    truncate_to_recorded(paths.partial, state["csv_bytes"], paths.state)
    if state["csv_bytes"] == 0:
        state["csv_bytes"] = append_durably(paths.partial, _csv_bytes([AVAILABILITY_HEADER]))

    def send(batch: list[str]):
        return client.get_tweets(ids=batch)

    counts = state["counts"]
    for batch, _response, page in _batches(ids_path, state, send, api=api, on_wait=on_wait):
        checked_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = []
        for post_id, reason in _answers(batch, page).items():
            status = AVAILABLE if reason is None else UNAVAILABLE
            rows.append((post_id, status, reason or "", checked_at))
            key = reason or AVAILABLE
            counts[key] = counts.get(key, 0) + 1
        state["csv_bytes"] = append_durably(paths.partial, _csv_bytes(rows))
        _record(paths.state, state, on_progress)

    state["done"] = True
    write_state(paths.state, state)
    _finish_recheck(paths)
    return _recheck_result(state, paths, resumed=resumed)


@dataclass
class Availability:
    """What a finished recheck's availability file says."""

    checked: int
    available: int
    unavailable_by_reason: dict[str, int]
    checked_at: str  # UTC ISO 8601, when the last batch was looked up
    gone: frozenset[str]  # the ids no longer available
    listed_among: int = 0  # how many of read_availability's `among` the file lists

    @property
    def unavailable(self) -> int:
        return len(self.gone)


def read_availability(path: Path, *, among: frozenset[str] = frozenset()) -> Availability:
    """Read an availability file (tweet_id,status,reason,checked_at) back; `among`: ids to count
    in it as it is read (the posts purged before: how many of them were looked up)."""
    gone: set[str] = set()
    reasons: dict[str, int] = {}
    checked = available = listed = 0
    last = ""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            checked += 1
            if among and row["tweet_id"] in among:
                listed += 1
            last = max(last, row.get("checked_at") or "")
            if row.get("status") == AVAILABLE:
                available += 1
            else:
                gone.add(row["tweet_id"])
                reason = row.get("reason") or NOT_RETURNED
                reasons[reason] = reasons.get(reason, 0) + 1
    return Availability(checked, available, reasons, last, frozenset(gone), listed)


def ids_among(path: Path, ids: frozenset[str]) -> int:
    """How many of `ids` a file of ids, one a line, lists."""
    if not ids:
        return 0
    with Path(path).open(encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip() in ids)


def _finish_recheck(paths: RecheckPaths) -> None:
    # The state says done before the rename: a kill in between leaves the .part, renamed next time.
    if paths.partial.exists():
        os.replace(paths.partial, paths.availability)


def _recheck_result(state: dict, paths: RecheckPaths, *, resumed: bool) -> RecheckResult:
    counts = dict(state["counts"])
    available = counts.pop(AVAILABLE, 0)
    return RecheckResult(
        ids_checked=state["ids_total"],
        available=available,
        unavailable_by_reason=counts,
        path=paths.availability,
        resumed=resumed,
    )


def _csv_bytes(rows) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode("utf-8")


# --- The loop both share -------------------------------------------------------------------------------


def _start(ids_path: Path, state_path: Path, *, kind: str, fresh: dict) -> tuple[dict, bool]:
    """The state to go on from (a new one, or the recorded one after checking it is for this list)."""
    if not ids_path.is_file():
        raise XApiError(f"There is no id list at {ids_path}: read the dataset with pipeline.ids.read_ids first.")
    size, digest = _fingerprint(ids_path)
    state = read_state(state_path, required=("position", "ids_offset", "ids_total"), what=kind)
    if state is None:
        total = _count_ids(ids_path)
        if total == 0:
            raise XApiError(f"The id list {ids_path.name} is empty: there is nothing to look up.")
        state = {
            "kind": kind,
            "ids_file": ids_path.name,
            "ids_bytes": size,
            "ids_sha256": digest,
            "ids_total": total,
            "batch_size": LOOKUP_BATCH,
            "position": 0,
            "ids_offset": 0,
            "batches": 0,
            "done": False,
            **fresh,
        }
        return state, False
    if state.get("kind") != kind or (state.get("ids_bytes"), state.get("ids_sha256")) != (size, digest):
        raise StateError(
            f"{state_path.name} belongs to another {state.get('kind', 'lookup')} or to an id list that has changed "
            f"since it started ({ids_path.name}): it cannot be resumed with this one. Use a new folder, or delete "
            f"{state_path.name} and the files beside it that it records to start again."
        )
    if state.get("batch_size") != LOOKUP_BATCH:
        raise StateError(f"{state_path.name} was written with batches of {state.get('batch_size')} ids: start again.")
    return state, True


def _batches(
    ids_path: Path, state: dict, send: Callable, *, api: ApiConfig, on_wait: WaitCallback | None
) -> Iterator[tuple[list[str], object, dict]]:
    """(batch, response, parsed page) for each batch after the state's position, one request each.

    The caller stores what it keeps, then calls _record; the next batch is read only then.
    """
    with open(ids_path, "rb") as ids:
        ids.seek(state["ids_offset"])
        while True:
            batch = _read_batch(ids, ids_path)
            if not batch:
                return
            response, page = call_api(
                lambda batch=batch: send(batch), source="lookup", api=api, on_wait=on_wait, collecting=True
            )
            if not isinstance(page, dict):
                raise XApiError("The X API answered a lookup with something that is not a page of posts; try again.")
            state["position"] += len(batch)
            state["ids_offset"] = ids.tell()
            state["batches"] += 1
            yield batch, response, page


def _record(state_path: Path, state: dict, on_progress: ProgressCallback | None) -> None:
    write_state(state_path, state)
    if on_progress:
        on_progress(state["position"], state["ids_total"])


def _read_batch(ids: IO[bytes], ids_path: Path) -> list[str]:
    """The next LOOKUP_BATCH ids of an open id list (blank lines skipped)."""
    batch: list[str] = []
    while len(batch) < LOOKUP_BATCH:
        line = ids.readline()
        if not line:
            break
        text = line.strip().decode("ascii", "replace")
        if not text:
            continue
        if not (text.isdigit() and len(text) <= 19):
            raise XApiError(
                f"{ids_path.name} holds {text[:40]!r}, which is not a post id. An id list for a lookup holds one "
                "id a line: make it with pipeline.ids.read_ids, which says what is wrong with a dataset."
            )
        batch.append(text)
    return batch


def _count_ids(ids_path: Path) -> int:
    with open(ids_path, "rb") as ids:
        return sum(1 for line in ids if line.strip())


def _fingerprint(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


__all__ = [
    "AVAILABILITY_HEADER",
    "LOOKUP_BATCH",
    "MISSING_HEADER",
    "NOT_RETURNED",
    "REASONS",
    "ApiConfig",
    "HydrateResult",
    "LookupEstimate",
    "RecheckPaths",
    "RecheckResult",
    "estimate_lookup",
    "hydrate",
    "missing_reason",
    "recheck",
    "recheck_paths",
    "unfinished_rechecks",
]
