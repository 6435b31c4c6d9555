"""Per-minute counts over the last hour, added up across every process, for the System page's charts.

Each process adds up its counts in memory (`count`, `observe_request`) and
writes them to the shared `workers` cache (Redis, else files under VAR_DIR)
at most every FLUSH_SECONDS, as one counter per minute and field
(`cache.incr`), from a background thread of its own (corporate.background):
the write is a few round trips per field, and the request that finds it due
only wakes the thread instead of holding its connection through them. Reading (`minutes`) flushes this process's
counts first; other processes' last few seconds may be missing.

The same flush publishes this process's connection-pool statistics, so the
System page shows every web worker's pool.
"""

import os
import sys
import threading
import time

from corporate.background import Flusher

FLUSH_SECONDS = 5.0
KEEP_SECONDS = 2 * 3600
FIELDS = (
    "requests",
    "errors",
    "server_ms",
    "db_ms",
    "queries",
    "slow_queries",
    "cache_hit",
    "cache_miss",
    "cache_coalesced",
    "page_cache_hit",
    "page_cache_miss",
)
POOLS_KEY = "observe:pools"
UPSTREAM_KEY = "observe:upstream"
POOL_STALE_SECONDS = 60

_lock = threading.Lock()
# Held for a whole flush, so that reading (`minutes`) waits for what the background thread has taken.
_flush_lock = threading.Lock()
_pending = {}  # (minute, field) -> amount
_last_flush = [time.monotonic()]
_upstream = {}  # model name -> {"ok_at", "latency_ms"} / {"error_at", "error"}


def _cache():
    from corporate.workers import heartbeat_cache

    return heartbeat_cache()


def count(field, amount=1):
    minute = int(time.time() // 60)
    key = (minute, field)
    with _lock:
        _pending[key] = _pending.get(key, 0) + amount


REQUEST_FIELDS = ("requests", "errors", "server_ms", "db_ms", "queries")
_minute = [0, 0, 0, 0.0, 0.0, 0]  # this minute's request figures: [minute, *REQUEST_FIELDS]


def observe_request(server_seconds, db_seconds, queries, error):
    """One request's figures (the middleware); written out by `flush_when_due` when the request has ended."""
    minute = int(time.time() // 60)
    with _lock:
        current = _minute
        if current[0] != minute:
            _take_minute()
            current[0] = minute
        current[1] += 1
        current[2] += error
        current[3] += server_seconds * 1000
        current[4] += db_seconds * 1000
        current[5] += queries


def _take_minute():
    """Move this minute's request figures into the pending counts (holding the lock)."""
    current = _minute
    for field, amount in zip(REQUEST_FIELDS, current[1:], strict=True):
        if amount:
            key = (current[0], field)
            _pending[key] = _pending.get(key, 0) + amount
    current[1:] = [0, 0, 0.0, 0.0, 0]


def flush_when_due(sender=None, **kwargs):
    """`request_finished` receiver: every FLUSH_SECONDS, wakes the background thread that writes the counts."""
    with _lock:
        due = time.monotonic() - _last_flush[0] >= FLUSH_SECONDS
        if due:
            _last_flush[0] = time.monotonic()
    if due:
        _flusher.wake()
    else:
        _flusher.start()


def _write(woken):
    if woken or time.monotonic() - _last_flush[0] >= FLUSH_SECONDS:
        _last_flush[0] = time.monotonic()
        flush()


_flusher = Flusher("observability-timeline", _write, FLUSH_SECONDS)


def _key(minute, field):
    return f"observe:minute:{minute}:{field}"


def flush():
    """Write this process's counts and its pool statistics to the shared cache; never raises."""
    with _flush_lock:
        _flush()


def _flush():
    global _pending
    with _lock:
        _take_minute()
        taken, _pending = _pending, {}
    try:
        cache = _cache()
        for (minute, field), amount in taken.items():
            amount = int(round(amount))
            if not amount:
                continue
            key = _key(minute, field)
            cache.add(key, 0, KEEP_SECONDS)
            try:
                cache.incr(key, amount)
            except ValueError:  # expired between add and incr
                cache.set(key, amount, KEEP_SECONDS)
        publish_pools(cache)
        publish_upstream(cache)
    except Exception:  # statistics never fail a request
        pass


def minutes(last=60, now=None):
    """[{"minute": epoch minute, field: total, ...}] for the last `last` minutes, oldest first."""
    flush()
    now_minute = int((now or time.time()) // 60)
    wanted = [now_minute - offset for offset in range(last - 1, -1, -1)]
    keys = [_key(m, f) for m in wanted for f in FIELDS]
    try:
        found = _cache().get_many(keys)
    except Exception:
        found = {}
    return [{"minute": m, **{f: found.get(_key(m, f), 0) or 0 for f in FIELDS}} for m in wanted]


def publish_pools(cache=None):
    """This process's PostgreSQL pool statistics, for the System page (one entry per worker)."""
    backend = sys.modules.get("corporate.backends.postgresql.base")
    pools = backend.all_pools() if backend is not None else []
    if not pools:
        return
    cache = cache or _cache()
    pid = os.getpid()
    now = time.time()
    known = {p: entry for p, entry in (cache.get(POOLS_KEY) or {}).items() if now - entry["at"] < POOL_STALE_SECONDS}
    known[pid] = {"at": now, "pools": [pool.stats() for pool in pools]}
    cache.set(POOLS_KEY, known, POOL_STALE_SECONDS * 2)


def worker_pools():
    """{pid: [pool stats]} of the web workers that reported within the last minute."""
    now = time.time()
    try:
        known = _cache().get(POOLS_KEY) or {}
    except Exception:
        return {}
    return {pid: entry["pools"] for pid, entry in known.items() if now - entry["at"] < POOL_STALE_SECONDS}


def forget():
    with _lock:
        _pending.clear()
        _minute[1:] = [0, 0, 0.0, 0.0, 0]


def upstream_outcome(model, latency_ms=None, error=None):
    """The last call to an upstream model (llmgateway's retry loop), shown on the System page."""
    with _lock:
        entry = _upstream.setdefault(model, {})
        if error is None:
            entry.update(ok_at=time.time(), latency_ms=round(latency_ms, 1))
        else:
            entry.update(error_at=time.time(), error=error)


def publish_upstream(cache):
    with _lock:
        taken = {name: dict(entry) for name, entry in _upstream.items()}
        _upstream.clear()
    if not taken:
        return
    known = cache.get(UPSTREAM_KEY) or {}
    for name, entry in taken.items():
        merged = known.setdefault(name, {})
        for stamp, fields in (("ok_at", ("ok_at", "latency_ms")), ("error_at", ("error_at", "error"))):
            if entry.get(stamp, 0) > merged.get(stamp, 0):
                merged.update({f: entry[f] for f in fields})
    cache.set(UPSTREAM_KEY, known, KEEP_SECONDS)


def upstream():
    """{model: {"ok_at", "latency_ms", "error_at", "error"}} of every process (after a flush)."""
    try:
        return _cache().get(UPSTREAM_KEY) or {}
    except Exception:
        return {}
