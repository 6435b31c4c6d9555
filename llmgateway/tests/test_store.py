"""The store: local memory per process, invalidation across processes on one host."""

from django.core.cache.backends.locmem import LocMemCache

from llmgateway.cache.store import LocalStore


def _process(name, stamp):
    """A LocalStore with a cache of its own, as another gunicorn worker on the host has."""
    return LocalStore(cache=LocMemCache(name, {}), stamp=stamp)


def test_invalidating_a_record_reaches_the_other_processes(tmp_path):
    stamp = tmp_path / "records.stamp"
    worker_a, worker_b = _process("worker-a", stamp), _process("worker-b", stamp)
    key = "corporate:1:gw:key:abc"
    worker_b.set(key, b"key info", 60)
    assert worker_b.get_many([key]) == [b"key info"]
    # Revoked through worker A (or a management command): B must not use its copy any more.
    worker_a.invalidate(key)
    assert worker_b.get_many([key]) == [None]


def test_completions_are_not_dropped_by_record_invalidation(tmp_path):
    stamp = tmp_path / "records.stamp"
    worker = _process("worker-c", stamp)
    entry = "corporate:1:gw:c:1:deadbeef"
    worker.set(entry, b"answer", 60)
    worker.invalidate("corporate:1:gw:ws:1")
    assert worker.get_many([entry]) == [b"answer"]


def test_batch_runs_each_operation(tmp_path):
    store = _process("worker-d", tmp_path / "stamp")
    results = store.batch([("add", "k", b"1", 60), ("add", "k", b"2", 60), ("get", "k"), ("push", "l", b"x", 60)])
    assert results[:3] == [True, False, b"1"]
    assert store.read_list("l", 0) == [b"x"]
