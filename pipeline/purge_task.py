"""The one task of a purge run (RunKind.PURGE): the posts the newest recheck of the search's results
found gone, removed from the files of every run of the search (pipeline.purge does the files).

It writes the record of the posts first (contract.PURGE_RECORD, in its own folder), so that no file
changes before what changes is on record; then it purges each run's folder, each noting the purge
in its SOURCES before its files are replaced; then it removes the archive the owner uploaded for
the search, if the search has one of its own; and last the report (contract.PURGE_REPORT), which
completes the run. Killed or cancelled, it is run again from the start and finishes the job (what
is purged already stays purged; the notes keep what each attempt did).

What a purge does not change, and why (the confirmation page says the same to the owner):
- the public files of the runs (ids, counts, networks, packages): they hold no post text, the
  results shown leave the gone posts out already, and the earlier runs' are never served;
- an archive given on the server (run_search --archive): the person's own file, never dnflow's;
- an uploaded id dataset: a list of ids, which the availability files name anyway;
- the photos downloaded from X: a photo is shared by address, often by posts that stay, and the
  ids alone do not say which photos only gone posts showed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.utils import timezone

from searches.models import RunKind, SearchRun, Source, Status

from .contract import PURGE_RECORD, PURGE_REPORT
from .outputs import write_json
from .purge import (
    PurgeError,
    purge_folder,
    purge_notes,
    read_gone,
    read_record_posts,
    record_time,
    write_record,
)
from .tasks import RunTask, claim_of, final_task, purged_within_limit
from .words import counted


class PurgeUnavailable(RunTask):
    """A purge: the gone posts out of every run's files, on record."""

    def output(self):
        return self.target(PURGE_REPORT)

    def run(self):
        run = self.load_run()
        search = run.search
        # The results the purge was started for (builds_on) leave out what this recheck found gone.
        recheck = run.builds_on.newest_recheck() if run.builds_on_id else None
        gone = read_gone(recheck.availability_file) if recheck is not None else []
        rechecked_gone = ids = frozenset(post.tweet_id for post in gone)
        # Purges that stopped part-way are finished too: each one's posts leave the runs it was
        # started for (those before it), as the owner confirmed then. A later run may hold a post
        # that is back on X: it is not theirs to purge.
        earlier = stopped_purges(search, before=run.number)
        completing = [
            (attempt["run"], read_record_posts(search.runs.get(number=attempt["run"]).folder_path / PURGE_RECORD))
            for attempt in earlier
            if attempt["record"]
        ]
        for _, posts in completing:
            gone += [post for post in posts if post.tweet_id not in ids]
            ids |= {post.tweet_id for post in posts}
        if not gone and not earlier:
            raise PurgeError("The results this purge was started for were never rechecked: there is nothing to purge.")
        folder = self.folder_path
        folder.mkdir(parents=True, exist_ok=True)
        record = folder / PURGE_RECORD
        if not record.exists():  # a second attempt keeps the first one's record and time
            write_record(record, gone, timezone.now())
        purge = {
            "record": f"{run.folder}/{PURGE_RECORD}",
            "purged_at": record_time(record),
            "recheck": _recheck_file(recheck),
            "why": "The posts listed in the record were removed from the files below because X no longer gave "
            "them when rechecked: their sizes and checksums are the ones below, not those of the files imported.",
        }
        others = list(search.runs.exclude(pk=run.pk).order_by("number"))
        progress = self.progress()
        purged = []
        for done, other in enumerate(others):
            progress.update(done / len(others), step_text=f"Purging run {other.number} ({done + 1} of {len(others)})")
            if other.folder and other.folder_path.is_dir():
                posts = rechecked_gone.union(
                    *({post.tweet_id for post in stopped} for number, stopped in completing if other.number < number)
                )
                within_limit = purged_within_limit(search, posts, purge["record"])
                purge_folder(other.folder_path, posts, purge=purge, within_limit=within_limit)
                files = _what_this_purge_did(other.folder_path, purge["record"])
                if files:
                    purged.append({"run": other.number, "folder": other.folder, "files": files})
        upload = _purge_upload(search)
        write_json(
            folder / PURGE_REPORT,
            {
                "purged_at": purge["purged_at"],
                "recheck": {"run": recheck.number, "file": purge["recheck"]} if recheck is not None else None,
                "posts": len(ids),
                "runs": purged,
                "upload": upload,
                **({"earlier_attempts": earlier} if earlier else {}),
            },
        )
        files = sum(len(entry["files"]) for entry in purged)
        removed = "" if "removed" not in upload else "; the uploaded archive was removed"
        completes = "".join(f"; it completes {attempt_in_words(attempt)}" for attempt in earlier)
        self.outcome = (
            f"{counted(len(ids), 'post')} no longer on X purged: {counted(files, 'file')} of "
            f"{counted(len(purged), 'run')} rewritten{removed}{completes}"
        )


