"""Limits and usage records under real gunicorn: 2 gevent workers, a Redis and an upstream of the test's own.

The site runs from deploy/gunicorn.conf.py on a spare port, with its own
SQLite database under a temporary VAR_DIR, a redis-server of its own and the
local OpenAI-compatible upstream (which counts its calls). The access log
names the worker of each request, so the tests can tell both served.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from corporate.tests.redis_server import RedisServer
from deploy.tests.stack import free_port, wait_for_port
from deploy.tests.test_outage import wait_until
from llmgateway.metering.records import FLUSH_INTERVAL
from llmgateway.tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
SETUP = """
from django.contrib.auth import get_user_model
from llmgateway.management.commands.add_model import add_model
from llmgateway.models import ApiKey, Limit
from workspaces.models import Membership, Workspace
user = get_user_model().objects.create_user(email="owner@example.com", password="owner-password-1")
workspace = Workspace.objects.create(name="Load", slug="load", created_by=user)
Membership.objects.create(workspace=workspace, user=user, role="owner")
add_model("remote", provider="openai-compatible", base_url="{base_url}", upstream_model="fake-model",
          timeout_seconds=10, max_retries=0, price_input_per_1k="0.5", price_output_per_1k="1.5")
for name in ("script", "load", "budget"):
    key, full = ApiKey.create(workspace, name, user, scopes=["completions", "read"])
    if name == "script":
        Limit.objects.create(kind="key", workspace=workspace, api_key=key, rpm=60)
    if name == "budget":  # ten calls of $0.0115 (see the test)
        Limit.objects.create(kind="key", workspace=workspace, api_key=key, daily_budget="0.115")
    print(name, full)
"""


class Site:
    def __init__(self, tmp):
        self.tmp = tmp
        self.redis = RedisServer().start()
        self.upstream = FakeOpenAI().start()
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        for name in ("DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR", "METRICS_TOKEN"):
            self.env.pop(name, None)
        self.env.update(
            DJANGO_SETTINGS_MODULE="corporate.settings",
            VAR_DIR=str(tmp / "var"),
            REDIS_URL=self.redis.url(0),
            CACHE_KEY_PREFIX="load",
            SECRET_KEY="load-" + uuid.uuid4().hex,
            LOG_LEVEL="WARNING",
            # A busy test machine stalls a worker's event loop for longer than production's 250 ms, which
            # would read as a Redis outage (limits not enforced: test_limits_outage.py tests that case).
            REDIS_SOCKET_TIMEOUT_MS="3000",
        )
        self.manage("migrate", "--noinput", "-v0")
        out = self.manage("shell", "-v0", "-c", SETUP.format(base_url=self.upstream.base_url))
        self.keys = dict(
            line.split(" ", 1) for line in out.splitlines() if line.startswith(("script ", "load ", "budget "))
        )
        self.access = tmp / "access.log"
        self.app = subprocess.Popen(
            [GUNICORN, "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--workers", "2"]
            + ["--bind", f"127.0.0.1:{self.port}", "--max-requests", "0", "--access-logfile", str(self.access)]
            + ["--access-logformat", "%(p)s %(s)s %(U)s", "--error-logfile", str(tmp / "error.log")]
            + ["corporate.wsgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=open(tmp / "app.log", "wb"),  # noqa: SIM115 - kept open for the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port, 60, self.app, "gunicorn")
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        for _ in range(6):  # both workers loaded (a busy host takes a while)
            self.client.get("/health", headers={"Connection": "close"})

    def manage(self, *args):
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def ask(self, key, text, max_tokens=8):
        # A new connection each time, so the two workers share the requests.
        return httpx.post(
            f"http://127.0.0.1:{self.port}/v1/chat/completions",
            json={"model": "remote", "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]},
            headers={"Authorization": f"Bearer {self.keys[key]}"},
            timeout=30,
        )

    def workers(self):
        """pids of the workers: gunicorn processes whose parent is the master."""
        found = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(stat[1]) == self.app.pid:
                    found.add(int(entry.name))
        return found

    def served_by(self, path="/v1/chat/completions"):
        """{worker pid: requests} from the access log."""
        counts = {}
        for line in self.access.read_text().splitlines():
            match = re.match(r"<(\d+)> (\d+) (\S+)", line)
            if match and match.group(3) == path:
                counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
        return counts

    def journals(self):
        return list((self.tmp / "var").glob("usage-unsent-*"))

    def settle(self):
        """No record of an earlier test left in a worker. One whose flush failed while Redis was paused is kept
        (in memory and in its journal) until the worker's Redis circuit lets it try again, seconds later."""
        for _ in range(2):  # a record not tried yet is tried within one flush interval, and journaled if refused
            wait_until(lambda: not self.journals(), 30, "the records of earlier tests sent")
            time.sleep(3 * FLUSH_INTERVAL)

    def journaled_ids(self):
        """The request ids of the records in the journals (the first field of each line)."""
        return {json.loads(line)[0] for path in self.journals() for line in path.read_bytes().splitlines() if line}

    def stored(self, ids):
        """How many of these request ids have their usage row (after draining the queue)."""
        self.manage("flush_usage")
        script = f"from llmgateway.models import UsageRecord as U; print(U.objects.filter(request_id__in={sorted(ids)!r}).count())"
        return int(self.manage("shell", "-v0", "-c", script))

    def usage_rows(self):
        self.manage("flush_usage")
        script = (
            "from llmgateway.models import UsageRecord as U; "
            "print(U.objects.count(), U.objects.filter(status=200).count(), U.objects.filter(cache='refused').count())"
        )
        return tuple(int(n) for n in self.manage("shell", "-v0", "-c", script).split())

    def stop(self):
        self.client.close()
        if self.app.poll() is None:
            os.killpg(self.app.pid, signal.SIGTERM)
            try:
                self.app.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.app.pid, signal.SIGKILL)
                self.app.wait(timeout=5)
        self.upstream.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not Path(GUNICORN).exists():
        pytest.skip("gunicorn is not installed in this environment")
    served = Site(tmp_path_factory.mktemp("usage-gunicorn"))
    try:
        yield served
    finally:
        served.stop()


