"""The admin: searches with their runs, runs with their task events, and the same actions as the
pages (each one calls the service the pages call). The query of a saved search is read-only."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import models
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from . import services
from .forms import DateTimeInput
from .models import QUERY_FIELDS, Search, SearchRun, Status, TaskEvent
from .templatetags.dnflow import number, seconds

# The admin says whose it is, not "Django administration".
admin.site.site_header = "dnflow administration"
admin.site.site_title = "dnflow admin"
admin.site.index_title = "Searches, runs and people"


# What a saved search's change page may change; the query is read-only, the rest its runs' to set.
EDITABLE_FIELDS = ("owner", "title", "notes")


def posts_number(count: int | None) -> str | None:
    """A count of posts with separators, as the pages write it (the admin's own format has none);
    None, shown as the admin's "-", while a run has not counted yet."""
    return None if count is None else number(count)


class ReadOnlyInline(admin.TabularInline):
    template = "admin/searches/readonly_tabular.html"
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SearchRunInline(ReadOnlyInline):
    model = SearchRun
    fields = ["run_link", "status", "progress_percent", "posts", "started", "finished", "took", "error"]
    readonly_fields = fields
    ordering = ["-number"]

    @admin.display(description="Run")
    def run_link(self, obj: SearchRun) -> str:
        return format_html(
            '<a href="{}">run {}</a>', reverse("admin:searches_searchrun_change", args=[obj.pk]), obj.number
        )

    @admin.display(description="Progress")
    def progress_percent(self, obj: SearchRun) -> str:
        return f"{obj.progress:.0f}%"

    @admin.display(description="Took")
    def took(self, obj: SearchRun) -> str:
        return seconds(obj.duration) or "-"

    @admin.display(description="Posts")
    def posts(self, obj: SearchRun) -> str | None:
        return posts_number(obj.num_posts)


class TaskEventInline(ReadOnlyInline):
    model = TaskEvent
    fields = ["created", "task_family", "event", "message", "took"]
    readonly_fields = fields

    @admin.display(description="Took")
    def took(self, obj: TaskEvent) -> str:
        return seconds(obj.duration) or "-"


def _confirming(modeladmin, searches, action_name: str, confirm: str, yes: str, no: str) -> dict:
    """What an action's question page needs for its answer (admin/searches/_confirm_form.html)."""
    return {
        "searches": searches,
        "action_name": action_name,
        "confirm": confirm,
        "yes": yes,
        "no": no,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }


def _apply(modeladmin, request, queryset, action, verb: str) -> None:
    """Run one service action per selected search and report each refusal by name."""
    done = 0
    for search in queryset:
        try:
            action(search)
            done += 1
        except (services.ActionRefused, ValidationError) as exc:
            modeladmin.message_user(request, f"{search}: {exc}", messages.WARNING)
    if done:
        modeladmin.message_user(request, f"{verb} {done} search{'es' if done != 1 else ''}.", messages.SUCCESS)


@admin.register(Search)
class SearchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "term_or_archive",
        "source",
        "status",
        "progress_percent",
        "posts",
        "owner",
        "created",
        "published",
    ]
    list_filter = [
        ("latest_run__status", admin.ChoicesFieldListFilter),
        "source",
        ("published_at", admin.EmptyFieldListFilter),
        "created",
    ]
    search_fields = ["title", "term", "archive_path", "owner__username"]
    list_select_related = ["owner", "latest_run", "results_run"]
    date_hierarchy = "created"
    inlines = [SearchRunInline]
    readonly_fields = ["published_at", "created", "summary_link"]
    # One labelled date-and-time input, as on the web form: the admin's pair of date and time
    # boxes has one label for the two, which names neither (axe: "form elements must have labels").
    formfield_overrides = {models.DateTimeField: {"form_class": forms.DateTimeField, "widget": DateTimeInput}}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("start_time", "end_time"):
            # As the web form says it: the times are read in the server's zone, UTC unless TIME_ZONE says.
            field.label = f"{field.label} ({settings.TIME_ZONE})"
        return field

    actions = [
        "run_again",
        "collect_again",
        "collect_new_posts",
        "recheck",
        "purge_unavailable",
        "cancel",
        "publish",
        "unpublish",
        "delete_with_files",
        "reconcile",
    ]

    def get_fieldsets(self, request, obj=None):
        return [
            # Title and notes describe the search and stay editable, as on its page.
            (None, {"fields": [*EDITABLE_FIELDS, *QUERY_FIELDS]}),
            ("State", {"fields": self.readonly_fields}),
        ]

    def get_changeform_initial_data(self, request) -> dict:
        # A search without an owner is shown to staff only: one added here is the adder's, unless
        # they choose someone else.
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def get_readonly_fields(self, request, obj=None):
        # Once saved, a search's query is what its runs answered: changing it means a new search.
        if obj is not None and obj.pk:
            return [*QUERY_FIELDS, *self.readonly_fields]
        return self.readonly_fields

    @admin.display(description="Search", ordering="term")
    def term_or_archive(self, obj: Search) -> str:
        return str(obj).split(" ", 1)[1]

    @admin.display(description="Status", ordering="latest_run__status")
    def status(self, obj: Search) -> str:
        return obj.get_status_display()

    @admin.display(description="Progress", ordering="latest_run__progress")
    def progress_percent(self, obj: Search) -> str:
        return f"{obj.latest_run.progress:.0f}%" if obj.latest_run else "-"

    @admin.display(description="Posts", ordering="results_run__num_posts")
    def posts(self, obj: Search) -> str | None:
        return posts_number(obj.results_run.num_posts) if obj.results_run else None

    @admin.display(boolean=True, description="Published", ordering="published_at")
    def published(self, obj: Search) -> bool:
        return obj.is_published

    @admin.display(description="Summary page")
    def summary_link(self, obj: Search) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">{}</a>', obj.get_absolute_url(), obj.get_absolute_url())

    def save_model(self, request, obj: Search, form, change: bool) -> None:
        if change:
            # Only what the form changed: a whole-row save wrote back the run pointers it had read,
            # and a run that started or finished meanwhile lost its place (latest_run, results_run).
            changed = [name for name in form.changed_data if name in EDITABLE_FIELDS]
            if changed:
                obj.save(update_fields=changed)
            return
        # A search added here starts like one from the web form: its first run, queued.
        services.start_first_run(obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Django's bulk delete would leave the output folders behind.
        actions.pop("delete_selected", None)
        return actions

    def _agreed_to_pay(self, request, queryset, action_name: str, spends: str, finished_only: bool = False):
        """None when the action may go ahead: nothing it does is paid for, or the person confirmed the
        cost. Otherwise the page that lists what each search reads from X and what it costs, and asks."""
        if request.POST.get("spend") == "yes":
            return None
        searches = list(queryset.with_runs())
        spending = []
        for search in searches:
            latest = search.latest_run
            if finished_only and (latest is None or latest.status != Status.FINISHED):
                continue  # a failed or cancelled run resumes: what it stored is not read again
            reads = services.paid_reads(search, spends)
            if reads:
                spending.append((search, reads))
        if not spending:
            return None
        price = settings.DNFLOW_PRICE_PER_POST
        cost = sum(reads for _, reads in spending) * price
        context = {
            **self.admin_site.each_context(request),
            "title": "Read from the X API again, at a cost?",
            "spending": spending,
            "action": spends,
            "price": price,
            "cost": cost,
            **_confirming(self, searches, action_name, "spend", f"Yes, about ${cost:,.2f}", "No, not now"),
        }
        return TemplateResponse(request, "admin/searches/spend_confirmation.html", context)

    @admin.action(description="Run again (resume a failed or cancelled run; collect again a finished one)")
    def run_again(self, request, queryset):
        asked = self._agreed_to_pay(request, queryset, "run_again", "collect_again", finished_only=True)
        if asked is not None:
            return asked
        _apply(self, request, queryset, services.rerun_search, "Queued")
        return None

    @admin.action(description="Collect again into a new run (the earlier results stay; asks first if X charges)")
    def collect_again(self, request, queryset):
        asked = self._agreed_to_pay(request, queryset, "collect_again", "collect_again")
        if asked is not None:
            return asked
        _apply(self, request, queryset, services.collect_again, "Queued")
        return None

    @admin.action(description="Collect new posts (live searches: only what is newer, added to the results)")
    def collect_new_posts(self, request, queryset) -> None:
        _apply(self, request, queryset, services.refresh_search, "Queued")

    @admin.action(description="Recheck availability: look every post up again, leave out what is gone (asks first)")
    def recheck(self, request, queryset):
        asked = self._agreed_to_pay(request, queryset, "recheck", "recheck")
        if asked is not None:
            return asked
        _apply(self, request, queryset, services.recheck_search, "Queued")
        return None

    @admin.action(description="Purge the posts a recheck found gone from the owner's copies (asks first)")
    def purge_unavailable(self, request, queryset):
        """Like Django's delete: a page that says what goes, then the same action again, confirmed."""
        if request.POST.get("purge") == "yes":
            _apply(self, request, queryset, services.purge_unavailable, "Purging the posts no longer on X of")
            return None
        plans = []
        for search in queryset:
            try:
                plans.append(services.plan_purge(search))
            except services.ActionRefused as exc:
                self.message_user(request, f"{search}: {exc}", messages.WARNING)
        if not plans:
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Purge the posts X no longer gives?",
            "plans": plans,
            **_confirming(
                self,
                [plan.search for plan in plans],
                "purge_unavailable",
                "purge",
                "Yes, purge them" if len(plans) == 1 else f"Yes, purge the posts of these {len(plans)} searches",
                "No, keep them",
            ),
        }
        return TemplateResponse(request, "admin/searches/purge_confirmation.html", context)

    @admin.action(description="Cancel the running or queued run")
    def cancel(self, request, queryset) -> None:
        _apply(self, request, queryset, services.cancel_search, "Cancelled")

    @admin.action(description="Publish selected searches")
    def publish(self, request, queryset) -> None:
        # Only the searches this changes are counted; the others are named.
        for search in queryset.filter(published_at__isnull=False):
            self.message_user(request, f"{search}: already published; left as it was.", messages.INFO)
        _apply(self, request, queryset.filter(published_at__isnull=True), services.publish_search, "Published")

    @admin.action(description="Unpublish selected searches")
    def unpublish(self, request, queryset) -> None:
        for search in queryset.filter(published_at__isnull=True):
            self.message_user(request, f"{search}: not published; left as it was.", messages.INFO)
        _apply(self, request, queryset.filter(published_at__isnull=False), services.unpublish_search, "Unpublished")

    @admin.action(description="Delete selected searches, all their runs and files (asks first)")
    def delete_with_files(self, request, queryset):
        """Like Django's delete: a page that says what goes, then the same action again, confirmed."""
        if request.POST.get("delete") == "yes":

            def delete(search: Search) -> None:
                name, not_here = str(search), services.delete_search(search)
                if not_here:
                    self.message_user(request, services.folders_not_here_text(name, not_here), messages.WARNING)

            _apply(self, request, queryset, delete, "Deleted")
            return None
        searches = list(queryset.with_runs())
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete these searches and all their files?",
            **_confirming(
                self,
                searches,
                "delete_with_files",
                "delete",
                "Yes, delete it" if len(searches) == 1 else f"Yes, delete these {len(searches)} searches",
                "No, keep it" if len(searches) == 1 else "No, keep them",
            ),
        }
        return TemplateResponse(request, "admin/searches/delete_with_files.html", context)

    @admin.action(description="Reconcile: queue runs that never reached a worker, recover lost ones")
    def reconcile(self, request, queryset) -> None:
        from redis.exceptions import RedisError

        try:
            outcome = services.reconcile_searches(list(queryset.values_list("pk", flat=True)))
        except RedisError as exc:
            self.message_user(
                request,
                f"Redis could not be reached ({exc}): nothing was queued. Start Redis, then try again.",
                messages.ERROR,
            )
            return
        self.message_user(request, f"Reconcile: {outcome}.", messages.SUCCESS if outcome.changed else messages.INFO)

    def delete_model(self, request, obj: Search) -> None:
        name, not_here = str(obj), services.delete_search(obj)
        if not_here:
            self.message_user(request, services.folders_not_here_text(name, not_here), messages.WARNING)

    def get_deleted_objects(self, objs, request):
        # A search's runs go with it (delete_model), though no one may delete a run on its own: without
        # this the delete page refused every search for want of the permission to delete runs.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed - {SearchRun._meta.verbose_name}, protected


