"""The choices a search and its runs are made of. Kept apart from the models so that the
validation rules (searches.validation) can use them without importing the models."""

from __future__ import annotations

from django.db import models


class Source(models.TextChoices):
    RECENT = "recent", "X API: recent search (last 7 days)"
    ALL = "all", "X API: full-archive search"
    IDS = "ids", "Tweet ids: look them up with the X API"
    ARCHIVE = "archive", "Archive file"
    SAMPLE = "sample", "Bundled sample (synthetic)"

    @property
    def is_live(self) -> bool:
        """A search of the X API: X matches the query, and a refresh can ask for newer posts."""
        return self in (Source.RECENT, Source.ALL)

    @property
    def uses_api(self) -> bool:
        """Reading it spends X API credits (and needs X_BEARER_TOKEN)."""
        return self in (Source.RECENT, Source.ALL, Source.IDS)

    @property
    def reads_a_file(self) -> bool:
        """It starts from a file a person gives (archive_path)."""
        return self in (Source.ARCHIVE, Source.IDS)


class RunKind(models.TextChoices):
    COLLECT = "collect", "Collection"
    REFRESH = "refresh", "New posts since the last collection"
    RECHECK = "recheck", "Availability recheck"
    # Removes from the search's files the posts a recheck found gone; collects nothing and never
    # becomes the search's results (see searches.services.purge_unavailable).
    PURGE = "purge", "Purge of the posts found gone"


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    @property
    def is_done(self) -> bool:
        return self in (Status.FINISHED, Status.FAILED, Status.CANCELLED)


ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
DONE_STATUSES = (Status.FINISHED, Status.FAILED, Status.CANCELLED)


class EventKind(models.TextChoices):
    START = "start", "Started"
    SUCCESS = "success", "Finished"
    FAILURE = "failure", "Failed"
    PROGRESS = "progress", "Progress"
    PROCESSING_TIME = "processing_time", "Processing time"
    RATE_LIMIT = "rate_limit", "Waiting for the rate limit"
    RETRY = "retry", "Retrying"
    NOTE = "note", "Note"
