"""The X API v2 client dnflow uses, and how its failures are waited out, retried or explained.

`pipeline.xapi` (search collection and the estimate) and `pipeline.hydrate` (lookups by id) are
built on this. Facts behind the choices (tweepy's traps, the API's error shapes):
../shared/spec/x-api.md.

Framework-free: everything the client needs comes in an `ApiConfig` built by the caller where the
work runs (in dnflow, `ApiConfig.from_django_settings()` or the settings named on each field). The
bearer token lives only there: never in a Luigi parameter, an RQ job argument, a file, a log line
or an exception message. Callers that pass no ApiConfig get one from Django's settings.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
import tweepy

log = logging.getLogger("dnflow.xapi")

# tweepy sends every request to this host; the session below sends it to DNFLOW_X_API_URL instead.
TWEEPY_HOST = "https://api.twitter.com"
# (connect, read) seconds: a full-archive page of 500 posts can take a while to come back.
REQUEST_TIMEOUT = (10, 90)
# Backoff for 5xx answers and network failures: BACKOFF_BASE_SECONDS * 2**n, at most BACKOFF_MAX_SECONDS.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# A 429 without x-rate-limit-reset: wait this long (doubling), within DNFLOW_MAX_RATE_LIMIT_WAIT.
RATE_LIMIT_FALLBACK_SECONDS = 15.0
# X's reset time is in whole seconds and by its clock, not ours: wait a little past it.
RATE_LIMIT_MARGIN_SECONDS = 1.0
# A window that is over answers again; this many 429s in a row means something else is wrong.
MAX_RATE_LIMIT_WAITS = 8

WaitCallback = Callable[[datetime | None, str], None]
# What the search endpoints and the lookup ask for (../shared/spec/x-api.md), plus author_id, which
# the records need and which is cheap to name, and in_reply_to_user_id so the user replied to is in
# the includes. A lookup asks for the same, so that its pages summarise like a search's.
EXPANSIONS = [
    "author_id",
    "attachments.media_keys",
    "referenced_tweets.id",
    "referenced_tweets.id.author_id",
    "entities.mentions.username",
    "in_reply_to_user_id",
]
TWEET_FIELDS = [
    "author_id",
    "created_at",
    "lang",
    "entities",
    "public_metrics",
    "referenced_tweets",
    "attachments",
    "conversation_id",
    "in_reply_to_user_id",
    "note_tweet",
    "possibly_sensitive",
    "source",
]
USER_FIELDS = ["username", "name", "public_metrics", "verified", "created_at", "description", "location"]
MEDIA_FIELDS = ["url", "preview_image_url", "type", "width", "height", "alt_text"]


class XApiError(Exception):
    """The X API could not give what was asked. The message says, in plain words, what to do.

    `retryable` is True when running the same search again later may succeed (X was down or kept
    rate-limiting); False when something must change first (the token, the query, the plan).
    """

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ApiConfig:
    """How to reach the X API. Build it where the work runs; never pass it through a job queue.

    In dnflow each field is a setting: bearer_token = X_BEARER_TOKEN, api_url = DNFLOW_X_API_URL,
    retries = DNFLOW_API_RETRIES, max_rate_limit_wait = DNFLOW_MAX_RATE_LIMIT_WAIT (seconds).
    The token is left out of repr() so that a logged or printed config never shows it.
    """

    bearer_token: str = field(repr=False)
    api_url: str = "https://api.x.com"
    retries: int = 5  # tries after the first for 5xx answers and network failures
    max_rate_limit_wait: float = 16 * 60  # the longest single wait for a rate limit, in seconds

    def __reduce_ex__(self, protocol):
        # RQ pickles job arguments into Redis: passing a config through a queue must fail, loudly.
        raise TypeError(
            "An ApiConfig holds the X bearer token and must not be pickled (into a job queue, a cache, a file): "
            "build it where the work runs, with ApiConfig.from_django_settings()."
        )

    @classmethod
    def from_django_settings(cls) -> ApiConfig:
        """The config dnflow's settings describe (imports Django: for the Django side only)."""
        from django.conf import settings

        return cls(
            bearer_token=settings.X_BEARER_TOKEN,
            api_url=settings.DNFLOW_X_API_URL,
            retries=int(settings.DNFLOW_API_RETRIES),
            max_rate_limit_wait=float(settings.DNFLOW_MAX_RATE_LIMIT_WAIT),
        )


