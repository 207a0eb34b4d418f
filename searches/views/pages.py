"""The home page: a person's searches, the published ones, and the form that starts a search."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.core.files.move import file_move_safe
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from pipeline.xapi import estimate as estimate_posts

from .. import services
from ..forms import SearchForm
from ..models import Search, SearchQuerySet, Source
from ..paging import SearchPage, search_page
from ..uploads import disk_full_message, is_disk_full, new_upload_folder
from ..validation import check_id_dataset

log = logging.getLogger("dnflow.web")


def home(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if not request.user.is_authenticated:
            to_login = redirect_to_login(request.get_full_path())
            # Sent by htmx, a redirect would be followed in the background and land in the form.
            return HttpResponseClientRedirect(to_login.url) if request.htmx else to_login
        form = SearchForm(request.POST, request.FILES, upload_refused=getattr(request, "upload_refused", ""))
        search = _start_search(request, form) if form.is_valid() else None
        if search is not None:
            if request.htmx:
                # htmx sent the form (to show the upload's progress): the browser goes on to the page.
                return HttpResponseClientRedirect(search.get_absolute_url())
            return redirect(search)
    else:
        form = SearchForm()
    context = _home_context(request, form)
    # A browser never fills a file input in again: a form refused for another field must say so,
    # or the person finds out only when Start is refused for want of the file.
    context["file_not_kept"] = bool(request.FILES) and not form.has_error("archive")
    return render(request, "searches/home.html", context)


def _home_context(request: HttpRequest, form: SearchForm) -> dict:
    """The person's own searches and the published ones, each list filtered by `q` and paged."""
    user = request.user
    query = request.GET.get("q", "").strip()[:200]
    published = Search.objects.published().order_by("-published_at", "-pk")
    own = None
    if user.is_authenticated:
        own = Search.objects.filter(owner=user).order_by("-created", "-pk")
        published = published.exclude(owner=user)
    if query:
        matches = Q(title__icontains=query) | Q(term__icontains=query) | Q(archive_path__icontains=query)
        published = published.filter(matches)
        own = own.filter(matches) if own is not None else None
    return {
        "form": form,
        "query": query,
        "own_page": page_of(own, request.GET, "mine") if own is not None else None,
        "published_page": page_of(published, request.GET, "published"),
        "can_estimate": bool(settings.X_BEARER_TOKEN),
        # For upload.js, which refuses before sending what the server would refuse once it all arrived.
        "max_upload_bytes": settings.DNFLOW_MAX_UPLOAD_BYTES,
        "file_sources": " ".join(source.value for source in Source if source.reads_a_file),
    }


def page_of(searches: SearchQuerySet, query: QueryDict, param: str) -> SearchPage:
    """The page of `searches` (ordered) that `query` asks for (`<param>=<number>`, and from an
    "Older" link `<param>_after=<id>`), with each row's owner and runs.

    Counting and skipping to a deep page happen on the ids alone, which an index holds: with the
    joins the rows need, the database would build every row it skips (page 4,000 of a list skips
    100,000) and count over the join. The page's ids are a subquery of the one query for its rows.
    """
    order = searches.query.order_by

    def rows_for(ids: SearchQuerySet) -> list[Search]:
        return list(Search.objects.for_rows().filter(pk__in=ids).order_by(*order))

    ids = searches.values_list("pk", flat=True)
    return search_page(ids, query.get(param), rows_for, after_text=query.get(f"{param}_after"))


def _start_search(request: HttpRequest, form: SearchForm) -> Search | None:
    """Save the upload (if any) and create the search; on refusal, errors go on the form."""
    data = form.cleaned_data
    upload_dir = None
    archive_path = ""
    if data.get("archive"):
        try:
            upload_dir, archive_path = _save_upload(data["archive"])
        except UploadNotStored as exc:
            form.add_error("archive", str(exc))
            return None
    try:
        if data["source"] == Source.IDS:
            # Damaged ids are refused here, before the search exists and anything is spent.
            check_id_dataset(Path(archive_path), name=data["archive"].name)
        search = services.create_search(
            owner=request.user,
            title=data.get("title") or "",
            notes=data.get("notes") or "",
            term=data.get("term") or "",
            source=data["source"],
            count=data.get("count"),
            archive_path=archive_path,
            lang=data.get("lang") or "",
            start_time=data.get("start_time"),
            end_time=data.get("end_time"),
            refresh_every=data.get("refresh_every"),
        )
    except ValidationError as exc:
        form.add_service_errors(exc)
        if upload_dir is not None:
            # Nothing refers to the file now: do not keep a stranger's upload around.
            shutil.rmtree(upload_dir, ignore_errors=True)
        return None
    run = search.latest_run
    run.refresh_from_db()
    if not run.rq_job_id and not run.is_done:
        # queue.enqueue_run leaves the reason in `step` when Redis could not be reached.
        messages.warning(request, f"Search saved but not started yet. {run.step}")
    else:
        messages.success(request, f"Search {search} started.")
    return search


