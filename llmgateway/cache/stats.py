"""Cache statistics, per workspace and overall, as counters in the store.

Every completion adds to two hashes (its workspace's and the overall one):
hits, misses, coalesced requests, requests that bypassed the cache, errors,
tokens and cost served without an upstream call, and latency sums and
histograms for hits and misses (percentiles are read from the histogram
buckets).

So that a cache hit costs no extra round trip, each process adds up its
counts in memory and its background thread (corporate.background) writes
them in one batch every FLUSH_INTERVAL seconds (or FLUSH_EVENTS completions,
or at exit): the request that finds the batch due only wakes the thread, so
no request's connection waits for the write. Reading the figures flushes
this process's counts first. Other processes' last second may be missing.
"""

import atexit
import threading
import time
from bisect import bisect_left

from corporate.background import Flusher
from corporate.observability import metrics, timeline
from llmgateway.cache.entries import stats_key
from llmgateway.cache.store import get_store

FLUSH_INTERVAL = 0.5
FLUSH_EVENTS = 200
_pending = {}
_pending_events = 0
_last_flush = time.monotonic()
_lock = threading.Lock()
# Held for a whole flush, so that a flush (reading the figures' first step) returns only once what the
# background thread had already taken is in the store.
_flush_lock = threading.Lock()
_scheduled = False  # a flush is on its way

BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 120000)
OUTCOMES = ("hit", "miss", "coalesced", "bypass", "error")
TIMELINE_FIELDS = {"hit": "cache_hit", "miss": "cache_miss", "coalesced": "cache_coalesced"}


def _bucket(ms):
    for bound in BUCKETS_MS:
        if ms <= bound:
            return str(bound)
    return "inf"


# Per outcome: its field names (count, latency sum, one per histogram bucket) and what its tokens count as.
_NAMES = {
    outcome: (
        f"{outcome}_us",
        tuple(f"{outcome}_b{bound}" for bound in (*BUCKETS_MS, "inf")),
        {"hit": "saved", "coalesced": "saved", "miss": "upstream", "bypass": "upstream"}.get(outcome),
    )
    for outcome in OUTCOMES
}


def outcome_of(result, looked_up):
    """What a finished completion counts as: hit, coalesced, miss (looked up, not found) or bypass (not looked up)."""
    if result.cache_hit:
        return "hit"
    if result.coalesced:
        return "coalesced"
    return "miss" if looked_up else "bypass"


def record(workspace_id, outcome, latency_ms, usage=None, cost=0.0):
    """Count one completion. outcome: hit | miss | coalesced | bypass | error."""
    tokens = 0
    if usage:
        tokens = (usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0)
    latency_name, bucket_names, kind = _NAMES[outcome]
    fields = [(outcome, 1), (latency_name, int(latency_ms * 1000))]
    fields.append((bucket_names[bisect_left(BUCKETS_MS, latency_ms)], 1))
    if kind == "saved":
        fields += [("tokens_saved", tokens), ("cost_saved_micro", int(round(cost * 1_000_000)))]
    elif kind == "upstream":
        fields += [("tokens_upstream", tokens), ("cost_upstream_micro", int(round(cost * 1_000_000)))]
    metrics.count_completion(outcome)
    if outcome in TIMELINE_FIELDS:
        timeline.count(TIMELINE_FIELDS[outcome])
    global _pending_events, _scheduled
    with _lock:
        for key in (stats_key(workspace_id), stats_key(None)):
            counts = _pending.get(key)
            if counts is None:
                counts = _pending[key] = {}
            for field, amount in fields:
                counts[field] = counts.get(field, 0) + amount
        _pending_events += 1
        due = not _scheduled and (_pending_events >= FLUSH_EVENTS or time.monotonic() - _last_flush >= FLUSH_INTERVAL)
        if due:
            _scheduled = True  # one request wakes the writer, not every request until it has written
    if due:
        _flusher.wake()
    else:
        _flusher.start()


def flush():
    """Write this process's pending counts to the store."""
    global _pending, _pending_events, _last_flush, _scheduled
    with _flush_lock:
        with _lock:
            taken, _pending, _pending_events, _last_flush, _scheduled = _pending, {}, 0, time.monotonic(), False
        if taken:
            get_store().incr_hashes(taken)


def _write(woken):
    """The background thread's job: the batch when a request found it due, or what is left after a quiet spell."""
    if _pending and (woken or time.monotonic() - _last_flush >= FLUSH_INTERVAL):
        flush()


_flusher = Flusher("gateway-stats-flush", _write, FLUSH_INTERVAL * 2)


def discard_pending():
    """Forget counts not yet written (tests start from a clean slate)."""
    global _pending, _pending_events, _scheduled
    with _lock:
        _pending, _pending_events, _scheduled = {}, 0, False


atexit.register(flush)


def _percentile(counts, total, q):
    if not total:
        return None
    running = 0
    for bound in (*map(str, BUCKETS_MS), "inf"):
        running += counts.get(bound, 0)
        if running >= q * total:
            return None if bound == "inf" else int(bound)
    return None


def summary(workspace_id=None):
    """The figures for one workspace (or overall when None), ready to show."""
    flush()
    raw = get_store().read_hash(stats_key(workspace_id))
    out = {name: raw.get(name, 0) for name in OUTCOMES}
    lookups = out["hit"] + out["miss"] + out["coalesced"]
    out["requests"] = lookups + out["bypass"] + out["error"]
    out["hit_rate"] = round(out["hit"] / lookups, 4) if lookups else None
    out["served_without_upstream_rate"] = round((out["hit"] + out["coalesced"]) / lookups, 4) if lookups else None
    out["tokens_saved"] = raw.get("tokens_saved", 0)
    out["cost_saved"] = round(raw.get("cost_saved_micro", 0) / 1_000_000, 6)
    out["tokens_upstream"] = raw.get("tokens_upstream", 0)
    out["cost_upstream"] = round(raw.get("cost_upstream_micro", 0) / 1_000_000, 6)
    for outcome in ("hit", "miss"):
        count = out[outcome]
        counts = {k[len(outcome) + 2 :]: v for k, v in raw.items() if k.startswith(f"{outcome}_b")}
        out[f"{outcome}_latency_ms"] = {
            "mean": round(raw.get(f"{outcome}_us", 0) / count / 1000, 2) if count else None,
            "p50_at_most": _percentile(counts, count, 0.5),
            "p95_at_most": _percentile(counts, count, 0.95),
        }
    return out


def reset(workspace_id=None):
    discard_pending()
    get_store().delete(stats_key(workspace_id))
