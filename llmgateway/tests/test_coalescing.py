"""Request coalescing within a process and across processes, and the gateway with Redis going away."""

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from corporate import installation
from corporate.tests.redis_server import until_closed
from llmgateway import gateway, registry
from llmgateway.cache import coalesce, stats
from llmgateway.cache.entries import load_workspace_info
from llmgateway.cache.store import RedisStore, set_store
from llmgateway.metering import records

ROOT = Path(__file__).resolve().parents[2]


def _request(text="Summarise the quarterly report"):
    return {"model": "remote", "messages": [{"role": "user", "content": text}]}


def _content(chunks):
    return "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))


@pytest.fixture
def ready(workspace, remote_model):
    """Spec and workspace info cached, so threads need no database."""
    load_workspace_info(workspace.pk)
    return registry.get_spec("remote")


@pytest.fixture
def redis_store(redis_url, workspace):
    from llmgateway.cache.store import make_key

    store = RedisStore.from_url(redis_url)
    previous = set_store(store)
    yield store
    set_store(previous)
    # Leave nothing behind in a Redis that the default cache does not flush between tests.
    stale = list(store.client.scan_iter(match=make_key("gw:") + "*", count=1000))
    if stale:
        store.client.delete(*stale)


def _in_threads(count, target):
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        try:
            results[index] = target()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def _twenty_identical(workspace, spec, upstream, extra=None):
    upstream.latency = 0.5
    results = _in_threads(20, lambda: gateway.complete(workspace.pk, _request(), spec=spec, cache_extra=extra))
    assert upstream.calls == 1
    assert len({r.text for r in results}) == 1
    assert sum(not r.cache_hit and not r.coalesced for r in results) == 1
    assert sum(r.coalesced or r.cache_hit for r in results) == 19
    # One answer, twenty ids: a follower's and a hit's answer each have an id of their own.
    assert len({r.response["id"] for r in results}) == 20
    return results


def test_twenty_concurrent_identical_requests_make_one_upstream_call(workspace, ready, upstream):
    results = _twenty_identical(workspace, ready, upstream)
    assert stats.summary(workspace.pk)["coalesced"] == sum(r.coalesced for r in results) > 0


def test_twenty_concurrent_through_redis(workspace, ready, upstream, redis_store):
    load_workspace_info(workspace.pk)
    _twenty_identical(workspace, ready, upstream, extra=uuid.uuid4().hex)


def test_different_requests_are_not_coalesced(workspace, ready, upstream):
    upstream.latency = 0.2
    counter = iter(range(100))
    lock = threading.Lock()

    def one():
        with lock:
            n = next(counter)
        return gateway.complete(workspace.pk, _request(f"question {n}"), spec=ready)

    results = _in_threads(5, one)
    assert upstream.calls == 5 and not any(r.coalesced for r in results)


def test_no_store_requests_do_not_coalesce(workspace, ready, upstream):
    upstream.latency = 0.3
    _in_threads(3, lambda: gateway.complete(workspace.pk, _request(), spec=ready, cache_control="no-store"))
    assert upstream.calls == 3


def _lead_stream(workspace, spec, extra, collected, started):
    stream = gateway.stream(workspace.pk, _request(), spec=spec, cache_extra=extra)
    for chunk in stream:
        collected.append(chunk)
        if len(collected) == 2:
            started.set()
    return stream


def _follow_mid_stream(workspace, spec, upstream, extra=None, forget_local=False):
    upstream.chunk_delay = 0.3  # the rest of the stream lasts long enough for a busy host to join it
    leader_chunks, started = [], threading.Event()
    leader = threading.Thread(target=_lead_stream, args=(workspace, spec, extra, leader_chunks, started))
    leader.start()
    assert started.wait(5)
    if forget_local:
        # As if this request arrived in another worker: no local flight to join, only Redis.
        coalesce.reset()
    follower = gateway.stream(workspace.pk, _request(), spec=spec, cache_extra=extra)
    assert follower.coalesced and not follower.cache_hit
    chunks = list(follower)
    leader.join(10)
    assert upstream.calls == 1
    # The chunks produced before it joined, then the rest live: the whole answer.
    # The leader's chunks, under one id of the follower's own (every answer has its own id).
    assert [{**c, "id": None} for c in chunks] == [{**c, "id": None} for c in leader_chunks]
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"] != leader_chunks[0]["id"]
    assert _content(chunks).startswith("Echo: Summarise")
    assert follower.result.coalesced


def test_streaming_follower_gets_the_chunks_so_far_then_the_rest(workspace, ready, upstream):
    _follow_mid_stream(workspace, ready, upstream)


