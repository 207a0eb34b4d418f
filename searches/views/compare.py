"""Compare searches the person can see, by their results: posts over time on one axis, and hashtags,
mentions and domains side by side."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from pipeline import timeline

from .. import run_files
from ..forms import CompareForm
from ..models import Search

COMPARED_KINDS = ("hashtags", "mentions", "domains")
PICKER_SIZE = 200
DEFAULT_TOP = 20


@dataclass
class Comparison:
    kind: str
    label: str
    rows: list[tuple[str, list[float]]]  # key, its count in each search (0 if absent)
    shared: int  # keys present in every search
    union: int
    pairs: list[tuple[Search, Search, int, float]]  # two searches, shared keys, Jaccard

    @property
    def in_a_sentence(self) -> str:
        return run_files.COUNT_KINDS[self.kind].in_a_sentence

    @property
    def jaccard(self) -> float:
        return self.shared / self.union if self.union else 0.0


def jaccard(a: set, b: set) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def compare_counts(searches: list[Search], kind: str, top: int) -> Comparison:
    counts = [run_files.all_counts(s.results_dir, kind) for s in searches]
    keys = [set(c) for c in counts]
    union = set().union(*keys)
    totals = {k: sum(c.get(k, 0) for c in counts) for k in union}
    ranked = sorted(union, key=lambda k: (-totals[k], k))[:top]
    pairs = [
        (searches[i], searches[j], len(keys[i] & keys[j]), jaccard(keys[i], keys[j]))
        for i, j in combinations(range(len(searches)), 2)
    ]
    return Comparison(
        kind=kind,
        label=run_files.COUNT_KINDS[kind].label,
        rows=[(k, [c.get(k, 0) for c in counts]) for k in ranked],
        shared=len(set.intersection(*keys)) if keys else 0,
        union=len(union),
        pairs=pairs,
    )


def posts_over_time(searches: list[Search]) -> timeline.Grid:
    """The searches' posts over time on one grid, keyed by search id."""
    named = {}
    for search in searches:
        folder = search.results_dir
        found = run_files.posts_over_time(folder, run_files.read_summary(folder))
        named[str(search.pk)] = found or timeline.Series(timeline.MINUTE, ())
    return timeline.common_grid(named)


def compare(request: HttpRequest) -> HttpResponse:
    candidates = list(
        Search.objects.visible_to(request.user).with_results().with_runs().order_by("-created")[:PICKER_SIZE]
    )
    data = None
    if "ids" in request.GET:
        # Accept ?ids=1,2,3 (shareable links) as well as the form's repeated ?ids=1&ids=2.
        data = request.GET.copy()
        data.setlist("ids", [i.strip() for v in request.GET.getlist("ids") for i in v.split(",") if i.strip()])
        if not data.get("top"):
            data["top"] = str(DEFAULT_TOP)
    form = CompareForm(data, searches=candidates, initial={"top": DEFAULT_TOP})
    comparisons, chosen, over_time = [], [], None
    if data is not None and form.is_valid():
        by_id = {s.pk: s for s in candidates}
        chosen = [by_id[i] for i in dict.fromkeys(form.cleaned_data["ids"])]
        top = form.cleaned_data.get("top") or DEFAULT_TOP
        comparisons = [compare_counts(chosen, kind, top) for kind in COMPARED_KINDS]
        over_time = posts_over_time(chosen)
    return render(
        request,
        "searches/compare.html",
        {"form": form, "chosen": chosen, "comparisons": comparisons, "over_time": over_time, "candidates": candidates},
    )
