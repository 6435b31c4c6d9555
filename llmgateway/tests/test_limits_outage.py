"""Limits while Redis is down: completions are admitted, counted and logged; the limits hold again when it is back.

The gateway runs on a redis-server of the test's own (corporate/tests/redis_server.py),
which the test stops and starts; never the machine's shared Redis.
"""

import fcntl
import json
import logging
import time
import uuid

import pytest
from prometheus_client import REGISTRY

from llmgateway.metering import limits, records
from llmgateway.models import Limit, UsageRecord

BODY = {"model": "remote", "messages": [{"role": "user", "content": "What does the gateway do?"}]}


def unchecked():
    return REGISTRY.get_sample_value("corporate_limits_unchecked_total") or 0


def warnings(caplog):
    return [r for r in caplog.records if "not enforced" in r.getMessage()]


@pytest.fixture
def limited(redis_cache, api_key, remote_model, upstream, settings):
    settings.METRICS_TOKEN = "metrics-token-for-tests"
    settings.REDIS_RETRY_SECONDS = 1
    limits._warned_at[0] = float("-inf")
    Limit.objects.create(kind="key", workspace=api_key[0].workspace, api_key=api_key[0], rpm=2)
    return redis_cache


def test_limits_fail_open_with_a_metric_and_one_warning_then_hold_again(limited, v1, upstream, caplog):
    # Redis up: two requests, then the third is refused.
    first = [v1(BODY) for _ in range(3)]
    assert [r.status_code for r in first] == [200, 200, 429]
    before = unchecked()
    records.drain()  # this server keeps nothing on disk: what it holds goes with it

    limited.stop()
    with caplog.at_level(logging.WARNING):
        outage = [v1(BODY) for _ in range(5)]
    assert [r.status_code for r in outage] == [200] * 5
    assert all("x-ratelimit-remaining-requests" not in r for r in outage)  # no figures to give
    assert unchecked() - before == 5
    assert len(warnings(caplog)) == 1  # once a minute, not once a request
    assert warnings(caplog)[0].levelno == logging.WARNING and warnings(caplog)[0].exc_info is None

    limited.start().used_again()  # the circuit tries Redis again after REDIS_RETRY_SECONDS
    # Back: the bucket starts full on the fresh server, and holds.
    back = [v1(BODY) for _ in range(3)]
    assert [r.status_code for r in back] == [200, 200, 429]
    assert unchecked() - before == 5

    # The records made while Redis was down waited in this process and are written now: none lost.
    # Each answer, the refusals too, names its record (x-request-id).
    records.drain()
    answered = {uuid.UUID(r["x-request-id"]) for r in first + outage + back}
    stored = dict(UsageRecord.objects.filter(request_id__in=answered).values_list("request_id", "cache"))
    assert set(stored) == answered and len(answered) == 3 + 5 + 3
    assert list(stored.values()).count("refused") == 2


