"""Work handed over with a response (cache entries, flights' ends) waits for the worker to be idle.

In a gevent worker every connection's request is served in one thread. The
work left after a response (the cache entry and the flight's end written to
the store) used to run as soon as the response was closed, so when a burst
of misses came back from the upstream together, each client waited for the
writes of every answer sent before its own. Now it waits until the event
loop has nothing else to do (at most `deferred.LATEST`), the writes of
everything waiting leave in one round trip, and an entry not yet written is
answered from the process's memory.

The gevent cases run in a child interpreter: monkey-patching must come
before anything else is imported.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corporate.tests.redis_server import RedisServer
from llmgateway import gateway
from llmgateway.cache import deferred
from llmgateway.cache.store import get_store
from llmgateway.gateway import flight

ROOT = Path(__file__).resolve().parents[2]
BASE = {"model": "remote", "messages": [{"role": "user", "content": "What is the refund policy?"}]}

SCRIPT = """
from gevent import monkey; monkey.patch_all()
import json, time, django
django.setup()
import gevent
from django.http import HttpResponse
from llmgateway.cache import deferred
from llmgateway.cache.store import get_store

store = get_store()
batches = []
batch = store.batch
store.batch = lambda ops: batches.append([op[1] for op in ops]) or batch(ops)
order = []


def respond(name):
    response = HttpResponse(b"{}")
    with deferred.collecting() as after_response:
        deferred.defer(order.append, "work of " + name)
        deferred.defer_write(lambda: [("set", "written:" + name, b"1", 60)])
        deferred.attach(response, after_response)
    response.close()  # the server has sent it and closes it
    order.append("answered " + name)


# A burst: three answers, then another connection's request that is ready to be served.
for name in ("a", "b", "c"):
    respond(name)
gevent.spawn(order.append, "next request")
gevent.sleep(0.2)
burst = {"order": list(order), "batches": list(batches), "stored": [v.decode() for v in store.get_many(["written:a", "written:c"])]}

# A worker that is never idle (a connection always ready) still does the work, within LATEST or soon after.
order.clear()
busy = [True]


def spin():
    while busy[0]:
        gevent.sleep(0)


spinner = gevent.spawn(spin)
gevent.sleep(0)
started = time.monotonic()
respond("d")
while "work of d" not in order and time.monotonic() - started < 5:
    gevent.sleep(0.001)
waited = time.monotonic() - started
busy[0] = False
spinner.join()

# Work that read the database leaves no connection open in the runner.
from django.db import connections

opened = []


def read_database():
    wrapper = connections["default"]  # the runner's own (connections are per greenlet)
    wrapper.ensure_connection()
    opened.append(wrapper)


response = HttpResponse(b"{}")
with deferred.collecting() as after_response:
    deferred.defer(read_database)
    deferred.attach(response, after_response)
response.close()
gevent.sleep(0.2)
database = {"read": len(opened), "left_open": [c.connection is not None for c in opened]}

# Work still waiting when the worker leaves is done by drain() (gunicorn's worker_exit).
order.clear()
respond("e")
deferred.drain()
print(json.dumps({**burst, "waited": waited, "latest": deferred.LATEST, "exit": list(order), "database": database}))
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """What the child interpreter saw, on a Redis of the test's own (the store as in production)."""
    if not shutil.which("redis-server"):
        from conftest import require_service

        require_service("redis-server", "the redis-server binary is not installed")
    own_redis = RedisServer().start()
    try:
        return _run_script(own_redis, tmp_path_factory.mktemp("var"))
    finally:
        own_redis.stop()


def _run_script(own_redis, var_dir):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="corporate.settings",
        VAR_DIR=str(var_dir),
        REDIS_URL=own_redis.url(),
        CACHE_KEY_PREFIX="after",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_in_a_gevent_worker_a_burst_is_answered_before_its_work_and_its_writes_leave_together(report):
    order = report["order"]
    # Every answer, and the next connection's request, before any of the work left by the answers.
    assert order[:4] == ["answered a", "answered b", "answered c", "next request"], order
    assert order[4:] == ["work of a", "work of b", "work of c"], order
    # The three answers' writes in one store round trip, and stored.
    assert report["batches"][0] == ["written:a", "written:b", "written:c"], report["batches"]
    assert report["stored"] == ["1", "1"], report


def test_in_a_gevent_worker_that_is_never_idle_the_work_waits_no_longer_than_its_bound(report):
    assert report["waited"] >= report["latest"] * 0.9, report
    assert report["waited"] < 2, report


def test_work_still_waiting_when_a_worker_exits_is_done(report):
    assert report["exit"] == ["answered e", "work of e"], report


@pytest.fixture
def _unwritten_cleared():
    flight.unwritten.clear()
    yield
    flight.unwritten.clear()


def test_an_answer_whose_entry_is_not_written_yet_is_a_hit_at_once(
    workspace, remote_model, upstream, _unwritten_cleared
):
    with deferred.collecting() as after_response:
        first = gateway.complete(workspace, BASE)
        assert after_response, "the entry's write waits for the response to be sent"
        second = gateway.complete(workspace, BASE)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert {**second.response, "id": first.response["id"]} == first.response  # an id of its own, the same answer
    assert second.response["id"] != first.response["id"]
    assert upstream.calls == 1
    assert flight.unwritten == {}  # forgotten once written
    third = gateway.complete(workspace, BASE)
    assert third.cache_hit and upstream.calls == 1  # from the store now


def test_an_entry_of_an_older_generation_is_not_answered_from_memory(
    workspace, remote_model, upstream, _unwritten_cleared
):
    from llmgateway.cache.entries import clear_workspace

    with deferred.collecting():
        gateway.complete(workspace, BASE)
        clear_workspace(workspace.pk)  # the workspace's cache is cleared meanwhile
        second = gateway.complete(workspace, BASE)
    assert not second.cache_hit
    assert upstream.calls == 2


def test_the_writes_handed_over_together_leave_in_one_round_trip(workspace, remote_model, upstream, monkeypatch):
    store = get_store()
    sent = []
    batch = store.batch
    monkeypatch.setattr(store, "batch", lambda ops: sent.append(len(ops)) or batch(ops))
    with deferred.collecting():
        for n in range(3):
            gateway.complete(workspace, {**BASE, "messages": [{"role": "user", "content": f"question {n}"}]})
        answered = len(sent)  # with a shared store, each flight's lock was taken on the way (a batch each)
    # On the way out, the three entries (and with a shared store the three flights' ends) in one batch.
    assert len(sent) == answered + 1 and sent[-1] >= 3, sent
    assert all(
        gateway.complete(workspace, {**BASE, "messages": [{"role": "user", "content": f"question {n}"}]}).cache_hit
        for n in range(3)
    )


def test_work_that_read_the_database_leaves_no_connection_open(report):
    assert report["database"] == {"read": 1, "left_open": [False]}, report
