"""A database outage, for real, under the production start script.

deploy/start_production.sh `all` (gunicorn with a gevent worker and one task
worker; no nginx) runs against its own throw-away PostgreSQL cluster
(deploy/tests/pgcluster.py) and the test Redis. The tests stop and start that
cluster, and kill the task worker, and show that the worker waits the outage
out, that the script starts a killed worker again without touching the web
server, and that pages, /api/ and /v1/ answer 503 in their own shapes
meanwhile. The machine's PostgreSQL is never stopped.
"""

import json
import os
import re
import signal
import time
from http.client import HTTPConnection
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from conftest import require_service
from deploy.tests.pgcluster import Cluster, missing_reason
from deploy.tests.stack import Stack

pytestmark = pytest.mark.stack

PASSWORD = "outage test secret"
# Well formed, so the gateway looks it up (in the cache, then the database); no such key exists.
UNKNOWN_API_KEY = "gw_0123abcd_" + "A" * 43


class AppStack(Stack):
    """The start script and its processes only: no nginx, no certificate."""

    def start(self):
        self.logs.mkdir(parents=True)
        self._create_database()
        self._start_app()
        return self

    def app_env(self):
        # A paused database is given up on after this long (the production default is 30 s).
        return {**super().app_env(), "DB_QUERY_TIMEOUT": "5", "HEALTH_DATABASE_SECONDS": "1"}

    @property
    def log_path(self):
        return self.logs / "start_production.log"

    def log_text(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def cluster(redis_url):
    reason = missing_reason()
    if reason:
        require_service("a throw-away PostgreSQL cluster", reason)
    running = Cluster().create()
    try:
        running.start()
        yield running
    finally:
        running.destroy()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, cluster, redis_url):
    running = AppStack(tmp_path_factory.mktemp("outage"), cluster.admin_url, redis_url, workers=1, pool_size=4)
    try:
        running.start()
        yield running
    except BaseException:
        print(running.log_tail())
        raise
    finally:
        if not cluster.running():
            cluster.start()
        running.stop()


@pytest.fixture(scope="module")
def api_token(stack):
    """A user with a workspace in the stack's database, and their API token."""
    script = (
        "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token; "
        "from workspaces import services; "
        f"user = get_user_model().objects.create_user(email='outage@example.com', password={PASSWORD!r}); "
        "services.create_workspace(user, name='Outage', slug='outage'); "
        "print(Token.objects.create(user=user).key)"
    )
    return stack.shell(script)


def request(stack, method, path, headers=None, body=None, timeout=20):
    """(status, headers, body) straight from gunicorn, as nginx forwards it over HTTPS."""
    conn = HTTPConnection("127.0.0.1", stack.web_port, timeout=timeout)
    try:
        conn.request(
            method, path, body=body, headers={"Host": "localhost", "X-Forwarded-Proto": "https", **(headers or {})}
        )
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def sign_in(stack):
    """The cookies of a real sign-in through the form."""
    status, headers, body = request(stack, "GET", "/accounts/login/")
    assert status == 200
    cookies = SimpleCookie()
    for value in headers.get_all("Set-Cookie"):
        cookies.load(value)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    form = f"csrfmiddlewaretoken={token}&username=outage%40example.com&password={PASSWORD.replace(' ', '+')}"
    status, headers, body = request(
        stack,
        "POST",
        "/accounts/login/",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "https://localhost",
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
        },
        body=form,
    )
    assert status == 302, body[:500]
    for value in headers.get_all("Set-Cookie"):
        cookies.load(value)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


