"""The table of the "logins" cache (settings.CACHES, Django's DatabaseCache): the log-in brake's
counts, shared by every web process. Made here so that `migrate` is all a new machine needs
(Django otherwise wants `manage.py createcachetable`)."""

from django.conf import settings
from django.core.management import call_command
from django.db import migrations

DATABASE_CACHE = "django.core.cache.backends.db.DatabaseCache"


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


def drop_cache_tables(apps, schema_editor):
    for cache in settings.CACHES.values():
        if cache["BACKEND"] == DATABASE_CACHE:
            schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(cache['LOCATION'])}")


class Migration(migrations.Migration):
    dependencies = [("searches", "0005_titles_schedules_and_run_kinds")]

    operations = [migrations.RunPython(create_cache_tables, drop_cache_tables)]