def test_streaming_follower_in_another_worker_through_redis(workspace, ready, upstream, redis_store):
    load_workspace_info(workspace.pk)
    _follow_mid_stream(workspace, ready, upstream, extra=uuid.uuid4().hex, forget_local=True)


def test_plain_follower_of_a_stream(workspace, ready, upstream):
    upstream.chunk_delay = 0.3  # the rest of the stream lasts long enough for a busy host to join it
    leader_chunks, started = [], threading.Event()
    leader = threading.Thread(target=_lead_stream, args=(workspace, ready, None, leader_chunks, started))
    leader.start()
    assert started.wait(5)
    result = gateway.complete(workspace.pk, _request(), spec=ready)
    leader.join(10)
    assert result.coalesced and result.text == _content(leader_chunks)
    assert upstream.calls == 1


def test_followers_share_the_leaders_error(workspace, ready, upstream, settings):
    upstream.latency = 1.5  # time for every thread to join the flight on a busy host (a late one would call again)
    upstream.script(400)
    outcomes = _in_threads(5, lambda: _status(workspace, ready))
    assert outcomes == [400] * 5
    assert upstream.calls == 1


def _status(workspace, spec):
    try:
        gateway.complete(workspace.pk, _request(), spec=spec)
    except gateway.GatewayError as exc:
        return exc.status
    return 200


def test_follower_gives_up_after_the_bounded_wait(workspace, ready, upstream, settings):
    settings.LLM_COALESCE_WAIT = 0.3
    upstream.latency = 1.0
    results = _in_threads(2, lambda: gateway.complete(workspace.pk, _request(), spec=ready))
    # The follower stopped waiting and made its own call.
    assert upstream.calls == 2
    assert not any(r.coalesced for r in results)


SUBPROCESS = """
import json, sys, django
django.setup()
from corporate import installation
installation._current = sys.argv[6]  # the test process's installation (this process has another database)
from llmgateway import gateway, registry
from llmgateway.cache.store import RedisStore, set_store
set_store(RedisStore.from_url(sys.argv[1]))
spec = registry.ModelSpec(**json.loads(sys.argv[2]))
result = gateway.complete(int(sys.argv[3]), json.loads(sys.argv[4]), spec=spec, cache_extra=sys.argv[5])
print(json.dumps({"text": result.text, "coalesced": result.coalesced, "hit": result.cache_hit}))
"""


def test_identical_requests_in_two_processes_make_one_upstream_call(workspace, ready, upstream, redis_store, redis_url):
    from dataclasses import asdict

    load_workspace_info(workspace.pk)
    upstream.latency = 1.5
    extra = uuid.uuid4().hex
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="corporate.settings")
    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SUBPROCESS,
            redis_url,
            json.dumps(asdict(ready)),
            str(workspace.pk),
            json.dumps(_request()),
            extra,
            installation.current(),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while upstream.calls == 0 and time.monotonic() < deadline and other.poll() is None:
            time.sleep(0.02)
        assert upstream.calls == 1, other.stderr.read() if other.poll() is not None else "no upstream call"
        mine = gateway.complete(workspace.pk, _request(), spec=ready, cache_extra=extra)
        out, err = other.communicate(timeout=20)
    finally:
        if other.poll() is None:
            other.kill()
    theirs = json.loads(out.strip().splitlines()[-1])
    assert upstream.calls == 1, err
    assert mine.coalesced and not theirs["coalesced"]
    assert mine.text == theirs["text"]


# Redis going away ------------------------------------------------------------


def test_redis_stopped_mid_run(workspace, ready, upstream, own_redis, caplog, v1):
    # A stopped server refuses at once; the timeout is only for a busy host's slow answers (never an outage here).
    store = RedisStore.from_url(own_redis.url(), timeout=2, retry_interval=3)
    previous = set_store(store)
    try:
        load_workspace_info(workspace.pk)
        assert not gateway.complete(workspace.pk, _request(), spec=ready).cache_hit
        assert gateway.complete(workspace.pk, _request(), spec=ready).cache_hit

        own_redis.stop()
        with caplog.at_level(logging.WARNING, logger="llmgateway.cache.store"):
            for _ in range(4):
                started = time.monotonic()
                result = gateway.complete(workspace.pk, _request(), spec=ready)
                assert not result.cache_hit and result.text.startswith("Echo:")
                assert time.monotonic() - started < 2  # no socket timeout waited (refused at once, then skipped)
            # The API too: the key is checked in the database, the answer comes uncached.
            response = v1(_request())
            assert response.status_code == 200 and response["X-Cache"] == "MISS"
        assert upstream.calls == 6
        # One warning for the outage, not one per request.
        assert caplog.text.count("Redis unavailable") == 1

        own_redis.start()
        until_closed(store.circuit, lambda: store.exists("probe"))  # tried again after the retry interval
        gateway.complete(workspace.pk, _request(), spec=ready)
        assert gateway.complete(workspace.pk, _request(), spec=ready).cache_hit
    finally:
        set_store(previous)


