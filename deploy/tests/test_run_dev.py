"""deploy/run_dev.sh (what `make run` serves with), for real: SQLite and files under a temporary VAR_DIR."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from deploy.tests.stack import DEPLOY, ROOT, free_port, wait_for_port
from deploy.tests.test_outage import wait_until, worker_pids

pytestmark = pytest.mark.stack


@pytest.fixture
def dev_server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    for name in ("DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX"):
        env.pop(name, None)
    env.update(
        VAR_DIR=str(tmp_path / "var"), PORT=str(port), WEB_WORKERS="1", TASK_WORKERS="1", ENVIRONMENT="development"
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
    )
    log = tmp_path / "run_dev.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", str(DEPLOY / "run_dev.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = type("DevServer", (), {"app": process, "port": port, "log": log})
    try:
        wait_for_port(port, 60, process, "deploy/run_dev.sh")
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def get_health(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_make_run_starts_a_killed_task_worker_again_and_keeps_serving(dev_server):
    [first] = wait_until(lambda: worker_pids(dev_server), 30, "a task worker runs")
    # The worker's heartbeat reaches the web process through files under VAR_DIR.
    wait_until(lambda: get_health(dev_server.port)[1]["worker"]["state"] == "ok", 30, "the heartbeat is reported")
    os.kill(first, signal.SIGKILL)
    [second] = wait_until(lambda: worker_pids(dev_server) - {first}, 30, "a new task worker was started")
    assert "task worker 1 stopped (exit 137); starting it again in 1 s" in dev_server.log.read_text()
    assert dev_server.app.poll() is None
    status, body = get_health(dev_server.port)
    assert status == 200 and body["status"] == "ok"
    time.sleep(0.5)
    assert worker_pids(dev_server) == {second}


def test_make_run_stops_everything_on_sigterm(dev_server):
    workers = wait_until(lambda: worker_pids(dev_server), 30, "a task worker runs")
    # Up and serving first (gunicorn misses a SIGTERM that comes while its worker boots).
    wait_until(lambda: get_health(dev_server.port)[1]["worker"]["state"] == "ok", 30, "the heartbeat is reported")
    os.kill(dev_server.app.pid, signal.SIGTERM)
    dev_server.app.wait(timeout=30)
    for pid in workers:
        wait_until(lambda pid=pid: not os.path.exists(f"/proc/{pid}"), 30, f"worker {pid} stopped")
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{dev_server.port}/health", timeout=2)
