"""The results of a search (its newest finished run), its files, and a new sample size."""

from __future__ import annotations

import contextlib
import logging

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from pipeline import contract
from pipeline.networks import read_view
from pipeline.purge_task import attempt_in_words, stopped_purges

from .. import run_files, services
from ..forms import SampleForm
from ..models import RunKind, Search, Status
from .access import can_manage, manageable_search, visible_search

log = logging.getLogger("dnflow.web")

TOP = 10
CHARTS = ("hashtags", "mentions", "domains", "urls", "followers", "ratio")
# Served files cannot run anything or load anything, whatever they contain.
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def results_context(request: HttpRequest, search: Search) -> dict:
    """Everything the results section shows (nothing before a run finished); post text only for
    the owner and staff."""
    if not search.has_results:
        return {"results": None}
    folder = search.results_dir
    manager = can_manage(request.user, search)
    if search.results_run.folder_missing:
        log.warning("search #%s: the folder of its results, %s, does not exist on this server", search.pk, folder)
        # Not an empty collection: files this server cannot see. Where they are is for staff to know.
        return {"results": search.results_run, "folder_missing": True, "missing_folder": folder, "can_manage": manager}
    files = run_files.output_files(folder, include_private=manager)
    summary = run_files.read_summary(folder)
    charts = []
    for kind in CHARTS:
        rows = run_files.read_counts(folder, kind, TOP)
        spec = run_files.COUNT_KINDS[kind]
        charts.append(
            {
                "kind": kind,
                "label": spec.label,
                "in_a_sentence": spec.in_a_sentence,
                "rows": rows,
                "keys": [row.key for row in rows],  # what each key is shown among (see dnflow.short_url)
                "max": _max(rows),
            }
        )
    availability = summary.get("availability")
    return {
        "rechecked_out_of": _rechecked_out_of(availability) if isinstance(availability, dict) else 0,
        "results": search.results_run,
        "summary": summary,
        "first_post_at": run_files.parse_iso(summary.get("first_tweet_at")),
        "last_post_at": run_files.parse_iso(summary.get("last_tweet_at")),
        "charts": charts,
        # An aggregate like the counts (tweet ids carry their timestamps anyway): shown to anyone.
        "over_time": run_files.posts_over_time(folder, summary),
        "retweets": run_files.top_retweets(folder, TOP, with_text=manager),
        "photo_failures": run_files.photo_failures(folder),
        "photos": run_files.common_photos(folder, 12),
        "photo_groups": run_files.photo_groups(folder, max_groups=8, max_per_group=8),
        "files": files,
        "package": next((f for f in files if f.name == contract.package_name(folder.name)), None),
        "networks": _networks(folder),
        "networks_file": contract.NETWORKS_VIEW,
        "tweet_ids_file": contract.TWEET_IDS,
        "citation": _citation(request, search) if search.is_published else "",
        "missing_ids_file": contract.MISSING_IDS,
        "rechecks": _rechecks(search),
        **_purges(search, manager),
        # The size of the sample the folder holds now, not the default it was first drawn at.
        "sample_form": SampleForm(initial=_sample_size(summary)) if manager else None,
        "can_manage": manager,
    }


def _sample_size(summary: dict) -> dict:
    size = summary.get("sample_size")
    return {"size": size} if isinstance(size, int) and size > 0 else {}


NETWORK_ROWS = 10
RECHECKS_SHOWN = 12


def _networks(folder) -> list[dict]:
    """The two networks' best-connected nodes, for the table beside the drawing."""
    view = read_view(folder)
    found = []
    for name, title in (("mentions", "Who mentions whom"), ("hashtags", "Who uses which hashtag")):
        network = view.get(name)
        if isinstance(network, dict) and network.get("nodes"):
            nodes = sorted(network["nodes"], key=lambda node: -node.get("degree", 0))[:NETWORK_ROWS]
            found.append({"name": name, "title": title, "nodes": nodes, "edges": len(network.get("edges", []))})
    return found


def _citation(request: HttpRequest, search: Search) -> str:
    """How to cite a published search: who, when, what, where."""
    results = search.results_run
    who = search.owner.get_full_name() or search.owner.get_username() if search.owner else "dnflow"
    when = (results.finished or search.published_at).strftime("%Y-%m-%d")
    what = search.name
    return (
        f"{who} ({when[:4]}). {what} [collection of X posts, {results.num_posts or 0:,} post ids]. "
        f"dnflow search #{search.pk}, run {results.number}, collected {when}. "
        f"{request.build_absolute_uri(search.get_absolute_url())}"
    )


def _rechecked_out_of(availability: dict) -> int:
    """What a recheck's figures are out of: every post collected. Those purged before it were not
    looked up again, and are not there."""
    return availability.get("checked", 0) + availability.get("purged_not_checked", 0)


