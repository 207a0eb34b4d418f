"""A local X API v2 emulator: a real HTTP server on 127.0.0.1 that tweepy (or anything) can talk to.

It serves the five endpoints dnflow uses, built from REAL recorded data
(`v2-pages-twarc-network.jsonl`: 500 posts of 2021-06-26 in 5 pages, test fixture only):

    GET /2/tweets/search/recent   GET /2/tweets/search/all      (pages with includes, errors, meta)
    GET /2/tweets/counts/recent   GET /2/tweets/counts/all      (buckets by minute, hour or day)
    GET /2/tweets?ids=...                                       (lookup: 1..100 ids, data, includes, errors)

Search results are re-paginated to the request's `max_results` (10..100 recent, 10..500 all, as the
API enforces), newest first, with an opaque `next_token`. Each page's `includes` hold exactly what
its posts reference, taken from the recorded page each post came from, and only for the expansions
asked for; objects keep only the fields asked for (`tweet.fields`, `user.fields`, ...), as the real
API does. Asked with the recorded request's own fields and 100 per page, it gives back the recorded
pages themselves (minus twarc's `__twarc` key, and with its own next_token). The query is not
interpreted except `lang:xx`; `start_time` / `end_time` filter by `created_at`, `since_id` keeps only
posts with a larger id (newer), as X does. The emulator's clock
is when the data was recorded (`emulator.now`, 2021-06-26T19:56:43Z), for the recent window checks
and the default windows (a full-archive search or count without `start_time` covers 30 days).

The lookup answers each id in the order asked, with the same fields and expansions rules as the
search: a post it has goes in `data` (its includes with it); any other id gets a per-id problem in
`errors` with the shape X really sends (see `_lookup_problem` for the sources): an id it never had,
or one deleted with `delete_posts`, gets "Not Found Error" (resource-not-found); a post whose author
is protected (`protect_authors`) or suspended (`suspend_authors`) gets "Authorization Error"
(not-authorized-for-resource): X does not tell those two apart in a lookup. Deleted posts and posts
of protected or suspended authors are left out of searches and counts too, as X leaves them out.

Use from a test:

    from tests.x_emulator import Fault, x_api  # noqa: F401  (x_api is a fixture)

    def test_something(x_api):                  # settings.DNFLOW_X_API_URL / X_BEARER_TOKEN now point here
        x_api.fail_next(Fault.rate_limit(reset_in=2), Fault.server_error(503))
        x_api.page_delay = 0.2                  # seconds before each search page is answered
        ...
        x_api.requests                          # every request: RecordedRequest(path, params, headers, ...)
        x_api.search_requests()                 # only the /2/tweets/search/* ones
        x_api.lookup_requests()                 # only the GET /2/tweets ones (params["ids"])
        x_api.posts                             # the 500 recorded posts, newest first (full objects)
        x_api.delete_posts("1408...", ...)      # from now on: not found, and out of searches
        x_api.protect_authors(post["author_id"])  # their posts: not authorized
        x_api.suspend_authors(post["author_id"])  # likewise (X answers the same)

Faults (each answers one request, in the order queued; see `Fault` for the shapes):
`Fault.rate_limit(reset_in)` (429 with x-rate-limit-reset; until then every request gets the 429
again, as a real window does), `Fault.rate_limit_without_reset()`, `Fault.usage_cap()`,
`Fault.server_error(503)`, `Fault.bad_request(message)`, `Fault.unauthorized()`,
`Fault.not_enrolled()` (the real 403 "client-not-enrolled" problem), `Fault.drop()` (closes the
connection without an answer), `Fault.stall(seconds)` (answers normally, late: for timeouts),
`Fault.normal()` (answers normally: to place a fault on a later request).

A wrong or missing bearer token always gets the real 401 problem body. Recorded requests never hold
the token: the Authorization header is dropped and `authorized` says whether it was right.

Outside pytest: `XApiEmulator(token="t")` starts it, `.url` is its address, `.stop()` ends it. From a
shell, to try the paid paths by hand (`--help` for the rest):

    .venv/bin/python -m tests.x_emulator --token t --delete 1408876650968846337 &
    # it prints the two settings to export, DNFLOW_X_API_URL=... and X_BEARER_TOKEN=t, and serves until stopped

PYTEST_DONT_REWRITE: test modules import this before pytest loads it as a plugin (for `x_api`);
it asserts nothing, so it needs no assertion rewriting, and this marker spares the warning.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

# The team's real recorded data, where the tests find it (conftest: DNFLOW_REAL_DATA, else beside the checkout).
REAL_PAGES = (
    Path(
        os.environ.get("DNFLOW_REAL_DATA") or Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real"
    )
    / "v2-pages-twarc-network.jsonl"
)
SEARCH_PATHS = {"/2/tweets/search/recent": 100, "/2/tweets/search/all": 500}  # path -> largest max_results
COUNT_PATHS = ("/2/tweets/counts/recent", "/2/tweets/counts/all")
LOOKUP_PATH = "/2/tweets"
LOOKUP_LARGEST = 100  # ids per lookup request
INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
NOT_FOUND = "https://api.twitter.com/2/problems/resource-not-found"
NOT_AUTHORIZED = "https://api.twitter.com/2/problems/not-authorized-for-resource"
POST_ID = re.compile(r"[0-9]{1,19}")  # what X takes as a post id: its messages quote ^[0-9]{1,19}$
# Fields every object carries whatever was asked (the API's defaults).
DEFAULT_FIELDS = {"tweets": {"id", "text"}, "users": {"id", "name", "username"}, "media": {"media_key", "type"}}
DEFAULT_FIELDS["places"] = {"id", "full_name"}
# Tweet fields an expansion brings along even when not listed in tweet.fields.
EXPANSION_TWEET_FIELDS = {
    "author_id": "author_id",
    "referenced_tweets.id": "referenced_tweets",
    "attachments.media_keys": "attachments",
    "in_reply_to_user_id": "in_reply_to_user_id",
    "geo.place_id": "geo",
}
USER_EXPANSIONS = {"author_id", "entities.mentions.username", "in_reply_to_user_id", "referenced_tweets.id.author_id"}


@dataclass
class Fault:
    """One scripted answer. `kind` is "reply" (status/body/headers), "drop", "stall" or "normal"."""

    kind: str
    status: int = 0
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset_in: float | None = None  # for a rate limit: the window ends this many seconds after the answer
    seconds: float = 0.0  # for a stall

    @classmethod
    def rate_limit(cls, reset_in: float = 2.0) -> Fault:
        body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
        return cls("reply", 429, body, reset_in=reset_in)

    @classmethod
    def rate_limit_without_reset(cls) -> Fault:
        body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
        return cls("reply", 429, body)

    @classmethod
    def usage_cap(cls) -> Fault:
        # The shape X sends when the plan's post reads are used up (a 429, but no window to wait out).
        body = {
            "account_id": "1234567890",
            "product_name": "standard-basic",
            "title": "UsageCapExceeded",
            "period": "Monthly",
            "scope": "Product",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": "https://api.twitter.com/2/problems/usage-capped",
        }
        return cls("reply", 429, body, headers={"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449"})

    @classmethod
    def server_error(cls, status: int = 503) -> Fault:
        title = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
        return cls("reply", status, {"title": title, "detail": title, "type": "about:blank", "status": status})

    @classmethod
    def bad_request(cls, message: str, parameter: str = "query", value: str = "") -> Fault:
        body = {
            "errors": [{"parameters": {parameter: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": INVALID_REQUEST,
        }
        return cls("reply", 400, body)

    @classmethod
    def unauthorized(cls) -> Fault:
        return cls("reply", 401, _unauthorized_body())

    @classmethod
    def not_enrolled(cls, required_enrollment: str = "Appropriate Level of API Access") -> Fault:
        body = {
            "client_id": "12345678",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens "
            "from a Twitter developer App that is attached to a Project. You can create a project via the "
            "developer portal.",
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden",
            "required_enrollment": required_enrollment,
            "reason": "client-not-enrolled",
            "type": "https://api.twitter.com/2/problems/client-forbidden",
        }
        return cls("reply", 403, body)

    @classmethod
    def normal(cls) -> Fault:
        """Answer this request as usual: to script a fault for a later one."""
        return cls("normal")

    @classmethod
    def drop(cls) -> Fault:
        return cls("drop")

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        return cls("stall", seconds=seconds)


@dataclass
class RecordedRequest:
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # without Authorization
    authorized: bool
    at: float  # time.time() on arrival
    status: int = 0  # what the emulator answered; 0 for a dropped connection
    body: bytes = b""  # the response body exactly as sent
    response_headers: dict[str, str] = field(default_factory=dict)  # the ones the emulator added


def _unauthorized_body() -> dict:
    return {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


def _invalid(parameter: str, value: str, message: str) -> dict:
    return {
        "errors": [{"parameters": {parameter: [value]}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": INVALID_REQUEST,
    }


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _api_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _Dataset:
    """The recorded posts, each with the includes and errors of the page it was recorded in."""

    def __init__(self, pages_file: Path):
        self.posts: list[dict] = []
        self.recorded_at: datetime | None = None  # when twarc fetched the first page: the emulator's "now"
        self.origin: list[int] = []  # index of the recorded page each post came from
        self.pages: list[dict] = []
        for line in pages_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                page = json.loads(line)
                twarc = page.pop("__twarc", {})
                if self.recorded_at is None and twarc.get("retrieved_at"):
                    self.recorded_at = _parse_time(twarc["retrieved_at"])
                self.pages.append(page)
        for number, page in enumerate(self.pages):
            for post in page.get("data", []):
                self.posts.append(post)
                self.origin.append(number)

    def includes_for(self, indexes: list[int], expansions: set[str]) -> tuple[dict, list]:
        """The includes and errors a page of these posts gets, in the recorded order, deduplicated."""
        wanted: dict[str, set[tuple[int, str]]] = {"users": set(), "tweets": set(), "media": set(), "places": set()}
        errors: list[dict] = []
        for index in indexes:
            post, number = self.posts[index], self.origin[index]
            page_includes = self.pages[number].get("includes", {})
            by_username = {u["username"].lower(): u["id"] for u in page_includes.get("users", [])}
            by_tweet = {t["id"]: t for t in page_includes.get("tweets", [])}
            users = wanted["users"]
            if "author_id" in expansions:
                users.add((number, post["author_id"]))
            if "in_reply_to_user_id" in expansions and "in_reply_to_user_id" in post:
                users.add((number, post["in_reply_to_user_id"]))
            if "entities.mentions.username" in expansions:
                for mention in post.get("entities", {}).get("mentions", []):
                    if mention["username"].lower() in by_username:
                        users.add((number, by_username[mention["username"].lower()]))
                    else:  # suspended or deleted: the recorded page says so in its errors
                        errors += [
                            e
                            for e in self.pages[number].get("errors", [])
                            if e.get("value", "").lower() == mention["username"].lower() and e not in errors
                        ]
            for ref in post.get("referenced_tweets", []):
                if "referenced_tweets.id" in expansions and ref["id"] in by_tweet:
                    wanted["tweets"].add((number, ref["id"]))
                if "referenced_tweets.id.author_id" in expansions and ref["id"] in by_tweet:
                    users.add((number, by_tweet[ref["id"]]["author_id"]))
            if "attachments.media_keys" in expansions:
                for key in post.get("attachments", {}).get("media_keys", []):
                    wanted["media"].add((number, key))
            if "geo.place_id" in expansions and "place_id" in post.get("geo", {}):
                wanted["places"].add((number, post["geo"]["place_id"]))

        includes: dict[str, list] = {}
        id_key = {"users": "id", "tweets": "id", "media": "media_key", "places": "id"}
        for kind, keys in wanted.items():
            seen: set[str] = set()
            items = []
            for number in sorted({n for n, _ in keys}):
                for item in self.pages[number].get("includes", {}).get(kind, []):
                    key = item[id_key[kind]]
                    if (number, key) in keys and key not in seen:
                        seen.add(key)
                        items.append(item)
            if items:
                includes[kind] = items
        return includes, errors


class XApiEmulator:
    def __init__(self, token: str, pages_file: Path = REAL_PAGES):
        self.token = token
        self.data = _Dataset(pages_file)
        self.posts = self.data.posts
        newest = max(_parse_time(p["created_at"]) for p in self.posts)
        self.now = self.data.recorded_at or newest + timedelta(seconds=30)
        self.page_delay = 0.0
        self.counts_buckets_per_page = 31  # /counts/all pages: X sends 31 days per page at day granularity
        self.requests: list[RecordedRequest] = []
        self.deleted_posts: set[str] = set()
        self.protected_authors: set[str] = set()
        self.suspended_authors: set[str] = set()
        self._by_id = {post["id"]: index for index, post in enumerate(self.posts)}
        self._faults: deque[Fault] = deque()
        self._limited_until: float | None = None  # a rate-limit window in force (Unix seconds)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, name="x-api-emulator", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)  # so that stop() returns at once

    # --- test scripting ---------------------------------------------------------------------
    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def search_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path in SEARCH_PATHS]

    def lookup_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == LOOKUP_PATH]

    def delete_posts(self, *post_ids: str) -> None:
        """These posts are gone: a lookup answers "Not Found Error", searches no longer find them."""
        self.deleted_posts.update(str(i) for i in post_ids)

    def protect_authors(self, *user_ids: str) -> None:
        """These accounts protect their posts: a lookup answers "Authorization Error" for each."""
        self.protected_authors.update(str(i) for i in user_ids)

    def suspend_authors(self, *user_ids: str) -> None:
        """These accounts are suspended: a lookup of their posts answers "Authorization Error" too."""
        self.suspended_authors.update(str(i) for i in user_ids)

    def unavailable(self, post: dict) -> str | None:
        """Why X would not give this post now ("deleted", "protected", "suspended"), or None."""
        if post["id"] in self.deleted_posts:
            return "deleted"
        if post.get("author_id") in self.suspended_authors:
            return "suspended"
        if post.get("author_id") in self.protected_authors:
            return "protected"
        return None

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- answering ----------------------------------------------------------------------------
    def _handler_class(self):
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real API

            def do_GET(self):  # noqa: N802 (the name http.server calls)
                emulator._answer(self)

            def log_message(self, format, *args):  # noqa: A002 - quiet: pytest shows failures, not traffic
                pass

        return Handler

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "authorization"}
        authorized = handler.headers.get("Authorization", "") == f"Bearer {self.token}"
        record = RecordedRequest(url.path, params, headers, authorized, time.time())
        with self._lock:
            self.requests.append(record)
            in_window = self._limited_until is not None and time.time() < self._limited_until
            fault = None if in_window else (self._faults.popleft() if self._faults else None)

        if in_window:  # a client that did not wait gets the same 429 again
            body = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
            return self._send(handler, record, 429, body, self._limit_headers(0, self._limited_until))
        if fault is not None:
            if fault.kind == "drop":
                handler.close_connection = True
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault.kind == "stall":
                time.sleep(fault.seconds)
            elif fault.kind == "reply":
                headers = dict(fault.headers)
                if fault.reset_in is not None:
                    reset = math.ceil(time.time() + fault.reset_in)
                    with self._lock:
                        self._limited_until = reset
                    headers.update(self._limit_headers(0, reset))
                return self._send(handler, record, fault.status, fault.body, headers)

        if url.path not in SEARCH_PATHS and url.path not in COUNT_PATHS and url.path != LOOKUP_PATH:
            body = {"title": "Not Found Error", "detail": f"Unknown path {url.path}", "type": "about:blank"}
            return self._send(handler, record, 404, body)
        if not authorized:
            return self._send(handler, record, 401, _unauthorized_body())
        if url.path in SEARCH_PATHS or url.path == LOOKUP_PATH:
            status, body = self._search(url.path, params) if url.path in SEARCH_PATHS else self._lookup(params)
            if status == 200 and self.page_delay:
                time.sleep(self.page_delay)
        else:
            status, body = self._counts(url.path, params)
        self._send(handler, record, status, body, self._limit_headers(449, time.time() + 900))

    def _send(self, handler, record: RecordedRequest, status: int, body: dict | None, headers=None) -> None:
        record.status = status
        payload = json.dumps(body or {}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        record.body = payload
        record.response_headers = dict(headers or {})
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client went away (a killed process): nothing to answer
            handler.close_connection = True

    @staticmethod
    def _limit_headers(remaining: int, reset: float) -> dict[str, str]:
        return {
            "x-rate-limit-limit": "450",
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(int(reset)),
        }

    def _window(self, path: str, params: dict[str, str]) -> tuple[datetime | None, datetime | None, dict | None]:
        """start_time / end_time, checked as the API checks them; an error body if refused."""
        try:
            start = _parse_time(params["start_time"]) if params.get("start_time") else None
            end = _parse_time(params["end_time"]) if params.get("end_time") else None
        except ValueError:
            return None, None, _invalid("start_time", "", "Invalid start_time or end_time: use ISO 8601 (RFC 3339).")
        if path.endswith("/recent") and start is not None and start < self.now - timedelta(days=7):
            message = (
                f"Invalid 'start_time':'{params['start_time']}'. 'start_time' must be on or after "
                f"{_api_time(self.now - timedelta(days=7))}"
            )
            return None, None, _invalid("start_time", params["start_time"], message)
        if start and end and start >= end:
            return None, None, _invalid("end_time", params["end_time"], "end_time must be after start_time")
        return start, end, None

    def _matching(self, query: str, start: datetime | None, end: datetime | None, since_id: int = 0) -> list[int]:
        lang = re.search(r"(?:^|\s)lang:(\S+)", query)
        indexes = []
        for index, post in enumerate(self.posts):
            created = _parse_time(post["created_at"])
            if lang and post.get("lang") != lang.group(1):
                continue
            if (start and created < start) or (end and created >= end):
                continue
            if since_id and int(post["id"]) <= since_id:
                continue
            if self.unavailable(post):
                continue
            indexes.append(index)
        return indexes

    @staticmethod
    def _since_id(params: dict[str, str]) -> tuple[int, dict | None]:
        value = params.get("since_id")
        if value is None:
            return 0, None
        if not POST_ID.fullmatch(value):
            message = f"The `since_id` query parameter value [{value}] does not match ^[0-9]{{1,19}}$"
            return 0, _invalid("since_id", value, message)
        return int(value), None

    def _search(self, path: str, params: dict[str, str]) -> tuple[int, dict]:
        query = params.get("query", "")
        if not query.strip():
            return 400, _invalid("query", query, "The `query` query parameter can not be empty")
        largest = SEARCH_PATHS[path]
        raw_max = params.get("max_results", "10")
        if not raw_max.isdigit() or not 10 <= int(raw_max) <= largest:
            return 400, _invalid(
                "max_results",
                raw_max,
                f"The `max_results` query parameter value [{raw_max}] is not between 10 and {largest}",
            )
        offset = 0
        if params.get("next_token"):
            token = re.fullmatch(r"emu1b26v89c([0-9a-z]+)", params["next_token"])
            if not token:
                message = f"The `next_token` query parameter value [{params['next_token']}] is not valid"
                return 400, _invalid("next_token", params["next_token"], message)
            offset = int(token.group(1), 36)
        start, end, error = self._window(path, params)
        if error:
            return 400, error
        if path.endswith("/all") and start is None:
            start = (end or self.now) - timedelta(days=30)  # X's default, as for the counts: not 2006 on
        since_id, error = self._since_id(params)
        if error:
            return 400, error
        matching = self._matching(query, start, end, since_id)
        chosen = matching[offset : offset + int(raw_max)]
        if not chosen:
            return 200, {"meta": {"result_count": 0}}
        body = self._posts_body(chosen, params)
        meta = {"newest_id": self.posts[chosen[0]]["id"], "oldest_id": self.posts[chosen[-1]]["id"]}
        meta["result_count"] = len(chosen)
        if offset + len(chosen) < len(matching):
            meta["next_token"] = "emu1b26v89c" + _base36(offset + len(chosen))
        body["meta"] = meta
        return 200, body

    def _posts_body(self, chosen: list[int], params: dict[str, str], errors: list | None = None) -> dict:
        """`data`, `includes` and `errors` for these posts, with the fields and expansions asked for."""
        expansions = set(filter(None, params.get("expansions", "").split(",")))
        includes, expansion_errors = self.data.includes_for(chosen, expansions)
        errors = (errors or []) + expansion_errors
        tweet_fields = self._fields(params, "tweet.fields", "tweets")
        tweet_fields |= {f for e, f in EXPANSION_TWEET_FIELDS.items() if e in expansions}
        body: dict = {}
        if chosen:
            body["data"] = [_only(self.posts[i], tweet_fields) for i in chosen]
        if includes:
            kinds = {
                "users": "user.fields",
                "tweets": "tweet.fields",
                "media": "media.fields",
                "places": "place.fields",
            }
            body["includes"] = {
                kind: [
                    _only(item, tweet_fields if kind == "tweets" else self._fields(params, kinds[kind], kind))
                    for item in items
                ]
                for kind, items in includes.items()
            }
        if errors:
            body["errors"] = errors
        return body

    def _lookup(self, params: dict[str, str]) -> tuple[int, dict]:
        """GET /2/tweets: each id asked, in order, as a post in `data` or a problem in `errors`."""
        raw = params.get("ids", "")
        if not raw.strip():
            return 400, _invalid("ids", raw, "The `ids` query parameter can not be empty")
        asked = raw.split(",")
        if len(asked) > LOOKUP_LARGEST:
            message = (
                f"The number of values in the `ids` query parameter list [{len(asked)}] is not between 1 "
                f"and {LOOKUP_LARGEST}"
            )
            return 400, _invalid("ids", raw, message)
        for value in asked:
            if not POST_ID.fullmatch(value):
                return 400, _invalid(
                    "ids", value, f"The `ids` query parameter value [{value}] does not match ^[0-9]{{1,19}}$"
                )
        found: list[int] = []
        errors: list[dict] = []
        for post_id in dict.fromkeys(asked):  # an id asked twice is answered once
            index = self._by_id.get(post_id)
            why = "deleted" if index is None else self.unavailable(self.posts[index])
            if why is None:
                found.append(index)
            else:
                errors.append(_lookup_problem(post_id, why))
        return 200, self._posts_body(found, params, errors)

    @staticmethod
    def _fields(params: dict[str, str], name: str, kind: str) -> set[str]:
        return DEFAULT_FIELDS[kind] | set(filter(None, params.get(name, "").split(",")))

    def _counts(self, path: str, params: dict[str, str]) -> tuple[int, dict]:
        query = params.get("query", "")
        if not query.strip():
            return 400, _invalid("query", query, "The `query` query parameter can not be empty")
        granularity = params.get("granularity", "hour")
        units = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
        if granularity not in units:
            return 400, _invalid("granularity", granularity, "The `granularity` must be one of minute, hour, day")
        start, end, error = self._window(path, params)
        if error:
            return 400, error
        end = end or self.now
        start = start or end - timedelta(days=7 if path.endswith("/recent") else 30)
        unit = units[granularity]
        buckets = []
        edge = start
        while edge < end:
            # Buckets end on whole units (midnight for days), the first and last may be partial.
            floor = datetime(edge.year, edge.month, edge.day, tzinfo=UTC)
            if granularity != "day":
                floor += ((edge - floor) // unit) * unit
            stop = min(floor + unit, end)
            buckets.append((edge, stop))
            edge = stop
        since_id, error = self._since_id(params)
        if error:
            return 400, error
        counted = [self.posts[i]["created_at"] for i in self._matching(query, start, end, since_id)]
        created = [_parse_time(c) for c in counted]
        data = [
            {"end": _api_time(b), "start": _api_time(a), "tweet_count": sum(a <= c < b for c in created)}
            for a, b in buckets
        ]
        if path.endswith("/recent"):
            return 200, {"data": data, "meta": {"total_tweet_count": sum(d["tweet_count"] for d in data)}}
        # Full-archive counts come in pages, newest first.
        page = self.counts_buckets_per_page
        offset = 0
        if params.get("next_token"):
            token = re.fullmatch(r"emu1c0unt([0-9a-z]+)", params["next_token"])
            if not token:
                return 400, _invalid(
                    "next_token", params["next_token"], "The `next_token` query parameter is not valid"
                )
            offset = int(token.group(1), 36)
        stop = len(data) - offset
        chunk = data[max(0, stop - page) : stop]
        meta: dict = {"total_tweet_count": sum(d["tweet_count"] for d in chunk)}
        if stop - page > 0:
            meta["next_token"] = "emu1c0unt" + _base36(offset + page)
        return 200, {"data": chunk, "meta": meta}


def _lookup_problem(post_id: str, why: str) -> dict:
    """The per-id problem X puts in a lookup's `errors` for a post it will not give.

    Shapes as X sends them (key order too), from real answers quoted in public issue threads:
    - a deleted (or never existing) post: HunterLarco/twitter-v2 issue #33, "Could not find tweet
      with ids: [1341761249646956500]." (`resource_id` as the OpenAPI ResourceNotFoundProblem has it);
    - a protected author's post: zeeraktalat/hatespeech issue #9, "Sorry, you are not authorized
      to see the Tweet with ids: [551659627872415744]." with `section: data`;
    - a suspended author's post: HunterLarco/twitter-v2 issue #26 quotes X's answer for "a tweet
      from an account that is suspended" (id 1000082502030065665): the same Authorization Error.
      ("User has been suspended: [...]", title Forbidden, is what X says of the *user* when a page
      expands one: the recorded pages hold such errors for mentions.)
    """
    if why == "deleted":
        return {
            "value": post_id,
            "detail": f"Could not find tweet with ids: [{post_id}].",
            "title": "Not Found Error",
            "resource_type": "tweet",
            "parameter": "ids",
            "resource_id": post_id,
            "type": NOT_FOUND,
        }
    return {
        "value": post_id,
        "parameter": "ids",
        "resource_type": "tweet",
        "section": "data",
        "title": "Authorization Error",
        "detail": f"Sorry, you are not authorized to see the Tweet with ids: [{post_id}].",
        "resource_id": post_id,
        "type": NOT_AUTHORIZED,
    }


def _only(item: dict, fields: set[str]) -> dict:
    return {k: v for k, v in item.items() if k in fields}


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


@pytest.fixture
def x_api(settings):
    """A running emulator; dnflow's settings point at it with a test bearer token."""
    token = "emulator-test-token-" + secrets.token_hex(12)
    emulator = XApiEmulator(token=token)
    settings.DNFLOW_X_API_URL = emulator.url
    settings.X_BEARER_TOKEN = token
    try:
        yield emulator
    finally:
        emulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator until interrupted; print the settings that point dnflow at it."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m tests.x_emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--token", default="emulator-token", help="the bearer token it accepts")
    parser.add_argument(
        "--pages", type=Path, default=REAL_PAGES, help=f"recorded v2 pages to serve (default: {REAL_PAGES})"
    )
    parser.add_argument("--delete", nargs="*", default=[], metavar="ID", help="posts gone from X")
    parser.add_argument("--protect", nargs="*", default=[], metavar="USER_ID", help="authors who protect theirs")
    parser.add_argument("--suspend", nargs="*", default=[], metavar="USER_ID", help="suspended authors")
    parser.add_argument("--page-delay", type=float, default=0.0, help="seconds before each search page")
    options = parser.parse_args(argv)
    if not options.pages.is_file():
        parser.error(f"no recorded pages at {options.pages}: give --pages FILE, or set DNFLOW_REAL_DATA")
    emulator = XApiEmulator(token=options.token, pages_file=options.pages)
    emulator.delete_posts(*options.delete)
    emulator.protect_authors(*options.protect)
    emulator.suspend_authors(*options.suspend)
    emulator.page_delay = options.page_delay
    print(f"DNFLOW_X_API_URL={emulator.url}", f"X_BEARER_TOKEN={options.token}", sep="\n", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
