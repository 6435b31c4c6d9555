"""A passage's heading path is searched with its text (see documents/search.py, SECTION_WEIGHT).

SQLite: the FTS5 table gets a second column, `section`, and is rebuilt from documents_chunk.
PostgreSQL: the trigger puts the path's words in the tsvector; passages with a section are indexed again.
Reversing keeps the index as it is: it serves the former queries unchanged.
"""

from django.db import migrations


def install(apps, schema_editor):
    from documents import search

    search.index_sections(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0006_search_side_table"),
    ]

    operations = [migrations.RunPython(install, migrations.RunPython.noop, elidable=False)]
