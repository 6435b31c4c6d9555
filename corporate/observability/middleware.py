"""Per-request figures: queries and database time in `Server-Timing` and the access log, and the metrics.

The first middleware of both stacks (the site's and /v1's, corporate/handlers.py).
For each request it opens a query scope (corporate.observability.queries),
and on the way out:

- adds `db;dur=<ms>;desc="<n> queries"` to `Server-Timing` (after any entry
  the view set, such as the gateway's);
- puts the figures into the WSGI environ as `corporate.db_queries` and
  `corporate.db_ms`, which gunicorn's access log prints
  (deploy/gunicorn.conf.py);
- adds them to the per-minute timeline and, when metrics are on, to the
  request metrics by route (the URL name, never the path).
"""

import time

from corporate.background import Flusher
from corporate.observability import metrics, queries, timeline


def _write_metrics(woken):
    try:
        metrics.flush_when_due()
    except Exception:  # never let statistics end the thread, nor fill the log once a second
        pass


# Requests write their metrics after they end, at most once a second; the last ones before a quiet spell
# would wait for the next request without this thread. (The per-minute figures have their own: timeline.py.)
_flusher = Flusher("observability-flush", _write_metrics, metrics.FLUSH_SECONDS)


_NO_QUERIES = 'db;dur=0.0;desc="0 queries"'


class RequestStatsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        _flusher.start()
        started = time.perf_counter()
        scope = queries.begin(request=request)
        try:
            response = self.get_response(request)
        finally:
            queries.end(scope)
        elapsed = time.perf_counter() - started
        count, db_seconds = scope.queries, scope.seconds
        if count:
            ms = f"{db_seconds * 1000:.1f}"
            timing = f'db;dur={ms};desc="{count} queries"'
        else:  # a cache hit: the same text every time
            ms, timing = "0.0", _NO_QUERIES
        # Straight into the header store: the entry is ASCII of our own making, and one the view set was
        # checked when it was set (Django checks a header it is given, about 8 µs a header).
        store = response.headers._store
        existing = store.get("server-timing")
        store["server-timing"] = ("Server-Timing", f"{existing[1]}, {timing}" if existing else timing)
        environ = request.META
        environ["corporate.db_queries"] = count
        environ["corporate.db_ms"] = ms
        status = response.status_code
        timeline.observe_request(elapsed, db_seconds, count, status >= 500)
        if metrics.enabled():
            match = request.resolver_match
            route = match.view_name if match is not None else "unmatched"
            metrics.observe_request(route, request.method, status, elapsed, count, db_seconds)
        return response