@admin.register(SearchRun)
class SearchRunAdmin(admin.ModelAdmin):
    """Runs are changed by their workers and the search's actions only: read-only here."""

    list_display = ["__str__", "status", "progress_percent", "posts", "started", "finished", "took"]
    list_filter = ["status", "started"]
    list_select_related = ["search"]
    search_fields = ["search__term", "folder", "error"]
    inlines = [TaskEventInline]
    fields = [
        "search_link",
        "number",
        "folder",
        "status",
        "progress",
        "step",
        "error",
        "rate_limited_until",
        "rq_job_id",
        "posts",
        "times_lost",
        "tidy",
        "created",
        "started",
        "finished",
        "took",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Shown, never saved: a Save wrote the whole row back, racing its worker's updates.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a run goes with its search (and its files with it)

    @admin.display(description="Search")
    def search_link(self, obj: SearchRun) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:searches_search_change", args=[obj.search_id]), obj.search
        )

    @admin.display(description="Progress", ordering="progress")
    def progress_percent(self, obj: SearchRun) -> str:
        return f"{obj.progress:.0f}%"

    @admin.display(description="Took")
    def took(self, obj: SearchRun) -> str:
        return seconds(obj.duration) or "-"

    @admin.display(description="Posts", ordering="num_posts")
    def posts(self, obj: SearchRun) -> str | None:
        return posts_number(obj.num_posts)
