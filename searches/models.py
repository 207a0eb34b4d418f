"""A search, its runs, and the events of the Luigi tasks that carry each run out.

A Search is what a person asked for: the query (fixed once saved), its owner, whether it is
published. Each collection of it (the first, "collect again", a resumed one after a failure
stays the same run) is a SearchRun with its own output folder, status, progress and events.
The search shows the results of its newest *finished* run (`results_run`) while a newer run is
queued, running, failed or cancelled (`latest_run`): an earlier collection is never hidden or
lost because a later one did not finish.

The state machine of a run lives in RunQuerySet: claim, finish, fail, cancel, recover a run
whose worker died, resume, and the progress a running run reports. Each is one conditional
UPDATE that changes a run only from the states it may leave, so two processes can never both
win, and nothing else in dnflow writes a run's status fields.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Max, Q
from django.urls import reverse
from django.utils import timezone

from pipeline.contract import recheck_names, remove_temporaries

from .choices import ACTIVE_STATUSES, DONE_STATUSES, EventKind, RunKind, Source, Status
from .uploads import uploads_dir
from .validation import validate_search

__all__ = ["EventKind", "RunKind", "Search", "SearchRun", "Source", "Status", "TaskEvent"]

# The fields that say what a search asks for. Fixed once the search is saved: its runs and
# their results answer this query, so changing it means a new search.
# The longest name shown whole in headings, titles and tables.
SHORT_NAME = 80
QUERY_FIELDS = ("term", "source", "archive_path", "count", "lang", "start_time", "end_time")
# What a list row shows of a search, its newest run and its results run (SearchQuerySet.for_rows).
ROW_FIELDS = (
    *("title", "term", "archive_path", "source", "created", "published_at", "owner__username"),
    *("latest_run__status", "latest_run__progress", "latest_run__step", "results_run__num_posts"),
)


class QueryIsFixed(ValidationError):
    pass


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

    def with_results(self) -> SearchQuerySet:
        """Searches with a finished run to show (and to compare)."""
        return self.filter(results_run__isnull=False)

    def with_runs(self) -> SearchQuerySet:
        """Rows ready for a list: their owner, newest run and results run in the same query."""
        return self.select_related("owner", "latest_run", "results_run")

    def for_rows(self) -> SearchQuerySet:
        """with_runs, with only the columns a home-page row shows (the status.html#row partial):
        half the cost of building four whole models per row, on PostgreSQL most of all. Reading
        another field of a row costs a query per row (tests/test_query_counts.py would see it)."""
        return self.with_runs().only(*ROW_FIELDS)


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

    # What the owner calls it and notes about it: theirs to change at any time, unlike the query.
    title = models.CharField(max_length=200, blank=True, help_text="A name for the search; the query if empty.")
    notes = models.TextField(blank=True, help_text="Free text: why, for whom, what to keep in mind.")
    # Live searches only: collect the posts newer than the last collection every this often.
    refresh_every = models.DurationField(
        null=True, blank=True, help_text="Collect new posts on a schedule (live X searches); empty: never."
    )
    next_refresh_at = models.DateTimeField(null=True, blank=True, editable=False)

    created = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # Kept by SearchRun's transitions only: the newest run, and the newest finished one.
    latest_run = models.ForeignKey(
        "SearchRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    results_run = models.ForeignKey(
        "SearchRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    objects = SearchQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "searches"
        ordering = ["-created"]
        indexes = [
            # The home page: a person's own searches, newest first, paged on these columns alone
            # (the id ends the order, and PostgreSQL can then page without reading the table).
            models.Index(fields=["owner", "-created", "-id"], name="search_owner_created_id"),
            # The home page's published list (less one's own: the owner) and the Atom feed.
            models.Index(
                fields=["-published_at", "-id", "owner"],
                name="search_published_id_owner",
                condition=Q(published_at__isnull=False),
            ),
            # The JSON API's list: the newest searches a person may see.
            models.Index(fields=["-created", "-id"], name="search_created_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.name}"

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if self.pk and not self._state.adding and (update_fields is None or set(update_fields) & set(QUERY_FIELDS)):
            self._refuse_query_change()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("search_detail", args=[self.pk])

    def clean(self) -> None:
        """Refuse what the X API would refuse, before any quota is spent."""
        validate_search(self)

    def _refuse_query_change(self) -> None:
        saved = Search.objects.filter(pk=self.pk).values(*QUERY_FIELDS).first()
        if saved is None:
            return
        changed = [name for name in QUERY_FIELDS if saved[name] != getattr(self, name)]
        if changed:
            raise QueryIsFixed(
                {
                    name: f"The {name.replace('_', ' ')} of a saved search cannot change: its runs answer the "
                    "query as it was. Start a new search instead."
                    for name in changed
                }
            )

    @property
    def name(self) -> str:
        """What a person calls the search: its title, else its query, its archive, or its source."""
        return self.title or self.term or Path(self.archive_path).name or self.get_source_display()

    @property
    def short_name(self) -> str:
        """ "#id name", cut to a length a heading, a tab's title or a table column can hold (a query
        may run to thousands of characters); the page shows the whole query among its facts."""
        whole = str(self)
        return whole if len(whole) <= SHORT_NAME else whole[: SHORT_NAME - 1] + "…"

    @property
    def is_live(self) -> bool:
        """A live X search: it can collect new posts later."""
        return Source(self.source).is_live

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    # What the pages say about the search as a whole: its newest run's state.
    @property
    def status(self) -> str:
        return self.latest_run.status if self.latest_run_id else Status.QUEUED

    def get_status_display(self) -> str:
        return Status(self.status).label

    @property
    def is_done(self) -> bool:
        return Status(self.status).is_done

    @property
    def has_results(self) -> bool:
        return self.results_run_id is not None

    @property
    def results_dir(self) -> Path | None:
        """The folder of the run whose results the search shows, or None before one finished."""
        return self.results_run.folder_path if self.results_run_id else None

    @property
    def results_are_older(self) -> bool:
        """A newer run than the one shown exists (queued, running, failed or cancelled).

        A purge is not one: it never has results of its own, so the ones shown are not older.
        """
        if not self.has_results or self.latest_run_id == self.results_run_id:
            return False
        return self.latest_run.kind != RunKind.PURGE

    def start_run(
        self, *, kind: str = RunKind.COLLECT, builds_on: SearchRun | None = None, since_id: str = ""
    ) -> SearchRun:
        """A new queued run with a fresh folder; refused while another run is queued or running.

        A refresh or a recheck builds on an earlier run's collection (`builds_on`).
        """
        try:
            with transaction.atomic():
                number = (self.runs.aggregate(last=Max("number"))["last"] or 0) + 1
                run = SearchRun.objects.create(
                    search=self,
                    number=number,
                    folder=self._new_folder_name(),
                    kind=kind,
                    builds_on=builds_on,
                    since_id=since_id,
                )
                Search.objects.filter(pk=self.pk).update(latest_run=run)
        except IntegrityError:
            raise RunRefused(f"Search #{self.pk} already has a run queued or running.") from None
        self.latest_run = run
        return run

    def _new_folder_name(self) -> str:
        # A fresh folder per run, so a later collection never overwrites an earlier one.
        return f"search-{self.pk}-{timezone.now():%Y%m%dT%H%M%S%f}"

    @property
    def archive_is_gone(self) -> bool:
        """An archive search whose file is no longer on this server (a purge deleted the upload, or
        someone moved it): it cannot be collected again."""
        return (
            Source(self.source) == Source.ARCHIVE and bool(self.archive_path) and not Path(self.archive_path).exists()
        )

    @property
    def archive_was_uploaded(self) -> bool:
        """Its archive (or id dataset) came through the web form, and dnflow keeps it in uploads/;
        a file given on the server (run_search --archive) is the person's own, never dnflow's to
        change or delete."""
        if not self.archive_path:
            return False
        uploads = uploads_dir().resolve()
        return Path(self.archive_path).parent.resolve().parent == uploads

    def own_upload(self) -> Path | None:
        """The folder the web form stored this search's archive (or id dataset) in, unless another
        search uses it too."""
        if not self.archive_was_uploaded:
            return None
        folder = Path(self.archive_path).parent
        if Search.objects.exclude(pk=self.pk).filter(archive_path__startswith=f"{folder}/").exists():
            return None
        return folder

    def own_links(self) -> Path | None:
        """The folder of links that `run_search --archive A --archive B` made in uploads/ for this
        search, unless another search uses it too. The links are dnflow's; A and B are not."""
        if not self.archive_path:
            return None
        folder = Path(self.archive_path)
        uploads = uploads_dir().resolve()
        if folder.is_symlink() or not folder.is_dir() or folder.resolve().parent != uploads:
            return None
        if Search.objects.exclude(pk=self.pk).filter(archive_path=str(folder)).exists():
            return None
        return folder

    def delete_files(self) -> None:
        """Remove every folder this search's runs made (and any stray one with its prefix)."""
        for run in self.runs.all():
            run.delete_files()
        for path in Path(settings.DNFLOW_DATA_DIR).glob(f"search-{self.pk}-*"):
            # Rooted in the data folder, and the name is ours: nothing else is touched.
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


