"""gunicorn settings: gevent workers, sized and logged from the environment.

Serve with `gunicorn -c deploy/gunicorn.conf.py corporate.wsgi:application`
(deploy/start_production.sh and `make run` do). Every value below can be set
from the environment; .env.example lists them.

Monkey-patching: the worker class (deploy/gunicorn_worker.py) patches the
standard library with gevent and makes psycopg2 cooperative once, in each
forked worker, before the application is imported. This file must not import
Django, psycopg2 or redis, and the app is not preloaded, so nothing opens a
socket or a database connection before that.
"""

import multiprocessing
import os
import sys
import time


def _int(name, default):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        # One line naming the variable, not a traceback.
        sys.stderr.write(f"Configuration error: {name} must be a whole number, not {raw!r}\n")
        sys.exit(2)


bind = os.environ.get("BIND", "127.0.0.1") + ":" + os.environ.get("PORT", "8000")
# gevent workers: one process per core handles many requests at once; the
# default leaves headroom for requests that spend CPU in Python.
workers = _int("WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1)
worker_class = "deploy.gunicorn_worker.Worker"
# Requests one worker serves at once (greenlets). Database work inside them is
# bounded separately by DB_POOL_SIZE connections per worker.
worker_connections = _int("WORKER_CONNECTIONS", 1000)
# The gateway answers every model call within LLM_DEADLINE_SECONDS (120 s,
# retries and fallbacks included, a 504 when it runs out); gunicorn and nginx
# (proxy_read_timeout) allow a little more, so a slow completion is answered
# or timed out by the gateway itself. Raise both together. With gevent workers
# gunicorn's timeout kills only a worker whose event loop is stuck that long.
timeout = _int("WEB_TIMEOUT", 150)
# On restart, requests in flight get this long to finish.
graceful_timeout = _int("WEB_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive from nginx; nginx's upstream keepalive_timeout is shorter.
keepalive = _int("WEB_KEEPALIVE", 5)
# Recycle workers now and then (memory growth), not all at the same moment.
# A worker serves several hundred requests/s: 5000 would restart it every few
# seconds under load, and a restarting worker answers nothing for ~1 s.
max_requests = _int("WEB_MAX_REQUESTS", 50000)
max_requests_jitter = _int("WEB_MAX_REQUESTS_JITTER", 5000)
preload_app = False
# A request line as long as nginx lets through (large_client_header_buffers, 8k):
# nginx, not gunicorn, refuses longer ones, with an answer in the API's or the
# site's shape. gunicorn's own default (4094) would answer a 4-8 kB address
# with its bare HTML page. 8190 is the most gunicorn allows.
limit_request_line = 8190
# Trust X-Forwarded-* only from the local nginx.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proc_name = os.environ.get("WEB_PROC_NAME", "corporate-web")
# gunicorn's control socket (gunicornc) only where asked for: by default every
# gunicorn of a user shares one path, which a second server on the host takes over.
if os.environ.get("WEB_CONTROL_SOCKET"):
    control_socket = os.environ["WEB_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Logs: to LOG_DIR/access.log and LOG_DIR/error.log, or stdout/stderr (journald).
_log_dir = os.environ.get("LOG_DIR", "")
accesslog = os.path.join(_log_dir, "access.log") if _log_dir else "-"
errorlog = os.path.join(_log_dir, "error.log") if _log_dir else "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# %(M)s: request time in milliseconds; %({x-forwarded-for}i): the client behind nginx;
# db=: the request's database queries and time (corporate/observability/middleware.py).
access_log_format = (
    '%(h)s %({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms '
    'db=%({corporate.db_queries}e)sq/%({corporate.db_ms}e)sms "%(a)s"'
)
# A request slower than this is logged as a warning in the error log.
SLOW_REQUEST_MS = _int("WEB_SLOW_REQUEST_MS", 5000)


def when_ready(server):
    server.log.info(
        "serving on %s: %s gevent worker(s), each up to %s requests at once",
        bind,
        server.cfg.workers,
        server.cfg.worker_connections,
    )
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://", "pgsql://")):
        pool = _int("DB_POOL_SIZE", 10)
        server.log.info(
            "PostgreSQL: at most %s connections from the web workers (%s x DB_POOL_SIZE=%s)",
            server.cfg.workers * pool,
            server.cfg.workers,
            pool,
        )


def post_worker_init(worker):
    # The application is loaded by now (Django, the URL patterns, the middleware): objects that live as
    # long as the worker. Frozen, the garbage collector stops walking them on every collection.
    import gc

    _import_views()
    gc.collect()
    gc.freeze()
    worker.log.info("worker %s started", worker.pid)


def _import_views():
    # Django imports the URL configuration and every view module on the first request; importing them
    # here puts them among the frozen objects too (otherwise every full collection walks them).
    try:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - the property imports the URL configuration
    except Exception:  # not a Django application, or its URLs fail: the first request will say so
        pass


def pre_request(worker, req):
    req._started = time.monotonic()


def post_request(worker, req, environ, resp):
    started = getattr(req, "_started", None)
    if started is None:
        return
    elapsed_ms = (time.monotonic() - started) * 1000
    if elapsed_ms >= SLOW_REQUEST_MS:
        worker.log.warning(
            "slow request: %s %s took %d ms (status %s, worker %s)",
            req.method,
            req.path,
            elapsed_ms,
            getattr(resp, "status", "?"),
            worker.pid,
        )


def worker_abort(worker):
    worker.log.error("worker %s aborted: its event loop was blocked for %s s", worker.pid, worker.cfg.timeout)


def child_exit(server, worker):
    # Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR): a dead worker's
    # live gauges (its pool) leave /metrics; its counters stay in the sums.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    # Work handed over by the last responses (cache entries, flights' ends) waits for an idle moment: now.
    _on_exit(server, worker, "llmgateway.cache.deferred", "drain", "writing the last responses' work")
    # Usage records to the store, or to a file under VAR_DIR while it is down (sent later, none lost).
    _on_exit(server, worker, "llmgateway.metering.records", "exit_flush", "keeping the usage records")
    # Close pooled PostgreSQL connections cleanly instead of dropping them.
    _on_exit(
        server, worker, "corporate.backends.postgresql.base", "close_idle_connections", "closing database connections"
    )
    server.log.info("worker %s exited", worker.pid)


def _on_exit(server, worker, module, function, what):
    """Call `module.function()` if the worker imported the module; a failure is logged (the worker is leaving)."""
    loaded = sys.modules.get(module)
    try:
        if loaded is not None:
            getattr(loaded, function)()
    except Exception as exc:
        server.log.warning("worker %s: %s failed: %s", worker.pid, what, exc)
