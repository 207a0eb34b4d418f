"""Every existing search becomes one run: its state, folder and events move to the run."""

from django.db import migrations
from django.db.models import OuterRef, Subquery

BATCH = 2000
MOVED = ("status", "progress", "step", "error", "rate_limited_until", "rq_job_id", "num_posts", "started", "finished")


def folder_name(search) -> str:
    # A search that never started had no folder yet; its run gets one the way new runs do.
    return search.folder or f"search-{search.pk}-{search.created:%Y%m%dT%H%M%S%f}"


def runs_from_searches(apps, schema_editor):
    Search = apps.get_model("searches", "Search")
    SearchRun = apps.get_model("searches", "SearchRun")
    TaskEvent = apps.get_model("searches", "TaskEvent")
    searches = Search.objects.order_by("pk").only("pk", "created", "folder", *MOVED)
    batch = []
    for search in searches.iterator(chunk_size=BATCH):
        batch.append(
            SearchRun(
                search_id=search.pk,
                number=1,
                folder=folder_name(search),
                created=search.created,
                tidy=search.status == "finished",
                **{name: getattr(search, name) for name in MOVED},
            )
        )
        if len(batch) >= BATCH:
            SearchRun.objects.bulk_create(batch)
            batch = []
    SearchRun.objects.bulk_create(batch)
    the_run = SearchRun.objects.filter(search_id=OuterRef("search_id")).values("pk")[:1]
    TaskEvent.objects.update(run_id=Subquery(the_run))
    Search.objects.update(latest_run_id=Subquery(SearchRun.objects.filter(search_id=OuterRef("pk")).values("pk")[:1]))
    finished = SearchRun.objects.filter(search_id=OuterRef("pk"), status="finished").values("pk")[:1]
    Search.objects.update(results_run_id=Subquery(finished))


def searches_from_runs(apps, schema_editor):
    """Back to one state per search: that of its newest run (older runs' rows are dropped)."""
    Search = apps.get_model("searches", "Search")
    SearchRun = apps.get_model("searches", "SearchRun")
    TaskEvent = apps.get_model("searches", "TaskEvent")
    for search in Search.objects.exclude(latest_run=None).iterator(chunk_size=BATCH):
        run = SearchRun.objects.get(pk=search.latest_run_id)
        for name in MOVED:
            setattr(search, name, getattr(run, name))
        search.folder = run.folder
        search.save(update_fields=[*MOVED, "folder"])
    TaskEvent.objects.update(search_id=Subquery(SearchRun.objects.filter(pk=OuterRef("run_id")).values("search_id")))


class Migration(migrations.Migration):
    dependencies = [
        ("searches", "0002_searchrun"),
    ]

    operations = [migrations.RunPython(runs_from_searches, searches_from_runs)]
