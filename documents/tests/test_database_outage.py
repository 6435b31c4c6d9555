"""The database going away while a document is processed (PostgreSQL restarting, an outage, the gevent
worker's DatabaseTimeout): no failure of the document, no traceback, one warning, and the document back in
the queue once the database answers, without the attempt counted."""

import logging
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from corporate.backends.postgresql.green import DatabaseTimeout
from documents import ingestion
from documents.models import Document
from documents.tests.conftest import pdf_bytes, upload

# As in production, each query commits on its own (no test transaction that a refusal would spoil).
pytestmark = pytest.mark.django_db(transaction=True)


class Outage:
    """Refuse every query, once `start()` is called, `times` times; `error` makes the exception."""

    def __init__(self, times, error=lambda: OperationalError("FATAL: the database system is shutting down")):
        self.times = times
        self.error = error
        self.on = False
        self.refused = 0

    def start(self):
        self.on = True

    def __call__(self, execute, sql, params, many, context):
        if self.on and self.refused < self.times:
            self.refused += 1
            raise self.error()
        return execute(sql, params, many, context)


@pytest.fixture
def pauses(monkeypatch):
    """The waits for the database, recorded instead of slept."""
    slept = []
    monkeypatch.setattr(ingestion.time, "sleep", slept.append)
    return slept


def outage_while_saving(monkeypatch, outage):
    """Start the outage when the passages are about to be saved (after the file was read)."""
    original = ingestion.save_passages

    def save_passages(*args, **kwargs):
        outage.start()
        return original(*args, **kwargs)

    monkeypatch.setattr(ingestion, "save_passages", save_passages)


def assert_one_warning(caplog, text):
    ours = [r for r in caplog.records if r.name.startswith("documents") and r.levelno >= logging.WARNING]
    assert [r.levelname for r in ours] == ["WARNING"], [r.getMessage() for r in ours]
    assert text in ours[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_an_outage_while_saving_the_passages_queues_the_document_again(workspace, member, monkeypatch, caplog):
    # The save fails, and so does the first look at whether the database is back.
    outage = Outage(times=2)
    outage_while_saving(monkeypatch, outage)
    caplog.set_level(logging.INFO)
    with connection.execute_wrapper(outage):
        document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    document.refresh_from_db()
    # Queued again and (the test queue runs tasks at once) read on the next try: attempt 1, not 2.
    assert document.status == "ready" and document.attempts == 1 and document.chunk_count == 3
    assert outage.refused == 2
    assert_one_warning(caplog, "the database became unavailable during ingestion (OperationalError: FATAL")
    assert "queued again after the database came back" in caplog.text
    assert "no heartbeat" not in caplog.text


def test_a_database_timeout_in_the_heartbeat_waits_for_the_database(workspace, member, monkeypatch, pauses, caplog):
    # The gevent worker's own error (a psycopg2 OperationalError), raised as it is: the heartbeat, then
    # two looks at the database fail; the document is queued again on the third.
    outage = Outage(times=3, error=lambda: DatabaseTimeout("the database did not answer within 30 s"))
    original = ingestion.Lease.beat

    def beat(lease, *args, **kwargs):
        outage.start()
        return original(lease, *args, **kwargs)

    monkeypatch.setattr(ingestion.Lease, "beat", beat)
    caplog.set_level(logging.WARNING)
    with connection.execute_wrapper(outage):
        document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    document.refresh_from_db()
    assert document.status == "ready" and document.attempts == 1
    assert pauses == [0.5, 1.0]  # growing pauses until the database answered
    assert_one_warning(caplog, "(DatabaseTimeout: the database did not answer within 30 s)")


def test_a_long_outage_leaves_the_document_to_the_recovery_with_a_fitting_message(
    workspace, member, monkeypatch, pauses, settings, caplog
):
    settings.DOCUMENTS_STALE_SECONDS = 2
    outage = Outage(times=10**6)
    outage_while_saving(monkeypatch, outage)
    caplog.set_level(logging.WARNING)
    with monkeypatch.context() as queue:
        queue.setattr(ingestion, "enqueue", lambda document_id: None)  # the worker's turn comes below
        document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    with connection.execute_wrapper(outage):
        assert ingestion.process(document.pk) == "interrupted"
    document.refresh_from_db()
    assert document.status == "processing" and document.attempts == 1
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("documents")]
    assert len(messages) == 2 and "still unavailable after 2 s" in messages[1]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    # Once it answers, the recovery queues it again, saying what it saw.
    caplog.clear()
    monkeypatch.undo()
    Document.objects.filter(pk=document.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert ingestion.recover_stalled() == 1
    document.refresh_from_db()
    assert document.status == "ready" and document.attempts == 2
    assert "no heartbeat for over 2 s on attempt 1 (its worker stopped or lost the database); queued again" in (
        caplog.text
    )


def test_a_document_cancelled_during_the_outage_is_left_cancelled(workspace, member, monkeypatch, caplog):
    outage = Outage(times=1)
    original = ingestion.save_passages

    def save_passages(document, *args, **kwargs):
        Document.objects.filter(pk=document.pk).update(status="failed", failure_reason="Cancelled.")
        outage.start()
        return original(document, *args, **kwargs)

    monkeypatch.setattr(ingestion, "save_passages", save_passages)
    with connection.execute_wrapper(outage):
        document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    document.refresh_from_db()
    assert document.status == "failed" and document.failure_reason == "Cancelled."


def test_other_errors_still_fail_the_document(workspace, member, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingestion, "save_passages", broken)
    document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    document.refresh_from_db()
    assert document.status == "failed" and "Something went wrong" in document.failure_reason
    assert "ingestion failed" in caplog.text
