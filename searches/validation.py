"""Checks on a search's parameters, made before anything is collected or any quota is spent.

Each message names the problem and how to fix it; forms, the admin, the API and the CLI show
them as they are.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from .choices import Source

# Query length limits of the self-serve X API (enterprise allows 4,096).
MAX_QUERY_LENGTH = {"recent": 512, "all": 1024}

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
        if not settings.X_BEARER_TOKEN:
            errors["source"] = (
                "No X API credentials: set X_BEARER_TOKEN in the environment of the web server "
                "and the workers, or search an archive or the bundled sample instead."
            )
    elif source == Source.ARCHIVE:
        if not search.archive_path:
            errors["archive_path"] = "Choose an archive file to import."
        elif not Path(search.archive_path).exists():
            errors["archive_path"] = f"No file or folder at {search.archive_path}."
    if len(term) > 4096:
        errors["term"] = f"The query is {len(term)} characters; the most any X query can have is 4,096."

    count = search.count
    if source is not None and source.is_live:
        if count is None or not (1 <= count <= settings.DNFLOW_MAX_COUNT):
            errors["count"] = (
                f"Ask for between 1 and {settings.DNFLOW_MAX_COUNT:,} posts (got {count}). "
                "The upper bound is the setting DNFLOW_MAX_COUNT."
            )
    elif count is not None and count < 1:
        # Archives may be larger than any API budget, so only the lower bound applies; empty = all.
        errors["count"] = f"Ask for at least 1 post (got {count}), or leave the count empty to take them all."

    if search.lang and search.lang.lower() not in KNOWN_LANGS:
        errors["lang"] = f"Unknown language code {search.lang!r}: use a code X tags posts with, such as en, fr or ja."

    if search.start_time and search.end_time and search.start_time >= search.end_time:
        errors["end_time"] = "The end time must come after the start time."

    if errors:
        raise ValidationError(errors)
