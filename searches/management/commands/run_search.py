"""Run a search from the command line, in the foreground (default) or on the job queue.

    manage.py run_search climate                       # the bundled sample without credentials
    manage.py run_search --archive tweets.jsonl        # a whole archive
    manage.py run_search "#kpop lang:en" --count 500   # the X API, with X_BEARER_TOKEN set
    manage.py run_search "#kpop" --estimate            # how many posts, what it would cost
    manage.py run_search --ids ids.txt                 # look up a dataset of tweet ids (X_BEARER_TOKEN)
    manage.py run_search --again 12                    # resume search 12's failed run, here

A foreground run stopped by Ctrl-C, SIGTERM or SIGHUP (a closed terminal, `timeout`, a service
manager) ends as failed, keeping what it finished and leaving no temporary file; `--again`
resumes it.

In the foreground, progress goes to stderr (a bar on a terminal, one line per step otherwise) and
the last line on stdout is the output folder's absolute path, so `folder=$(manage.py run_search
...)` works in a script. Exit codes: 0 finished, 1 the search ran and failed, 2 bad input or a
configuration problem (a database it cannot reach, a bad setting: nothing ran; see
searches/management/plain.py).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import threading
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection, connections

from pipeline.errors import error_kind
from pipeline.events import INTERRUPTED, stop_asked
from pipeline.formats import ArchiveError, check_archive_start
from pipeline.formats.names import FOLDER_SUFFIXES
from pipeline.purge_task import attempt_in_words
from pipeline.times import parse_iso
from pipeline.words import counted
from searches import run_files, services
from searches.models import RunKind, Search, SearchRun, Source, Status
from searches.uploads import is_disk_full, new_upload_folder
from searches.validation import check_id_dataset
from searches.watchdog import alive_ttl

from ..plain import CONFIGURATION, PlainErrors

BAD_INPUT = CONFIGURATION  # 2: nothing ran, fix the command or the configuration
# What describes a new search, or how to run one: none of it goes with --again.
AGAIN_ALONE = ("archive", "ids", "count", "source", "lang", "start", "end", "owner", "estimate")
FAILED = 1  # the search ran and failed
POLL_SECONDS = 0.3


def PLAIN(text: str) -> str:  # noqa: N802 -- used like Django's style functions
    """stderr's default style is the error colour; progress is not an error."""
    return text


def parse_time(value: str, option: str) -> datetime:
    moment = parse_iso(value)
    if moment is None:
        raise CommandError(
            f"{option} {value!r} is not an ISO 8601 time: write e.g. 2024-05-01 or 2024-05-01T12:00:00Z.",
            returncode=BAD_INPUT,
        )
    return moment


# Django's own bounds of a field ("Ensure this value is greater than or equal to 0."), said in
# words of the search by Search.clean() as well.
_GENERIC_CODES = frozenset({"min_value", "max_value"})


def _said_once(errors: list[ValidationError]) -> list[str]:
    """A field's messages, without Django's generic bound when the search's own rules explain it."""
    own = [error for error in errors if error.code not in _GENERIC_CODES]
    return [message for error in (own or errors) for message in error.messages]