def test_a_key_with_rpm_60_gets_429_on_the_61st_across_two_workers(site):
    before = site.served_by()
    texts = [f"script question {n % 5}" for n in range(75)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda text: site.ask("script", text), texts))
    elapsed = time.monotonic() - started
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 75
    assert "not enforced" not in (site.tmp / "app.log").read_text()  # Redis answered throughout
    # A burst of 60, then one more per second the 75 took (the bucket refills over the minute).
    assert 60 <= len(ok) <= 60 + int(elapsed) + 1, (len(ok), elapsed)
    for response in refused:
        assert int(response.headers["Retry-After"]) >= 1
        assert response.headers["x-ratelimit-limit-requests"] == "60"
        assert response.headers["x-ratelimit-remaining-requests"] == "0"
        error = response.json()["error"]
        assert error["code"] == "rate_limit_exceeded" and "requests per minute" in error["message"]
    assert {r.headers["x-ratelimit-limit-requests"] for r in ok} == {"60"}
    # Both workers answered: the limit is one across them, held in Redis.
    after = site.served_by()
    served = {pid: after.get(pid, 0) - before.get(pid, 0) for pid in after}
    assert len([pid for pid, n in served.items() if n > 0]) == 2, served
    # Once the burst is spent, requests come one a second again.
    time.sleep(1.1)
    assert site.ask("script", "script question 0").status_code == 200


def test_nothing_is_lost_when_a_worker_is_restarted_mid_load(site):
    rows_before = site.usage_rows()
    calls_before = site.upstream.calls
    workers = wait_until(lambda: len(site.workers()) == 2 and site.workers(), 30, "two workers")
    victim = min(workers)
    responses, failures = [], []
    lock = threading.Lock()

    def send(n):
        try:
            response = site.ask("load", f"load question {n % 40}")  # misses, then hits
        except httpx.HTTPError as exc:  # a connection the stopping worker had accepted and dropped
            with lock:
                failures.append(exc)
            return
        with lock:
            responses.append(response)

    def restart_when_half_done():
        wait_until(lambda: len(responses) >= 100, 60, "half of the load")
        os.kill(victim, signal.SIGTERM)  # gunicorn's graceful stop of one worker; the master starts another

    restarter = threading.Thread(target=restart_when_half_done)
    restarter.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(200)))
    restarter.join()
    wait_until(lambda: len(site.workers() - {victim}) == 2, 30, "a new worker in its place")
    assert victim not in site.workers()
    ok = sum(1 for r in responses if r.status_code == 200)
    assert ok == len(responses) >= 190 and len(failures) <= 10
    # The stopped worker wrote what it had buffered as it left: every answered request has its row.
    total, successful, _ = site.usage_rows()
    assert successful - rows_before[1] == ok
    assert total - rows_before[0] == len(responses)
    assert site.upstream.calls - calls_before <= 40 + len(failures)