class UploadNotStored(Exception):
    """The upload could not be stored (the disk is full); nothing of it was kept. The message says so."""


def _save_upload(upload: UploadedFile) -> tuple[Path, str]:
    """Store an upload under DNFLOW_DATA_DIR/uploads/<uuid>/<safe name>; never trust its name.

    On a full disk nothing is kept and UploadNotStored says so; on any other error nothing is kept either.
    """
    folder = new_upload_folder()
    try:
        name = get_valid_filename(Path(upload.name or "").name)[-150:].lstrip(".")
    except Exception:  # get_valid_filename refuses names like ".."; any refusal gets a plain name
        name = ""
    path = folder / (name or "archive.jsonl")
    try:
        folder.mkdir(parents=True)
        if hasattr(upload, "temporary_file_path"):
            # A big upload is on disk already: moved (renamed where it can be), not copied a second time.
            file_move_safe(upload.temporary_file_path(), str(path))
            if settings.FILE_UPLOAD_PERMISSIONS is not None:  # a temporary file is private to its creator
                path.chmod(settings.FILE_UPLOAD_PERMISSIONS)
        else:
            with path.open("wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if is_disk_full(exc):
            log.warning("upload %s not stored: the disk is full (%s)", upload.name, exc)
            raise UploadNotStored(disk_full_message(upload.name)) from exc
        raise
    return folder, str(path)


def _estimate_id_lookup(upload: UploadedFile) -> dict:
    """What looking up an uploaded id dataset would cost, read from a temporary copy kept nowhere."""
    with tempfile.NamedTemporaryFile(prefix="dnflow-ids-") as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        try:
            return {"estimate": check_id_dataset(Path(copy.name), name=upload.name)}
        except ValidationError as exc:
            return {"problem": "\n".join(exc.messages)}


@login_required
@require_http_methods(["GET", "POST"])
def estimate(request: HttpRequest) -> HttpResponse:
    """How many posts a live search would return and what it would cost, before it runs.

    htmx gets the #estimate fragment alone. Without JavaScript the button posts the whole form here,
    and the home page comes back with the form as filled and the estimate in it.
    """
    if request.method == "GET":
        # This page's address after a plain post: its relative links (pages of the lists), a log-in's
        # "next" and a reload without the form all mean the home page.
        query = request.GET.urlencode()
        return redirect(reverse("home") + (f"?{query}" if query else ""))
    form = SearchForm(request.POST, request.FILES, upload_refused=getattr(request, "upload_refused", ""))
    context: dict = {"estimate": None, "problem": ""}
    if not settings.X_BEARER_TOKEN:
        context["problem"] = "Estimates need X API credentials (X_BEARER_TOKEN)."
    elif not form.is_valid():
        context["problem"] = "Fix the form first: " + " ".join(e for errs in form.errors.values() for e in errs)
    elif form.cleaned_data["source"] == Source.IDS:
        context.update(_estimate_id_lookup(form.cleaned_data["archive"]))
    elif not Source(form.cleaned_data["source"]).is_live:
        context["problem"] = "Estimates are for live X searches; archives and the sample cost nothing."
    else:
        data = form.cleaned_data
        search = Search(
            owner=request.user,
            term=(data.get("term") or "").strip(),
            source=data["source"],
            count=data.get("count") or settings.DNFLOW_DEFAULT_COUNT,
            lang=(data.get("lang") or "").strip(),
            start_time=data.get("start_time"),
            end_time=data.get("end_time"),
        )
        try:
            search.full_clean()  # the same refusals as starting it: no estimate for a query X would refuse
            result = estimate_posts(
                query=search.term,
                source=search.source,
                lang=search.lang,
                start_time=search.start_time,
                end_time=search.end_time,
                count=search.count,
                start_field="From",
            )
            context["estimate"] = result.describe()
        except ValidationError as exc:
            context["problem"] = " ".join(exc.messages)
        except Exception as exc:  # the X API or the network: say what happened, do not crash
            log.warning("estimate failed: %s", exc)
            context["problem"] = f"The estimate could not be made: {exc}"
    if request.htmx:
        return render(request, "searches/home.html#estimate", context)
    # A browser never fills a file input in again: say so, or "Start" would be refused for want of it.
    context["choose_file_again"] = bool(request.FILES)
    return render(request, "searches/home.html", {**_home_context(request, form), **context})
