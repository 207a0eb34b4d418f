"""Who may see and manage a search. Anything a person may not see is a 404, never a 403, so a
private search's existence does not leak."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from ..models import Search


def visible_search(request: HttpRequest, pk: int) -> Search:
    return get_object_or_404(Search.objects.visible_to(request.user).with_runs(), pk=pk)


def manageable_search(request: HttpRequest, pk: int) -> Search:
    """The search if this person may run, cancel, publish or delete it; 404 otherwise."""
    search = visible_search(request, pk)
    if not can_manage(request.user, search):
        raise Http404("No such search.")
    return search


def can_manage(user, search: Search) -> bool:
    """The owner and staff; answered without a query (the owner id is on the row)."""
    if not user.is_authenticated:
        return False
    return bool(user.is_staff) or search.owner_id == user.pk