def test_records_of_the_last_requests_leave_with_a_stopping_worker(site):
    """A worker stopped at once (SIGQUIT: gunicorn's quick shutdown) writes its buffered records on its way out."""
    rows_before = site.usage_rows()[0]
    workers = wait_until(lambda: len(site.workers()) == 2 and site.workers(), 30, "two workers")
    # Answered together, so each worker buffers most of them (it writes its buffer every 0.25 s).
    with ThreadPoolExecutor(max_workers=12) as pool:
        answered = sum(r.status_code == 200 for r in pool.map(lambda n: site.ask("load", f"quiet {n}"), range(12)))
    for pid in workers:  # within a few milliseconds of the last answer: its record is still in the worker
        os.kill(pid, signal.SIGQUIT)
    wait_until(lambda: len(site.workers() - workers) == 2, 30, "two new workers")
    assert answered == 12
    assert site.usage_rows()[0] - rows_before == 12


def test_fifty_concurrent_requests_under_a_budget_for_ten_make_at_most_ten_calls(site):
    # Each call spends 11 prompt tokens at $0.5/1k and 4 answer tokens at $1.5/1k: $0.0115, and
    # reserves its estimate first (13 input tokens for 20 characters, max_tokens=4: $0.0125).
    site.upstream.stable, site.upstream.latency = True, 0.3
    calls_before, served_before = site.upstream.calls, site.served_by()
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(
                pool.map(lambda n: site.ask("budget", f"question number {n:04d}", max_tokens=4), range(50))
            )
    finally:
        site.upstream.stable, site.upstream.latency = False, 0.0
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(refused) == 50
    assert "not enforced" not in (site.tmp / "app.log").read_text()  # Redis answered throughout
    assert site.upstream.calls - calls_before == len(ok) <= 10
    assert {r.json()["error"]["code"] for r in refused} == {"insufficient_quota"}
    spent = sum(
        r.json()["usage"]["prompt_tokens"] * 0.0005 + r.json()["usage"]["completion_tokens"] * 0.0015 for r in ok
    )
    assert spent <= 0.115 + 0.0125
    # Both workers took part in it.
    served = {pid: n - served_before.get(pid, 0) for pid, n in site.served_by().items()}
    assert len([pid for pid, n in served.items() if n > 0]) == 2, served


# Faults in the middle of a stream, under gunicorn --------------------------------------------------


def _open_stream(site, text):
    """A streamed completion on a raw socket, once its first events have arrived: (socket, bytes so far)."""
    import json
    import socket

    body = json.dumps({"model": "remote", "stream": True, "messages": [{"role": "user", "content": text}]}).encode()
    sock = socket.create_connection(("127.0.0.1", site.port), timeout=30)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {site.keys['load']}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    got = b""
    while got.count(b"data: ") < 2:
        got += sock.recv(65536)
    return sock, got


def _read_to_the_end(sock, got):
    while b"[DONE]" not in got and b'"error"' not in got:
        part = sock.recv(65536)
        if not part:
            break
        got += part
    sock.close()
    return got


LONG_QUESTION = " ".join(f"word{i}" for i in range(30))


