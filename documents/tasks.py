"""Background tasks (Django's Tasks API; django-tasks on Django 5.2).

`ingest_document` reads, chunks and indexes one document; `watch_document`
is the deferred watchdog that requeues a document whose worker died. Both
take ids and re-fetch, and exit quietly when the row is gone. The work is
in documents.ingestion.
"""

import time

from django_tasks import task

from corporate.observability import metrics
from documents import ingestion
from documents.models import Status


@task()
def ingest_document(document_id):
    started = time.monotonic()
    status = ingestion.process(document_id)
    if status in (Status.READY, Status.FAILED):
        metrics.observe_ingestion(str(status), time.monotonic() - started)
    return status


@task()
def watch_document(document_id, attempt):
    return ingestion.watch(document_id, attempt)


@task()
def embed_document(document_id):
    """Retry the embedding of a document whose embedding model failed (with back-off)."""
    return ingestion.embed_document(document_id)
