from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents"

    def ready(self):
        from corporate import pagecache
        from documents import (
            signals,  # noqa: F401
            vectors,
        )
        from documents.models import Document
        from workspaces.navigation import search_page, tab

        search_page("documents:search")

        tab("documents", "Documents", "documents:list", order=20, description="Upload files and search what they say.")
        tab(
            "documents-list",
            "All documents",
            "documents:list",
            parent="documents",
            order=1,
            current=("documents:list", "documents:detail", "documents:delete"),
        )
        tab("documents-search", "Search", "documents:search", action="search", parent="documents", order=2)
        tab("documents-upload", "Upload", "documents:upload", action="upload", parent="documents", order=3)

        # The document counts of the dashboard and the workspace list (corporate.pagecache).
        pagecache.invalidate_on_write(Document, workspace=lambda d: d.workspace_id, created_only=True)

        # PostgreSQL: HNSW scans go on until enough passages of the wanted workspace are found.
        connection_created.connect(vectors.on_connection_created, dispatch_uid="documents.vectors")
