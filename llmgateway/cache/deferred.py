"""Work that may wait until the response has been sent.

A view runs inside `collecting()` and hands the collected work to its
response (`attach`); it runs once the server has closed the response, i.e.
after the client has its answer. Outside such a view (the Python API from a
task, a test, a streaming generator) `defer` runs the work at once. Under
gevent, `threading.local` is per greenlet, so requests never share their
lists.

Store writes (`defer_write`: a function giving the store operations) handed
over together are sent in one round trip.

In a gevent worker, which serves all its connections in one thread, the work
then waits until the worker's event loop has nothing else to do, and at most
`LATEST` seconds (`_Idle`). Run when the response was closed, each answer's
writes (the cache entry, the flight's end) held the worker before it could
turn to the next connection: when a burst of misses came back from the
upstream together, every client waited for the writes of all the answers
sent before its own. Now every waiting client is answered first, and the
writes of the whole burst leave in one round trip. Until its write is sent,
a cache entry is answered from this process's memory (`flight.unwritten`),
so an identical request is a hit at once. Under one thread per request
(runserver, the test client) the work runs when the response is closed.
"""

import atexit
import logging
import threading
from contextlib import contextmanager

from corporate.background import current_pid, gevent_patched

log = logging.getLogger("llmgateway")
_local = threading.local()

# Handed-over work waits at most this long for the event loop to be idle (a worker that is never idle).
LATEST = 0.025


def defer(function, *args):
    tasks = getattr(_local, "tasks", None)
    if tasks is None:
        function(*args)
    else:
        tasks.append((function, args))


def defer_write(operations, done=None):
    """Send the store operations that `operations()` gives, with the others handed over at the same time.

    done: called once they were sent (or failed), e.g. to forget what was kept until then.
    """
    defer(_WRITE, operations, done)


def _WRITE(operations, done):  # noqa: N802 - a marker, run as a task only when it is not collected
    _run([(_WRITE, (operations, done))])


def _run(tasks):
    """Run handed-over work: the store writes among it first, in one round trip, then the rest in order."""
    from llmgateway.cache.store import get_store

    writes = [args for function, args in tasks if function is _WRITE]
    if writes:
        operations = []
        for make, _done in writes:
            try:
                operations += make()
            except Exception:  # one failed encoding must not stop the others' writes
                log.exception("deferred gateway write failed")
        try:
            if operations:
                get_store().batch(operations)
        except Exception:
            log.exception("deferred gateway writes failed")
        finally:
            for _make, done in writes:
                if done is not None:
                    done()
    for function, args in tasks:
        if function is _WRITE:
            continue
        try:
            function(*args)
        except Exception:  # one failed task must not stop the others
            log.exception("deferred gateway work failed")


@contextmanager
def collecting():
    """Collect deferred work; yields the list. Run it with `attach(response, tasks)` or it runs on exit."""
    previous = getattr(_local, "tasks", None)
    tasks = []
    _local.tasks = tasks
    try:
        yield tasks
    finally:
        _local.tasks = previous
        if tasks:
            _run(list(tasks))


def attach(response, tasks):
    """Run the tasks once the server has closed the response (after the client got it)."""
    if tasks:
        pending = list(tasks)
        tasks.clear()
        if _gevent_worker():
            response._resource_closers.append(lambda: _idle.add(pending))
        else:
            response._resource_closers.append(lambda: _run(pending))
    return response


def drain():
    """Run the work still waiting for the event loop to be idle (a worker that is about to exit)."""
    _idle.drain()


_patched = []


def _gevent_worker():
    """Is this process a gevent server's (the standard library made cooperative)? Read once."""
    if not _patched:
        _patched.append(gevent_patched())
    return _patched[0]


class _Idle:
    """A gevent worker's runner of handed-over work: one greenlet that runs it when the event loop is idle."""

    def __init__(self):
        self._pid = None  # the process whose greenlet is running
        self._queue = []
        self._event = None

    def add(self, tasks):
        if self._pid != current_pid():
            self._start()
        self._queue.append(tasks)
        self._event.set()

    def _start(self):
        import gevent
        from gevent.event import Event

        self._queue, self._event = [], Event()
        gevent.spawn(self._loop, self._event)
        self._pid = current_pid()

    def _loop(self, event):
        import gevent

        while True:
            event.wait()
            event.clear()
            # Every connection with something to do goes first; a loop that is never idle waits no longer than this.
            with gevent.Timeout(LATEST, False):
                gevent.idle()
            try:
                self.drain()
            except Exception:  # the runner must outlive any one run: the next responses' work waits on it
                log.exception("deferred gateway work failed")

    def drain(self):
        while self._queue and self._pid == current_pid():
            waiting, self._queue = self._queue, []
            tasks = [task for tasks in waiting for task in tasks]
            _run(tasks)
            if any(function is not _WRITE for function, _args in tasks):
                _release_database()  # store writes never read the database; other work may have


def _release_database():
    """The runner keeps no database connection between runs (a task may have read a record)."""
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None and not connection.in_atomic_block:
            try:
                connection.close()
            except Exception:  # a broken connection is dropped all the same
                log.warning("closing the database connection of deferred work failed", exc_info=True)


_idle = _Idle()
atexit.register(drain)