def worker_pids(stack):
    """Task worker processes that the start script runs now (same session, by their command line)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        session = int(stat.rsplit(")", 1)[1].split()[3])
        if session == stack.app.pid and b"manage.py" in cmdline and any(b"worker" in arg for arg in cmdline):
            found.add(int(entry.name))
    return found


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s")


def worker_is_connected(stack):
    """The worker is not between an outage warning and its recovery line."""
    log = stack.log_text()
    return log.count("database unavailable (") == log.count("database available again")


def health(stack):
    status, _, body = request(stack, "GET", "/health")
    return status, json.loads(body)


def test_a_killed_task_worker_is_started_again_and_the_web_server_stays_up(stack, api_token):
    [first] = wait_until(lambda: worker_pids(stack), 30, "a task worker runs")
    web_pid_line = re.search(r"gunicorn on \S+ \(pid (\d+)\)", stack.log_text())
    assert web_pid_line, stack.log_text()
    os.kill(first, signal.SIGKILL)

    # The script logs the crash and starts a new worker after a short pause.
    [second] = wait_until(lambda: worker_pids(stack) - {first}, 30, "a new task worker was started")
    assert "task worker 1 stopped (exit 137); starting it again in 1 s" in stack.log_text()
    # gunicorn was never stopped: the same master answers.
    assert stack.app.poll() is None
    os.kill(int(web_pid_line.group(1)), 0)
    status, body = health(stack)
    assert status == 200 and body["database"] == "ok"
    # The new worker sends heartbeats, and does its job.
    wait_until(lambda: health(stack)[1]["worker"]["state"] == "ok", 30, "the worker's heartbeat is reported")
    assert worker_pids(stack) == {second}


def test_pages_and_apis_answer_503_in_their_shapes_while_the_database_is_down(stack, cluster, api_token):
    cookies = sign_in(stack)
    assert request(stack, "GET", "/", headers={"Cookie": cookies})[0] == 200
    cluster.stop()
    try:
        # A signed-in page: its session and user cannot be loaded. The styled page, never a 500.
        for path in ("/", "/documents/"):
            status, headers, body = request(stack, "GET", path, headers={"Cookie": cookies})
            assert status == 503, body[:500]
            assert headers["Content-Type"].startswith("text/html")
            assert headers["Retry-After"] == "10"
            assert b"<h1>Temporarily unavailable</h1>" in body
            assert b"database is not answering" in body
            assert b"pico" in body  # the site's page, with its styles

        # The REST API, by session and by token: DRF's shape.
        for auth in ({"Cookie": cookies}, {"Authorization": f"Token {api_token}"}):
            status, headers, body = request(stack, "GET", "/api/workspaces/", headers=auth)
            assert status == 503, body[:500]
            assert headers["Retry-After"] == "10"
            assert json.loads(body) == {"detail": json.loads(body)["detail"]}
            assert "database is not answering" in json.loads(body)["detail"]

        # The OpenAI-compatible API: OpenAI's error shape.
        status, headers, body = request(
            stack, "GET", "/v1/models", headers={"Authorization": f"Bearer {UNKNOWN_API_KEY}"}
        )
        assert status == 503, body[:500]
        assert headers["Retry-After"] == "10"
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "service_unavailable" and error["type"] == "api_error"
        # A completion that is not a cache hit needs the database too.
        body = json.dumps({"model": "offline", "messages": [{"role": "user", "content": "Hello?"}]}).encode()
        status, headers, answer = request(
            stack,
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={"Authorization": f"Bearer {UNKNOWN_API_KEY}", "Content-Type": "application/json"},
        )
        assert status == 503, answer[:500]
        assert json.loads(answer)["error"]["code"] == "service_unavailable"

        # /health names the database; the task worker is still alive and sends heartbeats.
        status, body = health(stack)
        assert status == 503
        assert body["database"] == "unavailable" and body["failed"] == ["database"]
        # (The test process empties its Redis database before each test, heartbeat included.)
        wait_until(lambda: health(stack)[1]["worker"]["state"] == "ok", 30, "the worker's heartbeat is reported")
        # The sign-in page needs no database to be shown.
        assert request(stack, "GET", "/accounts/login/")[0] == 200
    finally:
        cluster.start()
    # Back: once /health says so, the web worker serves pages again without a restart.
    wait_until(lambda: health(stack)[0] == 200, 60, "/health answers 200 again")
    status, _, body = request(stack, "GET", "/", headers={"Cookie": cookies})
    assert status == 200, body[:500]


def test_after_a_database_restart_no_request_fails_on_a_dead_pooled_connection(stack, cluster, api_token):
    import concurrent.futures

    cookies = sign_in(stack)
    # Several requests at once leave several idle connections in the worker's pool.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        warm = list(pool.map(lambda _: request(stack, "GET", "/", headers={"Cookie": cookies})[0], range(8)))
    assert warm == [200] * 8
    cluster.stop()
    cluster.start()
    # Every pooled connection died with the restart; the very first requests after it succeed.
    statuses = [request(stack, "GET", "/", headers={"Cookie": cookies})[0] for _ in range(6)]
    assert statuses == [200] * 6


def test_the_task_worker_waits_out_a_database_restart_and_processes_the_next_document(stack, cluster, api_token):
    before = wait_until(lambda: worker_pids(stack), 30, "a task worker runs")
    wait_until(lambda: worker_is_connected(stack), 60, "the task worker is connected")
    offset = len(stack.log_text())
    cluster.stop()
    try:
        wait_until(lambda: "database unavailable (" in stack.log_text()[offset:], 30, "the worker noticed the outage")
        time.sleep(4)  # several retries with backoff
        assert worker_pids(stack) == before, stack.log_text()[offset:]
    finally:
        cluster.start()

    # Queued after the restart, as soon as the web tier is back (the worker may
    # still be pausing between its retries).
    wait_until(lambda: health(stack)[0] == 200, 60, "/health answers 200 again")
    auth = {"Authorization": f"Token {api_token}"}
    boundary = "outageboundary"
    text = b"# Outage notes\n\nThe worker read this after the database came back.\n"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="notes.md"\r\n'
            "Content-Type: text/markdown\r\n\r\n"
        ).encode()
        + text
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, answer = request(
        stack,
        "POST",
        "/api/documents/?workspace=outage",
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        body=body,
    )
    assert status == 201, answer[:500]
    document = json.loads(answer)["documents"][0]

    def finished():
        state = json.loads(request(stack, "GET", f"/api/documents/{document['id']}/", headers=auth)[2])["status"]
        return state if state in ("ready", "failed") else None

    assert wait_until(finished, 60, "the document was processed") == "ready"
    # The same process did it: it waited, it did not crash and get restarted.
    assert worker_pids(stack) == before
    log = stack.log_text()[offset:]
    assert log.count("database unavailable (") == 1, log
    assert log.count("database available again") == 1, log
    assert "stopped (exit" not in log


def _cluster_processes(cluster):
    """The postmaster's pid and its children's (the sessions, the background processes)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == postmaster:
                pids.append(int(entry.name))
    return pids


