"""PostgreSQL for gevent workers: Django's backend plus a bounded per-process pool.

Outside a gevent-patched process (tests, `runserver`, `manage.py` commands,
the task worker) this is Django's PostgreSQL backend unchanged, with
persistent connections kept for CONN_MAX_AGE seconds.

Inside a gunicorn gevent worker (deploy/gunicorn_worker.py patches the
standard library and makes psycopg2 cooperative before the app is imported)
connections come from a pool of at most POOL_SIZE per worker process:

- a request takes a connection on its first query and gives it back when it
  ends (Django's request_finished closes "old connections": here that returns
  them to the pool), so a greenlet holds one only while a request needs it;
- CONN_MAX_AGE keeps its meaning: the most seconds a connection stays open
  (0: a fresh connection for every request, still within the bound);
- CONN_HEALTH_CHECKS: a reused connection is checked with `SELECT 1` when a
  request takes it, before its first query; a dead one (the database
  restarted) is dropped and another taken, so no request fails for it;
- a request that finds every connection busy waits up to POOL_TIMEOUT
  seconds, then fails with OperationalError (/health answers 503);
- a connection whose greenlet ended without giving it back is returned when
  its wrapper is garbage-collected (a request that waits over a second for a
  connection runs the collector), so a stray greenlet cannot leak a slot.
"""

import logging
import os
import threading
import weakref
from functools import partial

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base
from django.db.backends.postgresql.psycopg_any import IsolationLevel

from corporate.background import gevent_patched

from .green import DatabaseTimeout
from .pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_TIMEOUT = 10

_pools = {}
_pools_lock = threading.Lock()


def pool_for(settings_dict):
    """The pool of this process for one database, created on first use."""
    key = (
        os.getpid(),
        settings_dict["NAME"],
        settings_dict["HOST"],
        settings_dict["PORT"],
        settings_dict["USER"],
    )
    pool = _pools.get(key)
    if pool is not None:
        return pool
    with _pools_lock:
        if key not in _pools:
            _require_green_psycopg()
            from gevent.lock import BoundedSemaphore

            size = int(settings_dict.get("POOL_SIZE") or DEFAULT_POOL_SIZE)
            timeout = float(settings_dict.get("POOL_TIMEOUT") or DEFAULT_POOL_TIMEOUT)
            _pools[key] = ConnectionPool(size, timeout, settings_dict["CONN_MAX_AGE"], BoundedSemaphore)
            log.info("database pool for %s: at most %s connections in process %s", key[1], size, key[0])
        return _pools[key]


def all_pools():
    return [pool for key, pool in _pools.items() if key[0] == os.getpid()]


def close_idle_connections():
    """Close every idle pooled connection of this process (a worker that exits)."""
    for pool in all_pools():
        pool.close_idle()


def _require_green_psycopg():
    if base.is_psycopg3:
        raise ImproperlyConfigured("corporate.backends.postgresql pools psycopg2 connections; psycopg 3 is installed")
    import psycopg2.extensions

    if psycopg2.extensions.get_wait_callback() is None:
        raise ImproperlyConfigured(
            "psycopg2 would block this gevent worker: serve with -c deploy/gunicorn.conf.py, "
            "whose worker makes psycopg2 cooperative (psycogreen)"
        )


class DatabaseWrapper(base.DatabaseWrapper):
    _green_pool = None
    _green_finalizer = None

    def pool_in_use(self):
        """This process's pool when connections are pooled (a gevent worker), else None."""
        if self.alias.startswith("__") or not gevent_patched():
            return None  # Django's internal "no database" connections are never pooled
        return pool_for(self.settings_dict)

    def get_new_connection(self, conn_params):
        pool = self.pool_in_use()
        if pool is None:
            return super().get_new_connection(conn_params)
        connect = partial(base.DatabaseWrapper.get_new_connection, self, conn_params)
        while True:
            try:
                conn, reused = pool.acquire(connect)
            except PoolTimeout as exc:
                raise self.Database.OperationalError(str(exc)) from None
            # A reused connection is checked before the request's first query
            # (after a database restart every idle one is dead): a dead one is
            # dropped and the next taken, so no request fails for it. One that
            # does not answer in time says the database is not answering: the
            # request fails at once rather than waiting on every idle connection.
            try:
                if not reused or not self.settings_dict["CONN_HEALTH_CHECKS"] or self._alive(conn):
                    break
            except DatabaseTimeout:
                pool.release(conn, reusable=False, broken=True)
                raise
            log.info("dropping a pooled database connection that no longer answers")
            pool.release(conn, reusable=False, broken=True)
        if reused:
            # What Django's get_new_connection sets for a fresh connection.
            self.isolation_level = IsolationLevel(
                self.settings_dict["OPTIONS"].get("isolation_level", IsolationLevel.READ_COMMITTED)
            )
        self._green_pool = pool
        self._green_reused = reused
        # A greenlet that ends without closing still hands the connection back.
        self._green_finalizer = weakref.finalize(self, pool.release, conn, False)
        return conn

    def _alive(self, conn):
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
            if conn.get_transaction_status() != self.Database.extensions.TRANSACTION_STATUS_IDLE:
                conn.rollback()
        except DatabaseTimeout:
            raise
        except self.Database.Error:
            return False
        return True

    def connect(self):
        super().connect()
        if self._green_pool is not None:
            # get_new_connection checked a reused connection already.
            self.health_check_done = True

    def _close(self):
        pool, conn = self._green_pool, self.connection
        if pool is None or conn is None:
            return super()._close()
        self._green_pool = None
        if self._green_finalizer is not None:
            self._green_finalizer.detach()
            self._green_finalizer = None
        pool.release(conn, reusable=self._reusable(conn))

    def _reusable(self, conn):
        """Whether the next request may have this connection as it is (after a rollback if needed)."""
        if conn.closed or self.errors_occurred or self.in_atomic_block:
            return False
        ext = self.Database.extensions
        status = conn.get_transaction_status()
        if status in (ext.TRANSACTION_STATUS_INTRANS, ext.TRANSACTION_STATUS_INERROR):
            try:
                conn.rollback()
            except self.Database.Error:
                return False
            return True
        return status == ext.TRANSACTION_STATUS_IDLE

    def close_if_health_check_failed(self):
        if self._green_pool is None:
            return super().close_if_health_check_failed()
        if self.connection is None or not self.health_check_enabled or self.health_check_done:
            return
        if not self.is_usable():
            self.errors_occurred = True  # drop it rather than pool it again
            self.close()
        self.health_check_done = True

    def close_if_unusable_or_obsolete(self):
        if self._green_pool is None:
            return super().close_if_unusable_or_obsolete()
        # Called when a request starts and ends: a pooled connection goes back
        # to the pool, unless a transaction is still open around this call.
        if self.connection is not None and not self.in_atomic_block:
            self.close()
