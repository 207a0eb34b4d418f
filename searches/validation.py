"""Checks on a search's parameters, made before anything is collected or any quota is spent.

Each message names the problem and how to fix it; forms, the admin, the API and the CLI show
them as they are.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from pipeline.hydrate import estimate_lookup
from pipeline.ids import IdFileError, read_ids
from pipeline.query import NotOnArchives, QueryError, compile_query

from .choices import Source

# Query length limits of the self-serve X API (enterprise allows 4,096).
MAX_QUERY_LENGTH = {"recent": 512, "all": 1024}
# Recent search reaches back this far from the moment of the request; X answers 400 to an earlier start_time.
RECENT_WINDOW = timedelta(days=7)
MIN_REFRESH_EVERY = timedelta(hours=1)

# The languages X tags posts with (BCP 47 codes as the API returns them in `lang`).
KNOWN_LANGS = frozenset(
    "am ar bg bn bo ca ckb cs cy da de dv el en es et eu fa fi fil fr gu he hi hr ht hu hy id in "
    "is it iu iw ja ka km kn ko lo lt lv ml mr ms my ne nl no or pa pl ps pt ro ru sd si sk sl "
    "sr sv ta te th tl tr ug uk ur vi zh zh-cn zh-tw und qam qct qht qme qst zxx art".split()
)


def validate_search(search) -> None:
    errors: dict[str, str] = {}
    source = Source(search.source) if search.source in Source.values else None
    term = (search.term or "").strip()

    if source is None:
        errors["source"] = f"Unknown source {search.source!r}: choose one of {', '.join(Source.values)}."
    elif source.is_live:
        if not term:
            errors["term"] = "Enter a search term: the X API needs a query."
        elif len(term) > MAX_QUERY_LENGTH[source]:
            errors["term"] = (
                f"The query is {len(term)} characters; the X API accepts at most "
                f"{MAX_QUERY_LENGTH[source]} for this kind of search. Shorten it."
            )
    if source is not None and source.uses_api and not settings.X_BEARER_TOKEN:
        errors["source"] = (
            "No X API credentials: set X_BEARER_TOKEN in the environment of the web server "
            "and the workers, or search an archive or the bundled sample instead."
        )
    if source is not None and source.reads_a_file:
        what = "an archive file to import" if source == Source.ARCHIVE else "a file of tweet ids to look up"
        if not search.archive_path:
            errors["archive_path"] = f"Choose {what}."
        elif not Path(search.archive_path).exists():
            errors["archive_path"] = f"No file or folder at {search.archive_path}."
    if len(term) > 4096:
        errors["term"] = f"The query is {len(term)} characters; the most any X query can have is 4,096."
    elif term and "term" not in errors:
        problem = _query_problem(term, live=source is not None and source.is_live)
        if problem:
            errors["term"] = problem

    count = search.count
    if source is not None and source.is_live:
        if count is None or not (1 <= count <= settings.DNFLOW_MAX_COUNT):
            errors["count"] = (
                f"Ask for between 1 and {settings.DNFLOW_MAX_COUNT:,} posts (got {count}). "
                "The upper bound is the setting DNFLOW_MAX_COUNT."
            )
    elif source == Source.IDS and count is not None:
        errors["count"] = "Leave the count empty: every id in the file is looked up (each once)."
    elif count is not None and count < 1:
        # Archives may be larger than any API budget, so only the lower bound applies; empty = all.
        errors["count"] = f"Ask for at least 1 post (got {count}), or leave the count empty to take them all."

    if search.lang and search.lang.lower() not in KNOWN_LANGS:
        errors["lang"] = f"Unknown language code {search.lang!r}: use a code X tags posts with, such as en, fr or ja."

    if search.start_time and search.end_time and search.start_time >= search.end_time:
        errors["end_time"] = "The end time must come after the start time."
    # Only for a new search: the window moves on, and a saved one (an admin edit) was checked when it began.
    if source == Source.RECENT and search.start_time and search._state.adding:
        earliest = timezone.now() - RECENT_WINDOW
        if search.start_time < earliest:
            # Shown to the next whole minute, so that the time said is itself accepted.
            since = (earliest.replace(second=0, microsecond=0) + timedelta(minutes=1)).astimezone(UTC)
            since = since.strftime("%Y-%m-%d %H:%M")
            errors["start_time"] = (
                f"A recent search covers only the last 7 days: the start must be on or after {since} UTC (X refuses "
                "an earlier one). Choose a later start, or a full-archive search for older posts."
            )

    every = search.refresh_every
    if every is not None:
        if source is None or not source.is_live:
            errors["refresh_every"] = "Only a live X search can collect new posts on a schedule: leave it empty."
        elif every < MIN_REFRESH_EVERY:
            errors["refresh_every"] = "Collect new posts at most once an hour: choose 1 hour or more."

    if errors:
        raise ValidationError(errors)


def _query_problem(term: str, *, live: bool) -> str:
    """What is wrong with the query, in words, or "". Our matcher reads archives, the sample and
    looked-up ids; X reads live queries, and knows operators an archive cannot answer."""
    try:
        compile_query(term)
    except NotOnArchives as exc:
        return "" if live else str(exc)
    except QueryError as exc:
        return str(exc)
    return ""


def check_id_dataset(path: Path, *, name: str = "") -> str:
    """Read an id dataset before anything is spent: what it holds and what looking it up would cost
    at most, in words; raises ValidationError (on archive_path) when it is too damaged to use."""
    with tempfile.TemporaryDirectory(prefix="dnflow-ids-") as scratch:
        ids_path = Path(scratch) / "ids.txt"
        try:
            report = read_ids(Path(path), ids_path, name=name or Path(path).name)
        except IdFileError as exc:
            raise ValidationError({"archive_path": str(exc).split("\n")}) from None
        if report.should_refuse:
            # A message each, which the form lists one under the other.
            raise ValidationError({"archive_path": report.refusal()})
        estimate = estimate_lookup(ids_path, price_per_post=settings.DNFLOW_PRICE_PER_POST)
    return f"{report.summary()} Looking them up: {estimate.describe()}."
