"""What observability costs: the query timer, Server-Timing and the metrics, on /v1 hits and on pages.

    .venv/bin/python bench/observe_bench.py            # about a minute
    .venv/bin/python bench/observe_bench.py --rounds 9 --hits 2000

Starts a redis-server of its own on a free port and uses a throw-away SQLite
database. Requests go through the real WSGI application (corporate.handlers:
/v1 through V1_MIDDLEWARE, pages through MIDDLEWARE) called in this process,
without an HTTP server, so the figures are the application's own time.

"off": the handlers built without RequestStatsMiddleware, no execute wrapper on
the connection, metrics off (METRICS_TOKEN unset). "on": as deployed, with
METRICS_TOKEN set and PROMETHEUS_MULTIPROC_DIR (a temporary folder), so every
metric is written to its memory-mapped file as under gunicorn. Rounds of off
and on alternate; each figure is the median of the rounds' medians.

Prints, for each, the CPU time this process spent per request (what the
observability adds; steady when other work shares the machine) and the p50
wall time (which includes waiting for Redis and for the CPU):
(a) a cache hit of POST /v1/chat/completions, off and on, and the difference
    in microseconds and as a share of the hit;
(b) the same for pages: the workspace list and the dashboard of a signed-in user;
(c) the execute wrapper alone: microseconds per query (SELECT 1, 20,000 times);
(d) what a /v1 hit gains, measured apart from everything else: the middleware
    around a view that does nothing, and the metric a hit adds to the
    gateway's statistics (best of 5 runs of 20,000 each, so steady on a busy
    machine).
"""

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from key_check_bench import free_port, start_redis  # noqa: E402

REQUEST = json.dumps({"model": "offline", "messages": [{"role": "user", "content": "What is the refund policy?"}]})


def environ(method, path, body=b"", headers=None):
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    env.update(headers or {})
    return env


