"""Accepting files and turning them into searchable passages.

Web views, the API and `manage.py ingest` call `accept_each()` (`accept_upload()`
for each file); the task worker calls `process()` (through documents.tasks).
The life of a document:

1. `accept_upload` checks the name, size and type (from the content), hashes
   the file, refuses a duplicate within the workspace, writes the file to
   storage under a generated name, creates the row as `queued` and enqueues
   the ingestion task once the transaction commits. A storage that cannot
   take the file (full: 507; failing: 503) is a `StorageUnavailable` with one
   warning in the log; whatever was written is deleted, as it is when the
   row cannot be saved. The files of a batch after it are not tried.
2. `process` claims the row with a conditional update (`queued` →
   `processing`, attempts + 1). The attempt number is the worker's fencing
   token: every later write is conditional on it, so a cancelled, deleted or
   re-claimed document is simply let go. The parser runs in a child process
   with limits (parsers/sandbox.py); the worker sends a heartbeat about once
   a second with the progress. Passages replace the old ones in one
   transaction and the row becomes `ready` (version + 1), or `failed` with
   the reason.
3. When the embedding model fails, the document still becomes `ready` (found
   by its words) with `embedding_error` saying why; the embedding is retried
   with back-off (`embed_document`), and `catch_up_embeddings` queues again a
   retry that was lost. Documents embedded by another model than the current
   one are marked pending and embedded again (`reembed_other_models`).
4. `recover_stalled` finds documents whose worker went silent (killed, or
   its machine lost) and queues them again, at most DOCUMENTS_MAX_ATTEMPTS
   attempts in all, then marks them failed. It runs at the start of every
   ingestion, from a deferred watchdog task where the queue supports
   deferring, when a document page polls a stalled document, and from the
   ingest and document_status commands.
5. A database outage while a document is processed is not the document's
   failure: the worker logs one warning, waits for the database (at most
   DOCUMENTS_STALE_SECONDS) and puts the document back in the queue without
   counting the attempt. After a longer outage `recover_stalled` does it.
   Only a lost or refused connection is an outage (`database_unavailable`);
   any other database error fails the document as other errors do. After
   OUTAGE_REQUEUES_MAX outages in a row the attempt counts all the same.
"""

import errno
import hashlib
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from documents import sniff, vectors
from documents.chunking import chunk_units, joined_text
from documents.models import ACTIVE_STATUSES, CONTENT_TYPES, Chunk, Document, Kind, Status
from documents.parsers.base import Limits, ParseError
from documents.uploads import file_name_problem, limit_label

log = logging.getLogger(__name__)
PREVIEW_CHARS = 20000
INSERT_BATCH = 500


