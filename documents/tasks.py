"""Background tasks (Django's Tasks API; django-tasks on Django 5.2).

`ingest_document` reads, chunks and indexes one document; `watch_document`
is the deferred watchdog that requeues a document whose worker died. Both
take ids and re-fetch, and exit quietly when the row is gone. The work is
in documents.ingestion.
"""

from django_tasks import task

from documents import ingestion


@task()
def ingest_document(document_id):
    return ingestion.process(document_id)


@task()
def watch_document(document_id, attempt):
    return ingestion.watch(document_id, attempt)


@task()
def embed_document(document_id):
    """Retry the embedding of a document whose embedding model failed (with back-off)."""
    return ingestion.embed_document(document_id)
