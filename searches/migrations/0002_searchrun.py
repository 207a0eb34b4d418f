"""Each collection of a search becomes its own row, SearchRun (schema; the data follows in 0003)."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("searches", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveIntegerField(help_text="1 for a search's first run, then 2, 3...")),
                (
                    "folder",
                    models.CharField(help_text="Output folder inside DNFLOW_DATA_DIR.", max_length=200, unique=True),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("finished", "Finished"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("progress", models.FloatField(default=0.0, help_text="0 to 100, over the whole workflow.")),
                ("step", models.CharField(blank=True, help_text="What the workflow is doing now.", max_length=200)),
                ("error", models.TextField(blank=True, help_text="Why it failed, in plain words.")),
                ("rate_limited_until", models.DateTimeField(blank=True, null=True)),
                ("rq_job_id", models.CharField(blank=True, max_length=64)),
                ("num_posts", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "times_lost",
                    models.PositiveSmallIntegerField(
                        default=0, help_text="Times its worker died in a row; past DNFLOW_LOST_SEARCH_RETRIES it fails."
                    ),
                ),
                (
                    "tidy",
                    models.BooleanField(
                        default=True,
                        help_text="False while a run that stopped may have left temporaries in its folder.",
                    ),
                ),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                ("started", models.DateTimeField(blank=True, null=True)),
                ("finished", models.DateTimeField(blank=True, null=True)),
                (
                    "search",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="searches.search"
                    ),
                ),
            ],
            options={
                "ordering": ["-number"],
                "indexes": [models.Index(fields=["status"], name="run_status")],
                "constraints": [
                    models.UniqueConstraint(fields=("search", "number"), name="run_number_per_search"),
                    models.UniqueConstraint(
                        condition=models.Q(("status__in", ("queued", "running"))),
                        fields=("search",),
                        name="one_active_run_per_search",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="search",
            name="latest_run",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="searches.searchrun",
            ),
        ),
        migrations.AddField(
            model_name="search",
            name="results_run",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="searches.searchrun",
            ),
        ),
        # Null for the moment, both ways: 0003 fills the new link (or, going back, the old one).
        migrations.AlterField(
            model_name="taskevent",
            name="search",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="events", to="searches.search"
            ),
        ),
        migrations.AddField(
            model_name="taskevent",
            name="run",
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name="events", to="searches.searchrun"
            ),
        ),
    ]