def test_a_client_that_leaves_mid_stream_leaves_its_followers_the_whole_answer(site):
    """The leader's client hangs up; an identical request (in either worker) that follows its flight still
    gets the whole answer from the one upstream call, which is read to its end and cached."""
    site.upstream.chunk_delay = 0.2
    calls, disconnects = site.upstream.calls, site.upstream.disconnects
    question = LONG_QUESTION + " " + uuid.uuid4().hex
    follower = {}

    def follow():
        wait_until(lambda: site.upstream.calls > calls, 30, "the leader's upstream call")
        with httpx.stream(
            "POST",
            f"http://127.0.0.1:{site.port}/v1/chat/completions",
            json={"model": "remote", "stream": True, "messages": [{"role": "user", "content": question}]},
            headers={"Authorization": f"Bearer {site.keys['load']}"},
            timeout=30,
        ) as response:
            follower["status"], follower["body"] = response.status_code, response.read()
            follower["coalesced"] = response.headers.get("x-cache-coalesced")

    try:
        thread = threading.Thread(target=follow)
        thread.start()
        sock, _ = _open_stream(site, question)
        time.sleep(1.0)  # the follower joins the flight meanwhile
        sock.close()  # the leader's client leaves
        thread.join(40)
    finally:
        site.upstream.chunk_delay = 0.0
    assert follower["status"] == 200 and follower["coalesced"] == "1"
    assert follower["body"].rstrip().endswith(b"data: [DONE]") and b'"error"' not in follower["body"]
    assert site.upstream.calls == calls + 1 and site.upstream.disconnects == disconnects
    again = httpx.post(
        f"http://127.0.0.1:{site.port}/v1/chat/completions",
        json={"model": "remote", "messages": [{"role": "user", "content": question}]},
        headers={"Authorization": f"Bearer {site.keys['load']}"},
        timeout=30,
    )
    assert again.headers["x-cache"] == "HIT"


def test_redis_paused_mid_stream_the_stream_goes_on_to_its_end(site):
    site.upstream.chunk_delay = 0.1
    try:
        sock, got = _open_stream(site, LONG_QUESTION + " paused")
        site.redis.pause()
        try:
            got = _read_to_the_end(sock, got)
        finally:
            site.redis.resume()
    finally:
        site.upstream.chunk_delay = 0.0
    assert b"[DONE]" in got and b'"error"' not in got


def test_records_held_by_workers_restarted_during_a_redis_outage_are_kept_and_sent_later(site):
    """Both workers stop while Redis is down: the records they hold go to files under VAR_DIR, and once Redis
    is back the new workers (or the next drain) send them; every answered request has its row."""
    site.settle()
    workers = wait_until(lambda: len(site.workers()) == 2 and site.workers(), 30, "two workers")
    site.redis.stop()
    try:
        answers = [site.ask("load", f"during the outage {n}") for n in range(10)]
        for pid in workers:
            os.kill(pid, signal.SIGTERM)  # gunicorn's graceful stop of each worker; the master starts others
        wait_until(lambda: len(site.workers() - workers) == 2, 30, "two new workers")
        ids = {answer.headers["x-request-id"] for answer in answers}
        assert len(ids) == 10 and ids <= site.journaled_ids()
    finally:
        site.redis.start()
    assert [answer.status_code for answer in answers] == [200] * 10
    wait_until(lambda: site.ask("load", "after the outage").status_code == 200, 30, "an answer with Redis back")
    assert site.stored(ids) == 10
    assert site.journals() == []


def test_records_of_workers_killed_during_a_redis_outage_are_in_their_journals_and_sent_later(site):
    """SIGKILL (the out-of-memory killer, gunicorn's timeout) runs no exit code: what a worker had answered
    during the outage is in its journal by the next flush interval, and is sent once Redis is back."""
    site.settle()
    workers = wait_until(lambda: len(site.workers()) == 2 and site.workers(), 30, "two workers")
    site.redis.stop()
    try:
        answers = [site.ask("load", f"before a kill {n}") for n in range(10)]
        ids = {answer.headers["x-request-id"] for answer in answers}
        wait_until(lambda: ids <= site.journaled_ids(), 10, "the ten records in the journals")
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len(site.workers() - workers) == 2, 30, "two new workers")
        assert ids <= site.journaled_ids()
    finally:
        site.redis.start()
    assert [answer.status_code for answer in answers] == [200] * 10
    wait_until(lambda: site.ask("load", "after the kill").status_code == 200, 30, "an answer with Redis back")
    wait_until(lambda: site.stored(ids) == 10, 30, "every answered request's row")
    assert site.journals() == []
