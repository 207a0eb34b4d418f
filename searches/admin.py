from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html

from . import services
from .models import Search, TaskEvent


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    can_delete = False
    fields = ["created", "task_family", "event", "message", "duration"]
    readonly_fields = fields
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


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
        "num_posts",
        "owner",
        "created",
        "published",
    ]
    list_filter = ["status", "source", ("published_at", admin.EmptyFieldListFilter), "created"]
    search_fields = ["term", "archive_path", "owner__username", "error"]
    list_select_related = ["owner"]
    date_hierarchy = "created"
    inlines = [TaskEventInline]
    readonly_fields = [
        "status",
        "progress",
        "step",
        "error",
        "rate_limited_until",
        "rq_job_id",
        "folder",
        "num_posts",
        "started",
        "finished",
        "published_at",
        "created",
        "summary_link",
    ]
    fieldsets = [
        (None, {"fields": ["owner", "term", "source", "archive_path", "count", "lang", "start_time", "end_time"]}),
        ("State", {"fields": readonly_fields}),
    ]
    actions = ["run_again", "cancel", "publish", "unpublish", "delete_with_files", "reconcile"]

    @admin.display(description="Search", ordering="term")
    def term_or_archive(self, obj: Search) -> str:
        return str(obj).split(" ", 1)[1]

    @admin.display(description="Progress", ordering="progress")
    def progress_percent(self, obj: Search) -> str:
        return f"{obj.progress:.0f}%"

    @admin.display(boolean=True, description="Published", ordering="published_at")
    def published(self, obj: Search) -> bool:
        return obj.is_published

    @admin.display(description="Summary page")
    def summary_link(self, obj: Search) -> str:
        if not obj.pk:
            return "-"
        return format_html('<a href="{}">{}</a>', obj.get_absolute_url(), obj.get_absolute_url())

    def save_model(self, request, obj: Search, form, change: bool) -> None:
        # A search added here is queued like one from the web form; edits only save.
        super().save_model(request, obj, form, change)
        if not change:
            services.enqueue_search(obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Django's bulk delete would leave the output folders behind.
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Run / re-run selected searches")
    def run_again(self, request, queryset) -> None:
        _apply(self, request, queryset, services.rerun_search, "Queued")

    @admin.action(description="Cancel selected searches")
    def cancel(self, request, queryset) -> None:
        _apply(self, request, queryset, services.cancel_search, "Cancelled")

    @admin.action(description="Publish selected searches")
    def publish(self, request, queryset) -> None:
        _apply(self, request, queryset, services.publish_search, "Published")

    @admin.action(description="Unpublish selected searches")
    def unpublish(self, request, queryset) -> None:
        _apply(self, request, queryset, services.unpublish_search, "Unpublished")

    @admin.action(description="Delete selected searches and their files")
    def delete_with_files(self, request, queryset) -> None:
        _apply(self, request, queryset, services.delete_search, "Deleted")

    @admin.action(description="Reconcile: queue searches that never reached a worker")
    def reconcile(self, request, queryset) -> None:
        from redis.exceptions import RedisError

        try:
            report = services.reconcile_searches(list(queryset.values_list("pk", flat=True)))
        except RedisError as exc:
            self.message_user(
                request,
                f"Redis could not be reached ({exc}): nothing was queued. Start Redis, then try again.",
                messages.ERROR,
            )
            return
        self.message_user(request, f"Reconcile: {report}.", messages.SUCCESS if report.changed else messages.INFO)

    def delete_model(self, request, obj: Search) -> None:
        services.delete_search(obj)
