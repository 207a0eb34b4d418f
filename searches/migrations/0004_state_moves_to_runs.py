"""The state that moved to runs leaves the search; task events belong to runs."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("searches", "0003_runs_from_searches"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="search", name="search_status"),
        migrations.RemoveIndex(model_name="taskevent", name="taskevent_search_created"),
        migrations.RemoveField(model_name="taskevent", name="search"),
        migrations.AlterField(
            model_name="taskevent",
            name="run",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="events", to="searches.searchrun"
            ),
        ),
        migrations.AddIndex(
            model_name="taskevent",
            index=models.Index(fields=["run", "created"], name="taskevent_run_created"),
        ),
        migrations.RemoveField(model_name="search", name="error"),
        migrations.RemoveField(model_name="search", name="finished"),
        migrations.RemoveField(model_name="search", name="folder"),
        migrations.RemoveField(model_name="search", name="num_posts"),
        migrations.RemoveField(model_name="search", name="progress"),
        migrations.RemoveField(model_name="search", name="rate_limited_until"),
        migrations.RemoveField(model_name="search", name="rq_job_id"),
        migrations.RemoveField(model_name="search", name="started"),
        migrations.RemoveField(model_name="search", name="status"),
        migrations.RemoveField(model_name="search", name="step"),
    ]
