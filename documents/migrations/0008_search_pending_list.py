"""The full-text search indexes keep a small pending list (see documents/search.py, GIN_PENDING_KB).

PostgreSQL: existing GIN indexes get `gin_pending_list_limit`, and what is pending is merged now.
A no-op on SQLite.
"""

from django.db import migrations


def install(apps, schema_editor):
    from documents import search

    search.bound_pending_lists(schema_editor)


def uninstall(apps, schema_editor):
    from documents import search

    search.unbound_pending_lists(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0007_search_sections"),
    ]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