def _rechecks(search: Search) -> list[dict]:
    """What each finished recheck of the search found, oldest first (the newest few)."""
    runs = search.runs.filter(kind=RunKind.RECHECK, status=Status.FINISHED).order_by("-number")[:RECHECKS_SHOWN]
    found = []
    for run in reversed(runs):
        availability = run_files.read_summary(run.folder_path).get("availability")
        if isinstance(availability, dict) and availability.get("checked"):
            gone = sum((availability.get("unavailable_by_reason") or {}).values())
            out_of = _rechecked_out_of(availability)
            found.append(
                {
                    "run": run,
                    "share": availability.get("available", 0) / out_of,
                    "out_of": out_of,
                    "gone": gone,
                    **availability,
                }
            )
    return found


def _purges(search: Search, manager: bool) -> dict:
    """The purges of the search (finished, oldest first), whether they took the posts the newest
    recheck of the results found gone, and, for the owner, what purging now would remove."""
    purges = []
    for run in search.runs.filter(kind=RunKind.PURGE, status=Status.FINISHED).order_by("number"):
        report = run_files.read_purge_report(run.folder_path)
        purges.append(
            {
                "run": run,
                # When its record says the posts went (a resumed purge keeps its first attempt's time).
                "purged_at": run_files.parse_iso(report.get("purged_at")) or run.finished,
                "posts": report.get("posts", 0),
                "upload_removed": "removed" in report["upload"],
                "completes": [attempt_in_words(attempt) for attempt in report.get("earlier_attempts") or []],
            }
        )
    recheck = search.results_run.newest_recheck()
    stopped = [attempt_in_words(attempt) for attempt in stopped_purges(search)]
    plan = None
    if manager and (recheck is not None or stopped):
        # Nothing to purge now, or a run is active: the page offers no purge.
        with contextlib.suppress(services.ActionRefused):
            plan = services.plan_purge(search)
    return {
        "purges": purges,
        # A purge that stopped part-way has changed some of the copies already: said until one finishes.
        "stopped_purges": stopped,
        "purged_now": recheck is not None and any(p["run"].number > recheck.number for p in purges),
        "purge_plan": plan,
    }


def _max(rows: list[run_files.Count]) -> float:
    return max((r.value for r in rows), default=0) or 1


def search_summary(request: HttpRequest, pk: int) -> HttpResponse:
    search = visible_search(request, pk)
    if not search.has_results:
        messages.info(request, "The summary appears once a run of this search has finished.")
        return redirect(search)
    context = {"search": search, **results_context(request, search)}
    return render(request, "searches/summary.html", context)


def search_file(request: HttpRequest, pk: int, name: str) -> FileResponse:
    """One file of the search's results by its name; the posts' text only for the owner and staff."""
    search = visible_search(request, pk)
    path = run_files.resolve_file(search.results_dir, name, include_private=can_manage(request.user, search))
    if path is None:
        raise Http404("No such file.")
    inline = name.startswith("media/") or name.endswith((".json", ".txt"))
    response = FileResponse(path.open("rb"), as_attachment=not inline, filename=download_name(search, path.name))
    response["Content-Security-Policy"] = FILE_CSP
    return response


def search_purge_record(request: HttpRequest, pk: int, number: int) -> FileResponse:
    """A purge's record of the posts it removed (id, X's reason, when checked, when purged), for
    the owner and staff: what an ethics board asks for, and no run's results hold it."""
    search = manageable_search(request, pk)
    run = search.runs.filter(number=number, kind=RunKind.PURGE).first()
    path = run.folder_path / contract.PURGE_RECORD if run is not None and run.folder else None
    if path is None or not path.is_file():
        raise Http404("No such purge.")
    name = f"search-{search.pk}-run-{run.number}-{contract.PURGE_RECORD}"
    response = FileResponse(path.open("rb"), as_attachment=True, filename=name)
    response["Content-Security-Policy"] = FILE_CSP
    return response


def download_name(search: Search, name: str) -> str:
    """The name a browser saves a file under: with the search's id, so that the files of several
    searches (every one has a count-hashtags.csv) do not overwrite one another. The package's name
    already carries it (search-<id>-<time>.zip). The files keep their names on disk and in the package."""
    if name == contract.package_name(search.results_dir.name):
        return name
    return f"search-{search.pk}-{name}"


@require_POST
def search_sample(request: HttpRequest, pk: int) -> HttpResponse:
    """Draw the results' sample again at a new size."""
    search = manageable_search(request, pk)
    form = SampleForm(request.POST)
    if not search.has_results:
        messages.error(request, "A new sample can be drawn once a run of this search has finished.")
    elif not form.is_valid():
        messages.error(request, " ".join(form.errors.get("size", ["Give a sample size."])))
    else:
        size = form.cleaned_data["size"]
        try:
            services.draw_sample(search, size)
        except Exception as exc:  # the person must learn why, whatever broke in the workflow's code
            log.exception("search #%s: sample of %s failed", search.pk, size)
            messages.error(request, f"The sample could not be written: {exc}")
        else:
            messages.success(request, f"{contract.SAMPLE} now holds a random sample of up to {size} posts.")
    return redirect(f"{search.get_absolute_url()}#files")
