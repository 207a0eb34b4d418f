"""Forms of the web pages. The rules about what a search may ask for live in validation.py and
reach these forms as the field errors of create_search's ValidationError."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from pipeline.formats import ArchiveError, check_archive_upload

from .models import Source

MAX_SAMPLE_SIZE = 1000
MAX_COMPARED = 6

# validate_search names model fields; the form shows the upload where the model has a path.
MODEL_TO_FORM_FIELD = {"archive_path": "archive"}


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


REFRESH_CHOICES = [
    ("", "Never"),
    ("1", "Every hour"),
    ("6", "Every 6 hours"),
    ("24", "Every day"),
    ("168", "Every week"),
]


def hours(value: str) -> timedelta | None:
    return timedelta(hours=int(value)) if value else None


def refresh_every_field(**kwargs) -> forms.TypedChoiceField:
    """The schedule's choice, as the new-search form and the schedule form both ask it. Labelled
    apart from the "Collect new posts" button beside it on a search's page, which collects now."""
    return forms.TypedChoiceField(
        choices=REFRESH_CHOICES,
        coerce=hours,
        empty_value=None,
        required=False,
        label="Collect new posts automatically",
        **kwargs,
    )


class SearchForm(forms.Form):
    title = forms.CharField(required=False, max_length=200, help_text="A name for it; the query if empty.")
    term = forms.CharField(
        required=False,
        max_length=4096,
        help_text="X search operators, e.g. climate lang:en -is:retweet. May be empty for a whole archive.",
    )
    source = forms.ChoiceField(choices=Source.choices, initial=Source.SAMPLE)
    count = forms.IntegerField(
        required=False,
        min_value=1,
        help_text="The most posts to collect. Empty: the default for live searches, everything in an archive.",
    )
    lang = forms.CharField(required=False, max_length=16, label="Language", help_text="A code such as en or fr.")
    start_time = forms.DateTimeField(
        required=False,
        widget=DateTimeInput(),
        label="From (UTC)",
        help_text="Empty: the last 7 days for a recent search, only the last 30 for a full archive (X's default).",
    )
    end_time = forms.DateTimeField(required=False, widget=DateTimeInput(), label="Until (UTC)")
    refresh_every = refresh_every_field(
        help_text="Live X searches only: a new run collects the posts published since the last one."
    )
    archive = forms.FileField(
        required=False,
        label="File",
        help_text=(
            "For an archive: posts as JSON lines (v1.1, v2 pages or twarc2), a JSON array, or tweets.js, "
            "optionally gzipped; or the ZIP of your archive that X gives, or a ZIP of such files. "
            "For tweet ids: one id a line, or a CSV with an id column, or a dnflow package."
        ),
    )

    notes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=(
            "Why, for whom, what to keep in mind: only you and staff see them, even once the search is "
            "published. You can change the title and notes later; the query, not."
        ),
    )

    def __init__(self, *args, upload_refused: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.upload_refused = upload_refused  # why the upload was skipped (searches.uploads), if it was

    def clean(self):
        data = super().clean()
        if self.upload_refused:
            self.add_error("archive", self.upload_refused)
        source = data.get("source")
        reads_a_file = source in Source.values and Source(source).reads_a_file
        if data.get("archive") and not reads_a_file:
            self.add_error(
                "archive", "To use this file, choose “Archive file” or “Tweet ids” as the source (or remove the file)."
            )
        if reads_a_file and not data.get("archive") and not self.has_error("archive"):
            what = "an archive file" if source == Source.ARCHIVE else "a file of tweet ids"
            self.add_error("archive", f"Choose {what} to upload.")
        if source == Source.ARCHIVE and data.get("archive") and not self.has_error("archive"):
            # What the import would refuse on its first bytes is refused now, not in the worker.
            try:
                check_archive_upload(data["archive"], data["archive"].name)
            except ArchiveError as exc:
                self.add_error("archive", str(exc))
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        """Show create_search's refusal on the fields it names (the rest above the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, messages in error.message_dict.items():
            target = MODEL_TO_FORM_FIELD.get(field, field)
            self.add_error(target if target in self.fields else None, messages)

    @property
    def live_sources_available(self) -> bool:
        return bool(settings.X_BEARER_TOKEN)


class ScheduleForm(forms.Form):
    refresh_every = refresh_every_field()


class DescribeForm(forms.Form):
    title = forms.CharField(required=False, max_length=200, help_text="The query if empty.")
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class SampleForm(forms.Form):
    size = forms.IntegerField(
        min_value=1,
        max_value=MAX_SAMPLE_SIZE,
        initial=lambda: settings.DNFLOW_SAMPLE_SIZE,
        label="Sample size",
        error_messages={
            "min_value": "A sample holds at least 1 post.",
            "max_value": f"A sample holds at most {MAX_SAMPLE_SIZE:,} posts.",
            "invalid": "Give the sample size as a whole number.",
            "required": "Give a sample size.",
        },
    )


class CompareForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(
        coerce=int,
        label="Searches to compare",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Search #%(value)s is not one you can compare: pick from the list."},
    )
    top = forms.IntegerField(min_value=1, max_value=100, initial=20, required=False, label="Rows per table")

    def __init__(self, *args, searches=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(s.pk, s.short_name) for s in searches]

    def clean_ids(self):
        ids = list(dict.fromkeys(self.cleaned_data["ids"]))
        if not 2 <= len(ids) <= MAX_COMPARED:
            raise ValidationError(f"Pick between 2 and {MAX_COMPARED} searches to compare (you picked {len(ids)}).")
        return ids
