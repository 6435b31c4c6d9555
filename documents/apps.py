from django.apps import AppConfig
from django.db.backends.signals import connection_created


class DocumentsConfig(AppConfig):
    name = "documents"
    verbose_name = "Documents"

    def ready(self):
        from documents import vectors

        connection_created.connect(vectors.on_connection_created, dispatch_uid="documents.vectors")
