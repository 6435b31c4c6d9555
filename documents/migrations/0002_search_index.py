"""The full-text index: an FTS5 table with sync triggers on SQLite, a generated
tsvector column with a GIN index on PostgreSQL (SQL in documents/search.py).

SQLite note: a later migration that makes Django rebuild documents_chunk
(e.g. altering a column) drops the triggers; run `manage.py reindex --rebuild-index`
after it, or add a migration that calls search.install again.
"""

from django.db import migrations


def install(apps, schema_editor):
    from documents import search

    search.install(schema_editor)


def uninstall(apps, schema_editor):
    from documents import search

    search.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("documents", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