def test_a_budget_counts_what_was_spent_during_the_outage(redis_cache, workspace, remote_model, upstream, settings):
    from decimal import Decimal

    from llmgateway import gateway

    settings.REDIS_RETRY_SECONDS = 1
    Limit.objects.create(kind="workspace", workspace=workspace, daily_budget=Decimal("0.05"))
    redis_cache.stop()
    # About $0.0115 a call: five calls spend more than the budget while nobody can count.
    for i in range(5):
        gateway.complete(
            workspace, {"model": "remote", "max_tokens": 10, "messages": [{"role": "user", "content": f"q{i}"}]}
        )
    assert upstream.calls == 5
    redis_cache.start().used_again()
    # The counter is gone with the old server: seeded again from the rows (the buffered records are
    # written first), so the next paid request is refused.
    with pytest.raises(gateway.GatewayError) as refused:
        gateway.complete(
            workspace, {"model": "remote", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
        )
    assert refused.value.code == "insufficient_quota"
    assert upstream.calls == 5


def test_refuse_instead_when_so_configured(limited, v1, api_key, upstream, settings, caplog):
    from llmgateway.models import ApiKey

    settings.USAGE_LIMITS_WITHOUT_STORE = "refuse"
    _, unlimited = ApiKey.create(api_key[0].workspace, "no limits", api_key[0].created_by)
    limited.stop()
    calls = upstream.calls
    with caplog.at_level(logging.WARNING):
        refused = [v1(BODY) for _ in range(3)]
    assert [r.status_code for r in refused] == [503] * 3
    assert refused[0]["Retry-After"] == "1"
    error = refused[0].json()["error"]
    assert error["code"] == "limits_unavailable" and "cannot be checked" in error["message"]
    assert upstream.calls == calls  # nothing spent unseen
    assert [r.getMessage() for r in caplog.records if "cannot be checked" in r.getMessage()]
    # A key without limits has nothing to check: served as usual.
    assert v1(BODY, key=unlimited).status_code == 200


@pytest.mark.usefixtures("no_stray_records")
def test_usage_records_wait_out_an_outage_with_one_warning_and_none_is_lost(redis_cache, workspace, settings, caplog):
    """While Redis is down the records stay in the process: tried again every flush interval (not on every record
    once a batch is due), one warning when the store stops taking them, a note when it takes them again."""
    settings.REDIS_RETRY_SECONDS = 0.2
    redis_cache.stop()
    tries = []

    def ours():
        # Tuples as added, or their encoded lines once a try has failed.
        held = [json.loads(r) if type(r) is bytes else r for r in list(records._pending)]
        return sum(1 for record in held if record[1] == workspace.pk)

    real_flush = records.flush
    records.flush = lambda: (tries.append(1), real_flush())[1]
    try:
        with caplog.at_level(logging.INFO, logger="llmgateway.metering"):
            started = time.monotonic()
            for n in range(1000):  # a second of traffic, 1,000 completions
                records.add(
                    (records.new_id(), workspace.pk, None, None, None, "v1", "m", 1, 1, 0, "hit", 200, 1.0, time.time())
                )
                time.sleep(max(0, started + n / 1000 - time.monotonic()))
            time.sleep(0.3)
            assert ours() == 1000
            redis_cache.start().used_again()
            deadline = time.monotonic() + 10
            while records.pending() and time.monotonic() < deadline:
                time.sleep(0.05)
            real_flush()  # waits out a flush the writer thread has under way (its lock): its note is logged by now
    finally:
        records.flush = real_flush
    # One try per flush interval (0.25 s) while the store is down: a handful, never one per record.
    assert len(tries) <= 15, len(tries)
    messages = [r.getMessage() for r in caplog.records if r.name == "llmgateway.metering"]
    warnings = [r for r in caplog.records if r.name == "llmgateway.metering" and r.levelno >= logging.WARNING]
    assert len(warnings) == 1, messages
    # A stray record of another test's workspace may be among them: "1000" or a few more.
    taken_again = [int(m.split()[4]) for m in messages if m.startswith("usage records taken again")]
    assert len(taken_again) == 1 and 1000 <= taken_again[0] < 1010, messages
    assert records.drain() >= 1000
    assert UsageRecord.objects.filter(workspace=workspace).count() == 1000


@pytest.mark.usefixtures("no_stray_records")
def test_records_the_store_never_took_are_kept_in_a_file_at_exit_and_sent_by_the_next_process(
    redis_cache, workspace, settings, tmp_path, caplog
):
    """A worker that exits (a restart, a deploy) while Redis is down writes the records it holds to a file
    under VAR_DIR; the next process that writes records, or a drain, sends them: none is lost."""
    settings.VAR_DIR = str(tmp_path)
    settings.REDIS_RETRY_SECONDS = 0.2

    def record():
        return (records.new_id(), workspace.pk, None, None, None, "v1", "m", 1, 1, 0, "miss", 200, 1.0, time.time())

    redis_cache.stop()
    for _ in range(5):
        records.add(record())
    with caplog.at_level(logging.WARNING, logger="llmgateway.metering"):
        records.exit_flush()  # what the exiting worker runs
    assert records.pending() == 0
    kept = list(tmp_path.glob("usage-unsent-*.jsonl"))
    assert len(kept) == 1 and len(kept[0].read_bytes().splitlines()) == 5
    assert any("kept in" in r.getMessage() for r in caplog.records)

    redis_cache.start().used_again()
    records._unsent_checked[0] = None  # a new process
    records.add(record())
    records.flush()
    assert list(tmp_path.glob("usage-unsent-*")) == []
    assert records.drain() == 6
    assert UsageRecord.objects.filter(workspace=workspace).count() == 6
    records.exit_flush()  # nothing left: no file
    assert list(tmp_path.glob("usage-unsent-*")) == []


@pytest.mark.usefixtures("no_stray_records")
def test_records_the_store_refused_are_in_the_processs_journal_at_once_and_a_dead_processs_journal_is_sent(
    redis_cache, workspace, settings, tmp_path
):
    """A worker killed during an outage (no exit code runs) leaves its journal: each record the store refused
    is in it once, from the try that failed. A journal still locked by a live process is left to it."""
    settings.VAR_DIR = str(tmp_path)
    settings.REDIS_RETRY_SECONDS = 0.2

    def record():
        return (records.new_id(), workspace.pk, None, None, None, "v1", "m", 1, 1, 0, "miss", 200, 1.0, time.time())

    def lines(path):
        return path.read_bytes().splitlines()

    redis_cache.stop()
    for _ in range(5):
        records.add(record())
    records.flush()
    (journal,) = tmp_path.glob("usage-unsent-*.jsonl")
    assert len(lines(journal)) == 5 and records.pending() == 5
    for _ in range(3):
        records.add(record())
    records.flush()  # the five again, and three new ones: only the new ones are added
    assert list(tmp_path.glob("usage-unsent-*.jsonl")) == [journal] and len(lines(journal)) == 8

    # Another process's journal, still locked by it: it is alive and will send it itself.
    other = tmp_path / "usage-unsent-99-live.jsonl"
    other.write_bytes(b"".join(json.dumps(list(record())).encode() + b"\n" for _ in range(2)))
    held = open(other, "rb")  # noqa: SIM115 - held like a live worker holds its journal
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        redis_cache.start().used_again()
        records._unsent_checked[0] = None
        records.add(record())
        records.flush()
        assert not journal.exists()  # the store took all it held
        assert other.exists()
    finally:
        held.close()  # its process is gone
    assert records.drain() == 9 + 2
    assert not other.exists()
    assert UsageRecord.objects.filter(workspace=workspace).count() == 11


@pytest.mark.usefixtures("no_stray_records")
def test_a_drain_sends_records_kept_in_files_even_without_traffic(redis_cache, workspace, settings, tmp_path):
    settings.VAR_DIR = str(tmp_path)
    line = json.dumps(
        [records.new_id(), workspace.pk, None, None, None, "v1", "m", 2, 3, 0, "miss", 200, 1.0, time.time()]
    )
    (tmp_path / "usage-unsent-123-abcd.jsonl").write_text(line + "\n")
    assert records.drain() == 1
    assert UsageRecord.objects.get(workspace=workspace).completion_tokens == 3
    assert list(tmp_path.glob("usage-unsent-*")) == []


@pytest.mark.usefixtures("no_stray_records")
def test_a_drain_lock_left_by_an_outage_is_taken_back_by_its_process(redis_cache, workspace, settings, monkeypatch):
    """Redis stops answering during a drain: the drain cannot remove its lock, which would keep every drain
    away until it expires (a minute of usage pages and budgets reading stale rows). The process that took
    it removes it at its next drain; another process's lock is left alone."""
    from llmgateway.cache.store import get_store

    settings.REDIS_RETRY_SECONDS = 0.2
    store = get_store()
    real_head = store.head

    def head_then_pause(*args):
        redis_cache.pause()  # after the lock was taken, before it is removed
        return real_head(*args)

    monkeypatch.setattr(store, "head", head_then_pause)
    try:
        assert records.drain() == 0
    finally:
        redis_cache.resume()
    monkeypatch.setattr(store, "head", real_head)
    redis_cache.used_again()
    raw = redis_cache.client(9)
    (lock,) = [key for key in raw.keys("*") if key.decode().endswith("usage:drain")]
    assert raw.ttl(lock) > 30  # a lock no drain is behind

    def record():
        return (records.new_id(), workspace.pk, None, None, None, "v1", "m", 1, 1, 0, "hit", 200, 1.0, time.time())

    records.add(record())
    assert records.drain() == 1
    assert not raw.exists(lock)

    raw.set(lock, "another-process", ex=60)  # a drain under way elsewhere
    records.add(record())
    assert records.drain() == 0
    assert raw.get(lock) == b"another-process"
