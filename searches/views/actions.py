"""Buttons on a search: each one a POST (with CSRF) that calls the same service as the admin and CLI."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from .. import services
from ..forms import DescribeForm, ScheduleForm
from ..templatetags.dnflow import every as every_text
from .access import manageable_search


def _act(request: HttpRequest, pk: int, action, done: str) -> HttpResponse:
    search = manageable_search(request, pk)
    try:
        action(search)
    except (services.ActionRefused, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
    else:
        messages.success(request, done.format(search=search))
    return redirect(search)


@require_POST
def search_publish(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.publish_search, "Published: anyone can now see {search}'s summary and ids.")


@require_POST
def search_unpublish(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.unpublish_search, "{search} is private again.")


@require_POST
def search_rerun(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.rerun_search, "{search} queued again.")


def _agreed_to_pay(request: HttpRequest, pk: int, action: str) -> HttpResponse | None:
    """None when the action may go ahead: it reads nothing paid for, or the person confirmed what it
    costs. Otherwise the page that says what it reads from X and costs, and asks (without JavaScript
    too: the buttons post here, and the page's own button posts again, confirmed)."""
    search = manageable_search(request, pk)
    reads = services.paid_reads(search, action)
    if reads is None or (request.method == "POST" and request.POST.get("confirmed") == "yes"):
        return None if request.method == "POST" else redirect(search)
    price = settings.DNFLOW_PRICE_PER_POST
    return render(
        request,
        "searches/confirm_spend.html",
        {"search": search, "action": action, "reads": reads, "price": price, "cost": reads * price},
    )


def search_collect_again(request: HttpRequest, pk: int) -> HttpResponse:
    """GET (or a POST not yet confirmed): what a new collection reads from X and costs; POST, confirmed: queue it."""
    return _agreed_to_pay(request, pk, "collect_again") or _act(
        request, pk, services.collect_again, "{search}: a new collection is queued; its earlier results stay meanwhile."
    )


@require_POST
def search_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.cancel_search, "{search} cancelled.")


@require_POST
def search_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.refresh_search, "{search}: collecting the posts newer than the last collection.")


def search_recheck(request: HttpRequest, pk: int) -> HttpResponse:
    """GET (or a POST not yet confirmed): what looking every post up again costs; POST, confirmed: queue it."""
    return _agreed_to_pay(request, pk, "recheck") or _act(
        request, pk, services.recheck_search, "{search}: looking every post up again on X."
    )


@require_POST
def search_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        search = manageable_search(request, pk)
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(search)
    every = form.cleaned_data["refresh_every"]
    done = (
        "{search} collects new posts every {every}."
        if every
        else "{search} no longer collects new posts on a schedule."
    )
    return _act(
        request, pk, lambda search: services.set_schedule(search, every), done.replace("{every}", every_text(every))
    )


@require_POST
def search_describe(request: HttpRequest, pk: int) -> HttpResponse:
    """The owner changes the title and notes (never the query: that is a new search)."""
    search = manageable_search(request, pk)
    form = DescribeForm(request.POST)
    if form.is_valid():
        services.describe_search(search, title=form.cleaned_data["title"], notes=form.cleaned_data["notes"])
        messages.success(request, "Title and notes saved.")
    else:
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
    return redirect(search)


def search_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation (works without JavaScript); POST deletes the search and its files."""
    search = manageable_search(request, pk)
    if request.method != "POST":
        return render(request, "searches/confirm_delete.html", {"search": search})
    name = str(search)
    not_here = services.delete_search(search)
    if not_here:
        messages.success(request, f"Deleted {name}.")
        messages.warning(request, services.folders_not_here_text(name, not_here))
    else:
        messages.success(request, f"Deleted {name} and its files.")
    return redirect("home")


def search_purge(request: HttpRequest, pk: int) -> HttpResponse:
    """GET says exactly what a purge would remove and asks (works without JavaScript); POST purges.

    Both refuse, with the reason, while a run of the search is queued or running, or when there is
    nothing to purge."""
    search = manageable_search(request, pk)
    try:
        plan = services.plan_purge(search)
    except services.ActionRefused as exc:
        messages.error(request, str(exc))
        return redirect(search)
    if request.method != "POST":
        return render(request, "searches/confirm_purge.html", {"search": search, "plan": plan})
    return _act(
        request,
        pk,
        services.purge_unavailable,
        f"{{search}}: purging the {plan.gone:,} posts X no longer gives from its files. The page says when it is done.",
    )
