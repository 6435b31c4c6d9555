"""Prometheus metrics (prometheus-client) and `GET /metrics`.

Off unless METRICS_TOKEN is set: then nothing is counted and /metrics is 404.
With it, /metrics answers the Prometheus text format to
`Authorization: Bearer <METRICS_TOKEN>` (401 otherwise).

Under gunicorn every worker is its own process, and so is every task worker:
with PROMETHEUS_MULTIPROC_DIR set (the start scripts set it and empty it on
start; gunicorn's child_exit hook marks a dead worker's gauges gone) each
process writes its values to files there, and /metrics adds up all of them,
whichever worker answers the scrape. Without it (one process: tests,
runserver) the values live in the process.

Label values are never user input: routes are URL names (`documents:list`,
`unmatched` for a 404), methods one of a fixed set, models the gateway's
configured names, outcomes and error codes fixed words.
"""

import atexit
import os
import threading
import time
from bisect import bisect_left

from django.conf import settings
from django.http import Http404, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUEST_SECONDS = Histogram(
    "corporate_http_request_duration_seconds",
    "Server time of a request, by route (URL name), method and status; _count is the request count.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
DB_QUERIES = Histogram(
    "corporate_db_queries_per_request",
    "Database queries one request made, by route.",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 100),
)
DB_SECONDS = Histogram(
    "corporate_db_seconds_per_request",
    "Time one request spent in the database, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
SLOW_QUERIES = Counter("corporate_db_slow_queries", "Queries slower than DB_SLOW_QUERY_MS.")

# The PostgreSQL pool of each web worker (corporate/backends/postgresql), with a
# `pid` label per worker. Made on first use, in a process that has a pool, so
# that other processes (task workers, commands) write no live gauges.
POOL_GAUGES = (
    ("size", "Most connections the worker's pool may open."),
    ("in_use", "Connections a request holds now."),
    ("idle", "Open connections waiting for a request."),
    ("waiting", "Requests waiting for a connection now."),
)
POOL_COUNTERS = (
    ("waits", "Requests that had to wait for a connection."),
    ("wait_seconds", "Time requests spent waiting for a connection."),
    ("timeouts", "Requests that gave up waiting for a connection (DB_POOL_TIMEOUT)."),
    ("opened", "Connections opened."),
    ("closed", "Connections closed."),
    ("broken", "Connections found dead and dropped."),
)
_pool_metrics = {}


def _pool_metric(name):
    metric = _pool_metrics.get(name)
    if metric is None:
        gauges, counters = dict(POOL_GAUGES), dict(POOL_COUNTERS)
        if name in gauges:
            metric = Gauge(f"corporate_db_pool_{name}", gauges[name], multiprocess_mode="liveall")
        else:
            metric = Counter(f"corporate_db_pool_{name}", counters[name])
        _pool_metrics[name] = metric
    return metric


COMPLETION_CACHE = Counter(
    "corporate_completion_cache_requests",
    "Completions by cache outcome: hit, miss, coalesced (answered by another identical request's call), bypass, error.",
    ["outcome"],
)
UPSTREAM_SECONDS = Histogram(
    "corporate_upstream_request_duration_seconds",
    "Time of one successful call to an upstream model, by model.",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120),
)
UPSTREAM_ERRORS = Counter(
    "corporate_upstream_errors", "Failed calls to an upstream model, by model and error code.", ["model", "code"]
)
INGESTION_SECONDS = Histogram(
    "corporate_ingestion_duration_seconds",
    "Time to read, chunk and index one document, by outcome (ready, failed).",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
INGESTION_FAILURES = Counter("corporate_ingestion_failures", "Documents whose ingestion failed.")
LIMITS_UNCHECKED = Counter(
    "corporate_limits_unchecked",
    "Completions admitted without checking their limits and budgets: the store (Redis) did not answer.",
)
PAGE_CACHE = Counter(
    "corporate_page_cache_requests", "Cached page data (corporate.pagecache) by outcome: hit, miss.", ["outcome"]
)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def enabled():
    return bool(settings.METRICS_TOKEN)


# Children by label values, so a request does not take the metric's lock to find its own.
_children = {}


def _child(metric, *labels):
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe_request(route, method, status, seconds, queries, db_seconds):
    """One request's figures, added up in this process and written to the metrics at most once a second.

    Writing a histogram under multiprocess mode costs a few memory-mapped
    writes; a request only adds to a dict here (a /v1 cache hit is a few
    hundred microseconds), and `flush` writes the sums in one go, after a
    request has ended (`flush_when_due`) and before every scrape.
    """
    if method not in METHODS:
        method = "other"
    with _lock:
        _add(REQUEST_SECONDS, (route, method, str(status)), seconds)
        _add(DB_QUERIES, (route,), queries)
        _add(DB_SECONDS, (route,), db_seconds)


_lock = threading.Lock()
_pending = {}  # (histogram, labels) -> [sum, count per bucket]
_pending_counts = {}  # (counter, label) -> amount
_last_flush = [0.0]
FLUSH_SECONDS = 1.0


def _add(histogram, labels, value):
    key = (histogram, labels)
    entry = _pending.get(key)
    if entry is None:
        entry = _pending[key] = [0.0, [0] * len(histogram._upper_bounds)]
    entry[0] += value
    entry[1][bisect_left(histogram._upper_bounds, value)] += 1


def _add_count(counter, label):
    key = (counter, label)
    with _lock:
        _pending_counts[key] = _pending_counts.get(key, 0) + 1


def flush():
    """Write this process's pending figures into the histograms and counters."""
    global _pending, _pending_counts
    with _lock:
        taken, _pending = _pending, {}
        counts, _pending_counts = _pending_counts, {}
    for (counter, label), amount in counts.items():
        _child(counter, label).inc(amount)
    for (histogram, labels), (total, counts) in taken.items():
        child = _child(histogram, *labels)
        child._sum.inc(total)
        for bucket, count in zip(child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)


def flush_when_due(sender=None, **kwargs):
    """`request_finished` receiver: the request figures and the pool, at most once a second.

    After the request: its connection is back in the pool by then.
    """
    if not enabled():
        return
    now = time.monotonic()
    if now - _last_flush[0] >= FLUSH_SECONDS:
        _last_flush[0] = now
        flush()
        sync_pools()


def count_slow_query():
    if enabled():
        SLOW_QUERIES.inc()


def count_completion(outcome):
    if enabled():
        _add_count(COMPLETION_CACHE, outcome)


def count_limits_unchecked():
    if enabled():
        LIMITS_UNCHECKED.inc()


def count_page_cache(outcome):
    if enabled():
        _add_count(PAGE_CACHE, outcome)


def observe_upstream(model, seconds):
    from corporate.observability import timeline

    timeline.upstream_outcome(model, latency_ms=seconds * 1000)
    if enabled():
        _child(UPSTREAM_SECONDS, model).observe(seconds)


def count_upstream_error(model, code):
    from corporate.observability import timeline

    timeline.upstream_outcome(model, error=code)
    if enabled():
        _child(UPSTREAM_ERRORS, model, code).inc()


def observe_ingestion(outcome, seconds):
    if enabled():
        _child(INGESTION_SECONDS, outcome).observe(seconds)
        if outcome == "failed":
            INGESTION_FAILURES.inc()


_pool_lock = threading.Lock()
_pool_pushed = {}  # counter name -> value already added


def sync_pools():
    """Copy this worker's pool statistics into the pool gauges and counters."""
    import sys

    backend = sys.modules.get("corporate.backends.postgresql.base")
    pools = backend.all_pools() if backend is not None else []
    if not pools:
        return
    totals = {}
    for pool in pools:
        for name, value in pool.stats().items():
            totals[name] = totals.get(name, 0) + value
    with _pool_lock:
        for name, _ in POOL_GAUGES:
            _pool_metric(name).set(totals[name])
        for name, _ in POOL_COUNTERS:
            delta = totals[name] - _pool_pushed.get(name, 0)
            if delta > 0:
                _pool_metric(name).inc(delta)
                _pool_pushed[name] = totals[name]


class QueueCollector:
    """At scrape time: tasks waiting in the queue, and the age of the task workers' last heartbeat."""

    def collect(self):
        from django_tasks_db.models import DBTaskResult

        from corporate.workers import HEARTBEAT_KEY, heartbeat_cache

        depth = GaugeMetricFamily("corporate_task_queue_depth", "Tasks waiting for a task worker.")
        try:
            depth.add_metric([], DBTaskResult.objects.filter(status="READY").count())
        except Exception:  # the database is down: say nothing rather than fail the scrape
            return
        yield depth
        age = GaugeMetricFamily(
            "corporate_task_worker_heartbeat_age_seconds", "Seconds since a task worker last sent its heartbeat."
        )
        try:
            at = heartbeat_cache().get(HEARTBEAT_KEY)
        except Exception:
            at = None
        if at is not None:
            age.add_metric([], max(0.0, time.time() - float(at)))
            yield age


def exposition():
    """Every process's metrics (multiprocess), or this process's, then the queue's; the text format."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    queue = CollectorRegistry()
    queue.register(QueueCollector())
    return generate_latest(registry) + generate_latest(queue)


@never_cache
def metrics_view(request):
    """GET /metrics: 404 while METRICS_TOKEN is unset, 401 without it, else every metric."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are off")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(given.strip(), token):
        response = HttpResponse(
            "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    flush()
    sync_pools()
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


atexit.register(flush)
