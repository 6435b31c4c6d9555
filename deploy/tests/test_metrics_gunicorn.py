"""/metrics under real gunicorn: every web worker's and task worker's figures, whichever worker answers.

`make run`'s script (deploy/run_dev.sh) with two gunicorn workers and a task
worker, SQLite and files under a temporary VAR_DIR, the demo data (whose
documents the task worker ingests) and METRICS_TOKEN set.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.tests.stack import DEPLOY, ROOT, free_port, wait_for_port
from deploy.tests.test_outage import wait_until

pytestmark = pytest.mark.stack

TOKEN = "gunicorn-metrics-token-0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    env.update(
        VAR_DIR=str(tmp / "var"),
        PORT=str(port),
        WEB_WORKERS="2",
        TASK_WORKERS="1",
        ENVIRONMENT="development",
        METRICS_TOKEN=TOKEN,
        TASK_WORKER_HEARTBEAT_SECONDS="1",
    )
    for command in (["migrate", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=180
        )
    log = tmp / "run_dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", str(DEPLOY / "run_dev.sh")], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    server = type("Served", (), {"app": process, "port": port, "log": log, "dir": tmp / "var" / "prometheus"})
    try:
        wait_for_port(port, 60, process, "deploy/run_dev.sh")
        # Both workers have loaded the application (a busy host takes a while).
        for _ in range(4):
            get(server, "/health", token=None)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def get(server, path, token=TOKEN):
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers={"Connection": "close"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def samples(text, name, **labels):
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def total(text, name, **labels):
    return sum(s.value for s in samples(text, name, **labels))


def gunicorn_workers(server):
    """pids of the gunicorn workers: processes of the script's session whose parent is gunicorn's master."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[3]) == server.app.pid and b"gunicorn" in cmdline:
            found.add((int(entry.name), int(stat[1])))
    return {pid for pid, parent in found if any(parent == master for master, _ in found)}


def test_metrics_add_up_every_worker_and_need_the_token(served):
    assert get(served, "/metrics", token=None)[0] == 401
    assert get(served, "/metrics", token="wrong-token-wrong-token")[0] == 401

    # Requests spread over both workers (a new connection each); every scrape sees them all.
    # Each worker writes its figures within a second or two of its last request: wait until the
    # fixture's own requests are all written (two scrapes agree) before counting.
    def health_count():
        text = get(served, "/metrics")[1]
        return total(text, "corporate_http_request_duration_seconds_count", route="health", status="200")

    before, deadline = None, time.monotonic() + 15
    while time.monotonic() < deadline:
        time.sleep(2.5)
        now = health_count()
        if now == before:
            break
        before = now
    for _ in range(20):
        status, _, headers = get(served, "/health", token=None)
        assert status == 200 and "db;dur=" in headers["Server-Timing"]
    # Each worker writes its figures within a second of its last request, traffic or not (on a busy
    # host, later: waited for, with a generous deadline, rather than slept for a fixed time).
    deadline = time.monotonic() + 30
    while health_count() - before != 20 and time.monotonic() < deadline:
        time.sleep(0.5)
    for _ in range(4):
        text = get(served, "/metrics")[1]
        count = total(text, "corporate_http_request_duration_seconds_count", route="health", status="200")
        assert count - before == 20
    # The access log has each request's queries and database time.
    log = served.log.read_text()
    assert '"GET /health HTTP/1.1" 200' in log and " db=" in log and "q/" in log
    # The task worker (its own process) ingested the demo documents and reports it here.
    text = wait_until(
        lambda: (
            (t := get(served, "/metrics")[1])
            and total(t, "corporate_ingestion_duration_seconds_count", outcome="ready") >= 1
            and t
        ),
        60,
        "the task worker's ingestion metrics are served",
    )
    assert total(text, "corporate_task_queue_depth") >= 0
    assert samples(text, "corporate_task_worker_heartbeat_age_seconds")
    # Several processes wrote their files.
    files = {p.name for p in served.dir.iterdir()}
    assert len({name.rsplit("_", 1)[1] for name in files if name.startswith("histogram_")}) >= 3, files


def test_a_dead_worker_is_marked_gone(served):
    workers = wait_until(lambda: len(gunicorn_workers(served)) == 2 and gunicorn_workers(served), 30, "two workers")
    victim = min(workers)
    # A live gauge file of the worker, as a PostgreSQL pool writes (SQLite has no pool).
    gauge = served.dir / f"gauge_liveall_{victim}.db"
    gauge.write_bytes(b"")
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not gauge.exists(), 30, "gunicorn's child_exit removed the dead worker's gauges")
    wait_until(lambda: len(gunicorn_workers(served) - {victim}) == 2, 30, "a new worker")
    assert get(served, "/metrics")[0] == 200
