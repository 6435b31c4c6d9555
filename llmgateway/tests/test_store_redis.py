"""The Redis store's own connections and packed round trips, on a real redis-server of the test's own."""

import pytest

from llmgateway.cache.store import RedisStore

SCRIPT = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"


@pytest.fixture
def store(own_redis):
    own_redis.flushall()
    return RedisStore.from_url(own_redis.url(5), timeout=1, retry_interval=1)


def test_commands_of_a_round_trip_answer_in_order_and_the_connection_is_reused(store):
    assert store.batch([("set", "a", b"1", 60), ("add", "a", b"2", 60), ("get", "a"), ("push", "l", b"x", 60)]) == [
        True,
        False,
        b"1",
        1,
    ]
    assert store.get_many(["a", "missing", "l"])[:2] == [b"1", None]
    assert len(store._idle) == 1  # one connection served every round trip


def test_a_refused_command_reads_every_reply_and_leaves_the_connection_usable(store):
    store.batch([("push", "list", b"x", 60)])
    # GET on a list: Redis answers WRONGTYPE; the store answers "nothing there" and reads all replies.
    assert store.get_many(["list"]) == [None]
    assert store.batch([("get", "list"), ("set", "k", b"v", 60)]) == [None, None]
    # Redis ran the rest of the batch; every reply was read, so the next round trip reads its own.
    assert store.get_many(["k", "list"]) == [b"v", None]
    assert store.get_many(["k"]) == [b"v"]
    assert len(store._idle) == 1


def test_a_script_is_loaded_again_when_redis_forgot_it(store):
    script = store.client.register_script(SCRIPT)
    also, reply = store.run_script(script, ["counter"], ["arg"], also=[("SET", "before", "1")])
    assert also == [b"OK"] and reply == [b"counter", b"arg", 1]
    store.client.script_flush()
    also, reply = store.run_script(script, ["counter"], ["arg"], also=[("GET", "before")])
    assert also == [b"1"] and reply == [b"counter", b"arg", 2]


def test_a_broken_connection_is_dropped_not_reused(store):
    store.set("k", b"v", 60)
    (connection,) = store._idle
    connection._sock.close()  # the socket fails under the store
    assert store.get_many(["k"]) == [None]  # an outage answers "nothing there"
    assert connection not in store._idle
    store.circuit.reset()
    assert store.get_many(["k"]) == [b"v"]  # a new connection


def test_connections_of_a_parent_are_not_used_after_a_fork(store, monkeypatch):
    import os

    store.set("k", b"v", 60)
    parent = store._idle[0]
    monkeypatch.setattr(os, "getpid", lambda: -1)  # as a forked child sees it
    assert store.get_many(["k"]) == [b"v"]
    assert parent not in store._idle


def test_a_connection_taken_by_another_thread_meanwhile_is_not_an_error(store):
    """Threads share the idle list (the usage flusher, a threaded server): the last one may go between look and take."""
    store.set("k", b"v", 60)

    class TakenMeanwhile(list):
        def __bool__(self):
            had = len(self) > 0
            self.clear()  # another thread took the last connection just after this one looked
            return had

    store._idle = TakenMeanwhile(store._idle)
    assert store.get_many(["k"]) == [b"v"]  # on a new connection


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_a_lookup_takes_the_lock_only_when_the_entry_is_missing(store, kind):
    from llmgateway.cache.store import LocalStore

    store = store if kind == "redis" else LocalStore()
    if kind == "local":
        store.cache.clear()
    store.set("info", b"i", 60)
    # No lock asked: a plain read.
    assert store.lookup(["info", "entry"]) == [b"i", None]
    # The entry is missing: the lock is taken, and the holder is this lookup.
    assert store.lookup(["info", "entry"], ("entry:lock", "mine", 60)) == [b"i", None, b"mine"]
    # Another lookup finds it held, and by whom.
    assert store.lookup(["info", "entry"], ("entry:lock", "theirs", 60)) == [b"i", None, b"mine"]
    # The entry is there: no lock is asked for (a hit leaves no trace).
    store.set("other", b"answer", 60)
    assert store.lookup(["info", "other"], ("other:lock", "mine", 60)) == [b"i", b"answer", None]
    assert store.get_many(["other:lock"]) == [None]
    if kind == "redis":
        store.client.script_flush()  # Redis restarted: the script is loaded again
        assert store.lookup(["info", "entry"], ("entry:lock", "x", 60)) == [b"i", None, b"mine"]


def test_after_a_restart_the_connections_from_before_cost_no_further_interval(store, own_redis):
    """Redis killed and started again: the first use after the restart fails (its socket is dead), and so the circuit
    opens for one interval; then the next try makes a fresh connection rather than spend an interval on each idle one
    from before (the store keeps up to IDLE_KEPT of them after a busy spell)."""
    import time

    store.set("k", b"v", 60)
    connections = [store._connection() for _ in range(5)]  # five round trips at once, as under load
    for connection in connections:
        connection.connect()
    store._idle.extend(connections)
    own_redis.restart()
    assert store.get_many(["k"]) == [None]  # a dead socket: Redis is unavailable for one interval
    assert not store.available()
    time.sleep(store.circuit.retry_seconds + 0.05)
    assert store.add("k", b"again", 60)  # the try after the interval reaches the new (empty) server
    assert store.available()
    assert store.get_many(["k"]) == [b"again"]
