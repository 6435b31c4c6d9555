"""A bounded pool of PostgreSQL connections for one gevent worker process.

Under gevent every request runs in its own greenlet, and Django keeps one
connection per greenlet. Left alone, a burst of 200 requests opens 200
connections per worker, and persistent ones outlive their greenlets until the
garbage collector finds them. The pool caps the connections of a process at
`size`: a request takes a connection from the pool (reusing an idle one, or
opening one while fewer than `size` are open), gives it back when the request
ends, and waits - yielding to other greenlets - while all are busy.

Invariant: open connections = busy + idle <= size. A slot of the semaphore is
held by each busy connection; an idle connection holds none, and a new one
is opened only when no idle one is left, so idle + busy never exceeds size.
"""

import gc
import threading
import time

from corporate.backends.postgresql import green

# Seconds a request waits for a connection before the pool looks for
# connections that ended greenlets did not give back.
GARBAGE_CHECK_AFTER = 1.0


class PoolTimeout(Exception):
    """Every connection stayed busy for the whole wait."""


class ConnectionPool:
    def __init__(self, size, timeout, max_age, semaphore_factory=threading.BoundedSemaphore):
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.size = size
        self.timeout = timeout
        # Seconds a connection may live (None: no limit, 0: never reused).
        self.max_age = max_age
        self._slots = semaphore_factory(size)
        self._idle = []  # (connection, opened_at); the most recently used last
        self._opened_at = {}  # id(connection) -> monotonic time it was opened, for busy ones
        self._last_collect = 0.0
        # Statistics (stats()): plain integers, updated by the one event loop of the worker.
        self.waiting = 0  # requests waiting for a connection now
        self.waits_total = 0  # requests that had to wait
        self.wait_seconds_total = 0.0
        self.timeouts_total = 0
        self.opened_total = 0
        self.closed_total = 0
        self.broken_total = 0  # found dead (closed, or failing the health check) and dropped

    def acquire(self, connect):
        """A connection and whether it was reused; `connect()` opens a new one."""
        limit = green.bound()  # a probe's shorter wait (green.answer_within)
        timeout = self.timeout if limit is None else min(self.timeout, limit)
        if not self._wait_for_slot(timeout):
            self.timeouts_total += 1
            raise PoolTimeout(
                f"all {self.size} database connections of this worker stayed busy for {timeout:g} s "
                "(raise DB_POOL_SIZE, or keep long waits such as model calls outside database work)"
            )
        try:
            while True:
                try:
                    conn, opened_at = self._idle.pop()
                except IndexError:  # none idle, or the last one taken by another thread just now
                    break
                if conn.closed or self._expired(opened_at):
                    self.broken_total += conn.closed != 0
                    self._close(conn)
                    continue
                self._opened_at[id(conn)] = opened_at
                return conn, True
            conn = connect()
        except BaseException:
            self._slots.release()
            raise
        self._opened_at[id(conn)] = time.monotonic()
        self.opened_total += 1
        return conn, False

    def _wait_for_slot(self, timeout):
        if self._slots.acquire(blocking=False):
            return True
        started = time.monotonic()
        self.waits_total += 1
        self.waiting += 1
        try:
            return self._wait_until(started + timeout)
        finally:
            self.waiting -= 1
            self.wait_seconds_total += time.monotonic() - started

    def _wait_until(self, deadline):
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._slots.acquire(timeout=min(remaining, GARBAGE_CHECK_AFTER)):
                return True
            # Still waiting: perhaps greenlets ended without giving their
            # connection back. Their connection wrappers sit in reference
            # cycles, and collecting them hands the connections back (see
            # base.py); so collect garbage, at most once a second per pool.
            now = time.monotonic()
            if now - self._last_collect >= GARBAGE_CHECK_AFTER:
                self._last_collect = now
                gc.collect()

    def release(self, conn, reusable=True, broken=False):
        """Give back a connection from acquire(); a reusable one waits idle for the next request.

        broken: the connection was found dead (it failed its health check).
        """
        opened_at = self._opened_at.pop(id(conn), None)
        if opened_at is None:
            return  # not ours, or already given back
        try:
            if reusable and not conn.closed and not self._expired(opened_at):
                self._idle.append((conn, opened_at))
            else:
                self.broken_total += bool(broken or conn.closed)
                self._close(conn)
        finally:
            self._slots.release()

    def close_idle(self):
        while True:
            try:
                conn, _ = self._idle.pop()
            except IndexError:
                return
            self._close(conn)

    def _close(self, conn):
        self.closed_total += 1
        _close_quietly(conn)

    def stats(self):
        """The pool's state and counts since the worker started (the System page, /metrics, dbstats)."""
        return {
            "size": self.size,
            "in_use": len(self._opened_at),
            "idle": len(self._idle),
            "waiting": self.waiting,
            "waits": self.waits_total,
            "wait_seconds": round(self.wait_seconds_total, 6),
            "timeouts": self.timeouts_total,
            "opened": self.opened_total,
            "closed": self.closed_total,
            "broken": self.broken_total,
        }

    def _expired(self, opened_at):
        return self.max_age is not None and time.monotonic() - opened_at >= self.max_age


def _close_quietly(conn):
    try:
        conn.close()
    except Exception:  # a broken connection is being dropped anyway
        pass
