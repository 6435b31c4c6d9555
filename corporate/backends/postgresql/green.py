"""psycopg2 made cooperative for gevent workers, with a bound on every wait for the database.

psycogreen's wait callback waits on the database's socket without end. A
database that stops answering without closing its connections (a paused or
frozen server, a network path that drops packets) would then hold a request,
and the pooled connection it uses, for good. Here each wait is bounded:

- while connecting, by DB_CONNECT_TIMEOUT (libpq enforces `connect_timeout`
  only on a blocking connection, and a green one is not);
- for a query's answer, by DB_QUERY_TIMEOUT;

then psycopg2.OperationalError: the views answer 503 as for a database that
is down (corporate/middleware.py), and the connection, marked as having had
an error, is closed rather than pooled again.
"""

import threading
from contextlib import contextmanager

import psycopg2
from psycopg2 import extensions

_timeouts = None  # (connect, query) seconds, read from the settings on the first wait
_local = threading.local()  # a greenlet's own, under gevent's patching: `answer_within`


def bound():
    """The bound `answer_within` set for this greenlet (thread), or None."""
    return getattr(_local, "bound", None)


@contextmanager
def answer_within(seconds):
    """Waits for the database in this block (this greenlet's) are bounded by `seconds` at most: for a
    free pooled connection (pool.py), for a new connection and for each answer.

    For a probe (/health) that must answer a load balancer within its own timeout, sooner than a
    request may wait for a slow query.
    """
    previous = getattr(_local, "bound", None)
    _local.bound = seconds
    try:
        yield
    finally:
        _local.bound = previous


class DatabaseTimeout(psycopg2.OperationalError):
    """The database did not answer in time: it is not answering at all, not just on this connection."""


def _read_timeouts():
    from django.conf import settings

    connect = settings.DATABASES["default"].get("OPTIONS", {}).get("connect_timeout") or 5
    return float(connect), float(settings.DB_QUERY_TIMEOUT)


def wait_callback(conn, timeout=None):
    """Wait for the database cooperatively; OperationalError when it has not answered in time."""
    global _timeouts
    from gevent.socket import wait_read, wait_write

    if timeout is None:
        if _timeouts is None:
            _timeouts = _read_timeouts()
        connecting = conn.status == extensions.STATUS_SETUP
        timeout = _timeouts[0] if connecting else _timeouts[1]
        limit = bound()
        if limit is not None:
            timeout = min(timeout, limit)
    else:
        connecting = False
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        what = "connect" if connecting else "answer"
        error = DatabaseTimeout(f"the database did not {what} within {timeout:g} s")
        if state == extensions.POLL_READ:
            wait_read(conn.fileno(), timeout=timeout, timeout_exc=error)
        elif state == extensions.POLL_WRITE:
            wait_write(conn.fileno(), timeout=timeout, timeout_exc=error)
        else:
            raise psycopg2.OperationalError(f"Bad result from poll: {state!r}")


def patch_psycopg():
    """psycopg2 cooperative with gevent, each wait bounded (for a gevent worker, after gevent's patching)."""
    extensions.set_wait_callback(wait_callback)
