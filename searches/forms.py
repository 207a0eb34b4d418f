"""Forms of the web pages. The rules about what a search may ask for live in validation.py and
reach these forms as the field errors of create_search's ValidationError."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .models import Source

MAX_SAMPLE_SIZE = 1000
MAX_COMPARED = 6

# validate_search names model fields; the form shows the upload where the model has a path.
MODEL_TO_FORM_FIELD = {"archive_path": "archive"}


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class SearchForm(forms.Form):
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
    start_time = forms.DateTimeField(required=False, widget=DateTimeInput(), label="From (UTC)")
    end_time = forms.DateTimeField(required=False, widget=DateTimeInput(), label="Until (UTC)")
    archive = forms.FileField(
        required=False,
        label="Archive file",
        help_text="A JSON lines file of posts (v1.1, v2 pages or twarc2), optionally gzipped, or tweets.js.",
    )

    def __init__(self, *args, upload_refused: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.upload_refused = upload_refused  # why the upload was skipped (searches.uploads), if it was

    def clean(self):
        data = super().clean()
        if self.upload_refused:
            self.add_error("archive", self.upload_refused)
        if data.get("archive") and data.get("source") != Source.ARCHIVE:
            self.add_error("archive", "To import this file, choose “Archive file” as the source (or remove the file).")
        if data.get("source") == Source.ARCHIVE and not data.get("archive") and not self.has_error("archive"):
            self.add_error("archive", "Choose an archive file to upload.")
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
        self.fields["ids"].choices = [(s.pk, str(s)) for s in searches]

    def clean_ids(self):
        ids = list(dict.fromkeys(self.cleaned_data["ids"]))
        if not 2 <= len(ids) <= MAX_COMPARED:
            raise ValidationError(f"Pick between 2 and {MAX_COMPARED} searches to compare (you picked {len(ids)}).")
        return ids