def test_a_paused_database_is_a_503_by_the_query_timeout_and_no_request_hangs(stack, cluster, api_token):
    """Frozen, not down: connections stay open and nothing answers. Each wait ends by DB_QUERY_TIMEOUT."""
    script = (
        "from django.contrib.auth import get_user_model; from llmgateway.models import ApiKey; "
        "from workspaces.models import Workspace; "
        "user = get_user_model().objects.get(email='outage@example.com'); "
        "print(ApiKey.create(Workspace.objects.get(slug='outage'), 'paused', user)[1])"
    )
    bearer = {"Authorization": f"Bearer {stack.shell(script)}", "Content-Type": "application/json"}
    cookies = sign_in(stack)
    question = {"model": "offline", "messages": [{"role": "user", "content": "Hello?"}]}
    # Several pooled connections, each idle when the database freezes.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        warm = list(pool.map(lambda _: request(stack, "GET", "/", headers={"Cookie": cookies})[0], range(8)))
    assert warm == [200] * 8
    assert request(stack, "POST", "/v1/chat/completions", bearer, json.dumps(question).encode())[0] == 200
    time.sleep(5.5)  # the key's cached record is older than 5 s: the next request checks it in the database
    paused = _cluster_processes(cluster)
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        # /health says so within its own bound (1 s here), inside a load balancer's probe timeout that is
        # shorter than the 5 s a request waits.
        status, _, body = request(stack, "GET", "/health", timeout=4)
        assert status == 503 and json.loads(body)["failed"] == ["database"], body[:300]
        # The client's own timeout (30 s) is the bound: without one of its own, each of these waited forever.
        status, _, body = request(stack, "GET", "/v1/models", headers=bearer, timeout=30)
        assert status == 503, body[:300]
        assert json.loads(body)["error"]["code"] == "service_unavailable"
        other = dict(question, messages=[{"role": "user", "content": "Anyone?"}])
        status, _, body = request(stack, "POST", "/v1/chat/completions", bearer, json.dumps(other).encode(), 30)
        assert status == 503, body[:300]
        status, _, body = request(stack, "GET", "/", headers={"Cookie": cookies}, timeout=30)
        assert status == 503 and b"database is not answering" in body
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    # Thawed: the connections that timed out were closed, not pooled again; pages answer at once.
    statuses = [request(stack, "GET", "/", headers={"Cookie": cookies})[0] for _ in range(4)]
    assert statuses == [200] * 4
