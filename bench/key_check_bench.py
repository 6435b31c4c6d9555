"""API keys and Redis outages: what the key re-check and the shared Redis pause cost.

    .venv/bin/python bench/key_check_bench.py                  # about a minute
    .venv/bin/python bench/key_check_bench.py --seconds 30 --rate 500

Starts a redis-server of its own on a free port and uses a throw-away SQLite
database; the requests go through Django's test client in this process (no
HTTP server), so the figures are the application's own time.

Measures, and prints:
(a) a cache hit of POST /v1/chat/completions: p50 and p99 (medians of 5 rounds
    of 600 hits), and the database queries the 3,000 hits made;
(b) database queries while hits arrive at --rate per second for --seconds, with
    1 key and with 10 keys in use (round robin): the key re-check, per second;
(c) the dashboard of a signed-in user while Redis is paused (SIGSTOP, the worst
    outage: connections are accepted, nothing answers): per page time and how
    many connections Redis accepted meanwhile.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REQUEST = {"model": "offline", "messages": [{"role": "user", "content": "What is the refund policy?"}]}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port):
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


class Queries:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def post(client, key):
    return client.post(
        "/v1/chat/completions",
        data=json.dumps(REQUEST),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of each paced run (default 20)")
    parser.add_argument("--rate", type=int, default=200, help="hits per second in the paced runs (default 200)")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("needs redis-server (apt-get install redis-server)")

    port = free_port()
    redis = start_redis(port)
    folder = tempfile.mkdtemp(prefix="key-check-bench-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="corporate.settings",
        DATABASE_URL=f"sqlite:///{folder}/bench.sqlite3",
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        CACHE_KEY_PREFIX="bench",
        LOG_LEVEL="ERROR",
    )
    try:
        run(args, redis)
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def run(args, redis):
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from llmgateway.models import ApiKey
    from workspaces.models import Membership, Workspace

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(email="bench@example.com", password="bench-password-1")
    workspace = Workspace.objects.create(name="Bench", slug="bench", created_by=user)
    Membership.objects.create(workspace=workspace, user=user, role="owner")
    keys = [ApiKey.create(workspace, f"bench {n}", user)[1] for n in range(10)]
    client = Client()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores; other work skews latency)")

    for key in keys:
        assert post(client, key).status_code == 200
    queries = Queries()
    rounds = []
    with connection.execute_wrapper(queries):
        for _ in range(5):
            times = []
            for _ in range(600):
                started = time.perf_counter()
                response = post(client, keys[0])
                times.append((time.perf_counter() - started) * 1000)
                assert response["X-Cache"] == "HIT"
            times.sort()
            rounds.append((statistics.median(times), times[int(len(times) * 0.99)]))
    print(
        f"(a) cache hit, 5 rounds of 600: p50 {statistics.median(r[0] for r in rounds):.3f} ms, "
        f"p99 {statistics.median(r[1] for r in rounds):.3f} ms (medians of the rounds), "
        f"{queries.count} database queries in 3000 hits"
    )

    print(f"(b) database queries at {args.rate} hits/s for {args.seconds} s")
    for in_use in (1, 10):
        queries = Queries()
        started = time.monotonic()
        sent = 0
        with connection.execute_wrapper(queries):
            while time.monotonic() - started < args.seconds:
                post(client, keys[sent % in_use])
                sent += 1
                pause = started + sent / args.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        elapsed = time.monotonic() - started
        print(
            f"    {in_use:>2} key(s): {sent} hits, {queries.count} queries = {queries.count / elapsed:.2f} queries/s "
            f"({queries.count / sent * 100:.2f} per 100 hits)"
        )

    from django.contrib.auth import get_user_model

    page = Client()
    page.force_login(get_user_model().objects.get(email="bench@example.com"))
    assert page.get("/").status_code == 200
    import redis as redis_py

    info = redis_py.Redis(port=int(os.environ["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]))
    normal = []
    for _ in range(20):
        started = time.perf_counter()
        assert page.get("/").status_code == 200
        normal.append((time.perf_counter() - started) * 1000)
    accepted = int(info.info("stats")["total_connections_received"])
    os.kill(redis.pid, signal.SIGSTOP)
    paused = []
    try:
        for _ in range(20):
            started = time.perf_counter()
            assert page.get("/").status_code == 200
            paused.append((time.perf_counter() - started) * 1000)
    finally:
        os.kill(redis.pid, signal.SIGCONT)
    tried = int(info.info("stats")["total_connections_received"]) - accepted
    print(
        f"(c) dashboard, 20 pages: Redis up p50 {statistics.median(normal):.1f} ms; Redis paused: first "
        f"{paused[0]:.1f} ms, then p50 {statistics.median(paused[1:]):.1f} ms, total {sum(paused):.0f} ms; "
        f"{tried} new connection(s) to Redis meanwhile"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
