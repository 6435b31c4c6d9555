"""Every database query timed, counted per request, and logged when slow.

One execute wrapper (Django's `connection.execute_wrapper` mechanism) is put
on every connection when it is created. For each query it adds the time to
the current scope - the request, task or command that runs it - and, when
the query took at least `DB_SLOW_QUERY_MS` (0: every query), logs it once on
the `corporate.slow_queries` logger with its duration, its SQL with the
literals redacted (parameters are never logged) and where it came from:

    slow query: 412.7 ms from view documents:list: SELECT ... WHERE "title" LIKE %s ...

The slowest recent queries (by their redacted text) are kept in the shared
`workers` cache for the System page and `manage.py dbstats`.

Scopes are per thread, which gevent makes per greenlet, so concurrent
requests of one worker never mix their counts.
"""

import logging
import re
import sys
import threading
import time

from django.conf import settings

log = logging.getLogger("corporate.slow_queries")
_local = threading.local()

SLOWEST_KEY = "observe:slowest-queries"
SLOWEST_KEPT = 25
# A query stays in the "slowest recent" list for this long after it was last seen slow.
SLOWEST_WINDOW = 3600
SQL_SHOWN = 2000


class Scope:
    """What one request, task or command did with the database."""

    __slots__ = ("origin", "request", "queries", "seconds", "parent")

    def __init__(self, origin=None, request=None, parent=None):
        self.origin = origin
        self.request = request
        self.queries = 0
        self.seconds = 0.0
        self.parent = parent

    def describe(self):
        """Where the queries come from: a view name, a task, a command."""
        request = self.request
        if request is not None:
            match = getattr(request, "resolver_match", None)
            if match is not None:
                return f"view {match.view_name}"
            return f"request {request.method} {request.path[:200]}"
        return self.origin or process_origin()


def begin(origin=None, request=None):
    """Start counting for a request (or a task nested in one); returns the scope."""
    scope = Scope(origin, request, getattr(_local, "scope", None))
    _local.scope = scope
    return scope


def end(scope):
    """Stop counting; a nested scope's queries count for the one around it too."""
    parent = scope.parent
    _local.scope = parent
    if parent is not None:
        parent.queries += scope.queries
        parent.seconds += scope.seconds
    scope.parent = None


def current():
    return getattr(_local, "scope", None)


_process_origin = None


def process_origin():
    """The origin of queries outside any request or task: the management command, or the process."""
    global _process_origin
    if _process_origin is None:
        argv = sys.argv or [""]
        if argv[0].endswith("manage.py") and len(argv) > 1:
            _process_origin = f"command {argv[1]}"
        elif "gunicorn" in argv[0]:
            _process_origin = "web worker"
        else:
            _process_origin = "process"
    return _process_origin


def execute_timed(execute, sql, params, many, context):
    """The execute wrapper on every connection."""
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - started
        scope = getattr(_local, "scope", None)
        if scope is not None:
            scope.queries += 1
            scope.seconds += elapsed
        if elapsed * 1000 >= settings.DB_SLOW_QUERY_MS:
            slow_query(sql, elapsed, many, scope)


def install(sender=None, connection=None, **kwargs):
    """`connection_created` receiver: time every query of the connection (once per wrapper)."""
    if connection is not None and execute_timed not in connection.execute_wrappers:
        connection.execute_wrappers.append(execute_timed)


_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?\b")
_SPACE = re.compile(r"\s+")
_PLACEHOLDERS = re.compile(r"\((?:\s*%s\s*,)+\s*%s\s*\)")


def redact(sql):
    """The SQL with string and number literals replaced by `?` and IN-lists of parameters shortened.

    Parameters are sent apart from the SQL (`%s`) and never logged; literals
    written into the text (raw SQL, LIMIT n) are redacted too, so a log line
    holds no user data and equal queries read the same.
    """
    sql = _STRING.sub("'?'", sql)
    sql = _NUMBER.sub("?", sql)
    sql = _PLACEHOLDERS.sub("(%s, ...)", sql)
    return _SPACE.sub(" ", sql).strip()


def slow_query(sql, elapsed, many, scope):
    if getattr(_local, "recording", False):
        return  # a query made while recording one (the cache reading its installation id)
    _local.recording = True
    try:
        text = redact(sql if isinstance(sql, str) else str(sql))[:SQL_SHOWN]
        origin = scope.describe() if scope is not None else process_origin()
        ms = elapsed * 1000
        log.warning("slow query: %.1f ms from %s: %s%s", ms, origin, text, " (executemany)" if many else "")
        _remember(text, ms, origin)
        from corporate.observability import metrics, timeline

        timeline.count("slow_queries")
        metrics.count_slow_query()
    except Exception:  # the log line is out; the list is a convenience
        log.debug("slow query not remembered", exc_info=True)
    finally:
        _local.recording = False


def _remember(text, ms, origin):
    from corporate.workers import heartbeat_cache

    cache = heartbeat_cache()
    now = time.time()
    entries = [e for e in (cache.get(SLOWEST_KEY) or []) if now - e["last_at"] < SLOWEST_WINDOW]
    for entry in entries:
        if entry["sql"] == text:
            entry["count"] += 1
            entry["total_ms"] += ms
            entry["last_at"] = now
            entry["origin"] = origin
            if ms > entry["max_ms"]:
                entry["max_ms"] = ms
            break
    else:
        entries.append({"sql": text, "count": 1, "max_ms": ms, "total_ms": ms, "origin": origin, "last_at": now})
    entries.sort(key=lambda e: e["max_ms"], reverse=True)
    cache.set(SLOWEST_KEY, entries[:SLOWEST_KEPT], SLOWEST_WINDOW)


def slowest():
    """The slowest queries of the last hour, every process's: the slowest first."""
    from corporate.workers import heartbeat_cache

    now = time.time()
    entries = heartbeat_cache().get(SLOWEST_KEY) or []
    return [dict(e, mean_ms=e["total_ms"] / e["count"]) for e in entries if now - e["last_at"] < SLOWEST_WINDOW]


def forget_slowest():
    from corporate.workers import heartbeat_cache

    heartbeat_cache().delete(SLOWEST_KEY)


def task_started(sender, task_result=None, **kwargs):
    """django-tasks' task_started: the task's queries have the task as their origin."""
    name = getattr(getattr(task_result, "task", None), "module_path", None) or "task"
    _local.task_scopes = getattr(_local, "task_scopes", [])
    _local.task_scopes.append(begin(origin=f"task {name}"))


def task_finished(sender, task_result=None, **kwargs):
    stack = getattr(_local, "task_scopes", None)
    if stack:
        end(stack.pop())
