"""A search and the events of the Luigi tasks that carry it out."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


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


class SearchQuerySet(models.QuerySet):
    def visible_to(self, user) -> SearchQuerySet:
        """What a person may see: their own, everything if staff, and anything published."""
        if user.is_authenticated and user.is_staff:
            return self
        published = Q(published_at__isnull=False)
        if user.is_authenticated:
            return self.filter(published | Q(owner=user))
        return self.filter(published)

    def manageable_by(self, user) -> SearchQuerySet:
        """What a person may run, cancel, publish and delete: their own, or all if staff."""
        if user.is_authenticated and user.is_staff:
            return self
        if user.is_authenticated:
            return self.filter(owner=user)
        return self.none()

    def published(self) -> SearchQuerySet:
        return self.filter(published_at__isnull=False)

    def unfinished(self) -> SearchQuerySet:
        return self.filter(status__in=[Status.QUEUED, Status.RUNNING])


class Search(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="searches",
        help_text="Empty for searches started from the command line without --owner.",
    )
    term = models.CharField(max_length=4096, blank=True, help_text="X search operators; empty imports a whole archive.")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.SAMPLE)
    archive_path = models.CharField(
        max_length=1024, blank=True, help_text="For archive searches: the file or folder imported."
    )
    count = models.PositiveIntegerField(
        null=True, blank=True, help_text="The most posts to collect; empty takes a whole archive (archives only)."
    )
    lang = models.CharField(max_length=16, blank=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 100, over the whole workflow.")
    step = models.CharField(max_length=200, blank=True, help_text="What the workflow is doing now.")
    error = models.TextField(blank=True, help_text="Why it failed, in plain words.")
    rate_limited_until = models.DateTimeField(null=True, blank=True)
    rq_job_id = models.CharField(max_length=64, blank=True)
    folder = models.CharField(max_length=200, blank=True, help_text="Output folder inside DNFLOW_DATA_DIR.")
    num_posts = models.PositiveIntegerField(null=True, blank=True)

    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)

    objects = SearchQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "searches"
        ordering = ["-created"]
        indexes = [
            # The home page: a person's own searches, newest first.
            models.Index(fields=["owner", "-created"], name="search_owner_created"),
            # The home page's published list and the Atom feed.
            models.Index(fields=["published_at"], name="search_published"),
            # Workers and reconcile look for queued and running searches.
            models.Index(fields=["status"], name="search_status"),
        ]

    def __str__(self) -> str:
        what = self.term or Path(self.archive_path).name or self.get_source_display()
        return f"#{self.pk} {what}"

    def get_absolute_url(self) -> str:
        return reverse("search_detail", args=[self.pk])

    def clean(self) -> None:
        """Refuse what the X API would refuse, before any quota is spent."""
        from .validation import validate_search

        validate_search(self)

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def is_done(self) -> bool:
        return self.status_enum.is_done

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    @property
    def output_dir(self) -> Path | None:
        if not self.folder:
            return None
        return settings.DNFLOW_DATA_DIR / self.folder

    def new_folder_name(self) -> str:
        """A fresh folder per collection, so a refresh never overwrites an earlier one."""
        return f"search-{self.pk}-{timezone.now():%Y%m%dT%H%M%S%f}"

    def delete_files(self) -> None:
        """Remove every output folder this search made (all its collections)."""
        data_dir = settings.DNFLOW_DATA_DIR
        for path in data_dir.glob(f"search-{self.pk}-*"):
            # The glob is rooted in the data dir and the name is ours: nothing else is touched.
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


class EventKind(models.TextChoices):
    START = "start", "Started"
    SUCCESS = "success", "Finished"
    FAILURE = "failure", "Failed"
    PROGRESS = "progress", "Progress"
    PROCESSING_TIME = "processing_time", "Processing time"
    RATE_LIMIT = "rate_limit", "Waiting for the rate limit"
    RETRY = "retry", "Retrying"
    NOTE = "note", "Note"


class TaskEvent(models.Model):
    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="events")
    task_family = models.CharField(max_length=100)
    task_id = models.CharField(max_length=255, blank=True)
    event = models.CharField(max_length=20, choices=EventKind.choices)
    message = models.TextField(blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds, for processing-time events.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "pk"]
        indexes = [
            # The status page's timeline and the JSON API read one search's events in order.
            models.Index(fields=["search", "created"], name="taskevent_search_created"),
        ]

    def __str__(self) -> str:
        return f"{self.task_family} {self.event}"
