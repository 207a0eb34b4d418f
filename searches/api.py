"""A read-only JSON API with the web pages' visibility rules: what a person cannot see is a 404.

A search's `status`, `progress` and `step` are those of its newest run; its counts, files and
`num_posts` those of its newest finished run (`results_run`), as on the pages: a newer run that is
queued, running, failed or cancelled never hides the earlier results.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import run_files
from .models import Search, SearchRun
from .views.access import can_manage

API_KINDS = ("hashtags", "mentions", "urls", "domains", "media", "followers")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
LISTED = 200
EVENTS = 100
RUNS_LISTED = 20
# What _brief reads of a search and its two runs: the list builds 200 rows of four models each, and
# whole models (notes, errors, every column of the owner) cost twice as much, on PostgreSQL most.
BRIEF_FIELDS = (
    *("title", "term", "source", "created", "published_at", "owner__username"),
    *("latest_run__status", "latest_run__progress", "latest_run__step", "latest_run__started"),
    *("latest_run__finished", "results_run__num_posts", "results_run__finished"),
)


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _visible(request: HttpRequest, pk: int) -> Search | None:
    return Search.objects.visible_to(request.user).with_runs().filter(pk=pk).first()


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _run(run: SearchRun | None) -> dict | None:
    if run is None:
        return None
    return {
        "number": run.number,
        "status": run.status,
        "progress": round(run.progress, 1),
        "step": run.step,
        "error": run.error,
        "num_posts": run.num_posts,
        "created": _iso(run.created),
        "started": _iso(run.started),
        "finished": _iso(run.finished),
    }


def _brief(request: HttpRequest, search: Search) -> dict:
    latest, results = search.latest_run, search.results_run
    return {
        "id": search.pk,
        "url": request.build_absolute_uri(search.get_absolute_url()),
        "title": search.title,
        "term": search.term,
        "source": search.source,
        "status": search.status,
        "progress": round(latest.progress, 1) if latest else 0.0,
        "step": latest.step if latest else "",
        "num_posts": results.num_posts if results else None,
        "owner": search.owner.get_username() if search.owner else None,
        "created": _iso(search.created),
        "started": _iso(latest.started) if latest else None,
        "finished": _iso(latest.finished) if latest else None,
        "results_from": _iso(results.finished) if results else None,
        "published": _iso(search.published_at),
    }


@require_GET
def search_list(request: HttpRequest) -> JsonResponse:
    searches = Search.objects.visible_to(request.user).with_runs().only(*BRIEF_FIELDS)
    searches = searches.order_by("-created", "-pk")[:LISTED]
    return JsonResponse({"searches": [_brief(request, s) for s in searches]})


@require_GET
def search_detail(request: HttpRequest, pk: int) -> JsonResponse:
    search = _visible(request, pk)
    if search is None:
        return _error(f"No search #{pk} that you can see.", 404)
    latest = search.latest_run
    events = reversed(list(latest.events.order_by("-created", "-pk")[:EVENTS])) if latest else []
    folder = search.results_dir
    summary = run_files.read_summary(folder)
    counts_keys = ("num_tweets", "unique_hashtags", "unique_mentions", "unique_urls", "unique_users")
    files = run_files.output_files(folder, include_private=can_manage(request.user, search))
    return JsonResponse(
        {
            **_brief(request, search),
            # The owner's notes are not part of what publishing shares.
            **({"notes": search.notes} if can_manage(request.user, search) else {}),
            "error": latest.error if latest else "",
            "rate_limited_until": _iso(latest.rate_limited_until) if latest else None,
            "latest_run": _run(latest),
            "results_run": _run(search.results_run),
            "runs": [_run(run) for run in search.runs.order_by("-number")[:RUNS_LISTED]],
            "counts": {k: summary[k] for k in counts_keys if k in summary},
            # Finished, but its folder is not on this server: counts and files are unknown here, not none.
            "files_missing": bool(search.results_run and search.results_run.folder_missing),
            "first_post_at": summary.get("first_tweet_at"),
            "last_post_at": summary.get("last_tweet_at"),
            "files": [
                {
                    "name": f.name,
                    "size": f.size,
                    "url": request.build_absolute_uri(reverse("search_file", args=[search.pk, f.name])),
                }
                for f in files
            ],
            "events": [
                {
                    "task": e.task_family,
                    "event": e.event,
                    "message": e.message,
                    "duration": e.duration,
                    "at": _iso(e.created),
                }
                for e in events
            ],
        }
    )


@require_GET
def search_counts(request: HttpRequest, pk: int, kind: str) -> JsonResponse:
    search = _visible(request, pk)
    if search is None:
        return _error(f"No search #{pk} that you can see.", 404)
    if kind not in API_KINDS:
        return _error(f"Unknown count {kind!r}: use one of {', '.join(API_KINDS)}.", 404)
    raw_limit = request.GET.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = None
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        return _error(f"limit must be a whole number from 1 to {MAX_LIMIT} (got {raw_limit!r}).", 400)
    if not search.has_results:
        return _error(f"Search #{pk} is {search.status}: counts exist once a run of it has finished.", 409)
    if search.results_run.folder_missing:
        # Not an empty list: the counts exist, on a disk this server does not see (DNFLOW_DATA_DIR).
        return _error(f"Search #{pk} finished, but its files are not on this server: ask its administrator.", 503)
    spec = run_files.COUNT_KINDS[kind]
    rows = run_files.read_counts(search.results_dir, kind, limit)
    columns = [spec.key_column, "file", spec.value_column] if kind == "media" else [spec.key_column, spec.value_column]
    return JsonResponse(
        {
            "search": search.pk,
            "kind": kind,
            "limit": limit,
            "columns": columns,
            "counts": [_count_row(r, spec, with_file=kind == "media") for r in rows],
        }
    )


def _count_row(count: run_files.Count, spec: run_files.CountKind, *, with_file: bool) -> dict:
    row = {spec.key_column: count.key}
    if with_file:
        row["file"] = count.row.get("file", "")
    row[spec.value_column] = int(count.value) if count.is_whole else count.value
    return row
