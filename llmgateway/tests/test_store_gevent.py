"""The store's own Redis round trips inside a gevent-patched process (a gunicorn worker's).

Runs in a child interpreter: gevent's monkey-patching must come before
anything else is imported, which the test process cannot undo.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from corporate.tests.redis_server import own_redis  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from gevent import monkey; monkey.patch_all()
import json, os, signal, time, django
django.setup()
import gevent
from gevent.monkey import get_original
from llmgateway.cache.store import RedisStore

blocking_sleep = get_original("time", "sleep")
store = RedisStore.from_url(os.environ["TEST_REDIS_URL"], timeout=0.5, retry_interval=60)
store._pipe([("SET", "k", "v")])
connection = store._idle[-1]
sent = connection.send_packed_command

def send_then_stall(*args, **kwargs):
    sent(*args, **kwargs)
    blocking_sleep(0.05)  # the reply is in the socket before the reply is read

connection.send_packed_command = send_then_stall
hub = gevent.get_hub()
turns = []
for _ in range(3):
    before = hub.loop.iteration
    replies = store._pipe([("GET", "k"), ("PING",)])
    turns.append(hub.loop.iteration - before)
unsettled = []
for _ in range(3):
    before = hub.loop.iteration
    store._pipe([("GET", "k")], settle=False)
    unsettled.append(hub.loop.iteration - before)
connection.send_packed_command = sent
os.kill(int(os.environ["TEST_REDIS_PID"]), signal.SIGSTOP)
try:
    started = time.monotonic()
    try:
        store._pipe([("GET", "k")])
        failure = None
    except Exception as exc:
        failure = type(exc).__module__ + "." + type(exc).__name__
    waited = time.monotonic() - started
finally:
    os.kill(int(os.environ["TEST_REDIS_PID"]), signal.SIGCONT)
print(json.dumps({"turns": turns, "unsettled": unsettled, "replies": [str(r) for r in replies], "failure": failure, "waited": waited}))
"""


def test_every_reply_is_waited_for_through_the_event_loop_and_the_wait_is_bounded(own_redis):  # noqa: F811
    """A reply already in the socket is still read after a turn of the loop (so every hit waits alike and
    other connections are served meanwhile), and a Redis that stops answering ends the wait at the socket
    timeout with redis-py's own TimeoutError."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="corporate.settings",
        TEST_REDIS_URL=own_redis.url(),
        TEST_REDIS_PID=str(own_redis.process.pid),
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replies"] == ["b'v'", "b'PONG'"]
    assert all(turns >= 1 for turns in report["turns"]), report
    # A likely miss (settle=False) reads a reply that is already there without a turn of the loop.
    assert report["unsettled"] == [0, 0, 0], report
    assert report["failure"] == "redis.exceptions.TimeoutError", report
    assert report["waited"] < 5, report
