"""The summary of a finished search, its files, and a new sample size."""

from __future__ import annotations

import importlib
import logging

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import reports
from ..forms import SampleForm
from ..models import Search, Status
from .access import can_manage, manageable_search, visible_search

log = logging.getLogger("dnflow.web")

TOP = 10
CHARTS = ("hashtags", "mentions", "domains", "urls", "followers", "ratio")
# Served files cannot run anything or load anything, whatever they contain.
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def summary_context(request: HttpRequest, search: Search) -> dict:
    """Everything the summary shows; post text only for the owner and staff."""
    folder = search.output_dir
    manager = can_manage(request.user, search)
    summary = reports.read_summary(folder)
    charts = []
    for kind in CHARTS:
        rows = reports.read_counts(folder, kind, TOP)
        charts.append({"kind": kind, "label": reports.COUNT_KINDS[kind].label, "rows": rows, "max": _max(rows)})
    return {
        "summary": summary,
        "first_post_at": reports.parse_time(summary.get("first_tweet_at")),
        "last_post_at": reports.parse_time(summary.get("last_tweet_at")),
        "charts": charts,
        # An aggregate like the counts (tweet ids carry their timestamps anyway): shown to anyone.
        "over_time": reports.posts_over_time(folder, summary),
        "retweets": reports.top_retweets(folder, TOP, with_posts=manager),
        "photos": reports.common_photos(folder, 12),
        "photo_groups": reports.photo_groups(folder, max_groups=8, max_per_group=8),
        "files": reports.output_files(folder, include_private=manager),
        "sample_form": SampleForm() if manager else None,
        "can_manage": manager,
    }


def _max(rows: list[reports.Count]) -> float:
    return max((r.value for r in rows), default=0) or 1


def search_summary(request: HttpRequest, pk: int) -> HttpResponse:
    search = visible_search(request, pk)
    if search.status != Status.FINISHED:
        messages.info(request, "The summary appears once the search has finished.")
        return redirect(search)
    context = {"search": search, **summary_context(request, search)}
    return render(request, "searches/summary.html", context)


def search_file(request: HttpRequest, pk: int, name: str) -> FileResponse:
    """One output file by its known name; raw posts only for the owner and staff."""
    search = visible_search(request, pk)
    path = reports.resolve_file(search.output_dir, name, include_private=can_manage(request.user, search))
    if path is None:
        raise Http404("No such file.")
    inline = name.startswith("media/") or name.endswith((".json", ".txt"))
    response = FileResponse(path.open("rb"), as_attachment=not inline, filename=path.name)
    response["Content-Security-Policy"] = FILE_CSP
    return response


@require_POST
def search_sample(request: HttpRequest, pk: int) -> HttpResponse:
    """Write sample.csv again at a new size, if the workflow offers it."""
    search = manageable_search(request, pk)
    form = SampleForm(request.POST)
    if search.status != Status.FINISHED:
        messages.error(request, "A new sample can be drawn once the search has finished.")
    elif not form.is_valid():
        messages.error(request, " ".join(form.errors.get("size", ["Give a sample size."])))
    else:
        write_sample = _write_sample_function()
        if write_sample is None:
            messages.error(request, "This installation cannot redraw samples yet (no pipeline.write_sample).")
        else:
            size = form.cleaned_data["size"]
            try:
                write_sample(search, size)
            except Exception as exc:  # the person must learn why, whatever broke in the workflow's code
                log.exception("search #%s: sample of %s failed", search.pk, size)
                messages.error(request, f"The sample could not be written: {exc}")
            else:
                messages.success(request, f"sample.csv now holds a random sample of up to {size} posts.")
    return redirect(f"{search.get_absolute_url()}#files")


def _write_sample_function():
    for module_name in ("pipeline.outputs", "pipeline.summarise"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if callable(getattr(module, "write_sample", None)):
            return module.write_sample
    return None
