"""The choices a search and its runs are made of. Kept apart from the models so that the
validation rules (searches.validation) can use them without importing the models."""

from __future__ import annotations

from django.db import models


class Source(models.TextChoices):
    RECENT = "recent", "X API: recent search (last 7 days)"
    ALL = "all", "X API: full-archive search"
    ARCHIVE = "archive", "Archive file"
    SAMPLE = "sample", "Bundled sample (synthetic)"

    @property
    def is_live(self) -> bool:
        return self in (Source.RECENT, Source.ALL)


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