def test_slow_redis_costs_at_most_the_socket_timeout(workspace, ready, upstream, own_redis, monkeypatch):
    store = RedisStore.from_url(own_redis.url(), timeout=1, retry_interval=30)
    previous = set_store(store)
    try:
        load_workspace_info(workspace.pk)
        gateway.complete(workspace.pk, _request(), spec=ready)
        import redis

        records.flush()  # nothing left for the usage flusher to send meanwhile
        tries, failures = [], []
        allow, failed = store.circuit.allow, store.circuit.failed

        def spied_allow():
            allowed = allow()
            if threading.current_thread() is threading.main_thread():
                tries.append(allowed)
            return allowed

        monkeypatch.setattr(store.circuit, "allow", spied_allow)

        def spied_failed(exc):
            if threading.current_thread() is threading.main_thread():  # not the usage flusher's own timeout
                failures.append(exc)
            return failed(exc)

        monkeypatch.setattr(store.circuit, "failed", spied_failed)
        blocker = threading.Thread(
            target=lambda: redis.Redis.from_url(own_redis.url()).execute_command("DEBUG", "SLEEP", "4")
        )
        blocker.start()
        # Wait until Redis really sleeps (a PING goes unanswered), however late the thread got going.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(own_redis.url(), socket_timeout=0.5).ping()
            except redis.TimeoutError:
                break
            time.sleep(0.02)
        result = gateway.complete(workspace.pk, _request(), spec=ready)
        tries.clear()
        gateway.complete(workspace.pk, _request(), spec=ready)
        blocker.join()
        assert not result.cache_hit
        # One socket timeout, then uncached (no timing: a busy host stretches every call).
        assert len(failures) == 1 and isinstance(failures[0], redis.TimeoutError), failures
        assert tries and not any(tries)  # Redis is skipped until the retry interval has passed
    finally:
        set_store(previous)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_leader_whose_client_leaves_reads_the_answer_to_its_end_for_its_followers(
    workspace, ready, upstream, streamed
):
    upstream.chunk_delay = 0.1
    leader = gateway.stream(workspace.pk, _request(), spec=ready)
    chunks = iter(leader)
    next(chunks)
    got = []

    def follow():
        if streamed:
            following = gateway.stream(workspace.pk, _request(), spec=ready)
            got.append((_content(following), following.coalesced))
        else:
            result = gateway.complete(workspace.pk, _request(), spec=ready)
            got.append((result.text, result.coalesced))

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.5)
    chunks.close()  # the leader's client went away mid-stream
    follower.join(20)
    # One upstream call, read to its end: the follower has the whole answer, and the cache has it too.
    assert got and got[0][0].startswith("Echo:") and got[0][1]
    assert upstream.calls == 1 and upstream.disconnects == 0
    assert gateway.complete(workspace.pk, _request(), spec=ready).cache_hit


def test_a_follower_that_left_is_not_read_for(workspace, ready, upstream):
    """Once its only follower has left too, a leader whose client leaves hangs up at once."""
    upstream.chunk_delay = 0.1
    chunks = iter(gateway.stream(workspace.pk, _request(), spec=ready))
    next(chunks)
    follower = gateway.stream(workspace.pk, _request(), spec=ready)
    assert follower.coalesced
    following = iter(follower)
    next(following)
    following.close()
    follower.close()
    chunks.close()
    until = time.monotonic() + 10
    while upstream.disconnects == 0 and time.monotonic() < until:
        time.sleep(0.02)
    assert upstream.disconnects == 1


def test_a_leader_whose_client_leaves_with_no_follower_hangs_up(workspace, ready, upstream):
    upstream.chunk_delay = 0.1
    chunks = iter(gateway.stream(workspace.pk, _request(), spec=ready))
    next(chunks)
    chunks.close()
    until = time.monotonic() + 10
    while upstream.disconnects == 0 and time.monotonic() < until:
        time.sleep(0.02)
    assert upstream.disconnects == 1
    assert not gateway.complete(workspace.pk, _request(), spec=ready).cache_hit


# The lock taken with the lookup (/v1) ---------------------------------------------