class RunRefused(Exception):
    """The run cannot start or change: the message says why."""


class RunQuerySet(models.QuerySet):
    """The state machine of runs. Each transition is one conditional UPDATE on the runs of this
    queryset that are in a state they may leave; it returns how many changed (0: someone else
    changed them first, and nothing happened). Callers narrow the queryset to the run they mean,
    and to the claim they hold (`started`) or the job they are (`rq_job_id`)."""

    def active(self) -> RunQuerySet:
        return self.filter(status__in=ACTIVE_STATUSES)

    def claim(self, *, job_id: str | None = None) -> datetime | None:
        """Queued -> running; returns the claim time, which identifies this run's process from now on.

        With job_id, only the job recorded on the run can win.
        """
        now = timezone.now()
        rows = self.filter(status=Status.QUEUED)
        if job_id:
            rows = rows.filter(rq_job_id=job_id)
        changed = rows.update(status=Status.RUNNING, started=now, finished=None, step="Starting", error="", tidy=False)
        return now if changed else None

    def finish(self, *, num_posts: int | None = None) -> int:
        """Running -> finished; the run becomes its search's results (a purge has none: the
        results stay those of the run it purged for). `num_posts`: the posts its outputs hold,
        where they say (otherwise the count its progress reports left)."""
        counted = {} if num_posts is None else {"num_posts": num_posts}
        with transaction.atomic():
            finished = list(self.filter(status=Status.RUNNING).values_list("pk", "search_id", "kind"))
            changed = self.filter(pk__in=[pk for pk, _, _ in finished], status=Status.RUNNING).update(
                status=Status.FINISHED,
                progress=100.0,
                step="Finished",
                error="",
                finished=timezone.now(),
                rate_limited_until=None,
                **counted,
            )
            if changed:
                for run_id, search_id, kind in finished:
                    if kind != RunKind.PURGE:
                        Search.objects.filter(pk=search_id).update(results_run=run_id)
        return changed

    def fail(self, reason: str) -> int:
        """Queued or running -> failed, with the reason a person reads."""
        return self.filter(status__in=ACTIVE_STATUSES).update(
            status=Status.FAILED,
            step="Failed",
            error=reason or "The workflow failed.",
            finished=timezone.now(),
            rate_limited_until=None,
        )

    def cancel(self) -> int:
        """Queued or running -> cancelled. Cancel wins: a worker that picks the job up later cannot
        claim it, and a running process's watchdog stops it."""
        return self.filter(status__in=ACTIVE_STATUSES).update(
            status=Status.CANCELLED, step="Cancelled", finished=timezone.now(), rate_limited_until=None
        )

    def requeue_lost(self, step: str) -> int:
        """Running -> queued again, because its process died: it resumes in its own folder
        (Luigi skips the steps that are complete) and counts one more loss."""
        return self.filter(status=Status.RUNNING).update(
            status=Status.QUEUED,
            step=step,
            rq_job_id="",
            started=None,
            finished=None,
            rate_limited_until=None,
            times_lost=F("times_lost") + 1,
        )

    def resume(self) -> int:
        """Failed or cancelled -> queued, because a person asked to run it again: it resumes in its
        own folder, with its full allowance of recoveries."""
        return self.filter(status__in=(Status.FAILED, Status.CANCELLED)).update(
            status=Status.QUEUED,
            progress=0.0,
            step="",
            error="",
            rate_limited_until=None,
            started=None,
            finished=None,
            rq_job_id="",
            times_lost=0,
        )

    def assign_job(self, job_id: str, step: str) -> int:
        """Record the rq job of a queued run (before the job reaches Redis: its claim checks it)."""
        return self.filter(status=Status.QUEUED).update(rq_job_id=job_id, step=step)

    def forget_job(self, job_id: str) -> int:
        """The job never reached Redis: the run is queued with no job, for reconcile to queue."""
        return self.filter(rq_job_id=job_id).update(rq_job_id="")

    def note_unqueued(self, step: str) -> int:
        """A queued run could not reach the job queue; `step` says why and what happens next."""
        return self.filter(status=Status.QUEUED).update(step=step)

    def report_progress(self, **fields) -> int:
        """What a running run is doing (progress, step, num_posts): only while it runs."""
        unknown = set(fields) - {"progress", "step", "num_posts"}
        if unknown:
            raise ValueError(f"not progress fields: {sorted(unknown)}")
        return self.filter(status=Status.RUNNING).update(**fields)

    def wait_until(self, until: datetime | None, step: str) -> int:
        """A running run waits for the X API's rate limit (until), or stops waiting (None)."""
        return self.filter(status=Status.RUNNING).update(rate_limited_until=until, step=step[:200])

    def untidy(self) -> RunQuerySet:
        """Runs that stopped without finishing and may have left temporaries in their folder."""
        return self.filter(status__in=DONE_STATUSES, tidy=False)


