"""Work that may wait until the response has been sent.

A view runs inside `collecting()` and hands the collected work to its
response (`attach`); Django runs it when the server closes the response,
i.e. after the client has its answer. Outside such a view (the Python API
from a task, a test, a streaming generator) `defer` runs the work at once.
Under gevent, `threading.local` is per greenlet, so requests never share
their lists.
"""

import logging
import threading
from contextlib import contextmanager

log = logging.getLogger("llmgateway")
_local = threading.local()


def defer(function, *args):
    tasks = getattr(_local, "tasks", None)
    if tasks is None:
        function(*args)
    else:
        tasks.append((function, args))


def _run(tasks):
    for function, args in tasks:
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
    """Run the tasks when the server closes the response (after the client got it)."""
    if tasks:
        pending = list(tasks)
        tasks.clear()
        response._resource_closers.append(lambda: _run(pending))
    return response
