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

from corporate.observability import metrics, queries, timeline


class RequestStatsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        scope = queries.begin(request=request)
        try:
            response = self.get_response(request)
        finally:
            queries.end(scope)
        elapsed = time.perf_counter() - started
        count, db_seconds = scope.queries, scope.seconds
        db_ms = db_seconds * 1000
        timing = f'db;dur={db_ms:.1f};desc="{count} queries"'
        existing = response.get("Server-Timing")
        response["Server-Timing"] = f"{existing}, {timing}" if existing else timing
        environ = request.META
        environ["corporate.db_queries"] = count
        environ["corporate.db_ms"] = f"{db_ms:.1f}"
        status = response.status_code
        timeline.observe_request(elapsed, db_seconds, count, status >= 500)
        if metrics.enabled():
            match = request.resolver_match
            route = match.view_name if match is not None else "unmatched"
            metrics.observe_request(route, request.method, status, elapsed, count, db_seconds)
        return response
