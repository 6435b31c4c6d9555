from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents"

    def ready(self):
        from corporate import pagecache
        from documents.models import Document

        # The document counts of the dashboard and the workspace list (corporate.pagecache).
        pagecache.invalidate_on_write(Document, workspace=lambda d: d.workspace_id, created_only=True)
