"""Search of one workspace: a GIN index over (workspace_id, search_vector) on PostgreSQL (see documents/search.py).

A very common word matched hundreds of thousands of passages across all workspaces before the workspace
was applied; with the workspace in the same index the scan reads only the workspace's matches.
"""

from django.db import migrations


def install(apps, schema_editor):
    from documents import search

    search.install_workspace_index(schema_editor)


def uninstall(apps, schema_editor):
    from documents import search

    search.uninstall_workspace_index(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0003_semantic_index"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