class _RedactBearerToken(logging.Filter):
    """tweepy logs every request's headers at DEBUG, the bearer token included: blank it out."""

    pattern = re.compile(r"(Bearer\s+)[^\s'\",}]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Bearer" in message:
            record.msg, record.args = self.pattern.sub(r"\1[redacted]", message), ()
        return True


logging.getLogger("tweepy.client").addFilter(_RedactBearerToken())


class XApiSession(requests.Session):
    """Sends tweepy's requests to DNFLOW_X_API_URL (a proxy, the local emulator) with a timeout."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def make_client(api: ApiConfig | None = None) -> tweepy.Client:
    """A tweepy client for app-only (bearer token) requests, pointed at `api.api_url`.

    Without `api`, dnflow's Django settings say where and with which token. 429s are ours to handle
    (see `call_api`), so tweepy's own waiting is off.
    """
    api = api or ApiConfig.from_django_settings()
    if not api.bearer_token:
        raise XApiError(
            "No X API credentials: set X_BEARER_TOKEN (the bearer token of your app in the X developer "
            "portal) in the environment of the web server and the workers, then run the search again."
        )
    client = tweepy.Client(bearer_token=api.bearer_token, return_type=dict, wait_on_rate_limit=False)
    client.session = XApiSession(api.api_url)
    return client


def raw_client(api: ApiConfig | None = None) -> tweepy.Client:
    """Like `make_client`, but each call returns the `requests.Response` itself: the body as sent."""
    client = make_client(api)
    client.return_type = requests.Response
    return client


def call_api(
    send: Callable[[], requests.Response],
    *,
    source: str,
    api: ApiConfig | None = None,
    on_wait: WaitCallback | None = None,
    collecting: bool = False,
    wait_for_rate_limits: bool = True,
) -> tuple[requests.Response, object]:
    """Send one request, waiting out rate limits and retrying transient failures.

    `source`: "recent" or "all" (a search), "counts", or "lookup" (GET /2/tweets); it shapes the advice
    in refusals. Returns the response and its parsed JSON body. Raises XApiError with a plain
    explanation when it cannot succeed. `collecting` adds to messages that the posts stored so far
    are kept. Without `api`, dnflow's Django settings give the retries and the longest wait.
    `wait_for_rate_limits=False`: a 429 is refused at once with the time X gives (an estimate, which
    a person waits for on a web page, must not hold it for minutes).
    """
    api = api or ApiConfig.from_django_settings()
    failures = 0
    rate_limits = 0
    kept = (
        " The posts collected so far are kept, and running the search again resumes from there." if collecting else ""
    )
    while True:
        try:
            response = send()
            try:
                return response, response.json()
            except ValueError:
                # A 200 that is not JSON: a proxy's error page or a body cut short. Worth another try.
                failure = f"the X API answered {response.status_code} with a body that is not JSON"
        except tweepy.TooManyRequests as exc:
            problem = _problem(exc.response)
            if _is_usage_cap(problem):
                raise XApiError(
                    f"Your X API usage cap is used up (HTTP 429 {problem.get('title', '')}: "
                    f"{problem.get('detail', '')}). No more posts can be read until the cap resets with the "
                    "next billing cycle, or until the plan or its spending limit is raised in the X developer "
                    f"portal.{kept}",
                    retryable=False,
                ) from None
            rate_limits += 1
            reset = _rate_limit_reset(exc.response)
            if not wait_for_rate_limits:
                when = f" until {_local(reset):%H:%M:%S}" if reset else ""
                raise XApiError(
                    f"The X API is limiting this app's requests{when} (HTTP 429 'too many requests'): try again "
                    "then. Nothing was read or spent.",
                    retryable=True,
                ) from None
            if rate_limits > MAX_RATE_LIMIT_WAITS:
                beyond = (
                    f" X gave {_local(reset):%H:%M:%S} as the time its limit resets, further off than "
                    f"DNFLOW_MAX_RATE_LIMIT_WAIT ({api.max_rate_limit_wait:,.0f} s) lets a search wait at a time: "
                    "run it again after then, or raise that setting."
                    if reset and (reset - datetime.now(UTC)).total_seconds() > api.max_rate_limit_wait
                    else " Another program may be using the same app's quota; try again later."
                )
                raise XApiError(
                    f"The X API still answered 'too many requests' after {MAX_RATE_LIMIT_WAITS} waits for its "
                    f"rate limit.{beyond}{kept}",
                    retryable=True,
                ) from None
            until = _rate_limit_until(exc.response, rate_limits, api.max_rate_limit_wait)
            _wait(until, f"waiting for the rate limit until {_local(until):%H:%M:%S}", on_wait)
            continue
        except tweepy.TwitterServerError as exc:
            failure = f"the X API answered {exc.response.status_code} {exc.response.reason} (a problem on X's side)"
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            failure = f"could not reach the X API at {_shown_url(api.api_url)} ({_network_reason(exc)})"
        except tweepy.HTTPException as exc:
            raise _explain(exc, source=source, api_url=api.api_url) from None

        failures += 1
        if failures > api.retries:
            raise XApiError(
                f"Gave up after {failures} tries: {failure}. This is usually temporary: try again later. If it "
                f"keeps happening, check the network and the setting DNFLOW_X_API_URL.{kept}",
                retryable=True,
            )
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)
        until = datetime.now(UTC) + timedelta(seconds=delay)
        log.warning(
            "X API request failed (%s); try %s of %s in %.1f s",
            failure,
            failures + 1,
            1 + api.retries,
            delay,
        )
        _wait(until, f"{failure}; trying again at {_local(until):%H:%M:%S}", on_wait)


def _wait(until: datetime, reason: str, on_wait: WaitCallback | None) -> None:
    log.info("X API: %s", reason)
    if on_wait:
        on_wait(until, reason)
    seconds = (until - datetime.now(UTC)).total_seconds()
    if seconds > 0:
        time.sleep(seconds)
    if on_wait:
        on_wait(None, "")


def _local(moment: datetime) -> datetime:
    # The process's local time zone: Django sets it (TZ) to TIME_ZONE when its settings load, so in
    # dnflow's processes this is the site's time, as django.utils.timezone.localtime would give.
    return moment.astimezone()


def _rate_limit_until(response: requests.Response, attempt: int, longest: float) -> datetime:
    """When to try again after a 429: the window's reset, never further than `longest` seconds."""
    longest = float(longest)
    now = time.time()
    reset = _rate_limit_reset(response)
    if reset is not None:
        seconds = reset.timestamp() - now + RATE_LIMIT_MARGIN_SECONDS
    else:
        # No reset time: back off, doubling, rather than hammering the API (tweepy retries at once).
        seconds = RATE_LIMIT_FALLBACK_SECONDS * 2 ** (attempt - 1)
    seconds = min(max(seconds, RATE_LIMIT_MARGIN_SECONDS), longest)
    return datetime.fromtimestamp(now + seconds, UTC)


def _rate_limit_reset(response: requests.Response) -> datetime | None:
    """When X says the rate limit's window resets (x-rate-limit-reset), or None if it does not say."""
    try:
        return datetime.fromtimestamp(int(response.headers["x-rate-limit-reset"]), UTC)
    except (KeyError, ValueError, OverflowError, OSError):
        return None


def _problem(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _is_usage_cap(problem: dict) -> bool:
    words = " ".join(str(problem.get(key, "")) for key in ("title", "type", "detail")).lower()
    squeezed = re.sub(r"[\s_-]", "", words)
    return "usagecap" in squeezed


def _shown_url(api_url: str) -> str:
    """The API's address fit for messages: a proxy's user and password are left out."""
    parts = urlsplit(api_url)
    return (
        parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
        if parts.hostname
        else ""
    )


def _network_reason(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "no answer in time"
    text = str(exc)
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was closed without an answer"
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    return type(exc).__name__


def _explain(exc: tweepy.HTTPException, *, source: str, api_url: str) -> XApiError:
    """Turn a refusal (4xx) into what happened and what to do about it."""
    response = exc.response
    status = response.status_code
    problem = _problem(response)
    said = "; ".join(m for m in exc.api_messages if m) or problem.get("detail") or problem.get("title") or ""
    if status == 400 and source == "lookup":
        return XApiError(
            f"The X API refused the lookup of posts by id (HTTP 400): {said or 'invalid request'}. The id list "
            "holds something X does not take as a post id: read the dataset again with the id reader "
            "(pipeline.ids.read_ids), fix or drop what it reports, and run the lookup again."
        )
    if status == 400:
        what = "count" if source.startswith("counts") else "search"
        return XApiError(
            f"The X API refused the {what} (HTTP 400): {said or 'invalid request'}. Fix the search terms, "
            "operators or dates in a new search: a saved search keeps its query, so running it again would "
            "send the same one."
        )
    if status == 401:
        return XApiError(
            "The X API did not accept the bearer token (HTTP 401 Unauthorized): it is wrong, expired or was "
            "revoked. Copy a valid bearer token from your app in the X developer portal into X_BEARER_TOKEN, "
            "restart the web server and the workers, and run the search again."
        )
    if status == 403:
        reason = problem.get("reason", "")
        what = f"{problem.get('title', 'Forbidden')}{f' ({reason})' if reason else ''}"
        detail = problem.get("detail", said)
        advice = (
            "In the X developer portal, make sure the app is attached to a Project and that its access level "
            "or plan includes "
        )
        if source.startswith("counts"):
            kind = "full-archive" if source.endswith("all") else "recent"
            advice += (
                f"counting posts ({kind} counts, which the estimate asks for). A plan may search without "
                "counting: the search itself can still run, without an estimate."
            )
        elif source == "all":
            advice += "full-archive search (not every plan does; recent search, the last 7 days, may work instead)."
        elif source == "lookup":
            advice += "looking up posts by id (GET /2/tweets)."
        else:
            advice += "recent search."
        needed = problem.get("required_enrollment")
        if needed:
            advice += f" X says it needs: {needed}."
        return XApiError(f"The X API refused access (HTTP 403 {what}): {detail} {advice}")
    if status == 404:
        return XApiError(
            f"The X API answered 404 Not Found for {response.request.path_url.split('?')[0]}: check that the "
            f"setting DNFLOW_X_API_URL ({_shown_url(api_url)}) points at the X API."
        )
    return XApiError(
        f"The X API answered HTTP {status} {response.reason}{f': {said}' if said else ''}. Check the app's "
        "access and billing in the X developer portal, then run the search again."
    )