def run_reads_from_x(source: str, kind: str) -> bool:
    """A run whose first step asks the X API (a live search, ids looked up, any recheck): that step
    takes most of its time, and the progress bar is weighted so (pipeline.events.STEPS)."""
    return Source(source).uses_api or kind == RunKind.RECHECK


class SearchRun(models.Model):
    """One collection of a search: its folder, its state, its events."""

    search = models.ForeignKey(Search, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField(help_text="1 for a search's first run, then 2, 3...")
    folder = models.CharField(max_length=200, unique=True, help_text="Output folder inside DNFLOW_DATA_DIR.")
    kind = models.CharField(max_length=16, choices=RunKind.choices, default=RunKind.COLLECT)
    builds_on = models.ForeignKey(
        "self",
        # A run others build on goes only together with them (with its search).
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The earlier run whose collection this one extends (refresh) or checks again (recheck).",
    )
    since_id = models.CharField(max_length=32, blank=True, help_text="A refresh asks X for posts newer than this.")

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 100, over the whole workflow.")
    step = models.CharField(max_length=200, blank=True, help_text="What the workflow is doing now.")
    error = models.TextField(blank=True, help_text="Why it failed, in plain words.")
    rate_limited_until = models.DateTimeField(null=True, blank=True)
    rq_job_id = models.CharField(max_length=64, blank=True)
    num_posts = models.PositiveIntegerField(null=True, blank=True)
    times_lost = models.PositiveSmallIntegerField(
        default=0, help_text="Times its worker died in a row; past DNFLOW_LOST_SEARCH_RETRIES it fails."
    )
    tidy = models.BooleanField(
        default=True, help_text="False while a run that stopped may have left temporaries in its folder."
    )

    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["search", "number"], name="run_number_per_search"),
            # One collection at a time: the database refuses a second queued or running run.
            models.UniqueConstraint(
                fields=["search"], condition=Q(status__in=ACTIVE_STATUSES), name="one_active_run_per_search"
            ),
        ]
        indexes = [
            # Workers and reconcile look for queued, running and untidy runs.
            models.Index(fields=["status"], name="run_status"),
        ]

    def __str__(self) -> str:
        return f"search #{self.search_id}, run {self.number}"

    def get_absolute_url(self) -> str:
        return reverse("search_detail", args=[self.search_id]) + f"#run-{self.number}"

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def is_done(self) -> bool:
        return self.status_enum.is_done

    @property
    def folder_path(self) -> Path:
        return Path(settings.DNFLOW_DATA_DIR) / self.folder

    @property
    def folder_missing(self) -> bool:
        """Finished, yet its folder is not in this process's DNFLOW_DATA_DIR: another machine's
        worker wrote it under another DNFLOW_DATA_DIR, or the folder was moved. Its files cannot be
        read here, and must not be shown as an empty collection."""
        return self.status == Status.FINISHED and not self.folder_path.is_dir()

    @property
    def duration(self) -> float | None:
        if self.started and self.finished:
            return (self.finished - self.started).total_seconds()
        return None

    @property
    def reads_from_x(self) -> bool:
        return run_reads_from_x(self.search.source, self.kind)

    @property
    def collects_posts(self) -> bool:
        """A collection or a refresh adds posts (a raw file); a recheck only looks them up again,
        and a purge only removes posts."""
        return self.kind in (RunKind.COLLECT, RunKind.REFRESH)

    def chain(self) -> list[SearchRun]:
        """This run and the runs it builds on, oldest first: the runs whose posts make its collection."""
        earlier = {run.pk: run for run in SearchRun.objects.filter(search_id=self.search_id)}
        chain = [self]
        while chain[0].builds_on_id is not None:
            chain.insert(0, earlier[chain[0].builds_on_id])
        return chain

    @property
    def availability_file(self) -> Path:
        """A recheck run's availability file, named by the run's creation (which a resume keeps)."""
        return self.folder_path / recheck_names(self.created)[0]

    def newest_recheck(self) -> SearchRun | None:
        """The recheck this run's results leave the gone posts out for: the newest in its chain.

        A new collection of an archive has none in its chain, but the archive still holds every
        post that the search's rechecks before it found gone: the newest of them speaks for it,
        or the posts would come back into the results, the package and what is published. (A new
        collection from X needs none: X gives no gone post, and gives back one that is back.)"""
        chain = self.chain()
        own = next((run for run in reversed(chain) if run.kind == RunKind.RECHECK), None)
        if own is not None or chain[0].kind != RunKind.COLLECT or Source(self.search.source) != Source.ARCHIVE:
            return own
        earlier = SearchRun.objects.filter(
            search_id=self.search_id, kind=RunKind.RECHECK, status=Status.FINISHED, number__lt=chain[0].number
        )
        return earlier.order_by("-number").first()

    def runs(self) -> RunQuerySet:
        """This run as a queryset, for its transitions: `run.runs().finish()`."""
        return SearchRun.objects.filter(pk=self.pk)

    def this_claim(self) -> RunQuerySet:
        """This run as long as it is still the claim this process holds (its `started`)."""
        return SearchRun.objects.filter(pk=self.pk, started=self.started)

    def tidy_up(self) -> list[Path]:
        """Remove the temporaries a stopped run left in its folder (see pipeline.contract).

        Only for a run no process works on any more: the caller knows (it is that process, after
        the workflow returned; or it claimed the search's next run; or reconcile saw no heartbeat).
        """
        removed = remove_temporaries(self.folder_path)
        SearchRun.objects.filter(pk=self.pk).exclude(status=Status.RUNNING).update(tidy=True)
        return removed

    def delete_files(self) -> None:
        if self.folder and self.folder_path.is_dir():
            shutil.rmtree(self.folder_path, ignore_errors=True)


class TaskEvent(models.Model):
    run = models.ForeignKey(SearchRun, on_delete=models.CASCADE, related_name="events")
    task_family = models.CharField(max_length=100)
    task_id = models.CharField(max_length=255, blank=True)
    event = models.CharField(max_length=20, choices=EventKind.choices)
    message = models.TextField(blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds, for processing-time events.")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created", "pk"]
        indexes = [
            # The status page's steps table and the JSON API read one run's newest events.
            models.Index(fields=["run", "created"], name="taskevent_run_created"),
            # The steps table finds the starts and ends of a run's steps among millions of progress events.
            models.Index(fields=["run", "event", "created"], name="taskevent_run_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.task_family} {self.event}"