class Command(PlainErrors, BaseCommand):
    help = "Collect and summarise posts: from the X API, an archive, or the bundled synthetic sample."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        refuse = parser.error

        def error(message: str):
            # A query may start with "-" (-is:retweet), which argparse takes for an option of its own.
            if message.startswith("unrecognized arguments: -"):
                query = message.removeprefix("unrecognized arguments: ")
                message += f". A query that starts with '-' goes after --: run_search ... -- {query!r}"
            return refuse(message)

        parser.error = error
        return parser

    def add_arguments(self, parser) -> None:
        parser.add_argument("term", nargs="?", default="", help="X search query (for an archive: a filter).")
        parser.add_argument(
            "--archive", action="append", default=[], metavar="PATH", help="An archive file or folder (repeatable)."
        )
        parser.add_argument(
            "--ids",
            metavar="PATH",
            help="A file of tweet ids to look up with the X API: one a line, a CSV with an id column, "
            "gzipped or not, or a dnflow package zip.",
        )
        parser.add_argument("--count", type=int, help="The most posts to collect (archives: all if omitted).")
        parser.add_argument(
            "--source",
            choices=Source.values,
            help="Default: archive with --archive; else sample without X_BEARER_TOKEN; else recent.",
        )
        parser.add_argument("--lang", default="", help="Only posts in this language, e.g. en.")
        parser.add_argument(
            "--start",
            help="Earliest post time, ISO 8601 (UTC if no zone). Without it X searches the last 7 days (recent) "
            "or only the last 30 (all).",
        )
        parser.add_argument("--end", help="Latest post time (exclusive), ISO 8601.")
        parser.add_argument("--owner", help="The user the search belongs to (default: none).")
        parser.add_argument("--enqueue", action="store_true", help="Queue it for a worker and print its id.")
        parser.add_argument("--estimate", action="store_true", help="Only estimate a live search; collect nothing.")
        parser.add_argument(
            "--again",
            type=int,
            metavar="ID",
            help="Run search ID again, here (with --enqueue: by a worker), as the page's 'run again' does: a "
            "failed or cancelled run resumes (finished steps are kept), a finished search is collected again "
            "(one that reads the X API only with --collect-again: it pays for every post again).",
        )
        parser.add_argument(
            "--collect-again",
            action="store_true",
            help="With --again: collect a finished X API search again into a new run, paying again.",
        )

    def handle(self, *args, **options) -> None:
        if options["again"] is not None:
            given = [f"--{name}" for name in AGAIN_ALONE if options[name]] + (["a query"] if options["term"] else [])
            if given:
                # The search runs again as it was saved: a new query, archive or count is a new search.
                raise CommandError(
                    f"--again runs search #{options['again']} as it was saved, so it takes no {', '.join(given)}: "
                    "leave them out, or start a new search with them.",
                    returncode=BAD_INPUT,
                )
            self.run_again(options["again"], enqueue=options["enqueue"], collect_again=options["collect_again"])
            return
        source = options["source"] or (
            Source.IDS
            if options["ids"]
            else Source.ARCHIVE
            if options["archive"]
            else Source.RECENT
            if settings.X_BEARER_TOKEN
            else Source.SAMPLE
        )
        start = parse_time(options["start"], "--start") if options["start"] else None
        end = parse_time(options["end"], "--end") if options["end"] else None
        if options["ids"]:
            archive_path = self.id_dataset(options["ids"])
            if options["estimate"]:
                return
        elif options["estimate"]:
            self.estimate(options["term"], source, options["lang"], start, end, options["count"])
            return
        else:
            archive_path = self.archive_path(options["archive"]) if options["archive"] else ""
        owner = self.find_owner(options["owner"])
        try:
            search = services.create_search(
                owner=owner,
                # Several files are read from a folder of links with a made-up name: the title names them.
                title=" + ".join(Path(p).name for p in options["archive"])[:200] if len(options["archive"]) > 1 else "",
                term=options["term"],
                source=source,
                count=options["count"],
                archive_path=archive_path,
                lang=options["lang"],
                start_time=start,
                end_time=end,
                enqueue=options["enqueue"],
            )
        except ValidationError as exc:
            raise CommandError(self.describe_invalid(exc), returncode=BAD_INPUT) from None
        if options["enqueue"]:
            self.report_queued(search, search.latest_run)
            return
        self.run_in_foreground(search)

    # --- Pieces --------------------------------------------------------------------------------

    def find_owner(self, username: str | None):
        if not username:
            return None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"No user named {username!r}: create it with manage.py createsuperuser, or leave out --owner.",
                returncode=BAD_INPUT,
            )
        return user

    def archive_path(self, paths: list[str]) -> str:
        """One path as given; several are linked into one folder, which the import reads in order."""
        resolved = [Path(p).expanduser().resolve() for p in paths]
        for path in resolved:
            if not path.exists():
                raise CommandError(f"No file or folder at {path}: check the path.", returncode=BAD_INPUT)
        for path in resolved:
            try:
                check_archive_start(path)  # what the import would refuse on its first bytes: now, not later
            except ArchiveError as exc:
                raise CommandError(str(exc), returncode=BAD_INPUT) from None
        if len(resolved) == 1:
            return str(resolved[0])
        folders = [p for p in resolved if p.is_dir()]
        if folders:
            raise CommandError(
                f"{folders[0]} is a folder: give one folder on its own, or several files.", returncode=BAD_INPUT
            )
        bundle = new_upload_folder()
        bundle.mkdir(parents=True)
        for number, path in enumerate(resolved, start=1):
            # Numbered, so the import keeps the order given; .jsonl so a folder import picks every one up.
            suffix = "" if path.name.lower().endswith(FOLDER_SUFFIXES) else ".jsonl"
            (bundle / f"{number:02d}-{path.name}{suffix}").symlink_to(path)
        return str(bundle)

    def id_dataset(self, path: str) -> str:
        """Check an id dataset before anything is spent, and say what looking it up costs at most."""
        dataset = Path(path).expanduser().resolve()
        if not dataset.is_file():
            raise CommandError(f"No file at {dataset}: check the path.", returncode=BAD_INPUT)
        try:
            self.stderr.write(check_id_dataset(dataset), PLAIN)
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages), returncode=BAD_INPUT) from None
        return str(dataset)

    def describe_invalid(self, exc: ValidationError) -> str:
        if hasattr(exc, "error_dict"):
            names = {"archive_path": "archive", "start_time": "start", "end_time": "end"}
            lines = [
                f"--{names.get(field, field)}: {message}" if field in names or field in ("count", "lang", "source")
                else message
                for field, errors in exc.error_dict.items()
                for message in _said_once(errors)
            ]  # fmt: skip
            return "\n".join(lines)
        return " ".join(exc.messages)

    def estimate(self, term: str, source: str, lang: str, start, end, count: int | None) -> None:
        if Source(source) == Source.SAMPLE and not settings.X_BEARER_TOKEN:
            # The sample was chosen for them: without a token there is no X to ask.
            raise CommandError(
                "An estimate asks the X API how many posts match, and X_BEARER_TOKEN is not set: set it to your "
                "app's bearer token (X developer portal), then run this again.",
                returncode=BAD_INPUT,
            )
        if not Source(source).is_live:
            raise CommandError(
                "Estimates are for live X searches (--source recent or all): archives and the sample cost nothing.",
                returncode=BAD_INPUT,
            )
        probe = Search(
            term=term.strip(),
            source=source,
            count=settings.DNFLOW_DEFAULT_COUNT if count is None else count,
            lang=lang,
            start_time=start,
            end_time=end,
        )
        try:
            probe.full_clean()
        except ValidationError as exc:
            raise CommandError(self.describe_invalid(exc), returncode=BAD_INPUT) from None
        from pipeline.xapi import XApiError, estimate

        try:
            result = estimate(
                query=probe.term, source=source, lang=lang, start_time=start, end_time=end, count=probe.count
            )
        except XApiError as exc:
            raise CommandError(str(exc), returncode=FAILED) from None
        self.stdout.write(result.describe())
        width = max((len(f"{n:,}") for _, n in result.by_day), default=1)
        for day, posts in result.by_day:
            self.stdout.write(f"  {day}  {posts:>{width},}")

    def run_again(self, search_id: int, *, enqueue: bool = False, collect_again: bool = False) -> None:
        search = search_from_argument(search_id)
        latest = SearchRun.objects.filter(pk=search.latest_run_id).first()
        if enqueue and latest is not None and latest.status == Status.QUEUED:
            raise CommandError(
                f"Search #{search.pk} is queued already: a worker runs it once one is free "
                "(`manage.py reconcile_searches` queues it again if Redis lost it).",
                returncode=BAD_INPUT,
            )
        if collect_again and latest is not None and latest.status == Status.QUEUED:
            # Carrying out the queued run (a purge, say) is not what was asked: say so, run nothing.
            raise CommandError(
                f"Search #{search.pk} has run {latest.number} queued ({latest.get_kind_display().lower()}): it "
                f"runs before anything else. `manage.py run_search --again {search.pk}` carries it out here; "
                "collect again once it has finished.",
                returncode=BAD_INPUT,
            )
        if (
            latest is not None
            and latest.status == Status.FINISHED
            and Source(search.source).uses_api
            and not collect_again
        ):
            # The person may believe it stopped (it was killed, then a worker resumed it): collecting a
            # finished search anew reads everything from X again, at a cost, and is asked for in words.
            raise CommandError(
                f"Search #{search.pk} has finished (run {latest.number}, {latest.num_posts or 0:,} posts): there "
                "is nothing to resume. To collect it again from X into a new run, paying for every post again, "
                f"add --collect-again; to collect only what is newer, use 'Collect new posts' on its page.",
                returncode=BAD_INPUT,
            )
        if latest is None or latest.status != Status.QUEUED:  # a queued run (not started yet) just runs here
            # --collect-again is a new collection whatever stopped last, as the page's "Collect again
            # from the start": resuming a stopped purge or recheck instead would do what was not asked
            # (an irreversible purge, paid lookups).
            start = services.collect_again if collect_again else services.rerun_search
            try:
                run = start(search, enqueue=enqueue)
            except services.ActionRefused as exc:
                hint = still_running_hint(search.pk) if latest is not None and latest.status == Status.RUNNING else ""
                raise CommandError(f"{exc}{hint}", returncode=BAD_INPUT) from None
            if enqueue:
                self.report_queued(search, run)
                return
        self.run_in_foreground(Search.objects.with_runs().get(pk=search.pk))

    def report_queued(self, search: Search, run: SearchRun) -> None:
        """The search's id, for scripts; and a word when Redis did not take the job."""
        run.refresh_from_db()
        if not run.rq_job_id:
            self.stderr.write(run.step or "Saved, but not queued yet: the job queue is unreachable.", PLAIN)
        self.stdout.write(str(search.pk))

    def run_in_foreground(self, search: Search) -> None:
        what = search.term or search.title or (Path(search.archive_path).name if search.archive_path else "")
        self.stderr.write(f"Search #{search.pk}: {search.get_source_display()}{f' -- {what}' if what else ''}", PLAIN)
        # The failure reason is printed below; the worker-style log line would say it twice, and
        # Luigi's traceback of a full disk would come before it.
        pipeline_log = logging.getLogger("dnflow.pipeline")
        luigi_log = logging.getLogger("luigi-interface")
        level = pipeline_log.level
        pipeline_log.setLevel(logging.ERROR)
        luigi_log.addFilter(_disk_full_explained)
        try:
            run = execute_watched(search, search.latest_run, self.stderr)
        except DatabaseError as exc:
            # Said of this search: "run this again" (the general advice) would start another one,
            # and leave this one "running" with nobody behind it.
            raise CommandError(
                f"The database stopped answering while search #{search.pk} ran ({error_kind(exc)}), so how it "
                "ended may not be recorded. Once the database answers again (DATABASE_URL), "
                f"`manage.py run_search --again {search.pk}` resumes it, or says how to: completed steps are kept.",
                returncode=FAILED,
            ) from None
        finally:
            pipeline_log.setLevel(level)
            luigi_log.removeFilter(_disk_full_explained)
        if run.status != Status.FINISHED:
            raise CommandError(
                f"Search #{search.pk} {run.get_status_display().lower()}: {run.error or run.step}",
                returncode=FAILED,
            )
        if run.kind == RunKind.PURGE:
            # A purge collects nothing: "0 posts" would read as a search emptied. What it did, instead.
            self.stdout.write(purge_line(search, run))
        else:
            self.stdout.write(f"Search #{search.pk} finished: {run.num_posts or 0:,} posts.")
            self.report_import(run)
        self.stdout.write(str(run.folder_path.resolve()))

    def report_import(self, run: SearchRun) -> None:
        """Say what the import skipped (malformed lines, duplicates): nothing is dropped silently."""
        report = run_files.read_summary(run.folder_path).get("import") or {}
        if any(report.get(key) for key in ("bad_lines", "duplicates", "not_posts", "authorless")):
            self.stderr.write(f"Import: {report.get('summary', '')}", PLAIN)


