"""The per-worker PostgreSQL connection pool (corporate/backends/postgresql).

The pool is exercised here with threads; the stack tests run it for real in
a gevent worker against PostgreSQL.
"""

import threading
import time

import pytest

from corporate.backends.postgresql.pool import ConnectionPool, PoolTimeout


class FakeConnection:
    opened = 0

    def __init__(self):
        FakeConnection.opened += 1
        self.closed = 0

    def close(self):
        self.closed = 1


ZERO = dict.fromkeys(
    ("size", "in_use", "idle", "waiting", "waits", "wait_seconds", "timeouts", "opened", "closed", "broken"), 0
)


@pytest.fixture(autouse=True)
def _count():
    FakeConnection.opened = 0


def test_idle_connection_is_reused():
    pool = ConnectionPool(size=2, timeout=1, max_age=60)
    first, reused = pool.acquire(FakeConnection)
    assert not reused
    pool.release(first)
    second, reused = pool.acquire(FakeConnection)
    assert reused and second is first
    assert pool.stats() == dict(ZERO, size=2, in_use=1, opened=1)


def test_never_more_open_than_the_size_and_waiters_get_a_connection():
    pool = ConnectionPool(size=3, timeout=5, max_age=60)
    peak = 0
    lock = threading.Lock()

    def request():
        nonlocal peak
        conn, _ = pool.acquire(FakeConnection)
        with lock:
            stats = pool.stats()
            peak = max(peak, stats["in_use"] + stats["idle"])
        time.sleep(0.01)
        pool.release(conn)

    threads = [threading.Thread(target=request) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 3
    assert FakeConnection.opened <= 3
    assert pool.stats()["in_use"] == 0


def test_the_last_idle_connection_taken_by_another_thread_meanwhile_opens_a_new_one():
    """Tests (and threaded servers) share a pool between threads: another may take the last idle one first."""

    class TakenMeanwhile(list):
        def __bool__(self):
            had = len(self) > 0
            self.clear()  # another thread took it just after this one looked
            return had

    pool = ConnectionPool(size=2, timeout=1, max_age=60)
    first, _ = pool.acquire(FakeConnection)
    pool.release(first)
    pool._idle = TakenMeanwhile(pool._idle)
    conn, _ = pool.acquire(FakeConnection)  # the last idle one, or a new one: never an error
    assert not conn.closed and pool.stats()["in_use"] == 1


def test_waiting_longer_than_the_timeout_fails_clearly():
    pool = ConnectionPool(size=1, timeout=0.1, max_age=60)
    pool.acquire(FakeConnection)
    with pytest.raises(PoolTimeout, match="all 1 database connections of this worker stayed busy"):
        pool.acquire(FakeConnection)


def test_broken_or_old_connections_are_closed_not_reused():
    pool = ConnectionPool(size=2, timeout=1, max_age=60)
    conn, _ = pool.acquire(FakeConnection)
    pool.release(conn, reusable=False)
    assert conn.closed
    conn, _ = pool.acquire(FakeConnection)
    conn.closed = 2  # the server went away
    pool.release(conn)
    fresh, reused = pool.acquire(FakeConnection)
    assert not reused and fresh is not conn


def test_statistics_count_waits_timeouts_and_broken_connections():
    pool = ConnectionPool(size=1, timeout=10, max_age=60)
    conn, _ = pool.acquire(FakeConnection)

    def wait_then_get():
        other, _ = pool.acquire(FakeConnection)
        pool.release(other)

    waiter = threading.Thread(target=wait_then_get)
    waiter.start()
    deadline = time.monotonic() + 10
    while pool.stats()["waiting"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    seen = pool.stats()
    pool.release(conn)
    waiter.join()
    assert seen["waiting"] == 1 and seen["in_use"] == 1
    pool.timeout = 0.2
    with pytest.raises(PoolTimeout):
        held, _ = pool.acquire(FakeConnection)
        pool.acquire(FakeConnection)
    pool.release(held, reusable=False, broken=True)
    stats = pool.stats()
    assert stats["waiting"] == 0 and stats["waits"] == 2 and stats["timeouts"] == 1
    assert 0.2 <= stats["wait_seconds"] < 12
    assert stats["opened"] == 1 and stats["closed"] == 1 and stats["broken"] == 1 and stats["in_use"] == 0
    # A connection found closed while idle counts as broken too.
    conn, _ = pool.acquire(FakeConnection)
    pool.release(conn)
    conn.closed = 2
    fresh, reused = pool.acquire(FakeConnection)
    assert not reused and pool.stats()["broken"] == 2 and pool.stats()["closed"] == 2


def test_max_age_zero_means_a_fresh_connection_each_time():
    pool = ConnectionPool(size=1, timeout=1, max_age=0)
    conn, _ = pool.acquire(FakeConnection)
    pool.release(conn)
    assert conn.closed
    assert pool.stats()["idle"] == 0


def test_a_failed_connect_gives_the_slot_back():
    pool = ConnectionPool(size=1, timeout=0.1, max_age=60)

    def refuse():
        raise OSError("connection refused")

    with pytest.raises(OSError):
        pool.acquire(refuse)
    conn, _ = pool.acquire(FakeConnection)  # the slot is free again
    assert conn


def test_double_release_is_harmless():
    pool = ConnectionPool(size=1, timeout=0.1, max_age=60)
    conn, _ = pool.acquire(FakeConnection)
    pool.release(conn)
    pool.release(conn)
    assert pool.stats() == dict(ZERO, size=1, idle=1, opened=1)


def test_outside_gevent_the_backend_is_djangos(postgres_url):
    """With a PostgreSQL URL the pooled engine is selected, and outside gevent it pools nothing."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from django.conf import settings; from django.db import connection; "
        "connection.ensure_connection(); "
        "print(settings.DATABASES['default']['ENGINE'], connection.pool_in_use())"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env["DATABASE_URL"] = postgres_url
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "corporate.backends.postgresql None"


def test_a_probe_waits_for_a_connection_no_longer_than_its_own_bound():
    """/health's bound (green.answer_within) covers the wait for a free connection too: with every connection
    held by requests a frozen database keeps waiting, the probe is answered within its bound, not the pool's."""
    from corporate.backends.postgresql.green import answer_within

    pool = ConnectionPool(size=1, timeout=60, max_age=60)
    held, _ = pool.acquire(FakeConnection)
    outcome = []

    def probe():
        with answer_within(0.2):
            try:
                pool.acquire(FakeConnection)
            except PoolTimeout as error:
                outcome.append(str(error))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the probe waited for the pool's 60 s"
    assert outcome and "for 0.2 s" in outcome[0]
    pool.release(held)
    assert pool.acquire(FakeConnection)[1]  # the pool's own timeout is unchanged for other callers
