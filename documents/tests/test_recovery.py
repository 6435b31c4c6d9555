"""A worker that dies mid-ingestion: the document is retried a bounded number of times, then failed."""

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from documents import ingestion
from documents.models import Document
from documents.tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db


def _stall(document, attempts):
    Document.objects.filter(pk=document.pk).update(
        status="processing", attempts=attempts, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )


def test_stalled_document_is_retried_then_failed(ingest, run_tasks, settings):
    settings.DOCUMENTS_MAX_ATTEMPTS = 3
    document = ingest("handbook.pdf", pdf_bytes())
    _stall(document, attempts=1)
    with run_tasks():
        assert ingestion.recover_stalled() == 1
    document.refresh_from_db()
    assert document.status == "ready" and document.attempts == 2

    _stall(document, attempts=3)
    assert ingestion.recover_stalled() == 1
    document.refresh_from_db()
    assert document.status == "failed"
    assert "stopped unexpectedly 3 times" in document.failure_reason


def test_fresh_heartbeat_is_left_alone(ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    Document.objects.filter(pk=document.pk).update(status="processing", attempts=1, heartbeat_at=timezone.now())
    assert ingestion.recover_stalled() == 0


def test_status_poll_recovers_a_stalled_document(client_for, viewer, ingest, run_tasks):
    document = ingest("handbook.pdf", pdf_bytes())
    _stall(document, attempts=1)
    with run_tasks():
        client_for(viewer).get(f"/documents/acme/{document.pk}/status/")
    document.refresh_from_db()
    assert document.status == "ready"


def test_a_worker_that_lost_its_lease_lets_go(ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    Document.objects.filter(pk=document.pk).update(status="processing", attempts=5)
    lease = ingestion.Lease(document.pk, 4)  # an older attempt
    with pytest.raises(ingestion.LeaseLost):
        lease.beat(1, 3)
    lease.fail("late failure")
    document.refresh_from_db()
    assert document.status == "processing" and document.chunks.count() == 3


def test_processing_a_cancelled_or_deleted_document_is_skipped(ingest):
    document = ingest("handbook.pdf", pdf_bytes())
    assert ingestion.process(document.pk) == "skipped"  # it is ready, not queued
    assert ingestion.process(987654) == "skipped"


@pytest.mark.django_db(transaction=True)
def test_killed_worker_process_is_recovered(workspace, member, settings, tmp_path):
    """A real `db_worker` is killed (SIGKILL) while it parses; recovery requeues the document."""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        database = settings.DATABASES["default"]["NAME"]
    else:
        database = None
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DOCUMENTS_MAX_ATTEMPTS = 2
    pages = [[f"Line {line} of page {page}" for line in range(45)] for page in range(400)]
    document = ingestion.accept_upload(workspace, SimpleUploadedFile("big.pdf", pdf_bytes(pages)), member)
    assert Document.objects.get(pk=document.pk).status in {"ready", "queued"}
    # The immediate backend processed it in this process; queue it again and let a real worker take it.
    Document.objects.filter(pk=document.pk).update(status="queued", attempts=0)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "corporate.settings", "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    if database:
        env["DATABASE_URL"] = f"sqlite:///{database}"
    else:
        db = settings.DATABASES["default"]
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    # The worker kills itself (SIGKILL, as the OOM killer or a host crash would) right after
    # its first progress report: deterministic, however fast the machine parses.
    script = (
        "import functools, os, signal, django; django.setup()\n"
        "from documents import ingestion\n"
        "from documents.parsers import sandbox\n"
        "sandbox.extract = functools.partial(sandbox.extract, tick_seconds=0.001)\n"
        "original = ingestion.Lease.beat\n"
        "def beat(self, done=None, total=None):\n"
        "    original(self, done, total)\n"
        "    if done:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "ingestion.Lease.beat = beat\n"
        f"ingestion.process({document.pk})\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=str(settings.BASE_DIR))
    assert worker.wait(60) == -signal.SIGKILL
    row = Document.objects.get(pk=document.pk)
    assert row.status == "processing" and row.attempts == 1
    # The heartbeat stops; once it is stale the document is queued again and processed.
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert ingestion.recover_stalled() == 1
    row.refresh_from_db()
    assert row.status == "ready" and row.attempts == 2 and row.page_count == 400
