"""Usage records: one per completion, buffered, then written to the database in bulk.

A web process adds each record to a list in memory and appends the list to
a queue in the store (Redis, or the host's shared cache) in one operation
every FLUSH_INTERVAL seconds or FLUSH_EVENTS records, from a background
thread of its own (corporate.background: the request that finds the list due
only wakes it, so no request's connection waits for the write); the thread
also writes what is left when traffic stops, and the process writes its list
when it exits (gunicorn's graceful restart). So a cache hit still makes no
database query and no extra round trip of its own.

While the store takes no records (a Redis outage) they stay in memory and are
tried again every interval; each one the store refused is also appended to
the process's journal, a file under VAR_DIR (`Journal`), so a worker killed
during the outage (SIGKILL, out of memory) loses at most the records of its
last interval. Once the store takes records again the journal is emptied;
a journal whose process is gone is sent by the next process that writes
records, or by the next drain (`_send_unsent`).

`drain()` moves the queue into UsageRecord rows in batches, under a lock so
that one process drains at a time: the task worker does it every
USAGE_FLUSH_SECONDS, and every page, API call and command that reads usage
does it first. A batch is read, written, then removed from the queue; rows
carry the request's id under a unique constraint, so a batch written twice
(a drainer that died between the two steps) is stored once.
"""

import atexit
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from corporate.background import Flusher, ProcessIds
from llmgateway.cache.store import get_store, make_key

log = logging.getLogger("llmgateway.metering")

FLUSH_INTERVAL = 0.25
FLUSH_EVENTS = 200
BATCH = 2000
DRAIN_LOCK_SECONDS = 60

# One encoder for every record: json.dumps with separators builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode
_pending = []
_last_flush = time.monotonic()
_lock = threading.Lock()
# Held for a whole flush, so that a flush (drain's first step) returns only once what another thread
# had already taken from the list is in the store's queue.
_flush_lock = threading.Lock()
_scheduled = False  # a flush is on its way
_failing_since = None  # time.monotonic() when the store stopped taking records; None while it takes them
_warned_at = None
WARN_EVERY = 60  # seconds between warnings while the store takes no records
_ids = ProcessIds(20, first=1)


def _forked():
    global _pending, _scheduled, _lock, _flush_lock, _failing_since, _warned_at
    _pending, _scheduled, _failing_since, _warned_at = [], False, None, None
    _lock, _flush_lock = threading.Lock(), threading.Lock()  # a thread of the parent may have held them
    _unsent_checked[0] = None
    _journal.forked()


os.register_at_fork(after_in_child=_forked)


def new_id():
    """A unique request id (32 hex digits): a random prefix per process and a counter, no system call each time."""
    prefix, number = _ids.next()
    return f"{prefix}{number:012x}"


def queue_key():
    return make_key("gw:usage:queue")


def drain_lock_key():
    return make_key("gw:usage:drain")


# A record's fields in the order of the tuple Meter buffers (a dict with these names is taken too).
FIELDS = ("id", "ws", "u", "k", "a", "o", "m", "pt", "ct", "c", "h", "s", "l", "t")


def add(record):
    """Buffer one record: a tuple of FIELDS, or a dict of them (see `_decode`); encoded when flushed."""
    global _scheduled
    with _lock:
        _pending.append(record)
        # While the store takes nothing, a full batch is no reason to try again before the interval is over.
        due = not _scheduled and (
            (len(_pending) >= FLUSH_EVENTS and _failing_since is None)
            or time.monotonic() - _last_flush >= FLUSH_INTERVAL
        )
        if due:
            _scheduled = True  # one request wakes the writer; the others carry on
    if due:
        _flusher.wake()
    else:
        _flusher.start()


def _encoded(taken):
    """Buffered records as the queue's lines: encoded here, after the responses, rather than on each request
    (bytes: already encoded for a try that failed)."""
    return [r if type(r) is bytes else _encode(r).encode() for r in taken]


def flush():
    """Append this process's buffered records to the store's queue."""
    global _pending, _last_flush, _scheduled
    with _flush_lock:
        with _lock:
            taken, _pending, _last_flush, _scheduled = _pending, [], time.monotonic(), False
        if not taken:
            return
        # Bytes: refused before, so already in the journal; the others are new to it.
        fresh = [i for i, record in enumerate(taken) if type(record) is not bytes]
        taken = _encoded(taken)
        if get_store().append(queue_key(), taken):
            _journal.clear()  # all it held was among these
            _taken_again(len(taken))
            _send_unsent()
            return
        # The store did not answer: keep them for the next try, and on disk should this process die first.
        _journal.append([taken[i] for i in fresh])
        with _lock:
            _pending[:0] = taken
        _not_taken(len(taken))