def purge_line(search: Search, run: SearchRun) -> str:
    """What a finished purge did, in a line."""
    report = run_files.read_purge_report(run.folder_path)
    files = sum(len(entry.get("files") or {}) for entry in report.get("runs") or [])
    runs = counted(len(report.get("runs") or []), "run")
    upload = " The uploaded archive was deleted." if "removed" in report["upload"] else ""
    completes = "".join(
        f" It completes {attempt_in_words(attempt)}." for attempt in report.get("earlier_attempts") or []
    )
    return (
        f"Search #{search.pk}: purged {counted(report.get('posts', 0), 'post')} X no longer gave from "
        f"{counted(files, 'file')} of {runs}.{completes}{upload}"
    )


def still_running_hint(search_id: int) -> str:
    """What to do about a search that says it is running, when its process may have been killed."""
    found_out = (
        " If the process running it was killed, `manage.py reconcile_searches` finds that out "
        f"({alive_ttl()} s after its last heartbeat) and queues it again"
    )
    latest = SearchRun.objects.filter(search_id=search_id).order_by("-number").first()
    if latest is not None and latest.kind == RunKind.PURGE:
        # A purge pays nothing and finishes with its own command.
        return (
            f"{found_out}; `manage.py purge_unavailable {search_id} --yes` then finishes it here (what is purged "
            "stays purged)."
        )
    return (
        f"{found_out}: a running worker then resumes it "
        "(its page shows how far it got), and starting it anew would pay X twice. With no worker running, "
        f"`manage.py run_search --again {search_id}` resumes it here once reconcile has queued it."
    )