class UploadRejected(Exception):
    """An upload that was not stored; `message` says why, `status` is the HTTP status to answer with."""

    def __init__(self, message, *, status=400, code="invalid", duplicate=None, retry_after=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.duplicate = duplicate
        self.retry_after = retry_after  # seconds, for a Retry-After header


class LeaseLost(Exception):
    """The document was cancelled, deleted or claimed again while this worker held it."""


def limits():
    return Limits(
        max_pages=settings.DOCUMENTS_MAX_PAGES,
        max_chars=settings.DOCUMENTS_MAX_CHARS,
        max_unzipped_bytes=settings.DOCUMENTS_MAX_UNZIPPED_MB * 1024 * 1024,
    )


def _title_from(name):
    stem = os.path.splitext(name)[0].strip() or name
    return stem[:255]


def _hash(fileobj):
    digest = hashlib.sha256()
    fileobj.seek(0)
    for block in iter(lambda: fileobj.read(1024 * 1024), b""):
        digest.update(block)
    fileobj.seek(0)
    return digest.hexdigest()


def accept_upload(workspace, uploaded, user=None, *, title=None):
    """Store an uploaded file as a new queued document, or raise UploadRejected.

    `uploaded` is a Django UploadedFile or File (with `.name`, `.size` and a
    seekable file); nothing is stored unless every check passes.
    """
    name = uploaded.name or ""
    problem = file_name_problem(name)
    if problem:
        raise UploadRejected(problem, code="bad_name")
    size = uploaded.size
    if not size:
        raise UploadRejected("The file is empty.", code="empty")
    if size > settings.UPLOAD_MAX_BYTES:
        raise UploadRejected(f"The file is larger than {limit_label()}, the limit.", status=413, code="too_large")
    try:
        kind = sniff.detect(uploaded.file, name, limits())
    except sniff.Unsupported as exc:
        raise UploadRejected(str(exc), status=415, code="unsupported_type") from None
    sha256 = _hash(uploaded.file)
    existing = Document.objects.filter(workspace=workspace, sha256=sha256).first()
    if existing is not None:
        raise _duplicate(existing)
    document = Document(
        workspace=workspace,
        title=(title or _title_from(name))[:255],
        original_name=name,
        kind=kind,
        content_type=CONTENT_TYPES[kind],
        size=size,
        sha256=sha256,
        uploaded_by=user if getattr(user, "is_authenticated", False) else None,
        status=Status.QUEUED,
    )
    # The file first: a row never points at a file that is not there.
    _store(document, name, uploaded)
    try:
        with transaction.atomic():
            document.save()
    except IntegrityError:
        _remove_file(document.file.storage, document.file.name)
        existing = Document.objects.filter(workspace=workspace, sha256=sha256).first()
        if existing is None:
            raise
        raise _duplicate(existing) from None
    except BaseException:
        # The database failed (an outage is answered 503 by corporate.middleware): no row, so no file.
        _remove_file(document.file.storage, document.file.name)
        raise
    enqueue(document.pk)
    return document


class StorageUnavailable(UploadRejected):
    """The file could not be written to the document storage (full, or failing); the files after it are not tried."""


# The errors of a storage that has no room left: the disk (ENOSPC) or the user's quota (EDQUOT).
STORAGE_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
STORAGE_RETRY_AFTER = 60


def _store(document, name, uploaded):
    """Write the file under a generated name and point the document at it; StorageUnavailable when the
    storage cannot take it, with whatever part of it was written removed."""
    field = document.file.field
    storage = document.file.storage
    # A fresh random name (stored_name): what a failed write left there is this upload's own.
    target = field.generate_filename(document, name)
    try:
        stored = storage.save(target, uploaded, max_length=field.max_length)
    except OSError as exc:
        _remove_file(storage, target)
        raise _storage_failure(document, exc) from None
    except BaseException:
        _remove_file(storage, target)
        raise
    document.file = stored


def _storage_failure(document, exc):
    full = exc.errno in STORAGE_FULL_ERRNOS
    log.warning(
        "upload into workspace %s not stored: the document storage %s (%s)",
        document.workspace_id,
        "is full" if full else "cannot be written to",
        exc.strerror or exc.__class__.__name__,
    )
    if full:
        return StorageUnavailable(
            "There is no room left in the document storage, so the file was not stored. "
            "Try again later; the problem was logged for the administrators.",
            status=507,
            code="storage_full",
        )
    return StorageUnavailable(
        "The document storage cannot be written to right now, so the file was not stored. "
        "Try again in a minute; the problem was logged for the administrators.",
        status=503,
        code="storage_unavailable",
        retry_after=STORAGE_RETRY_AFTER,
    )


def _remove_file(storage, name):
    """Delete a stored (or partly written) file; a failure to delete is logged, never raised."""
    if not name:
        return
    try:
        storage.delete(name)
    except Exception as exc:  # noqa: BLE001 - the upload's own error is the one to answer with
        log.warning("could not delete the stored file %s: %s: %s", name, exc.__class__.__name__, exc)


def accept_each(workspace, files, user=None):
    """Accept several uploads: (file, its document or the UploadRejected) for each, in order.

    After a file the storage could not take (StorageUnavailable), the rest are not tried: each
    would fail the same way and leave another partial write; they get the same refusal. The
    files stored before it stay stored and queued.
    """
    stopped = None
    for uploaded in files:
        if stopped is not None:
            yield uploaded, stopped
            continue
        try:
            yield uploaded, accept_upload(workspace, uploaded, user)
        except UploadRejected as exc:
            if isinstance(exc, StorageUnavailable):
                stopped = exc
            yield uploaded, exc


def _duplicate(existing):
    return UploadRejected(
        f"This file is already in the workspace as “{existing.title}”; it was not stored again.",
        status=409,
        code="duplicate",
        duplicate=existing,
    )


def enqueue(document_id):
    """Queue the ingestion of a document once the current transaction commits."""

    def send():
        from documents.tasks import ingest_document

        result = ingest_document.enqueue(document_id)
        Document.objects.filter(pk=document_id, status=Status.QUEUED).update(task_id=str(result.id))

    transaction.on_commit(send)


def reprocess(document):
    """Queue a finished document to be read again; False if it is already queued or processing."""
    updated = Document.objects.filter(pk=document.pk, status__in=[Status.READY, Status.FAILED]).update(
        status=Status.QUEUED, attempts=0, failure_reason="", pages_done=0, pages_total=0, heartbeat_at=None
    )
    if updated:
        enqueue(document.pk)
    return bool(updated)


def cancel(document, user=None):
    """Stop a queued or running ingestion; the document becomes failed. False if it was not active."""
    who = f" by {user.display_name}" if user is not None else ""
    with transaction.atomic():
        updated = Document.objects.filter(pk=document.pk, status__in=ACTIVE_STATUSES).update(
            status=Status.FAILED, failure_reason=f"Cancelled{who}.", heartbeat_at=None, chunk_count=0
        )
        if updated:
            Chunk.objects.filter(document_id=document.pk).delete()
    return bool(updated)


def delete_document(document):
    """Delete the document, its passages (and so their search entries) and its stored file."""
    storage, name = document.file.storage, document.file.name
    with transaction.atomic():
        Chunk.objects.filter(document_id=document.pk).delete()
        document.delete()
        transaction.on_commit(lambda: storage.delete(name) if name else None)


@contextmanager
def local_copy(document):
    """A path to the stored file on local disk (a temporary copy for remote storage)."""
    storage = document.file.storage
    try:
        path = storage.path(document.file.name)
    except NotImplementedError:
        path = None
    if path is not None:
        yield path
        return
    with tempfile.NamedTemporaryFile(prefix="document-", suffix=os.path.splitext(document.file.name)[1]) as copy:
        with storage.open(document.file.name, "rb") as source:
            shutil.copyfileobj(source, copy, 1024 * 1024)
        copy.flush()
        yield copy.name


class Lease:
    """A worker's hold on a document: heartbeats and writes that only succeed while it still holds it."""

    def __init__(self, document_id, attempt):
        self.document_id = document_id
        self.attempt = attempt

    def held(self):
        return Document.objects.filter(pk=self.document_id, status=Status.PROCESSING, attempts=self.attempt)

    def beat(self, done=None, total=None):
        changes = {"heartbeat_at": timezone.now()}
        if total is not None:
            changes.update(pages_done=done or 0, pages_total=total or 0)
        if not self.held().update(**changes):
            raise LeaseLost

    def fail(self, reason):
        from documents.parsers.base import clean

        reason = clean(reason)[:2000]  # a reader's message may quote the file
        with transaction.atomic():
            if self.held().update(status=Status.FAILED, failure_reason=reason, heartbeat_at=None, chunk_count=0):
                Chunk.objects.filter(document_id=self.document_id).delete()


def claim(document_id):
    """Take a queued document for processing; its attempt number, or None if it is not ours to take."""
    now = timezone.now()
    updated = Document.objects.filter(pk=document_id, status=Status.QUEUED).update(
        status=Status.PROCESSING,
        attempts=F("attempts") + 1,
        heartbeat_at=now,
        pages_done=0,
        pages_total=0,
        failure_reason="",
    )
    if not updated:
        return None
    return Document.objects.filter(pk=document_id).values_list("attempts", flat=True).first()


def process(document_id):
    """Read, chunk and index one document (the ingestion task's body). Returns the final status.

    A database outage on the way ("requeued") is no failure of the document: see `_requeue_after_outage`.
    """
    attempt = None
    try:
        recover_stalled()
        catch_up_embeddings()
        attempt = claim(document_id)
        if attempt is None:
            return "skipped"
        schedule_watchdog(document_id, attempt)
        result = _process_claimed(document_id, attempt)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        return _requeue_after_outage(document_id, attempt, exc)
    _outage_requeues(document_id, reset=True)  # an attempt that ran to its end: the outages in a row are over
    return result


# SQLSTATEs of a connection lost or refused: class 08 (connection exception), and the server shutting down
# or starting up (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now). Any other code
# (a value too long for a tsvector, a full disk, a statement timeout, a deadlock...) is an error of the
# work itself, likely to come again for the same document.
OUTAGE_SQLSTATES = ("57P01", "57P02", "57P03")
# What libpq and the server say, without a SQLSTATE, when the connection is lost or cannot be made.
OUTAGE_MESSAGES = (
    "server closed the connection",
    "connection already closed",
    "connection to server",
    "could not connect to server",
    "could not receive data from server",
    "could not send data to server",
    "no connection to the server",
    "lost synchronization with server",
    "ssl syscall error",
    "ssl connection has been closed",
    "terminating connection",
    "the database system is",  # shutting down, starting up, in recovery mode, not accepting connections
    "connection refused",
    "connection timed out",
    "could not translate host name",
    "database is locked",  # SQLite: another process holds the write lock; it passes
)


def database_unavailable(exception):
    """True for an error that says the database cannot be reached now: a lost or refused connection.

    That is an InterfaceError, the gevent worker's DatabaseTimeout or the pool's PoolTimeout, an
    OperationalError with a connection SQLSTATE (OUTAGE_SQLSTATES or class 08), or one without a
    SQLSTATE when the connection is gone or the message says so (OUTAGE_MESSAGES). Every other
    database error counts against the document like any error. Wrapped errors are looked through.
    """
    from django.db import InterfaceError, OperationalError

    gone = _connection_errors()
    chain = []
    while exception is not None and len(chain) < 5:
        chain.append(exception)
        exception = exception.__cause__ or exception.__context__
    if any(isinstance(error, gone) for error in chain):
        return True
    codes = [error.pgcode for error in chain if getattr(error, "pgcode", None)]
    if codes:  # the server said what went wrong
        return codes[0].startswith("08") or codes[0] in OUTAGE_SQLSTATES
    operational = [error for error in chain if isinstance(error, (OperationalError, InterfaceError, *_driver_errors()))]
    if not operational:
        return False
    if _connection_broken():
        return True
    text = " ".join(str(error) for error in operational).lower()
    return any(message in text for message in OUTAGE_MESSAGES)


def _connection_errors():
    """The error classes that always mean the connection is gone (or none could be had in time)."""
    from django.db import InterfaceError

    try:
        import psycopg2

        from corporate.backends.postgresql.green import DatabaseTimeout
        from corporate.backends.postgresql.pool import PoolTimeout
    except ImportError:  # no psycopg2 or gevent: not this project's PostgreSQL backend
        return (InterfaceError,)
    return (InterfaceError, psycopg2.InterfaceError, DatabaseTimeout, PoolTimeout)


def _driver_errors():
    """The drivers' own OperationalError classes (an error not wrapped by Django)."""
    import sqlite3

    try:
        import psycopg2
    except ImportError:
        return (sqlite3.OperationalError,)
    return (sqlite3.OperationalError, psycopg2.OperationalError)


def _connection_broken():
    """True when a PostgreSQL connection of this thread was closed under it (psycopg2's `closed`)."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if connection.vendor == "postgresql" and raw is not None and getattr(raw, "closed", 0):
            return True
    return False


# Outage requeues in a row that do not count the attempt; after them every further one counts
# (towards DOCUMENTS_MAX_ATTEMPTS), so an error taken for an outage cannot requeue a document forever.
OUTAGE_REQUEUES_MAX = 3
# How long the count of a document's outage requeues is kept.
OUTAGE_COUNT_SECONDS = 24 * 3600


def _outage_key(document_id):
    return f"documents:outage-requeues:{document_id}"


def _outage_requeues(document_id, *, add=False, reset=False):
    """The document's outage requeues in a row (after adding one with `add`), kept in the cache that every
    worker sees (the workers' heartbeat cache); 0 after `reset`, or without that cache."""
    from django.core.cache import caches

    store = caches["workers"]
    key = _outage_key(document_id)
    try:
        if reset:
            store.delete(key)
            return 0
        if not add:
            return store.get(key, 0)
        store.add(key, 0, timeout=OUTAGE_COUNT_SECONDS)
        return store.incr(key)
    except Exception:  # noqa: BLE001 - without the cache, each outage requeue is taken as the first
        log.warning("cannot count the outage requeues of document %s", document_id, exc_info=True)
        return 0


def _requeue_after_outage(document_id, attempt, error):
    """Wait for the database (at most DOCUMENTS_STALE_SECONDS), then put the document back in the queue.

    The attempt is given back (attempts - 1): the document did nothing wrong. That holds for
    OUTAGE_REQUEUES_MAX requeues in a row; after them each one counts, and once the document has had
    DOCUMENTS_MAX_ATTEMPTS it is failed. The release is conditional on the lease, so a document
    cancelled, finished or recovered meanwhile is left alone. A database still away after that long
    leaves the document to `recover_stalled`.
    """
    cause = f"{error.__class__.__name__}: {(str(error).strip().splitlines() or [''])[0]}"
    log.warning(
        "document %s: the database became unavailable during ingestion (%s); queued again once it answers",
        document_id,
        cause,
    )
    if not _wait_for_database(settings.DOCUMENTS_STALE_SECONDS):
        log.warning(
            "document %s: the database is still unavailable after %s s; it is queued again when found stalled",
            document_id,
            settings.DOCUMENTS_STALE_SECONDS,
        )
        return "interrupted"
    in_a_row = _outage_requeues(document_id, add=True)
    counted = in_a_row > OUTAGE_REQUEUES_MAX
    if counted and attempt is None:
        # Not claimed yet (it failed before): no attempt to count, so the error ends the task; the
        # document stays queued.
        log.warning("document %s: the database failed %s times in a row; not queued again", document_id, in_a_row)
        raise error
    try:
        if attempt is not None:
            held = Document.objects.filter(pk=document_id, status=Status.PROCESSING, attempts=attempt)
            if counted and attempt >= settings.DOCUMENTS_MAX_ATTEMPTS:
                return _give_up_after_outages(document_id, held, in_a_row, cause)
            released = held.update(
                status=Status.QUEUED,
                attempts=F("attempts") - (0 if counted else 1),
                heartbeat_at=None,
                pages_done=0,
                pages_total=0,
            )
            if not released:
                return "abandoned"
        elif not Document.objects.filter(pk=document_id, status=Status.QUEUED).exists():
            return "skipped"
        enqueue(document_id)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        log.warning("document %s: the database went away again; it is queued again when found stalled", document_id)
        return "interrupted"
    if counted:
        log.warning(
            "document %s: the database failed %s times in a row during ingestion; queued again, attempt %s counted",
            document_id,
            in_a_row,
            attempt,
        )
    else:
        log.info("document %s: queued again after the database came back", document_id)
    return "requeued"


def _give_up_after_outages(document_id, held, in_a_row, cause):
    """Fail a document whose last attempt, too, ended with the database failing."""
    changed = held.update(
        status=Status.FAILED,
        heartbeat_at=None,
        failure_reason=(
            f"The database failed {in_a_row} times in a row while processing this document ({cause}); "
            "gave up. Re-process to try again."
        )[:2000],
    )
    _outage_requeues(document_id, reset=True)
    if not changed:
        return "abandoned"
    log.warning("document %s: the database failed %s times in a row during ingestion; gave up", document_id, in_a_row)
    return Status.FAILED


# The first pause while waiting for the database; each next one is twice as long, at most
# TASK_WORKER_RETRY_MAX_SECONDS (as the task worker waits).
DATABASE_FIRST_WAIT = 0.5


def _wait_for_database(limit):
    """Close the broken connections and ask again, with growing pauses, until the database answers
    (True) or `limit` seconds have passed (False)."""
    from django.db import connections

    deadline = time.monotonic() + limit
    delay = DATABASE_FIRST_WAIT
    while True:
        for connection in connections.all(initialized_only=True):
            if connection.in_atomic_block:
                continue  # a caller's transaction (a test's) is the caller's to end
            try:
                connection.close()
            except Exception:  # noqa: BLE001, S110 - a connection the server already dropped
                pass
        try:
            Document.objects.exists()
        except Exception as exc:
            if not database_unavailable(exc):
                raise
        else:
            return True
        if time.monotonic() + delay > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, settings.TASK_WORKER_RETRY_MAX_SECONDS)


def _process_claimed(document_id, attempt):
    lease = Lease(document_id, attempt)
    try:
        document = Document.objects.get(pk=document_id)
        with local_copy(document) as path:
            extraction = sandbox_extract(path, document.kind, lease)
        pieces = chunk_units(extraction.units, settings.DOCUMENTS_CHUNK_SIZE, settings.DOCUMENTS_CHUNK_OVERLAP)
        if not pieces:
            raise ParseError(no_text_reason(document.kind))
        embedded, problem = embed_pieces(extraction.title or document.title, pieces, document)
        save_passages(document, lease, extraction, pieces, embedded, problem)
        if problem:
            schedule_embedding_retry(document_id, 1)
        elif embedded is not None:
            reembed_other_models(embedded.model)
        return Status.READY
    except LeaseLost:
        log.info("document %s: let go (cancelled, deleted or claimed again)", document_id)
        return "abandoned"
    except ParseError as exc:
        lease.fail(str(exc))
        return Status.FAILED
    except Document.DoesNotExist:
        return "skipped"
    except FileNotFoundError:
        lease.fail("The stored file is missing; upload the document again.")
        return Status.FAILED
    except Exception as exc:
        if database_unavailable(exc):
            raise  # not the document's fault: process() puts it back in the queue
        log.exception("document %s: ingestion failed", document_id)
        lease.fail("Something went wrong while processing this document. Try re-processing it.")
        return Status.FAILED


def no_text_reason(kind):
    """Why a file without text failed; only a PDF can be a scan, to be read again with a text layer."""
    if kind == Kind.PDF:
        return "No text could be found in this file. If it is a scan, it needs a text layer (OCR) first."
    return "This file holds no text."


def sandbox_extract(path, kind, lease):
    from documents.parsers.sandbox import extract

    return extract(
        path,
        kind,
        limits=limits(),
        memory_mb=settings.DOCUMENTS_PARSE_MEMORY_MB,
        timeout=settings.DOCUMENTS_PARSE_TIMEOUT,
        on_tick=lease.beat,
    )


def passage_for_embedding(title, section, text):
    """What the embedding model reads of a passage: its document and heading path, then its text."""
    heading = section if section.startswith(title) else f"{title} › {section}" if section else title
    return f"{heading}\n{text}"


def embed_pieces(title, pieces, document):
    """(Embedded, '') for the passages, or (None, why not) when the embedding model failed.

    A gateway call of the document's workspace, metered as "ingestion"; not cached (each text is read once).
    """
    from llmgateway.embeddings import EmbeddingError, embed_for

    if not vectors.state().available:
        return None, ""
    try:
        texts = [passage_for_embedding(title, p.section, p.text) for p in pieces]
        return embed_for(
            document.workspace_id, texts, origin="ingestion", user_id=document.uploaded_by_id, cache=False
        ), ""
    except EmbeddingError as exc:
        log.warning("embedding failed: %s", exc.message)
        return None, exc.message
    except Exception as exc:  # noqa: BLE001 - a broken model never stops a document from becoming searchable
        if database_unavailable(exc):
            raise  # an outage, not the model: the caller's own handling applies
        log.exception("embedding failed")
        return None, f"The embedding model failed ({type(exc).__name__})."


def save_passages(document, lease, extraction, pieces, embedded=None, problem=""):
    """Replace the document's passages (and their vectors) and mark it ready, only if the lease still holds."""
    from documents.parsers.base import clean, clean_line

    text = joined_text(extraction.units)
    pages = max((unit.page or 0 for unit in extraction.units), default=0)
    rows = [
        Chunk(
            document_id=document.pk,
            workspace_id=document.workspace_id,
            position=position,
            text=clean(piece.text),
            page=piece.page,
            section=clean_line(piece.section)[:200],
            start=piece.start,
            end=piece.end,
            token_estimate=piece.token_estimate,
        )
        for position, piece in enumerate(pieces)
    ]
    changes = {
        "embedding_model": embedded.model if embedded is not None else "",
        "embedding_error": problem[:2000],
        "embedding_attempts": 0,
    }
    # The document's own title replaces the one made from its file name (never one a person gave).
    if extraction.title and document.title == _title_from(document.original_name):
        changes["title"] = clean_line(extraction.title)[:255]
    vectors.prepare(embedded)
    with transaction.atomic():
        # Lock the row first (conditional on the lease), then swap the passages.
        lease.beat(extraction.pages_total, extraction.pages_total)
        Chunk.objects.filter(document_id=document.pk).delete()
        Chunk.objects.bulk_create(rows, batch_size=INSERT_BATCH)
        if embedded is not None:
            vectors.write(document.pk, document.workspace_id, [row.pk for row in rows], embedded)
        updated = lease.held().update(
            **changes,
            status=Status.READY,
            page_count=pages,
            chunk_count=len(rows),
            char_count=len(text),
            preview=clean(text[:PREVIEW_CHARS]),
            version=F("version") + 1,
            processed_at=timezone.now(),
            heartbeat_at=None,
            updated_at=timezone.now(),
        )
        if not updated:
            raise LeaseLost


def recover_stalled(queryset=None):
    """Requeue documents whose worker went silent, or fail them after the last attempt. Returns how many."""
    queryset = queryset if queryset is not None else Document.objects.all()
    handled = 0
    for document in queryset.stalled().only("pk", "attempts", "heartbeat_at", "task_id"):
        held = Document.objects.filter(
            pk=document.pk, status=Status.PROCESSING, attempts=document.attempts, heartbeat_at=document.heartbeat_at
        )
        gave_up = document.attempts >= settings.DOCUMENTS_MAX_ATTEMPTS
        if gave_up:
            changed = held.update(
                status=Status.FAILED,
                heartbeat_at=None,
                failure_reason=(
                    f"Processing stopped unexpectedly {document.attempts} times (the worker was interrupted); "
                    "gave up. Re-process to try again."
                ),
            )
        else:
            changed = held.update(status=Status.QUEUED, heartbeat_at=None, pages_done=0)
            if changed:
                enqueue(document.pk)
        if changed:
            handled += 1
            _fail_lost_task(document.task_id)
            log.warning(
                "document %s: no heartbeat for over %s s on attempt %s (its worker stopped or lost the database); %s",
                document.pk,
                settings.DOCUMENTS_STALE_SECONDS,
                document.attempts,
                "gave up" if gave_up else "queued again",
            )
    return handled


def _fail_lost_task(task_id):
    """Mark the database queue's record of a task whose worker died as failed (it would stay running)."""
    from django.apps import apps

    if not task_id or not apps.is_installed("django_tasks_db"):
        return
    from django_tasks_db.models import DBTaskResult

    try:
        DBTaskResult.objects.filter(id=task_id, status="RUNNING").update(
            status="FAILED",
            finished_at=timezone.now(),
            exception_class_path="documents.ingestion.LeaseLost",
            traceback="The worker stopped while running this task.",
        )
    except Exception:  # an id from another backend is not a UUID; nothing to mark
        log.debug("could not mark task %s failed", task_id)


def schedule_watchdog(document_id, attempt):
    """Where the queue can defer tasks, check back on the document after the stale interval."""
    from documents.tasks import watch_document

    backend = watch_document.get_backend()
    if not getattr(backend, "supports_defer", False):
        return
    when = timezone.now() + timedelta(seconds=settings.DOCUMENTS_STALE_SECONDS + 5)
    transaction.on_commit(lambda: watch_document.using(run_after=when).enqueue(document_id, attempt))


def watch(document_id, attempt):
    """The watchdog task's body: recover the document if its worker went silent, else look again later."""
    current = Document.objects.filter(pk=document_id, status=Status.PROCESSING, attempts=attempt)
    if not current.exists():
        return "done"
    if recover_stalled(current):
        return "recovered"
    schedule_watchdog(document_id, attempt)
    return "watching"


# Seconds before the n-th retry of a failed embedding: 1 min, 5 min, 30 min, then every 2 hours.
EMBEDDING_BACKOFF = (60, 300, 1800, 7200)
# A retry not run this long after it was due is taken as lost (its worker died, or the queue cannot
# defer tasks) and is queued again by `catch_up_embeddings`.
EMBEDDING_RETRY_GRACE = 120
CATCH_UP_BATCH = 500


def retry_delay(attempt):
    """Seconds before the attempt-th retry (1-based)."""
    return EMBEDDING_BACKOFF[min(max(attempt, 1), len(EMBEDDING_BACKOFF)) - 1]


def next_embedding_retry(document):
    """When a pending document's embedding is tried again (its last try, `updated_at`, plus the back-off)."""
    return document.updated_at + timedelta(seconds=retry_delay(document.embedding_attempts + 1))


def schedule_embedding_retry(document_id, attempt):
    """Embed the document's passages again later, where the queue can defer tasks (else `catch_up_embeddings`)."""
    from documents.tasks import embed_document

    backend = embed_document.get_backend()
    if not getattr(backend, "supports_defer", False):
        return
    when = timezone.now() + timedelta(seconds=retry_delay(attempt))
    transaction.on_commit(lambda: embed_document.using(run_after=when).enqueue(document_id))


# A queued embedding not started this long after it was queued is taken as lost; until then
# `catch_up_embeddings` leaves it to the queue, however far behind the queue is.
EMBEDDING_QUEUED_GRACE = 30 * 60


def _queued_key(document_id):
    return f"documents:embedding-queued:{document_id}"


def _queued_at(document_id):
    """When the document's embedding was last queued and has not started since (a timestamp), or None."""
    try:
        return cache.get(_queued_key(document_id))
    except Exception:  # noqa: BLE001 - without the cache, the back-off and its grace alone decide
        log.warning("cannot read when embedding %s was queued", document_id, exc_info=True)
        return None


def _mark_queued(document_id, when=None):
    try:
        if when is None:
            cache.delete(_queued_key(document_id))
        else:
            cache.set(_queued_key(document_id), when, timeout=EMBEDDING_QUEUED_GRACE)
    except Exception:  # noqa: BLE001 - see _queued_at
        log.warning("cannot record the embedding queue of %s", document_id, exc_info=True)


def _queue_embedding(document_id):
    from documents.tasks import embed_document

    def enqueue():
        _mark_queued(document_id, timezone.now().timestamp())  # first: an immediate queue runs the task at once
        embed_document.enqueue(document_id)

    transaction.on_commit(enqueue)


def catch_up_embeddings(queryset=None, now=None, *, other_models=True):
    """Queue the embedding of pending documents whose retry is overdue; how many were queued.

    A retry is overdue when it has not run `EMBEDDING_RETRY_GRACE` seconds after its back-off:
    its worker died, or the queue cannot defer tasks. One queued and not yet started is left to
    the queue for `EMBEDDING_QUEUED_GRACE` seconds. A conditional update of `updated_at`
    claims each document, so two sweeps never queue it twice. Documents embedded by another
    model than the configured one are marked pending first (`reembed_other_models`; not from a
    page, which leaves that sweep to the workers). Runs at the start of every ingestion, from
    `document_status`, and when a pending document's page is opened. Returns 0 where the
    database cannot search by meaning.
    """
    if not vectors.state().available:
        return 0
    if other_models:
        reembed_other_models()
    now = now or timezone.now()
    queryset = queryset if queryset is not None else Document.objects.all()
    pending = queryset.embedding_pending().only("pk", "updated_at", "embedding_attempts")
    queued = 0
    for document in pending.order_by("updated_at")[:CATCH_UP_BATCH]:
        due = next_embedding_retry(document) + timedelta(seconds=EMBEDDING_RETRY_GRACE)
        if due > now:
            continue
        queued_at = _queued_at(document.pk)
        if queued_at is not None and now.timestamp() - queued_at < EMBEDDING_QUEUED_GRACE:
            continue
        claimed = Document.objects.filter(pk=document.pk, status=Status.READY, updated_at=document.updated_at).update(
            updated_at=now
        )
        if claimed:
            _queue_embedding(document.pk)
            queued += 1
    if queued:
        log.info("queued %s overdue embedding retries", queued)
    return queued


# The models checked against the documents' by this process (reembed_other_models), so the check costs one
# query per model and process rather than one per ingestion.
_models_checked = set()


def reembed_other_models(model=None):
    """Mark ready documents embedded by another model pending and queue their re-embedding; how many.

    `model` is the identity of vectors just made (its dimension included), so a model whose
    dimension changed is caught on its first use; without it, documents whose model is not the
    configured one (LLM_EMBEDDING_MODEL) are. Their old vectors stay until replaced, and a search
    only compares vectors of its question's own model, so two models are never mixed.
    """
    from llmgateway.embeddings import model_name

    name = model_name()
    key = model or f"configured:{name}"
    if key in _models_checked:
        return 0
    prefix = None if model else _identity_prefix(name)
    if not model and prefix is None:
        return 0  # not an embedding model (the failure says so when it is used): nothing to compare with
    embedded = Document.objects.filter(status=Status.READY, embedding_error="").exclude(embedding_model="")
    stale = embedded.exclude(**({"embedding_model": model} if model else {"embedding_model__startswith": prefix}))
    ids = list(stale.values_list("pk", flat=True)[:CATCH_UP_BATCH])
    if len(ids) < CATCH_UP_BATCH:
        _models_checked.add(key)  # all found; a larger backlog is looked at again next time
    if not ids:
        return 0
    reason = (
        f"The embedding model changed (now {model or name or 'the built-in one'}); the passages are embedded again."
    )
    changed = 0
    for document_id in ids:
        # Conditional: a document re-embedded or re-processed meanwhile is left alone.
        if stale.filter(pk=document_id).update(embedding_error=reason, embedding_attempts=0, updated_at=timezone.now()):
            _queue_embedding(document_id)
            changed += 1
    log.info("embedding model changed: %s document(s) queued to be embedded again", changed)
    return changed


def _identity_prefix(name):
    """How the identities of the named embedding model's vectors begin (llmgateway.embeddings.identity); None
    for a name that is not an embedding model."""
    from llmgateway import registry
    from llmgateway.embeddings import LOCAL_NAME

    if not name:
        return f"{LOCAL_NAME}:"
    spec = registry.get_spec(name)
    if spec is None:
        return None
    if spec.provider == "offline":
        return f"{LOCAL_NAME}:"
    return f"{spec.name}:" if spec.kind == "embedding" else None


def embed_document(document_id, *, force=False):
    """(Re-)embed a ready document's passages; "embedded", "pending" (failed, retried later) or "skipped".

    Runs from the retry task and `manage.py reindex`. Vectors are written, and the content
    version grows (cached answers quoting it are not reused), only if the passages are
    still the ones embedded: a document re-processed meanwhile is left to its new run.
    """
    from llmgateway.embeddings import model_name

    _mark_queued(document_id, None)  # started: a failure from here on is retried after its back-off
    document = Document.objects.filter(pk=document_id, status=Status.READY).first()
    if document is None or not vectors.state().available:
        return "skipped"
    if not force and not document.embedding_error and document.embedding_model:
        return "skipped"
    chunks = list(document.chunks.order_by("position").only("pk", "section", "text"))
    embedded, problem = embed_pieces(document.title, chunks, document)
    vectors.prepare(embedded)
    with transaction.atomic():
        current = Document.objects.select_for_update().filter(pk=document_id, version=document.version).first()
        if current is None:
            return "skipped"
        if embedded is None:
            attempts = current.embedding_attempts + 1
            Document.objects.filter(pk=document_id).update(
                embedding_error=problem or f"The embedding model {model_name() or 'local'} is not available.",
                embedding_attempts=attempts,
                updated_at=timezone.now(),  # the last try: the back-off counts from here
            )
            schedule_embedding_retry(document_id, attempts + 1)
            return "pending"
        vectors.write(document.pk, document.workspace_id, [c.pk for c in chunks], embedded)
        Document.objects.filter(pk=document_id).update(
            embedding_model=embedded.model,
            embedding_error="",
            embedding_attempts=0,
            version=F("version") + 1,
            updated_at=timezone.now(),
        )
    reembed_other_models(embedded.model)
    return "embedded"