def exit_flush():
    """At the process's exit: its records to the store; while the store takes none, they stay in the journal.

    The journal's records are sent by the next process that writes records (`_send_unsent`): a worker
    restarted during a Redis outage loses none of the completions it served.
    """
    global _pending
    flush()
    with _lock:
        left, _pending = len(_pending), []
    path = _journal.close()
    if left and path is not None:
        log.warning("usage records: the store took none of the last %d; kept in %s until it does", left, path)
    elif left:
        log.error("usage records: %d the store did not take are lost (no journal under VAR_DIR)", left)


UNSENT_PREFIX = "usage-unsent-"


class Journal:
    """This process's records the store refused, appended to a file under VAR_DIR until it takes them again.

    The file is locked (flock) for as long as this process has it open: a lock another process can take
    means its writer is gone, and its records are to be sent (`_send_unsent`). It is created under
    another name and renamed once locked, so no other process sees it unlocked. Used under `_flush_lock`.
    """

    def __init__(self):
        self.file = None
        self.path = None

    def append(self, lines):
        if not lines:
            return
        try:
            if self.file is None:
                self._open()
            self.file.write(b"".join(line + b"\n" for line in lines))
            self.file.flush()  # in the system's hands: kept if this process is killed
        except OSError as exc:
            log.error("usage records: no journal under VAR_DIR, %d are kept in memory only: %s", len(lines), exc)
            self._drop()

    def _open(self):
        folder = _unsent_dir()
        name = f"{UNSENT_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.jsonl"
        opening = folder / f".{name}.opening"
        file = open(opening, "ab")  # noqa: SIM115 - kept open (and locked) while the process writes to it
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(opening, folder / name)
        except BaseException:
            file.close()
            opening.unlink(missing_ok=True)
            raise
        self.file, self.path = file, folder / name

    def clear(self):
        """The store has every record of the journal: the file goes."""
        if self.file is not None:
            self.path.unlink(missing_ok=True)
            self._drop()

    def close(self):
        """Leave the file (with its records) to other processes; its path, or None when there was none."""
        path = self.path
        self._drop()
        return path

    def _drop(self):
        file, self.file, self.path = self.file, None, None
        if file is not None:
            file.close()

    def forked(self):
        # The parent's file and lock are the parent's: the child starts a journal of its own when it needs one.
        # Closing the child's copy of the descriptor leaves the parent's lock in place (it holds its own).
        self._drop()


_journal = Journal()
UNSENT_CHECK_EVERY = 60  # seconds between two looks for files of records, in a process that writes records
_unsent_checked = [None]  # time.monotonic() of this process's last look


def _unsent_dir():
    from django.conf import settings

    return Path(settings.VAR_DIR)


def _send_unsent(force=False):
    """Records that processes kept in files when they exited during an outage: into the store's queue."""
    now = time.monotonic()
    if not force and _unsent_checked[0] is not None and now - _unsent_checked[0] < UNSENT_CHECK_EVERY:
        return
    _unsent_checked[0] = now
    try:
        paths = sorted(_unsent_dir().glob(f"{UNSENT_PREFIX}*.jsonl"))
    except OSError:
        return
    for path in paths:
        if path == _journal.path:
            continue  # this process's own: cleared when its records are taken
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed below, after its records are sent
        except OSError:
            continue  # sent by another process meanwhile
        with file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its process is alive and still writes to it
            if os.fstat(file.fileno()).st_nlink == 0:
                continue  # sent by another process, which had it locked until now
            lines = [line for line in file.read().splitlines() if line]
            if lines and not get_store().append(queue_key(), lines):
                return  # the store stopped taking records: for a later try
            path.unlink(missing_ok=True)
        log.info("usage records: %d kept in %s are in the queue", len(lines), path.name)


def _not_taken(count):
    """One warning when the store stops taking records, then one a minute while it still does not."""
    global _failing_since, _warned_at
    now = time.monotonic()
    if _failing_since is None:
        _failing_since = now
    if _warned_at is None or now - _warned_at >= WARN_EVERY:
        _warned_at = now
        log.warning("usage records kept in memory: the store did not take %d of them; trying again", count)


def _taken_again(count):
    global _failing_since, _warned_at
    if _failing_since is None:
        return
    seconds = time.monotonic() - _failing_since
    _failing_since = _warned_at = None
    log.info("usage records taken again: %d kept in memory for %.0f s are in the queue", count, seconds)


def pending():
    return len(_pending)


def discard_pending():
    global _pending, _scheduled, _failing_since, _warned_at
    with _lock:
        _pending, _scheduled, _failing_since, _warned_at = [], False, None, None
    _journal.clear()


def _write(woken):
    """The background thread's job: the list when a request found it due, or what is left after a quiet spell."""
    if _pending and (woken or time.monotonic() - _last_flush >= FLUSH_INTERVAL):
        flush()


