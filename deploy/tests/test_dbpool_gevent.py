"""The pooled backend inside a gevent-patched process, against PostgreSQL.

Runs in a child interpreter: gevent's monkey-patching must come before
anything else is imported, which the test process cannot undo.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from gevent import monkey; monkey.patch_all()
from psycogreen.gevent import patch_psycopg; patch_psycopg()
import json, os, time, django
django.setup()
import gevent, psycopg2
from django.db import close_old_connections, connection
from corporate.backends.postgresql.base import all_pools

done, errors = [], []

def request():
    # What a request does: query, then request_finished closes "old" connections.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.02)")
        close_old_connections()
        done.append(1)
    except Exception as exc:
        errors.append(str(exc))

def stray():
    # A greenlet that queries and ends without giving its connection back.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    done.append(1)

peak = seen = 0

def sample():
    # Connections of the pool as it counts them (busy and idle), and as PostgreSQL sees them, from a
    # connection of its own.
    global peak, seen
    watcher = psycopg2.connect(os.environ["DATABASE_URL"], application_name="pool-test-watcher")
    watcher.autocommit = True
    with watcher.cursor() as cursor:
        while True:
            for pool in all_pools():
                stats = pool.stats()
                peak = max(peak, stats["in_use"] + stats["idle"])
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pool-test'")
            seen = max(seen, cursor.fetchone()[0])
            gevent.sleep(0.005)

sampler = gevent.spawn(sample)
started = time.monotonic()
# Nothing keeps the greenlets once they end, as with gunicorn's handlers.
for _ in range(6):
    gevent.spawn(stray)
for _ in range(30):
    gevent.spawn(request)
while len(done) + len(errors) < 36 and time.monotonic() - started < 20:
    gevent.sleep(0.05)
elapsed = time.monotonic() - started
sampler.kill()
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", ["pool-test"])
    open_now = cursor.fetchone()[0]
print(json.dumps({
    "finished": len(done),
    "errors": errors,
    "seconds": round(elapsed, 2),
    "open_now": open_now,
    "peak": peak,
    "seen": seen,
    "stats": [pool.stats() for pool in all_pools()],
}))
"""


def test_pool_bounds_connections_and_reclaims_those_of_ended_greenlets(postgres_url):
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE="corporate.settings",
        DATABASE_URL=postgres_url,
        DB_POOL_SIZE="3",
        DB_POOL_TIMEOUT="10",
        PGAPPNAME="pool-test",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["finished"] == 36
    # Never more than the bound, even with stray greenlets holding connections.
    assert 2 <= report["peak"] <= 3, report
    # PostgreSQL lists a backend until it has exited: one whose connection the pool has just closed may
    # still be there, a moment, beside the one opened in its place.
    assert 2 <= report["seen"] <= 4, report
    assert report["open_now"] <= 3
    assert report["stats"][0]["in_use"] == 1  # the query above
    # The strays' connections came back by garbage collection, not after the 10 s timeout.
    assert report["seconds"] < 8, report