def call(app, method, path, body=b"", headers=None):
    status = []
    result = app(environ(method, path, body, headers), lambda s, h, exc_info=None: status.append(s))
    try:
        for _ in result:
            pass
    finally:
        close = getattr(result, "close", None)
        if close:
            close()
    return status[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds of off and on (default 7)")
    parser.add_argument("--hits", type=int, default=1000, help="/v1 hits per round (default 1000)")
    parser.add_argument("--pages", type=int, default=100, help="page views per round (default 100)")
    args = parser.parse_args()
    if not shutil.which("redis-server"):
        raise SystemExit("needs redis-server (apt-get install redis-server)")
    port = free_port()
    redis = start_redis(port)
    folder = tempfile.mkdtemp(prefix="observe-bench-")
    (Path(folder) / "prometheus").mkdir()
    os.environ.update(
        DJANGO_SETTINGS_MODULE="corporate.settings",
        DATABASE_URL=f"sqlite:///{folder}/bench.sqlite3",
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        CACHE_KEY_PREFIX="bench",
        LOG_LEVEL="ERROR",
        METRICS_TOKEN="bench-metrics-token-0123456789",
        PROMETHEUS_MULTIPROC_DIR=f"{folder}/prometheus",
    )
    try:
        run(args)
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def run(args):
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from corporate.handlers import LeanWSGIHandler, dispatch
    from corporate.observability import queries
    from llmgateway.models import ApiKey
    from workspaces.models import Membership, Workspace

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(email="bench@example.com", password="bench-password-1")
    for n in range(3):
        workspace = Workspace.objects.create(name=f"Bench {n}", slug=f"bench-{n}", created_by=user)
        Membership.objects.create(workspace=workspace, user=user, role="owner")
    key = ApiKey.create(workspace, "bench", user)[1]
    login = Client()
    login.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={login.cookies[settings.SESSION_COOKIE_NAME].value}"

    stats = "corporate.observability.middleware.RequestStatsMiddleware"
    token = settings.METRICS_TOKEN
    apps = {
        "on": dispatch(WSGIHandler(), LeanWSGIHandler(settings.V1_MIDDLEWARE)),
        "off": dispatch(
            LeanWSGIHandler([m for m in settings.MIDDLEWARE if m != stats]),
            LeanWSGIHandler([m for m in settings.V1_MIDDLEWARE if m != stats]),
        ),
    }
    connection.ensure_connection()

    def mode(name):
        settings.METRICS_TOKEN = token if name == "on" else ""
        if name == "on" and queries.execute_timed not in connection.execute_wrappers:
            connection.execute_wrappers.append(queries.execute_timed)
        if name == "off" and queries.execute_timed in connection.execute_wrappers:
            connection.execute_wrappers.remove(queries.execute_timed)
        return apps[name]

    hit_headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    page_headers = {"HTTP_COOKIE": cookie}
    for name in ("off", "on"):
        app = mode(name)
        for _ in range(50):
            assert call(app, "POST", "/v1/chat/completions", REQUEST.encode(), hit_headers).startswith("200")
            assert call(app, "GET", "/workspaces/", headers=page_headers).startswith("200")
            assert call(app, "GET", "/", headers=page_headers).startswith("200")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores; other work skews latency)")

    def timed(app, n, method, path, body=b"", headers=None):
        """(p50 wall time, mean CPU time of this process) per request, in microseconds."""
        times = []
        cpu = time.process_time()
        for _ in range(n):
            started = time.perf_counter()
            call(app, method, path, body, headers)
            times.append((time.perf_counter() - started) * 1e6)
        return statistics.median(times), (time.process_time() - cpu) / n * 1e6

    cases = [
        ("(a) /v1 cache hit", args.hits, "POST", "/v1/chat/completions", REQUEST.encode(), hit_headers),
        ("(b) workspace list", args.pages, "GET", "/workspaces/", b"", page_headers),
        ("    dashboard", args.pages, "GET", "/", b"", page_headers),
    ]
    for label, n, method, path, body, headers in cases:
        wall, cpu = {"off": [], "on": []}, {"off": [], "on": []}
        for _ in range(args.rounds):
            for name in ("off", "on"):
                p50, used = timed(mode(name), n, method, path, body, headers)
                wall[name].append(p50)
                cpu[name].append(used)
        off, on = statistics.median(wall["off"]), statistics.median(wall["on"])
        cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
        print(
            f"{label:<20} CPU off {cpu_off:7.0f} µs, on {cpu_on:7.0f} µs: {cpu_on - cpu_off:+5.0f} µs "
            f"({(cpu_on - cpu_off) / cpu_off * 100:+.1f}%);  wall p50 off {off:7.0f} µs, on {on:7.0f} µs"
        )

    with connection.cursor() as cursor:
        per_query = {}
        for name in ("off", "on", "off", "on"):
            mode(name)
            started = time.perf_counter()
            for _ in range(20_000):
                cursor.execute("SELECT 1")
            per_query.setdefault(name, []).append((time.perf_counter() - started) / 20_000 * 1e6)
    off, on = min(per_query["off"]), min(per_query["on"])
    print(f"(c) execute wrapper: SELECT 1 {off:.2f} µs without, {on:.2f} µs with: +{on - off:.2f} µs per query")

    # (d) The middleware's own work per request, apart from the rest of the stack: a response
    # from a view that does nothing, through RequestStatsMiddleware and without it (the best
    # of 5 runs of 20,000; then request_finished's receivers, as Django sends them).
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from corporate.observability.middleware import RequestStatsMiddleware
    from llmgateway.cache import stats as gateway_stats

    request = RequestFactory().post("/v1/chat/completions", data=REQUEST, content_type="application/json")
    request.resolver_match = resolve("/v1/chat/completions")

    def view(_):
        return HttpResponse(b"{}")

    wrapped = RequestStatsMiddleware(view)

    def best(function, n=20_000):
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(n):
                function()
            runs.append((time.perf_counter() - started) / n * 1e6)
        return min(runs)

    mode("on")
    bare = best(lambda: view(request))
    through = best(lambda: wrapped(request))
    from corporate.observability import metrics as metrics_module
    from corporate.observability import timeline

    def receivers():
        timeline.flush_when_due()
        metrics_module.flush_when_due()

    finished = best(receivers)
    gateway_stats.discard_pending()
    counted = best(lambda: gateway_stats.record(None, "hit", 0.3))
    gateway_stats.discard_pending()
    mode("off")
    counted_off = best(lambda: gateway_stats.record(None, "hit", 0.3))
    gateway_stats.discard_pending()
    mode("on")
    added = through - bare + counted - counted_off + finished
    print(
        f"(d) per request: the middleware {through - bare:.2f} µs, the completion counter {counted - counted_off:.2f} µs, "
        f"the request_finished receivers {finished:.2f} µs = {added:.2f} µs added to a /v1 hit"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