def stopped_purges(search, *, before: int | None = None) -> list[dict]:
    """The purges of the search that stopped (failed or cancelled) since its last finished one
    (among the runs before run `before`), each with what it had changed: once another run came
    between, purging again is a new purge, and the files those attempts changed name their records,
    not its. The new purge's report lists them, so that the record of what left the owner's copies
    is whole in one place; until then the page and the purge's plan say what they changed."""
    runs = [run for run in search.runs.order_by("number") if before is None or run.number < before]
    purges = [run for run in runs if run.kind == RunKind.PURGE]
    since = max((run.number for run in purges if run.status == Status.FINISHED), default=0)
    found = []
    for attempt in purges:
        if attempt.number <= since or attempt.status not in (Status.FAILED, Status.CANCELLED):
            continue
        record = f"{attempt.folder}/{PURGE_RECORD}"
        changed = [
            {"run": other.number, "folder": other.folder, "files": files}
            for other in runs
            if other.number < attempt.number
            and other.folder
            and (files := _what_this_purge_did(other.folder_path, record))
        ]
        written = attempt.folder_path / PURGE_RECORD
        found.append(
            {
                "run": attempt.number,
                "status": attempt.status,
                "record": record if written.is_file() else "",
                "purged_at": record_time(written) if written.is_file() else "",
                "runs": changed,
            }
        )
    return found


def attempt_in_words(attempt: dict) -> str:
    """A stopped purge (stopped_purges) in words: "the purge of run 3, which failed part-way (1 run
    changed then)"."""
    how = Status(attempt["status"]).label.lower()
    if not attempt["runs"]:
        return f"the purge of run {attempt['run']}, which {how} before it changed anything"
    runs = ", ".join(str(changed["run"]) for changed in attempt["runs"])
    return (
        f"the purge of run {attempt['run']}, which {how} part-way (it had changed the files of "
        f"run{'s' if len(attempt['runs']) > 1 else ''} {runs}, as its own record says)"
    )


def _recheck_file(recheck: SearchRun | None) -> str:
    """The availability file a purge takes its posts from, as its notes name it ("" for none: a
    purge that only finishes one that stopped part-way)."""
    if recheck is None:
        return ""
    return f"{recheck.folder}/{recheck.availability_file.relative_to(recheck.folder_path).as_posix()}"


def _what_this_purge_did(folder: Path, record: str) -> dict:
    return next((note.get("files") or {} for note in purge_notes(folder) if note.get("record") == record), {})


def _purge_upload(search) -> dict:
    """The archive the owner uploaded for this search holds the gone posts too: it goes. A file on
    the server, an id dataset and an upload another search uses stay (the report says why)."""
    if Source(search.source) != Source.ARCHIVE or not search.archive_path:
        return {}
    upload = search.own_upload()
    if upload is None:
        why = "another search uses it too" if search.archive_was_uploaded else "it is a file on the server"
        return {"kept": search.archive_path, "why": why}
    shutil.rmtree(upload, ignore_errors=True)
    return {"removed": search.archive_path}


def finishing_task(run: SearchRun) -> RunTask:
    """The task whose completion completes the run: a purge's own, or a collection's package."""
    if run.kind == RunKind.PURGE:
        return PurgeUnavailable(run_id=run.pk, folder=run.folder, claim=claim_of(run))
    return final_task(run)
