"""Task workers: django-tasks-db's worker made to outlive a database outage, and its heartbeat.

`manage.py task_worker` (what the start scripts run) is `manage.py db_worker`
with this Worker:

- a database error in its loop (OperationalError, InterfaceError: the server
  restarting, "the database system is starting up", a dropped connection)
  does not end the process. The worker closes its connections, waits -
  0.5 s, then twice as long each time, at most TASK_WORKER_RETRY_MAX_SECONDS
  - until a query on the task table succeeds, and carries on. One warning
  when the outage starts, one line when the database is back.
- every USAGE_FLUSH_SECONDS a thread writes the gateway's buffered usage
  records to the database (llmgateway.metering.records.drain).
- every ANSWER_SWEEP_SECONDS a thread marks interrupted the chat answers left
  "streaming" past the longest an answer may take: their web worker died, or
  the database did not take their save (assistants.answering.interrupt_stale_answers).
- every TASK_WORKER_HEARTBEAT_SECONDS a thread writes the time to the
  `workers` cache (Redis when configured, else files under VAR_DIR, so the
  web processes see it); /health reports how long ago the last one came.

A task that was running when the database went away cannot record its
result; documents are requeued by their own watchdog (documents.ingestion).
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import caches
from django.db import InterfaceError, OperationalError, connections
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult

log = logging.getLogger("corporate.workers")

DATABASE_ERRORS = (OperationalError, InterfaceError)
HEARTBEAT_KEY = "tasks:worker-heartbeat"
FIRST_RETRY_DELAY = 0.5
# How often the task worker looks for chat answers left "streaming" by a worker that died.
ANSWER_SWEEP_SECONDS = 60
# An outage that starts this soon after the last one ended keeps the longer
# wait, so an error that never goes away cannot make the worker spin.
CALM_AFTER = 60.0


def heartbeat_cache():
    return caches["workers"]


def record_heartbeat(at=None):
    heartbeat_cache().set(HEARTBEAT_KEY, time.time() if at is None else at, timeout=None)


def stale_after():
    """Seconds without a heartbeat after which the workers count as stale: three missed beats."""
    return 3 * settings.TASK_WORKER_HEARTBEAT_SECONDS


def worker_state():
    """What /health shows: {"state": "ok" | "stale" | "never", "last_heartbeat_seconds": n}; one cache read."""
    at = heartbeat_cache().get(HEARTBEAT_KEY)
    if at is None:
        return {"state": "never"}
    age = max(0, int(time.time() - float(at)))
    return {"state": "ok" if age <= stale_after() else "stale", "last_heartbeat_seconds": age}


def _beat_forever(interval):
    failing = False
    while True:
        try:
            record_heartbeat()
        except Exception as exc:  # the heartbeat must never stop the worker
            if not failing:
                log.warning("task worker heartbeat not written: %s: %s", exc.__class__.__name__, exc)
            failing = True
        else:
            failing = False
        time.sleep(interval)


def close_connections():
    """Drop every open database connection of this thread; a broken one cannot be reused."""
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # closing a connection the server already dropped
            pass


def _drain_usage_forever(interval):
    """Write the gateway's buffered usage records to the database every `interval` seconds."""
    from llmgateway.metering import records

    failing = False
    while True:
        time.sleep(interval)
        try:
            records.drain()
        except Exception as exc:  # a database outage: the records wait in the store
            if not failing:
                log.warning("usage records not written: %s: %s", exc.__class__.__name__, exc)
            failing = True
            close_connections()
        else:
            failing = False


def _interrupt_stale_answers_forever(interval):
    """Mark interrupted, every `interval` seconds, the chat answers that will never be finished."""
    from assistants.answering import interrupt_stale_answers

    failing = False
    while True:
        time.sleep(interval)
        try:
            marked = interrupt_stale_answers()
        except Exception as exc:  # a database outage: the next sweep finds them
            if not failing:
                log.warning("stale chat answers not checked: %s: %s", exc.__class__.__name__, exc)
            failing = True
            close_connections()
        else:
            failing = False
            if marked:
                log.info("%d chat answer(s) left streaming by a worker that stopped marked interrupted", marked)


class Worker(db_worker.Worker):
    """django-tasks-db's worker, which waits out a database outage instead of exiting."""

    _retry_delay = FIRST_RETRY_DELAY
    _recovered_at = None
    _heartbeat = None
    _usage = None
    _answers = None

    def run(self):
        self.start_heartbeat()
        self.start_usage_drain()
        self.start_answer_sweep()
        while True:
            try:
                return super().run()
            except DATABASE_ERRORS as exc:
                if not self.running:
                    return None  # asked to stop while the task in hand failed with the database
                self.wait_for_database(exc)

    def start_heartbeat(self):
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=_beat_forever,
                args=(settings.TASK_WORKER_HEARTBEAT_SECONDS,),
                name="task-worker-heartbeat",
                daemon=True,
            )
            self._heartbeat.start()

    def start_usage_drain(self):
        if self._usage is None:
            self._usage = threading.Thread(
                target=_drain_usage_forever,
                args=(settings.USAGE_FLUSH_SECONDS,),
                name="usage-drain",
                daemon=True,
            )
            self._usage.start()

    def start_answer_sweep(self):
        if self._answers is None:
            self._answers = threading.Thread(
                target=_interrupt_stale_answers_forever,
                args=(ANSWER_SWEEP_SECONDS,),
                name="answer-sweep",
                daemon=True,
            )
            self._answers.start()

    def wait_for_database(self, error):
        """Close the broken connections and retry with a growing pause until the task table answers."""
        started = time.monotonic()
        if self._recovered_at is None or started - self._recovered_at > CALM_AFTER:
            self._retry_delay = FIRST_RETRY_DELAY
        cap = float(settings.TASK_WORKER_RETRY_MAX_SECONDS)
        log.warning(
            "task worker %s: database unavailable (%s: %s); retrying every %g s at most",
            self.worker_id,
            error.__class__.__name__,
            str(error).strip().splitlines()[0] if str(error).strip() else "",
            cap,
        )
        while True:
            close_connections()
            # SIGTERM/SIGINT during this sleep stop the worker (Worker.shutdown).
            time.sleep(self._retry_delay)
            self._retry_delay = min(self._retry_delay * 2, cap)
            try:
                DBTaskResult.objects.exists()
            except DATABASE_ERRORS:
                continue
            self._recovered_at = time.monotonic()
            log.info(
                "task worker %s: database available again after %.1f s; carrying on",
                self.worker_id,
                self._recovered_at - started,
            )
            return