def search_from_argument(search_id: int) -> Search:
    """The search a command names, or a plain refusal (exit 2)."""
    search = Search.objects.with_runs().filter(pk=search_id).first()
    if search is None:
        raise CommandError(f"No search #{search_id}: see the admin for the ids.", returncode=BAD_INPUT)
    return search


def execute_watched(search: Search, run: SearchRun, out) -> SearchRun:
    """Carry out a run the command has just queued, here, showing its progress on `out`; the run as
    it ended. Stopped by Ctrl-C, SIGTERM or SIGHUP, the run fails with what it finished kept (its
    steps' temporary files are removed on the way out) and the command says how to resume it."""
    watcher = ProgressWatcher(run.pk, out, tty=out.isatty())
    watcher.start()
    try:
        with signals_interrupt() as stop:
            try:
                ended = services.execute_search(Search.objects.get(pk=search.pk))
            except KeyboardInterrupt:
                ended = None
            if ended is not None and (not stop.asked or ended.status == Status.FINISHED):
                return ended  # (a signal lost after the last progress report: the run finished all the same)
            # Interrupted: at the signal, or (where that exception was lost) at the next progress report.
            # Still within the handlers, which ignore a second Ctrl-C: this must not be cut short.
            # The signal may have landed in the middle of a query: that connection is in no state to
            # carry another (PostgreSQL: "another command is already in progress"). A new one does.
            for each in connections.all(initialized_only=True):
                with contextlib.suppress(DatabaseError):
                    each.close()
            stopped = SearchRun.objects.get(pk=run.pk)
            stopped.this_claim().fail(INTERRUPTED)
            # The workflow has left this process, its counting processes with it: what it left is nobody's.
            stopped.tidy_up()
    finally:
        watcher.stop()
    raise CommandError(
        f"Interrupted. Search #{search.pk} keeps what it finished: resume it with "
        f"`manage.py run_search --again {search.pk}`, or 'run again' on its page or in the admin.",
        returncode=FAILED,
    )