_flusher = Flusher("usage-flush", _write, FLUSH_INTERVAL)


atexit.register(exit_flush)


def _decode(raw):
    data = json.loads(raw)
    if isinstance(data, list):  # a tuple of FIELDS
        data = dict(zip(FIELDS, data, strict=True))
    return {
        "request_id": data["id"],
        "workspace_id": data["ws"],
        "user_id": data.get("u"),
        "api_key_id": data.get("k"),
        "assistant_id": data.get("a"),
        "origin": data.get("o") or "python",
        "model": (data.get("m") or "")[:100],
        "prompt_tokens": max(0, int(data.get("pt") or 0)),
        "completion_tokens": max(0, int(data.get("ct") or 0)),
        "cost": Decimal(int(data.get("c") or 0)) / 1_000_000,
        "cache": data.get("h") or "miss",
        "status": int(data.get("s") or 200),
        "latency_ms": round(float(data.get("l") or 0), 2),
        "created_at": datetime.fromtimestamp(data["t"], tz=UTC),
    }


def _write(raws):
    from django.contrib.auth import get_user_model

    from llmgateway.metering import totals
    from llmgateway.models import ApiKey, UsageRecord
    from workspaces.models import Workspace

    rows = []
    for raw in raws:
        try:
            rows.append(_decode(raw))
        except (ValueError, KeyError, TypeError):
            log.warning("dropped a malformed usage record: %r", raw[:200])
    if not rows:
        return 0
    # Rows of a workspace, user or key deleted since are dropped or detached.
    workspaces = set(Workspace.objects.filter(pk__in={r["workspace_id"] for r in rows}).values_list("pk", flat=True))
    user_ids = {r["user_id"] for r in rows if r["user_id"]}
    users = set(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", flat=True)) if user_ids else set()
    key_ids = {r["api_key_id"] for r in rows if r["api_key_id"]}
    keys = set(ApiKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True)) if key_ids else set()
    objects = []
    for row in rows:
        if row["workspace_id"] not in workspaces:
            continue
        if row["user_id"] not in users:
            row["user_id"] = None
        if row["api_key_id"] not in keys:
            row["api_key_id"] = None
        objects.append(UsageRecord(**row))
    # The rows and their hourly and daily totals, in one transaction (totals.py).
    return totals.store(objects)


def drain(limit=None):
    """Write queued records to the database; how many were written (0 when another process is draining)."""
    flush()
    _send_unsent(force=True)
    store = get_store()
    token = uuid.uuid4().hex  # the lock names its holder: only the drain that took it removes it
    if not store.add(drain_lock_key(), token, DRAIN_LOCK_SECONDS) and not _take_back_lost_lock(store, token):
        return 0
    written = 0
    # Stop well before the lock expires: another drainer must never take a batch this one is writing,
    # or its totals would count it twice (the rows themselves are kept once by their unique request id).
    stop_at = time.monotonic() + DRAIN_LOCK_SECONDS * 0.75
    try:
        while (limit is None or written < limit) and time.monotonic() < stop_at:
            raws = store.head(queue_key(), BATCH)
            if not raws:
                break
            written += _write(raws)
            store.drop_head(queue_key(), len(raws))
            if len(raws) < BATCH:
                break
    finally:
        if not store.delete_if(drain_lock_key(), token):
            # Not removed: the store did not answer (a paused Redis runs the lock's SET once it resumes), or
            # the lock expired. This process removes it at its next drain instead of waiting out its expiry.
            _lost_locks.append(token)
            del _lost_locks[:-4]
    return written


_lost_locks = []  # tokens of this process's drain locks the store may still hold


def _take_back_lost_lock(store, token):
    """A drain lock this process took and could not remove: removed, and taken again with `token`."""
    while _lost_locks:
        if store.delete_if(drain_lock_key(), _lost_locks.pop()):
            return store.add(drain_lock_key(), token, DRAIN_LOCK_SECONDS)
    return False


def queued():
    return get_store().length(queue_key())


def spent_since(scope, start):
    """Micro-dollars spent in a limit's scope since `start`, from the rows (after draining the queue)."""
    from django.db.models import Sum

    from llmgateway.models import UsageRecord

    try:
        drain()
    except Exception:  # the counter is seeded from what is there
        log.exception("usage drain before seeding a budget failed")
    rows = UsageRecord.objects.filter(created_at__gte=start)
    if scope.kind == "workspace":
        rows = rows.filter(workspace_id=int(scope.ident))
    elif scope.kind == "user":
        workspace_id, user_id = scope.ident.split(":")
        rows = rows.filter(workspace_id=int(workspace_id), user_id=int(user_id))
    else:
        rows = rows.filter(api_key_id=int(scope.ident))
    total = rows.aggregate(total=Sum("cost"))["total"] or Decimal("0")
    return int(total * 1_000_000)
