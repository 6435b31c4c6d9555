"""PostgreSQL: each passage's tsvector moves to a narrow side table, documents_chunk_lexemes (see documents/search.py).

In documents_chunk, next to the text and the embedding, a row passes the 2 KB TOAST threshold and its
tsvector was stored out of line: ranking a common word's matches read a TOAST page per candidate. The
side table holds only the ids and the tsvector, kept in the row. A no-op on SQLite.
"""

from django.db import migrations


def install(apps, schema_editor):
    from documents import search

    search.install_side_table(schema_editor)


def uninstall(apps, schema_editor):
    from documents import search

    search.uninstall_side_table(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0005_embedding_pending"),
    ]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
