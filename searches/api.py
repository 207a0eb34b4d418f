"""A read-only JSON API with the web pages' visibility rules: what a person cannot see is a 404."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import reports
from .models import Search, Status
from .views.access import can_manage

API_KINDS = ("hashtags", "mentions", "urls", "domains", "media", "followers")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
LISTED = 200
EVENTS = 100


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _visible(request: HttpRequest, pk: int) -> Search | None:
    return Search.objects.visible_to(request.user).select_related("owner").filter(pk=pk).first()


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _brief(request: HttpRequest, search: Search) -> dict:
    return {
        "id": search.pk,
        "url": request.build_absolute_uri(search.get_absolute_url()),
        "term": search.term,
        "source": search.source,
        "status": search.status,
        "progress": round(search.progress, 1),
        "step": search.step,
        "num_posts": search.num_posts,
        "owner": search.owner.get_username() if search.owner else None,
        "created": _iso(search.created),
        "started": _iso(search.started),
        "finished": _iso(search.finished),
        "published": _iso(search.published_at),
    }


@require_GET
def search_list(request: HttpRequest) -> JsonResponse:
    searches = Search.objects.visible_to(request.user).select_related("owner")[:LISTED]
    return JsonResponse({"searches": [_brief(request, s) for s in searches]})


@require_GET
def search_detail(request: HttpRequest, pk: int) -> JsonResponse:
    search = _visible(request, pk)
    if search is None:
        return _error(f"No search #{pk} that you can see.", 404)
    events = reversed(list(search.events.order_by("-created", "-pk")[:EVENTS]))
    summary = reports.read_summary(search.output_dir) if search.status == Status.FINISHED else {}
    counts_keys = ("num_tweets", "unique_hashtags", "unique_mentions", "unique_urls", "unique_users")
    return JsonResponse(
        {
            **_brief(request, search),
            "error": search.error,
            "rate_limited_until": _iso(search.rate_limited_until),
            "counts": {k: summary[k] for k in counts_keys if k in summary},
            "first_post_at": summary.get("first_tweet_at"),
            "last_post_at": summary.get("last_tweet_at"),
            "files": [
                {
                    "name": f.name,
                    "size": f.size,
                    "url": request.build_absolute_uri(reverse("search_file", args=[search.pk, f.name])),
                }
                for f in reports.output_files(search.output_dir, include_private=can_manage(request.user, search))
            ]
            if search.status == Status.FINISHED
            else [],
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
    if search.status != Status.FINISHED:
        return _error(f"Search #{pk} is {search.status}: counts exist once it has finished.", 409)
    spec = reports.COUNT_KINDS[kind]
    rows = reports.read_counts(search.output_dir, kind, limit)
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


def _count_row(count: reports.Count, spec: reports.CountKind, *, with_file: bool) -> dict:
    row = {spec.key_column: count.key}
    if with_file:
        row["file"] = count.row.get("file", "")
    row[spec.value_column] = int(count.value) if count.is_whole else count.value
    return row