class signals_interrupt:  # noqa: N801 -- used as a context manager, like contextlib's
    """Ctrl-C, SIGTERM and SIGHUP stop a foreground run alike: KeyboardInterrupt where the main
    thread is. SIGTERM's and SIGHUP's default ends the process on the spot: the run would stay
    "running" with its temporary files until a reconcile sweep, and a person who runs no worker
    would never see it resume.

    Where that exception lands in code that swallows exceptions (the logging module's after-fork
    hook while the summary pass forks its workers, a __del__), the stop is not lost:
    pipeline.events.stop_asked stops the workflow at its next progress report. `asked`: whether a
    signal came.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self._previous: dict[int, object] = {}
        self.asked = False

    def __enter__(self) -> signals_interrupt:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            stop_asked.clear()
            self._previous = {number: signal.signal(number, self._interrupt) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        if self.asked:
            # Stopping: the command ends next. Another Ctrl-C meanwhile must not turn its exit (1,
            # "Interrupted...") into death by a signal (130): ignored by the system itself, as Python
            # puts back the default of a signal it handled when it shuts down, but not of an ignored one.
            for number in self._previous:
                signal.signal(number, signal.SIG_IGN)
            return
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        stop_asked.clear()

    def _interrupt(self, signum, frame) -> None:
        if self.asked:
            return  # pressed again: the stop is under way, and its clean-up must not be cut short
        self.asked = True
        stop_asked.set()
        raise KeyboardInterrupt(signal.Signals(signum).name)


def _disk_full_explained(record: logging.LogRecord) -> bool:
    """Leave out Luigi's traceback of a full disk: the run's error says so, and what to do, in plain words."""
    return not (record.exc_info and is_disk_full(record.exc_info[1]))


class ProgressWatcher:
    """Shows the run's progress while the workflow runs in this thread: polls the database."""

    def __init__(self, run_id: int, out, *, tty: bool) -> None:
        self.run_id = run_id
        self.out = out
        self.tty = tty
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dnflow-progress-{run_id}", daemon=True)
        self._last = ("", -1.0)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.tty:
            self.out.write("", PLAIN)  # end the bar's line

    def _run(self) -> None:
        try:
            while not self._stop.wait(POLL_SECONDS):
                try:
                    self._show()
                except DatabaseError:
                    # The database dropped or locked this thread's connection: the run says so itself,
                    # and the bar goes on at the next poll, on a new connection (it died here before).
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def _show(self) -> None:
        row = SearchRun.objects.filter(pk=self.run_id).values("step", "progress").first()
        if row is None:
            return
        step, progress = row["step"] or "", float(row["progress"] or 0.0)
        if (step, progress) == self._last:
            return
        if self.tty:
            width = 30
            filled = int(width * progress / 100)
            columns = shutil.get_terminal_size((100, 20)).columns
            line = f"[{'#' * filled}{'.' * (width - filled)}] {progress:5.1f}%  {step}"[: columns - 1]
            self.out.write(f"\r{line:<{columns - 1}}", PLAIN, ending="")
            self.out.flush()
        elif step != self._last[0]:
            self.out.write(f"{progress:5.1f}%  {step}", PLAIN)
        self._last = (step, progress)
