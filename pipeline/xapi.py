"""Live collection from the X API v2 (recent or full-archive search) and the estimate before it.

`collect_live` stores every response page exactly as X sent it, one page per line, and keeps a small
state file beside it so a killed collection resumes where it stopped without losing or repeating a
post. `estimate` asks the counts endpoints how many posts a query matches and what reading them
costs. The client, its retries and its error messages live in `pipeline.xapi_client`.

The raw file and the state file
-------------------------------
- raw_path: one JSON document per line, each the body of one search response with its newlines
  removed (JSON allows none inside strings, so this changes nothing else): `data`, `includes`,
  `errors` and `meta` exactly as received. A page is appended, flushed and fsynced before the state
  records it.
- state_path (JSON, replaced atomically): `next_token`, `posts` (how many posts count), `pages`,
  `raw_bytes` (the raw file's size after the last recorded page), `done`, and what was asked
  (`query`, `source`, `start_time`, `end_time`, `since_id`) so that a resume with other parameters
  is refused.
- The posts that count are the first `posts` posts of the raw file, in file order. That is every
  post of every page, except when fewer than 10 were still needed: the API gives at least 10 per
  page, the page is stored whole (it must stay exactly as received), and only its first posts
  count; `counted_in_last_page` then says how many. `counted_pages()` reads the file that way.

The file rules (append, flush, fsync, then the state; cut a half-written tail on resume) are
`pipeline.rawpages`, shared with the lookups by id (`pipeline.hydrate`).

Refreshing a collection: `since_id` asks X only for posts newer than that id (for example the
newest id of an earlier run, `pipeline.ids.newest_id`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from .rawpages import append_line, one_line, truncate_to_recorded, write_state
from .rawpages import read_state as _read_state
from .times import parse_iso
from .xapi_client import (
    EXPANSIONS,
    MEDIA_FIELDS,
    TWEET_FIELDS,
    USER_FIELDS,
    ApiConfig,
    XApiError,
    call_api,
    make_client,
    raw_client,
)

__all__ = [
    "ApiConfig",
    "CollectResult",
    "Estimate",
    "XApiError",
    "collect_live",
    "counted_pages",
    "estimate",
    "make_client",
    "read_state",
]

# What each search asks for: EXPANSIONS, TWEET_FIELDS, USER_FIELDS, MEDIA_FIELDS (pipeline.xapi_client).
# The API's bounds on max_results for each search.
PAGE_SIZES = {"recent": (10, 100), "all": (10, 500)}
# What a full-archive search (and its count) covers when given no start_time: X's default, not 2006 on.
ALL_DEFAULT_DAYS = 30


@dataclass
class CollectResult:
    posts: int
    pages: int
    resumed: bool
    more_left: bool = False  # it stopped at its count while X had more posts to give (a next_token)


def collect_live(
    *,
    query: str,
    source: str,
    count: int,
    lang: str = "",
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
    since_id: str | int | None = None,
    raw_path: Path,
    state_path: Path,
    on_progress: Callable[[int, int], None] | None = None,
    on_wait: Callable[[datetime | None, str], None] | None = None,
    api: ApiConfig | None = None,
) -> CollectResult:
    """Collect exactly `count` posts (fewer if the search has fewer) into raw_path, resumably.

    since_id: only posts with a larger id (newer), as X's `since_id`; a resume with another one is
    refused. on_progress(posts so far, count) follows each stored page. on_wait(until, reason)
    starts each wait (a rate limit, a retry) and on_wait(None, "") ends it. api: how to reach X
    (default: from Django's settings). Raises XApiError when the API cannot give the posts;
    everything stored before stays valid for a resume.
    """
    if source not in PAGE_SIZES:
        raise ValueError(f"source must be 'recent' or 'all', not {source!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    raw_path, state_path = Path(raw_path), Path(state_path)
    full_query = f"{query} lang:{lang}" if lang else query
    asked = {
        "query": full_query,
        "source": source,
        "start_time": _api_time(start_time),
        "end_time": _api_time(end_time),
        "since_id": _post_id(since_id, "since_id"),
    }

    state = read_state(state_path)
    resumed = state is not None
    if state is None:
        state = {**asked, "next_token": None, "posts": 0, "pages": 0, "raw_bytes": 0, "done": False}
    else:
        _check_same_search(state, asked, state_path)
        if state.get("done"):
            return CollectResult(
                posts=state["posts"], pages=state["pages"], resumed=True, more_left=bool(state.get("next_token"))
            )
    api = api or ApiConfig.from_django_settings()
    client = raw_client(api)  # before touching any file: a missing token changes nothing on disk
    truncate_to_recorded(raw_path, state["raw_bytes"], state_path)

    search = client.search_recent_tweets if source == "recent" else client.search_all_tweets
    smallest, largest = PAGE_SIZES[source]
    params = {
        "expansions": EXPANSIONS,
        "tweet_fields": TWEET_FIELDS,
        "user_fields": USER_FIELDS,
        "media_fields": MEDIA_FIELDS,
    }
    for name in ("start_time", "end_time", "since_id"):
        if asked[name]:
            params[name] = asked[name]

    while not state["done"]:
        needed = count - state["posts"]
        # Never ask for more than needed (posts read are paid for), within the API's bounds.
        page_size = min(max(needed, smallest), largest)
        token = state["next_token"]

        def send(page_size=page_size, token=token):
            extra = {"next_token": token} if token else {}
            return search(full_query, max_results=page_size, **params, **extra)

        response, page = call_api(send, source=source, api=api, on_wait=on_wait, collecting=True)
        if not isinstance(page, dict):
            raise XApiError("The X API answered with something that is not a page of posts; try again later.")
        received = len(page.get("data") or [])
        counted = min(received, needed)
        raw_bytes = append_line(raw_path, one_line(response.content))

        next_token = (page.get("meta") or {}).get("next_token")
        state.update(next_token=next_token, posts=state["posts"] + counted, pages=state["pages"] + 1)
        state["raw_bytes"] = raw_bytes
        state.pop("counted_in_last_page", None)
        if counted < received:
            state["counted_in_last_page"] = counted
        state["done"] = not next_token or state["posts"] >= count
        write_state(state_path, state)
        if on_progress:
            on_progress(state["posts"], count)
    return CollectResult(
        posts=state["posts"], pages=state["pages"], resumed=resumed, more_left=bool(state.get("next_token"))
    )


def read_state(state_path: Path) -> dict | None:
    """The collection's state, or None if it has not stored a page yet."""
    return _read_state(state_path, required=("posts", "pages", "raw_bytes"))


def counted_pages(raw_path: Path, state_path: Path) -> Iterator[dict]:
    """The stored pages, parsed, with `data` cut to the posts that count (includes untouched)."""
    state = read_state(state_path)
    if state is None:
        return
    left, unread = state["posts"], state["raw_bytes"]
    with open(raw_path, "rb") as raw:
        for line in raw:
            if unread <= 0:
                break  # appended after the last recorded page: not part of the collection
            unread -= len(line)
            if not line.strip():
                continue
            page = json.loads(line)
            if "data" in page:
                page["data"] = page["data"][: max(left, 0)]
                left -= len(page["data"])
            yield page


def _check_same_search(state: dict, asked: dict, state_path: Path) -> None:
    # A name missing from a state written before it existed (since_id) was not asked then: None.
    differ = [name for name, value in asked.items() if state.get(name) != value]
    if differ:
        raise XApiError(
            f"{state_path} belongs to a collection with a different {', '.join(differ)}: it cannot be resumed "
            "with these parameters. Collect into a new folder, or delete it and the raw posts file beside it."
        )


def _post_id(value: str | int | None, name: str) -> str | None:
    """A post id as the API takes it (decimal digits), or None."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ValueError(f"{name} must be a post id (up to 19 digits), not {value!r}")
    return text


def _api_time(value: datetime | str | None) -> str | None:
    """A time as the API takes it (UTC, whole seconds). A naive datetime is taken to be UTC already."""
    if value is None or value == "":
        return None
    moment = parse_iso(value)
    if moment is None:
        raise ValueError(f"{value!r} is not an ISO 8601 time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- The estimate -------------------------------------------------------------------------------


@dataclass
class Estimate:
    total: int  # the posts that match
    by_day: list[tuple[str, int]]  # ("YYYY-MM-DD", posts), oldest first; days as the API cut them (UTC)
    cost: float  # of the posts the search reads (`reads`), not of every post that matches
    price_per_post: float
    days: int = 0  # the span the counts cover, in whole days (recent: 7); 0 if unknown
    # The span in seconds when it is known exactly: a window of minutes or hours is said as such.
    span_seconds: float = 0
    count: int | None = None  # the search's count: it stops there, whatever matches; None: no limit
    first_day: str = ""  # the first and last days counted ("YYYY-MM-DD", UTC); "" if unknown
    last_day: str = ""
    note: str = ""  # a sentence about the period, said after the numbers
    page_sizes: tuple[int, int] = (1, 1)  # the API's least and most posts a page (PAGE_SIZES)

    @property
    def reads(self) -> int:
        """The posts the search would read (and pay for) at most: up to its count, in pages of at
        most the API's largest, the last of them at least its smallest (a count of 5 reads 10)."""
        if self.count is None:
            return self.total
        smallest, largest = self.page_sizes
        pages, rest = divmod(self.count, largest)
        return min(self.total, pages * largest + (max(rest, smallest) if rest else 0))

    def span_text(self) -> str:
        """The period counted in the unit it is best read in: "7 days", "6 hours", "15 minutes"."""
        if 0 < self.span_seconds < 86400 * 1.5:
            # Under a day and a half, whole days would say "1 day" for a quarter of an hour.
            # Under two hours in minutes (90 minutes rounded to hours would be "2 hours"), then in
            # half hours (150 minutes is "2.5 hours", not "3 hours").
            amount, unit = (
                (int(self.span_seconds / 1800 + 0.5) / 2, "hour")
                if self.span_seconds >= 3600 * 2
                else (max(1, round(self.span_seconds / 60)), "minute")
            )
            if unit == "hour" and amount.is_integer():
                amount = int(amount)
            if unit == "hour" and amount == 24:
                amount, unit = 1, "day"
        else:
            amount, unit = self.days or len(self.by_day), "day"
        return f"{amount:,} {unit}{'s' if amount != 1 else ''}" if amount else ""

    def describe(self) -> str:
        dates = f": {self.first_day} to {self.last_day}" if self.first_day and self.last_day else ""
        if self.first_day and self.first_day == self.last_day:
            dates = f": {self.first_day}"
        span_text = self.span_text()
        span = f" ({span_text}{dates})" if span_text else ""
        cost = (Decimal(str(self.reads)) * Decimal(str(self.price_per_post))).quantize(Decimal("0.01"), ROUND_HALF_UP)
        price = f"{Decimal(str(self.price_per_post)):f}".rstrip("0").rstrip(".") if self.price_per_post else "0"
        reading, bound = "", "about"
        if self.count is not None and self.count < self.total:
            pages = f" (X's pages hold at least {self.page_sizes[0]:,} posts)" if self.reads > self.count else ""
            reading, bound = f"; with count {self.count:,} the search reads at most {self.reads:,}{pages}", "at most"
        elif self.count is not None and self.total:
            reading = f"; with count {self.count:,} the search reads them all"
        return (
            f"about {self.total:,} post{'s' if self.total != 1 else ''} match{'es' if self.total == 1 else ''}{span}"
            f"{reading} -- {bound} ${cost:,} at ${price} per post read"
        ) + (f". {self.note}" if self.note else "")


def estimate(
    *,
    query: str,
    source: str,
    lang: str = "",
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
    count: int | None = None,
    api: ApiConfig | None = None,
    price_per_post: float | None = None,
    start_field: str = "--start",
) -> Estimate:
    """How many posts the query matches, by day, and what the search would cost. Spends no reads.

    count: the search's count. The search stops there, so it reads (and pays for) at most that many
    however many match; None prices every post that matches.
    api and price_per_post default to Django's settings (X_BEARER_TOKEN..., DNFLOW_PRICE_PER_POST).
    start_field: what the person asking calls the start time (the form's "From", the command's
    "--start"), named where the estimate says to give one.
    """
    if source not in PAGE_SIZES:
        raise ValueError(f"source must be 'recent' or 'all', not {source!r}")
    api = api or ApiConfig.from_django_settings()
    client = raw_client(api)
    count_posts = client.get_recent_tweets_count if source == "recent" else client.get_all_tweets_count
    params: dict = {"granularity": "day"}
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if _api_time(value):
            params[name] = _api_time(value)
    full_query = f"{query} lang:{lang}" if lang else query

    per_day: dict[str, int] = {}
    edges: list[datetime] = []
    token = None
    while True:

        def send(token=token):
            extra = {"next_token": token} if token else {}
            return count_posts(full_query, **params, **extra)

        # Answered at once or not at all: a person waits for an estimate (on a page, too).
        _, body = call_api(send, source=f"counts_{source}", api=api, wait_for_rate_limits=False)
        if not isinstance(body, dict):
            raise XApiError("The X API answered the count with something unexpected; try again later.")
        for bucket in body.get("data") or []:
            day = str(bucket.get("start", ""))[:10]
            per_day[day] = per_day.get(day, 0) + int(bucket.get("tweet_count", 0))
            edges += [parse_iso(bucket.get("start")), parse_iso(bucket.get("end"))]
        # Only /counts/all pages; /counts/recent answers in one go.
        token = (body.get("meta") or {}).get("next_token") if source == "all" else None
        if not token:
            break

    by_day = sorted(per_day.items())
    total = sum(n for _, n in by_day)
    if price_per_post is None:
        from django.conf import settings

        price_per_post = settings.DNFLOW_PRICE_PER_POST
    price = float(price_per_post)
    edges = [edge for edge in edges if edge is not None]
    span_seconds = (max(edges) - min(edges)).total_seconds() if edges else 0
    days = max(1, round(span_seconds / 86400)) if edges else 0
    result = Estimate(
        total=total,
        by_day=by_day,
        cost=0.0,
        price_per_post=price,
        days=days,
        span_seconds=span_seconds,
        count=count,
        page_sizes=PAGE_SIZES[source],
    )
    result.cost = result.reads * price
    if edges:
        # The end is exclusive: a period ending at midnight ends the day before.
        result.first_day = min(edges).astimezone(UTC).date().isoformat()
        result.last_day = (max(edges) - timedelta(microseconds=1)).astimezone(UTC).date().isoformat()
    if source == "all" and not _api_time(start_time):
        # People read "full archive" as "since 2006"; X searches (and counts) only the last 30 days then.
        days_back = f"{ALL_DEFAULT_DAYS} days"
        before = f"the {days_back} before its end time" if _api_time(end_time) else f"the last {days_back}"
        result.note = (
            f"Without a start time a full-archive search covers only {before} (X's default), the days counted "
            f"here: give a start time ({start_field}) to reach further back."
        )
    return result
