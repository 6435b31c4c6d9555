"""Periodic writes (cache statistics, usage records, per-minute figures) leave the request for a background thread.

A request that finds a batch due must not write it itself, not even after
its response: the write's round trips would hold its connection, and its
next request would wait (the tail of a cache hit). It wakes the process's
writer thread instead (corporate.background.Flusher).
"""

import threading
import time

import pytest

from corporate.background import Flusher
from corporate.observability import timeline
from llmgateway.cache import deferred, stats
from llmgateway.metering import records


@pytest.fixture
def written(monkeypatch):
    """Patches a module's `flush`: the names of the threads it ran on, and an event set by each run."""

    def patch(module):
        ran = {"threads": [], "event": threading.Event()}

        def flush():
            ran["threads"].append(threading.current_thread().name)
            ran["event"].set()

        monkeypatch.setattr(module, "flush", flush)
        return ran

    return patch


def test_a_due_statistics_batch_is_written_by_the_writer_thread_not_the_request(written, monkeypatch):
    ran = written(stats)
    monkeypatch.setattr(stats, "_last_flush", time.monotonic() - 60)
    monkeypatch.setattr(stats, "_scheduled", False)
    with deferred.collecting() as after_response:
        stats.record(None, "hit", 1.0)
        assert after_response == []  # nothing left for the request to do once its answer is sent
    assert ran["event"].wait(10)
    assert ran["threads"] == ["gateway-stats-flush"]
    stats.discard_pending()


def test_due_usage_records_are_written_by_the_writer_thread_not_the_request(written, monkeypatch, workspace):
    ran = written(records)
    monkeypatch.setattr(records, "_last_flush", time.monotonic() - 60)
    monkeypatch.setattr(records, "_scheduled", False)
    record = (records.new_id(), workspace.pk, None, None, None, "python", "m", 1, 1, 0, "hit", 200, 1.0, time.time())
    with deferred.collecting() as after_response:
        records.add(record)
        assert after_response == []
    assert ran["event"].wait(10)
    assert ran["threads"] == ["usage-flush"]
    records.discard_pending()


def test_due_per_minute_figures_are_written_by_the_writer_thread_not_the_finished_request(written, monkeypatch):
    ran = written(timeline)
    monkeypatch.setattr(timeline, "_last_flush", [time.monotonic() - 60])
    timeline.flush_when_due()  # request_finished
    assert ran["event"].wait(10)
    assert ran["threads"] == ["observability-timeline"]


def test_a_writer_runs_its_job_when_woken_and_when_its_interval_runs_out():
    runs, woken_run, idle_run = [], threading.Event(), threading.Event()

    def job(woken):
        runs.append(woken)
        (woken_run if woken else idle_run).set()

    flusher = Flusher("test-writer", job, interval=0.05)
    flusher.wake()
    assert woken_run.wait(10)
    assert idle_run.wait(10)  # nothing woke it: it still runs, for what is left after a quiet spell
    assert runs[0] is True and False in runs
    flusher.start()  # already running in this process: no second thread
    assert sum(t.name == "test-writer" for t in threading.enumerate()) == 1
