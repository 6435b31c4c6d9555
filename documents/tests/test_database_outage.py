"""The database going away while a document is processed (PostgreSQL restarting, an outage, the gevent
worker's DatabaseTimeout): no failure of the document, no traceback, one warning, and the document back in
the queue once the database answers, without the attempt counted."""

import logging
from datetime import timedelta

import pytest
from django.db import InterfaceError, OperationalError, connection
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


def database_error(sqlstate, message):
    """A psycopg2 error with its SQLSTATE, as Django raises it (its OperationalError, caused by psycopg2's)."""
    import psycopg2

    cause = type("ServerError", (psycopg2.OperationalError,), {"pgcode": sqlstate})(message)
    error = OperationalError(message)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(lambda: OperationalError("FATAL: the database system is shutting down"), id="shutting-down"),
        pytest.param(lambda: OperationalError("server closed the connection unexpectedly"), id="dropped"),
        pytest.param(lambda: database_error("08006", "connection failure"), id="08006"),
        pytest.param(lambda: database_error("57P01", "terminating connection"), id="57P01"),
        pytest.param(lambda: database_error("57P03", "the database system is starting up"), id="57P03"),
        pytest.param(lambda: DatabaseTimeout("the database did not answer within 30 s"), id="timeout"),
        pytest.param(lambda: InterfaceError("connection already closed"), id="interface"),
        pytest.param(lambda: OperationalError("database is locked"), id="sqlite-locked"),
    ],
)
def test_a_lost_or_refused_connection_is_an_outage(error):
    assert ingestion.database_unavailable(error())


def test_the_pool_having_no_connection_in_time_is_an_outage():
    import psycopg2

    from corporate.backends.postgresql.pool import PoolTimeout

    try:
        try:
            raise PoolTimeout("no database connection became free within 10 s")
        except PoolTimeout as exc:
            raise psycopg2.OperationalError(str(exc)) from None  # as the backend raises it
    except psycopg2.OperationalError as exc:
        assert ingestion.database_unavailable(exc)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(lambda: database_error("54000", "string is too long for tsvector"), id="too-long"),
        pytest.param(lambda: database_error("53100", "could not extend file: No space left on device"), id="disk"),
        pytest.param(lambda: database_error("57014", "canceling statement due to statement timeout"), id="timeout"),
        pytest.param(lambda: database_error("40P01", "deadlock detected"), id="deadlock"),
        # A SQLSTATE decides, whatever the message says.
        pytest.param(lambda: database_error("53100", "could not write to the connection file"), id="code-first"),
        pytest.param(lambda: OperationalError("string is too long for tsvector (1200000 bytes)"), id="no-code"),
        pytest.param(lambda: OperationalError("disk I/O error"), id="sqlite-io"),
        pytest.param(lambda: RuntimeError("server closed the connection unexpectedly"), id="not-database"),
    ],
)
def test_other_database_errors_are_no_outage(error):
    assert not ingestion.database_unavailable(error())


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(lambda: database_error("54000", "string is too long for tsvector (1200000 bytes)"), id="code"),
        pytest.param(lambda: OperationalError("string is too long for tsvector (1200000 bytes)"), id="no-code"),
    ],
)
def test_a_database_error_that_comes_again_fails_the_document(workspace, member, monkeypatch, settings, caplog, error):
    queued = []
    monkeypatch.setattr(ingestion, "enqueue", queued.append)
    saves = []

    def save_passages(*args, **kwargs):
        saves.append(1)
        raise error()

    monkeypatch.setattr(ingestion, "save_passages", save_passages)
    document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    results = [ingestion.process(document.pk) for _ in range(settings.DOCUMENTS_MAX_ATTEMPTS + 3)]
    document.refresh_from_db()
    assert results[0] == "failed" and set(results[1:]) == {"skipped"}
    assert document.status == "failed" and document.attempts == 1 and len(saves) == 1
    assert "Something went wrong" in document.failure_reason
    assert "ingestion failed" in caplog.text and "string is too long for tsvector" in caplog.text
    assert queued == [document.pk]  # the upload's own, never again


def test_outages_in_a_row_count_the_attempt_after_a_few(workspace, member, monkeypatch, pauses, settings, caplog):
    # An error taken for an outage although the database answers at once: after OUTAGE_REQUEUES_MAX
    # uncounted requeues each one counts, and the document fails after its last attempt.
    saves = []

    def save_passages(*args, **kwargs):
        saves.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ingestion, "save_passages", save_passages)
    caplog.set_level(logging.WARNING)
    document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)  # runs them all
    document.refresh_from_db()
    runs = ingestion.OUTAGE_REQUEUES_MAX + settings.DOCUMENTS_MAX_ATTEMPTS
    assert len(saves) == runs
    assert document.status == "failed" and document.attempts == settings.DOCUMENTS_MAX_ATTEMPTS
    assert document.failure_reason == (
        f"The database failed {runs} times in a row while processing this document "
        "(OperationalError: server closed the connection unexpectedly); gave up. Re-process to try again."
    )
    assert "attempt 1 counted" in caplog.text and "gave up" in caplog.text
    assert ingestion._outage_requeues(document.pk) == 0  # a re-processing starts afresh


def test_an_attempt_that_ends_forgets_the_outages_before_it(workspace, member, monkeypatch, caplog):
    outage = Outage(times=1)
    outage_while_saving(monkeypatch, outage)
    with connection.execute_wrapper(outage):
        document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)
    document.refresh_from_db()
    assert document.status == "ready" and document.attempts == 1 and outage.refused == 1
    assert ingestion._outage_requeues(document.pk) == 0


def test_outages_in_a_row_before_the_claim_end_the_task(workspace, member, monkeypatch, pauses, caplog):
    queued = []
    monkeypatch.setattr(ingestion, "enqueue", queued.append)
    document = ingestion.accept_upload(workspace, upload("handbook.pdf", pdf_bytes()), member)

    def recover_stalled():
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ingestion, "recover_stalled", recover_stalled)
    results = [ingestion.process(document.pk) for _ in range(ingestion.OUTAGE_REQUEUES_MAX)]
    assert results == ["requeued"] * ingestion.OUTAGE_REQUEUES_MAX
    with pytest.raises(OperationalError):
        ingestion.process(document.pk)
    document.refresh_from_db()
    assert document.status == "queued" and document.attempts == 0
    assert len(queued) == 1 + ingestion.OUTAGE_REQUEUES_MAX
