"""Placeholder pages until the web issue lands: the home list and a plain status page."""

from django.shortcuts import get_object_or_404, render

from .models import Search


def home(request):
    searches = Search.objects.visible_to(request.user).select_related("owner")[:50]
    return render(request, "searches/home.html", {"searches": searches})


def search_detail(request, pk: int):
    search = get_object_or_404(Search.objects.visible_to(request.user), pk=pk)
    return render(request, "searches/detail.html", {"search": search})
