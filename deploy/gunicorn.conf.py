"""gunicorn settings: gevent workers, sized and logged from the environment.

The gevent worker monkey-patches the standard library when it boots, before
the Django application (and so psycopg2 and redis) is imported, because the
app is not preloaded. `post_fork` then makes psycopg2 cooperative.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1") + ":" + os.environ.get("PORT", "8000")
workers = int(os.environ.get("WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gevent"
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
# Longer than the model gateway's provider timeout (120 s) so a slow
# completion is answered or timed out by the gateway, not killed here.
timeout = int(os.environ.get("WEB_TIMEOUT", "150"))
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("WEB_MAX_REQUESTS_JITTER", "500"))
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

_log_dir = os.environ.get("LOG_DIR", "")
accesslog = os.path.join(_log_dir, "access.log") if _log_dir else "-"
errorlog = os.path.join(_log_dir, "error.log") if _log_dir else "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# %(M)s: request time in milliseconds.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'


def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg

    patch_psycopg()
    server.log.info("worker %s started", worker.pid)