def _count_round_trips(store, monkeypatch):
    """The commands of each round trip of the store's own connections (the hot path's), and whether each
    reply was waited for through the event loop (settle)."""
    trips, settled, real = [], [], store._pipe

    def pipe(commands, settle=True):
        trips.append([command[0] for command in commands])
        settled.append(settle)
        return real(commands, settle)

    monkeypatch.setattr(store, "_pipe", pipe)
    return trips, settled


def test_a_v1_miss_takes_its_coalescing_lock_in_the_lookups_round_trip(ready, upstream, redis_store, v1, monkeypatch):
    assert v1(_request("a first question")).status_code == 200  # the key, the model and the policy are known now
    # A miss of a new body first: its scripts are loaded in this Redis whatever ran before.
    assert v1(_request(f"a warm-up question {uuid.uuid4()}")).status_code == 200
    trips, settled = _count_round_trips(redis_store, monkeypatch)
    second = f"a second question {uuid.uuid4()}"  # never prepared by this process before
    response = v1(_request(second))
    assert response.status_code == 200 and response["X-Cache"] == "MISS" and upstream.calls == 3
    # One round trip before the upstream call (the lookup, which took the lock), one after the answer (store, unlock if still ours).
    assert trips == [["EVALSHA"], ["SET", "RPUSH", "EXPIRE", "EVAL"]]
    # A body this process had not prepared before is likely a miss: its lookup goes on without a loop turn.
    assert settled[0] is False
    trips.clear(), settled.clear()
    assert v1(_request(second))["X-Cache"] == "HIT"
    assert trips == [["EVALSHA"]]  # a hit takes no lock
    assert settled == [True]  # a body prepared before is likely a hit: it waits like every hit
    assert not list(redis_store.client.scan_iter(match="*:lock"))


def test_a_v1_miss_whose_lock_another_process_holds_follows_that_flight(workspace, ready, upstream, redis_store, v1):
    from llmgateway.cache.entries import flight_key, lock_key

    assert v1(_request("a first question")).status_code == 200
    key = gateway.prepare(workspace.pk, _request("asked elsewhere"), spec=ready).key
    answer = {
        "id": "chatcmpl-elsewhere",
        "object": "chat.completion",
        "created": 1,
        "model": "remote",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "From the other worker"}}],
        "usage": None,
    }
    # Another worker leads this flight: its lock, and (already) its answer on the flight's list.
    redis_store.client.set(lock_key(key), "their-flight", ex=60)
    payload = {"response": answer, "model": "remote", "cost": 0, "upstream_ms": 5}
    redis_store.push(f"{flight_key(key)}:their-flight", json.dumps({"t": "done", "d": payload}), 60)
    response = v1(_request("asked elsewhere"))
    assert response.status_code == 200 and response["X-Cache-Coalesced"] == "1"
    assert response.json()["choices"][0]["message"]["content"] == "From the other worker"
    assert upstream.calls == 1
    assert redis_store.client.get(lock_key(key)) == b"their-flight"  # theirs to end


def test_a_lock_taken_with_the_lookup_is_given_back_when_the_call_does_not_coalesce(
    workspace, ready, upstream, redis_store, v1
):
    from llmgateway.cache.entries import workspace_info_key

    assert v1(_request("a first question")).status_code == 200  # this process saw the policy "all"
    workspace.cache_policy = "off"
    workspace.save(update_fields=["cache_policy"])
    redis_store.invalidate(workspace_info_key(workspace.pk))
    key = gateway.prepare(workspace.pk, _request("not cached now"), spec=ready).key
    response = v1(_request("not cached now"))
    assert response.status_code == 200 and "X-Cache-Coalesced" not in response
    assert upstream.calls == 2
    assert not redis_store.exists(key + ":lock")


@pytest.mark.parametrize(
    "kind, data",
    [
        ("done", {"response": {"choices": [{"message": {"content": "café ✓"}}]}, "model": "m", "cost": 0.5}),
        ("done", {"response": {"choices": []}}),
        ("done", {"model": "m", "response": {"choices": []}}),  # the response not first: encoded whole
        ("fail", {"error": {"message": "no"}}),
        ("abandon", None),
    ],
)
def test_a_flights_last_event_made_with_its_responses_json_is_the_same_text(kind, data):
    from llmgateway.cache.entries import response_json

    given = response_json(data["response"]) if data and "response" in data else None
    expected = json.dumps({"t": kind, "d": data}, separators=(",", ":"))
    assert coalesce._event_json(kind, data, given) == coalesce._event_json(kind, data) == expected
    ops = coalesce._closing_ops("k:flight:abc", "k", kind, data, given)
    assert ops[0] == ("push", "k:flight:abc", expected, coalesce.FLIGHT_TTL)
