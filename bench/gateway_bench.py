"""Model gateway benchmark: a cached hit against bare Django and against the LiteLLM proxy; a miss against the upstream.

    .venv/bin/python bench/gateway_bench.py                 # about three minutes
    .venv/bin/python bench/gateway_bench.py --litellm       # also the LiteLLM proxy (first run installs it)
    .venv/bin/python bench/gateway_bench.py --duration 10 --rounds 5 --workers 2
    .venv/bin/python bench/gateway_bench.py --litellm --hits-only   # (a) and (d) only
    .venv/bin/python bench/gateway_bench.py --hits-only --compare var/before   # and the hit of another checkout

Starts everything it needs on 127.0.0.1 and stops it afterwards: a
redis-server of its own on a free port, the local OpenAI-compatible upstream
(llmgateway/tests/fake_openai.py, in a process of its own) with a fixed
200 ms delay, and, with the same gunicorn settings (deploy/gunicorn.conf.py:
gevent workers; workers, bind and logs overridden on the command line):
- the site (corporate.wsgi, exactly what production serves);
- the floor: Django with no middleware and one view that reads the bearer
  token and the body, makes one django-redis get_many and returns a fixed
  body the size of a cached completion (bench/floor_*.py) -- what the
  framework itself costs;
- with --litellm, the LiteLLM proxy (pinned below, installed once into a
  throw-away virtualenv under var/) with a Redis cache on the same Redis
  server, the same worker count and the same upstream.
The database is a throw-away SQLite file (or --database-url); a hit does
not touch it.

Measures, and prints:
(a) requests/s, p50 and p99 of cached POST /v1/chat/completions on each
    server, whole and streamed, at 16 and 64 connections, with h2load over
    HTTP/1.1 (package nghttp2-client); the servers' runs alternate and the
    median of each is reported, so a burst of other load hits all alike;
(b) what the gateway adds to a miss: p50 through the gateway minus p50 of the
    same requests sent straight to the upstream, at 1 and at 64 connections
    (and, alternating, what LiteLLM and the --compare checkout add);
(c) the hit rate of a replayed workload with repeats (and how many upstream
    calls it caused), 20 concurrent identical requests spread over the
    workers (cross-worker coalescing) and 8 identical streaming requests (the
    followers get the leader's chunks);
(d) each gateway worker's resident memory after the run.
Each row of (a) also gives the workers' CPU per request (user + system time
of the server's gunicorn workers from /proc around the run, over its
requests): steadier than requests/s when other work shares the machine.
(a) also runs the gateway's hit with a key that has limits (requests and
tokens per minute, a daily budget), usage records on, against a second gateway started with
the usage hook off (LLM_USAGE_HOOK=llmgateway.usage.UsageHook).
"""

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
GUNICORN = str(Path(PYTHON).parent / "gunicorn")
MODEL = "bench-upstream"
HIT_BODY = {"model": MODEL, "messages": [{"role": "user", "content": "What is the refund policy for annual plans?"}]}
RESPONSES_BODY = {"model": MODEL, "input": "What is the refund policy for annual plans?"}

SETUP = """
from django.contrib.auth import get_user_model
from llmgateway.management.commands.add_model import add_model
from llmgateway.models import ApiKey, Limit
from workspaces.models import Membership, Workspace
user = get_user_model().objects.create_user(email="bench@example.com", password="bench-password-1")
workspace = Workspace.objects.create(name="Bench", slug="bench", created_by=user)
Membership.objects.create(workspace=workspace, user=user, role="owner")
add_model("{model}", provider="openai-compatible", base_url="{base_url}", upstream_model="fake-model",
          timeout_seconds=10, max_retries=0, price_input_per_1k="0.5", price_output_per_1k="1.5")
key, full = ApiKey.create(workspace, "bench", user, scopes=["completions", "read"])
# A second key with limits (never reached), for the run with limits and usage recording on.
limited, limited_full = ApiKey.create(workspace, "bench-limited", user, scopes=["completions", "read"])
Limit.objects.create(kind="key", workspace=workspace, api_key=limited, rpm=10**9, tpm=10**9, daily_budget=10**6)
print(limited_full)
print(full)
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Upstream:
    """The local OpenAI-compatible server in a process of its own, like a real upstream."""

    def __init__(self, stack, delay):
        self.port = free_port()
        self.process = stack._spawn(
            [PYTHON, "-m", "llmgateway.tests.fake_openai", "--port", str(self.port), "--delay", str(delay)],
            "upstream.log",
        )
        wait_for_port(self.port)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def cpu_seconds(self):
        """CPU seconds (user + system) the upstream's process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def calls(self):
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/_calls", timeout=5).json()["calls"]


LITELLM_VERSION = "1.108.7"
LITELLM_VENV = ROOT / "var" / "litellm-venv"


def _gunicorn_command(app, port, workers, log):
    return [
        GUNICORN,
        "-c",
        str(ROOT / "deploy" / "gunicorn.conf.py"),
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "/dev/null",
        "--error-logfile",
        str(log),
        "--log-level",
        "warning",
        "--max-requests",
        "0",
        app,
    ]


def wait_until_ok(url, timeout, headers=None, what="server"):
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer {url} within {timeout} s")


class Target:
    """A server under test: its base URL, the key it takes and (gunicorn) its master process."""

    def __init__(self, name, base, key, model=MODEL):
        self.name, self.base, self.key, self.model = name, base, key, model
        self.process = None


def worker_cpu_seconds(process):
    """CPU seconds (user + system) used so far by the gunicorn workers under a master process; None if unknown."""
    if process is None:
        return None
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        ticks = 0
        for child in children:
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    except OSError:
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


class Stack:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
        self.processes = []
        self.upstream = None
        self.litellm = None

    def start(self):
        for tool in ("redis-server", "h2load"):
            if not shutil.which(tool):
                package = "redis-server" if tool == "redis-server" else "nghttp2-client"
                sys.exit(f"{tool} is missing: apt-get install -y {package}")
        self.redis_port = free_port()
        self._spawn(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            "redis.log",
        )
        wait_for_port(self.redis_port)
        self.upstream = Upstream(self, delay=0.2)
        self.env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
        self.env.update(
            DJANGO_SETTINGS_MODULE="corporate.settings",
            VAR_DIR=str(self.tmp),
            STATIC_ROOT=str(ROOT / "var" / "static"),
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            CACHE_KEY_PREFIX="bench",
            SECRET_KEY="bench-" + uuid.uuid4().hex,
            LOG_LEVEL="WARNING",
        )
        if self.args.database_url:
            self.env["DATABASE_URL"] = self.args.database_url
        self._manage("migrate", "--noinput", "-v0")
        script = SETUP.format(model=MODEL, base_url=self.upstream.base_url)
        self.limited_key, self.key = self._manage("shell", "-c", script).strip().splitlines()[-2:]
        workers = self.args.workers
        self.port, floor_port, bare_port = free_port(), free_port(), free_port()
        self.gateway_process = self._spawn(
            _gunicorn_command("corporate.wsgi:application", self.port, workers, self.tmp / "gunicorn.log"),
            "gunicorn.out",
            env=self.env,
        )
        floor_env = {
            **self.env,
            "DJANGO_SETTINGS_MODULE": "bench.floor_settings",
            "FLOOR_UPSTREAM": f"http://127.0.0.1:{self.upstream.port}",
        }
        floor_process = self._spawn(
            _gunicorn_command("bench.floor_wsgi:application", floor_port, workers, self.tmp / "floor.log"),
            "floor.out",
            env=floor_env,
        )
        # Below the floor: a WSGI proxy with no framework, with and without one Redis read (bench/floor_raw.py).
        raw_port = free_port()
        raw_process = self._spawn(
            _gunicorn_command("bench.floor_raw:application", raw_port, workers, self.tmp / "raw.log"),
            "raw.out",
            env=floor_env,
        )
        # The same gateway with the usage hook off: no usage records, no limits (the key's are ignored).
        self.bare_process = self._spawn(
            _gunicorn_command("corporate.wsgi:application", bare_port, workers, self.tmp / "bare.log"),
            "bare.out",
            env={**self.env, "LLM_USAGE_HOOK": "llmgateway.usage.UsageHook"},
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.gateway = Target("gateway", self.base, self.key)
        self.gateway.process = self.gateway_process
        self.limited = Target("gateway", self.base, self.limited_key)
        self.limited.process = self.gateway_process
        self.bare = Target("gateway", f"http://127.0.0.1:{bare_port}", self.key)
        self.bare.process = self.bare_process
        self.floor = Target("floor", f"http://127.0.0.1:{floor_port}", self.key)
        self.floor.process = floor_process
        # The floor of a miss: the same floor process, forwarding to the upstream (bench/floor_urls.py, proxy).
        self.floor_proxy = Target("floor", f"http://127.0.0.1:{floor_port}", self.key, model="fake-model")
        self.raw_proxy = Target("raw", f"http://127.0.0.1:{raw_port}", self.key, model="fake-model")
        self.raw_proxy.process = raw_process
        self.compare = None
        if getattr(self.args, "compare", None):
            # The same site from another checkout (the code before a change), on the same database and Redis.
            compare_port = free_port()
            process = self._spawn(
                _gunicorn_command("corporate.wsgi:application", compare_port, workers, self.tmp / "compare.log"),
                "compare.out",
                env=self.env,
                cwd=self.args.compare,
            )
            self.compare = Target("gateway", f"http://127.0.0.1:{compare_port}", self.key)
            self.compare.process = process
        if self.args.litellm:
            self.litellm = self._start_litellm(workers)
        wait_until_ok(self.base + "/health", 60, what="gunicorn (gateway)")
        if self.compare:
            wait_until_ok(self.compare.base + "/health", 60, what="gunicorn (gateway, --compare)")
        wait_until_ok(self.bare.base + "/health", 60, what="gunicorn (gateway, usage hook off)")
        wait_for_port(floor_port)
        wait_for_port(raw_port)
        if self.litellm:
            wait_until_ok(
                self.litellm.base + "/health/liveliness", 240, headers={"Authorization": f"Bearer {self.litellm.key}"}
            )
        return self

    def _start_litellm(self, workers):
        litellm = LITELLM_VENV / "bin" / "litellm"
        if not litellm.exists():
            print(f"installing litellm[proxy]=={LITELLM_VERSION} into {LITELLM_VENV} (once)")
            subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
            subprocess.run(
                [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"], check=True
            )
        config = self.tmp / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {MODEL}\n"
            "    litellm_params:\n"
            "      model: openai/fake-model\n"
            f"      api_base: {self.upstream.base_url}\n"
            "      api_key: sk-upstream\n"
            "litellm_settings:\n"
            "  cache: true\n"
            "  cache_params:\n"
            "    type: redis\n"
            "    host: 127.0.0.1\n"
            f"    port: {self.redis_port}\n"
        )
        port, master = free_port(), "sk-bench-" + uuid.uuid4().hex
        # No database: LiteLLM would otherwise try to use the site's DATABASE_URL.
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_MASTER_KEY=master)
        command = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        command += ["--num_workers", str(workers), "--timeout_worker_healthcheck", "240"]
        self._spawn(command, "litellm.log", env=env)
        return Target("litellm", f"http://127.0.0.1:{port}", master)

    def gateway_worker_rss_mb(self):
        """Resident memory of each gunicorn worker of the gateway, in MB."""
        pid = self.gateway_process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        sizes = []
        for child in children:
            try:
                for line in Path(f"/proc/{child}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except OSError:
                pass
        return sizes

    def _spawn(self, command, log, env=None, cwd=ROOT):
        handle = open(self.tmp / log, "w")  # noqa: SIM115 - closed when the process ends
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def _manage(self, *args):
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def h2load(stack, target, connections, duration, body, headers=(), path="/v1/chat/completions"):
    """(requests/s, p50 ms, p99 ms, failed, worker CPU ms per request, slowest connection's share) for POSTs of body.

    The last figure is the req/s of the connection served least, over the
    mean of all connections (h2load's per-client req/s): 1.0 when every
    connection is served alike; a low figure means some connections wait
    while others are served (a long p99 under a short p50).
    """
    body_file = stack.tmp / f"body-{uuid.uuid4().hex}.json"
    body_file.write_text(json.dumps(body))
    log = stack.tmp / f"h2load-{uuid.uuid4().hex}.log"
    command = ["h2load", "--h1", "-c", str(connections), "-t", "1", "-D", str(duration), "--warm-up-time", "1"]
    command += [
        "-d",
        str(body_file),
        "-H",
        f"Authorization: Bearer {target.key}",
        "-H",
        "Content-Type: application/json",
    ]
    for header in headers:
        command += ["-H", header]
    command += [f"--log-file={log}", target.base + path]
    cpu_before = worker_cpu_seconds(target.process)
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    cpu_after = worker_cpu_seconds(target.process)
    rps = failed = None
    done, share = 0, float("nan")
    for line in output.splitlines():
        if line.startswith("req/s ") and ":" in line:  # per client: min max mean sd +/- sd
            low, _high, mean = (float(v) for v in line.split(":", 1)[1].split()[:3])
            share = low / mean if mean else float("nan")
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        if line.startswith("requests:"):
            parts = {p.split()[1]: int(p.split()[0]) for p in line.split(":", 1)[1].split(",")}
            failed = parts.get("failed", 0) + parts.get("errored", 0) + parts.get("timeout", 0)
            done = parts.get("done", 0)
        if line.startswith("status codes:"):
            codes = line.split(":", 1)[1]
            non_2xx = sum(int(p.split()[0]) for p in codes.split(",") if not p.strip().endswith("2xx"))
            failed = (failed or 0) + non_2xx
    latencies = []
    for line in log.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            latencies.append(int(fields[2]) / 1000)
    body_file.unlink()
    log.unlink()
    # Worker CPU per request (ms), the warm-up second's requests included in neither figure's favour:
    # h2load counts its requests after the warm-up, the workers' CPU is read around the whole run.
    cpu_ms = None
    if cpu_before is not None and cpu_after is not None and done:
        cpu_ms = (cpu_after - cpu_before) * 1000 / (done + (rps or 0))  # + about one second of warm-up
    return rps or 0.0, percentile(latencies, 0.5), percentile(latencies, 0.99), failed, cpu_ms, share


def _warm(target, body, path="/v1/chat/completions"):
    """Ask twice, so the second and later answers come from the target's cache; checks it is a hit."""
    import httpx

    headers = {"Authorization": f"Bearer {target.key}"}
    for _ in range(2):
        response = httpx.post(target.base + path, json=body, headers=headers, timeout=30)
        assert response.status_code == 200, (target.name, response.status_code, response.text[:300])
    return response


def throughput(stack, duration, rounds):
    """Each (server, whole/streamed) hit, alternating, `rounds` times per connection count; the median of each."""
    stream_body = {**HIT_BODY, "stream": True}
    runs = [("floor", stack.floor, HIT_BODY), ("gateway hit", stack.gateway, HIT_BODY)]
    runs.append(("gateway stream hit", stack.gateway, stream_body))
    runs.append(("hit, limits+usage on", stack.limited, HIT_BODY))
    runs.append(("hit, usage hook off", stack.bare, HIT_BODY))
    if stack.compare:
        runs.append(("hit, --compare checkout", stack.compare, HIT_BODY))
    if stack.litellm:
        runs.append(("litellm hit", stack.litellm, HIT_BODY))
    runs = [run if len(run) == 4 else (*run, "/v1/chat/completions") for run in runs]
    for _name, target, body, path in runs:
        response = _warm(target, body, path)
        if target is stack.gateway or target is stack.compare:
            assert response.headers["x-cache"] == "HIT", response.headers
        if target is stack.litellm:
            assert response.headers.get("x-litellm-cache-key"), (
                "LiteLLM did not answer from its cache",
                response.headers,
            )
    calls_before = stack.upstream.calls
    rows = {}
    for connections in (16, 64):
        results = {name: [] for name, *_ in runs}
        for _ in range(rounds):
            for name, target, body, path in runs:
                results[name].append(h2load(stack, target, connections, duration, body, path=path))
        for name, measured in results.items():
            cpu = [r[4] for r in measured if r[4] is not None]
            rows[(name, connections)] = (
                statistics.median(r[0] for r in measured),
                statistics.median(r[1] for r in measured),
                statistics.median(r[2] for r in measured),
                sum(r[3] or 0 for r in measured),
                statistics.median(cpu) if cpu else float("nan"),
                statistics.median(r[5] for r in measured),
            )
    # The same question through OpenAI's Responses API (the same cache entry, translated on the way out),
    # alternating with the chat hit in a pass of its own, after the runs above are measured as they always were.
    pair = [("chat hit (pair)", stack.gateway, HIT_BODY, "/v1/chat/completions")]
    pair.append(("responses hit", stack.gateway, RESPONSES_BODY, "/v1/responses"))
    for _name, target, body, path in pair:
        assert _warm(target, body, path).headers["x-cache"] == "HIT"
    for connections in (16, 64):
        results = {name: [] for name, *_ in pair}
        for _ in range(rounds):
            for name, target, body, path in pair:
                results[name].append(h2load(stack, target, connections, duration, body, path=path))
        for name, measured in results.items():
            cpu = [r[4] for r in measured if r[4] is not None]
            rows[(name, connections)] = (
                statistics.median(r[0] for r in measured),
                statistics.median(r[1] for r in measured),
                statistics.median(r[2] for r in measured),
                sum(r[3] or 0 for r in measured),
                statistics.median(cpu) if cpu else float("nan"),
                statistics.median(r[5] for r in measured),
            )
    upstream_calls = stack.upstream.calls - calls_before
    return rows, upstream_calls


def _post(connection, path, body, headers):
    """One POST on a kept-alive http.client connection (headers and body in one write)."""
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})
    response = connection.getresponse()
    data = response.read()
    return response.status, response.getheader("X-Cache"), data, response.getheader("Server-Timing") or ""


def _timing(header):
    """{name: ms} from a Server-Timing header."""
    parts = {}
    for item in header.split(","):
        name, _, dur = item.strip().partition(";dur=")
        if dur:
            parts[name] = float(dur.split(";")[0])  # db;dur=0.0;desc="0 queries"
    return parts


def miss_overhead(stack, count):
    """Median latency of the same misses sent straight to the upstream and through the gateway."""
    import http.client

    run = uuid.uuid4().hex[:8]
    direct, through, inside, called = [], [], [], []
    upstream = http.client.HTTPConnection("127.0.0.1", stack.upstream.port, timeout=10)
    gateway = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    peers = [(label, target, path, _connection(target)) for label, target, path in _miss_peers(stack)]
    peer_times = {label: [] for label, *_ in peers}
    headers = {"Authorization": f"Bearer {stack.key}"}
    for i in range(-2, count):  # two warm-up rounds
        messages = [{"role": "user", "content": f"miss probe {run} {i}"}]
        started = time.perf_counter()
        status, _, data, _ = _post(upstream, "/v1/chat/completions", {"model": "fake-model", "messages": messages}, {})
        elapsed_direct = (time.perf_counter() - started) * 1000
        assert status == 200, data
        started = time.perf_counter()
        status, cache, data, timing = _post(
            gateway, "/v1/chat/completions", {"model": MODEL, "messages": messages}, headers
        )
        elapsed_gateway = (time.perf_counter() - started) * 1000
        assert status == 200 and cache == "MISS", data
        for label, target, path, connection in peers:
            body = {"model": target.model, "messages": [{"role": "user", "content": f"miss probe {run} {i} {label}"}]}
            started = time.perf_counter()
            status, cache, data, _ = _post(connection, path, body, {"Authorization": f"Bearer {target.key}"})
            assert status == 200 and cache in (None, "MISS"), data
            if i >= 0:
                peer_times[label].append((time.perf_counter() - started) * 1000)
        if i >= 0:
            direct.append(elapsed_direct)
            through.append(elapsed_gateway)
            parts = _timing(timing)
            inside.append(parts["gateway"] - parts["upstream"])
            called.append(parts["upstream"])
    for connection in [upstream, gateway, *(peer[-1] for peer in peers)]:
        connection.close()
    return {
        "direct": statistics.median(direct),
        "through": statistics.median(through),
        "peers": {label: statistics.median(times) for label, times in peer_times.items()},
        "direct_p90": percentile(direct, 0.9),
        "through_p90": percentile(through, 0.9),
        "inside": statistics.median(inside),
        "called": statistics.median(called),
    }


def _miss_peers(stack):
    """(label, Target, path) of what else serves misses side by side: a WSGI proxy with no framework, without
    and with one Redis read (what an extra HTTP hop through gunicorn, and a cache check, cost here at the least),
    the floor's thinnest proxy (the same hop through Django), the --compare checkout, LiteLLM."""
    path = "/v1/chat/completions"
    peers = [
        ("WSGI proxy, no framework", stack.raw_proxy, path),
        ("WSGI proxy + one Redis read", stack.raw_proxy, "/redis" + path),
        ("floor proxy (Django, no middleware)", stack.floor_proxy, "/proxy" + path),
    ]
    if stack.compare is not None:
        peers.append(("--compare checkout", stack.compare, path))
    if stack.litellm is not None:
        peers.append(("LiteLLM", stack.litellm, path))
    return peers


def _connection(target):
    import http.client
    from urllib.parse import urlsplit

    return http.client.HTTPConnection("127.0.0.1", urlsplit(target.base).port, timeout=10)


def concurrent_miss(stack, connections, per_connection, rounds=3):
    """p50 of new prompts at `connections` at once, straight to the upstream and through the gateway.

    The two alternate, `rounds` times each (the median of the rounds' p50s), so a burst of other work on
    the machine meets both alike.
    """
    import http.client

    run = uuid.uuid4().hex[:8]

    def measure(port, path, model, headers, round_):
        latencies, lock = [], threading.Lock()
        barrier = threading.Barrier(connections)

        def one(index):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            barrier.wait()
            for i in range(-1, per_connection):  # one warm-up request per connection
                messages = [{"role": "user", "content": f"concurrent miss {run} {round_} {index} {i} {model}"}]
                started = time.perf_counter()
                status, cache, data, _ = _post(connection, path, {"model": model, "messages": messages}, headers)
                elapsed = (time.perf_counter() - started) * 1000
                assert status == 200 and cache in (None, "MISS"), (status, cache, data[:200])
                if i >= 0:
                    with lock:
                        latencies.append(elapsed)
            connection.close()

        threads = [threading.Thread(target=one, args=(n,)) for n in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return latencies

    count = connections * (per_connection + 1) * rounds
    direct, through = [], []
    peers = _miss_peers(stack)
    peer_p50 = {label: [] for label, *_ in peers}
    worker_cpu = upstream_cpu_direct = upstream_cpu_through = 0.0
    for round_ in range(rounds):
        for label, target, path in peers:
            from urllib.parse import urlsplit

            headers = {"Authorization": f"Bearer {target.key}"}
            port = urlsplit(target.base).port
            latencies = measure(port, path, target.model, headers, f"{round_} {label}")
            peer_p50[label].append(statistics.median(latencies))
        started = stack.upstream.cpu_seconds()
        direct.append(statistics.median(measure(stack.upstream.port, "/v1/chat/completions", "fake-model", {}, round_)))
        upstream_cpu_direct += stack.upstream.cpu_seconds() - started
        started, workers = stack.upstream.cpu_seconds(), worker_cpu_seconds(stack.gateway_process)
        headers = {"Authorization": f"Bearer {stack.key}"}
        through.append(statistics.median(measure(stack.port, "/v1/chat/completions", MODEL, headers, round_)))
        worker_cpu += worker_cpu_seconds(stack.gateway_process) - workers
        upstream_cpu_through += stack.upstream.cpu_seconds() - started
    return {
        "direct": statistics.median(direct),
        "through": statistics.median(through),
        "added": [round(b - a, 1) for a, b in zip(direct, through, strict=True)],
        "peers_added": {
            label: [round(p - a, 1) for a, p in zip(direct, p50s, strict=True)] for label, p50s in peer_p50.items()
        },
        # CPU per request (warm-ups included): the gateway's workers, the upstream's process in each run.
        "worker_cpu": worker_cpu / count,
        "upstream_cpu_direct": upstream_cpu_direct / count,
        "upstream_cpu_through": upstream_cpu_through / count,
    }


def _concurrent_posts(stack, bodies, concurrency):
    import httpx

    results = [None] * len(bodies)
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {stack.key}"}

    def worker():
        with httpx.Client(timeout=30) as client:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                response = client.post(stack.base + "/v1/chat/completions", json=bodies[index], headers=headers)
                results[index] = (
                    response.status_code,
                    response.headers.get("x-cache"),
                    response.headers.get("x-cache-coalesced") == "1",
                )

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def workload(stack, total, distinct, concurrency):
    rng = random.Random(20240501)
    run = uuid.uuid4().hex[:8]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(distinct)]
    picks = rng.choices(range(distinct), weights=weights, k=total)
    bodies = [
        {"model": MODEL, "messages": [{"role": "user", "content": f"workload {run} question {n}"}]} for n in picks
    ]
    calls_before = stack.upstream.calls
    started = time.perf_counter()
    results = _concurrent_posts(stack, bodies, concurrency)
    elapsed = time.perf_counter() - started
    assert all(status == 200 for status, _, _ in results), results
    hits = sum(1 for _, cache, _ in results if cache == "HIT")
    coalesced = sum(1 for _, _, c in results if c)
    return {
        "requests": total,
        "distinct": len(set(picks)),
        "hits": hits,
        "coalesced": coalesced,
        "misses": total - hits - coalesced,
        "hit_rate": hits / total,
        "served_without_upstream": (hits + coalesced) / total,
        "best_possible": 1 - len(set(picks)) / total,
        "upstream_calls": stack.upstream.calls - calls_before,
        "seconds": elapsed,
    }


def cross_worker(stack, count=20):
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"stampede {uuid.uuid4().hex}"}]}
    before = stack.upstream.calls
    results = _concurrent_posts(stack, [body] * count, count)
    assert all(status == 200 for status, _, _ in results), results
    return stack.upstream.calls - before, sum(1 for _, _, c in results if c)


def streaming_followers(stack, count=8):
    """Identical streaming requests at once: how many upstream calls, and did all get the same text."""
    import httpx

    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": f"stream {uuid.uuid4().hex}"}]}
    headers = {"Authorization": f"Bearer {stack.key}"}
    texts, coalesced = [None] * count, [False] * count
    barrier = threading.Barrier(count)

    def one(index):
        barrier.wait()
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", stack.base + "/v1/chat/completions", json=body, headers=headers) as response,
        ):
            coalesced[index] = response.headers.get("x-cache-coalesced") == "1"
            parts = []
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    parts += [c["delta"].get("content") or "" for c in chunk.get("choices", [])]
            texts[index] = "".join(parts)

    before = stack.upstream.calls
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stack.upstream.calls - before, sum(coalesced), len(set(texts)) == 1 and bool(texts[0])


def miss_report(stack, count):
    """Part (b): print what the gateway adds to a miss; (1-connection figures, 64-connection figures)."""
    print("\n(b) added latency of a miss (upstream delay 200 ms; new prompts, kept-alive connections)")
    miss = miss_overhead(stack, count)
    direct, through = miss["direct"], miss["through"]
    print(
        f"  1 connection, {count} requests: upstream directly p50 {direct:.2f} ms, "
        f"through the gateway p50 {through:.2f} ms: adds {through - direct:.2f} ms"
    )
    print(f"    of which the gateway's own code (Server-Timing: gateway minus upstream): p50 {miss['inside']:.2f} ms")
    for label, p50 in miss["peers"].items():
        print(f"    {label}, alternating: p50 {p50:.2f} ms: adds {p50 - direct:.2f} ms")
    print(f"    the gateway's upstream call as it timed it (Server-Timing: upstream): p50 {miss['called']:.2f} ms")
    wide = concurrent_miss(stack, connections=64, per_connection=5)
    print(
        f"  64 connections, 320 requests a round, 3 rounds alternating: upstream directly p50 {wide['direct']:.2f} ms, "
        f"through the gateway p50 {wide['through']:.2f} ms: adds {wide['through'] - wide['direct']:.2f} ms "
        f"(rounds: {', '.join(str(added) for added in wide['added'])} ms)"
    )
    for label, added in wide["peers_added"].items():
        print(
            f"    {label}, alternating: adds {statistics.median(added):.2f} ms "
            f"(rounds: {', '.join(str(a) for a in added)} ms)"
        )
    print(
        f"    CPU per miss: gateway workers {wide['worker_cpu'] * 1e6:.0f} µs; the upstream's process "
        f"{wide['upstream_cpu_direct'] * 1e6:.0f} µs called directly, {wide['upstream_cpu_through'] * 1e6:.0f} µs "
        "through the gateway"
    )
    return [
        ("miss adds <= 2 ms p50 at 1 connection", f"{through - direct:.2f} ms", through - direct <= 2),
        (
            "miss adds <= 10 ms p50 at 64 connections",
            f"{wide['through'] - wide['direct']:.2f} ms",
            wide["through"] - wide["direct"] <= 10,
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per h2load run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per server and load (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn (and LiteLLM) workers (default 2)")
    parser.add_argument("--miss-requests", type=int, default=30)
    parser.add_argument("--litellm", action="store_true", help=f"also the LiteLLM proxy {LITELLM_VERSION}")
    parser.add_argument("--database-url", help="PostgreSQL instead of a throw-away SQLite file")
    parser.add_argument("--hits-only", action="store_true", help="only (a) and (d): the cached hits and memory")
    parser.add_argument("--only", choices=["miss"], help="only part (b), the miss (about a minute)")
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="also the gateway's hit and miss served from another checkout of the site (e.g. the code before a change: "
        "git archive <commit> | tar -x -C DIR; DIR/.venv may be a link to .venv), alternating with the rest",
    )
    args = parser.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores; other work skews latency)")
    stack = Stack(args)
    try:
        stack.start()
        if args.only == "miss":
            for label, value, ok in miss_report(stack, args.miss_requests):
                print(f"  {label:52} {value:>9}  {'OK' if ok else 'MISSED'}")
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            return
        servers = "the gateway, the floor" + (" and LiteLLM" if stack.litellm else "")
        print(f"{servers}: {args.workers} workers each; Redis and the 200 ms upstream are local\n")

        print(f"(a) cached hits, h2load --h1, {args.duration}s per run, median of {args.rounds} alternating runs")
        rows, upstream_calls = throughput(stack, args.duration, args.rounds)
        print(
            f"  {'server':22} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} {'worker CPU/req':>15}"
            f" {'slowest conn':>13}"
        )
        for (name, connections), (rps, p50, p99, failed, cpu, share) in sorted(
            rows.items(), key=lambda r: (r[0][1], r[0][0])
        ):
            print(
                f"  {name:22} {connections:>5} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {failed:>7} {cpu * 1000:>12.0f} µs"
                f" {share:>12.0%}"
            )
        print("  (slowest conn: req/s of the connection served least, over the mean of all connections)")
        note = "all answers came from the caches" if not upstream_calls else "a cache's entry expired or was evicted"
        print(f"  upstream calls during (a): {upstream_calls} ({note})")
        for connections in (16, 64):
            floor = rows[("floor", connections)]
            hit, streamed = rows[("gateway hit", connections)], rows[("gateway stream hit", connections)]
            line = (
                f"  at {connections} connections: hit {hit[0] / floor[0]:.0%} of the floor's req/s "
                f"(p99 {hit[2] / floor[2]:.2f}x), streamed hit {streamed[0] / floor[0]:.0%}"
            )
            if stack.litellm:
                litellm = rows[("litellm hit", connections)]
                line += f"; {hit[0] / litellm[0]:.1f}x LiteLLM's req/s, p99 {hit[2] / litellm[2]:.3f}x LiteLLM's"
            print(line)
            on, off = rows[("hit, limits+usage on", connections)], rows[("hit, usage hook off", connections)]
            print(
                f"    limits and usage records on: {on[0] / off[0]:.0%} of the req/s with the usage hook off "
                f"(worker CPU per hit {on[4] * 1000:.0f} µs against {off[4] * 1000:.0f} µs)"
            )
            responses, chat = rows[("responses hit", connections)], rows[("chat hit (pair)", connections)]
            print(
                f"    /v1/responses hit: {responses[0] / chat[0]:.0%} of the chat hit's req/s in its own pass "
                f"(p99 {responses[2] / chat[2]:.2f}x, worker CPU per hit {responses[4] * 1000:.0f} µs "
                f"against {chat[4] * 1000:.0f} µs)"
            )
            if stack.compare:
                other = rows[("hit, --compare checkout", connections)]
                print(
                    f"    --compare checkout: hit {other[0] / floor[0]:.0%} of the floor's req/s "
                    f"(p99 {other[2] / floor[2]:.2f}x, worker CPU per hit {other[4] * 1000:.0f} µs)"
                )

        miss_checks = []
        if not args.hits_only:
            miss_checks = miss_report(stack, args.miss_requests)

            print("\n(c) replayed workload with repeats (Zipf over 120 prompts, 16 concurrent clients)")
            result = workload(stack, total=400, distinct=120, concurrency=16)
            print(
                f"  {result['requests']} requests, {result['distinct']} distinct: {result['hits']} hits, "
                f"{result['coalesced']} coalesced, {result['misses']} misses in {result['seconds']:.1f} s"
            )
            print(
                f"  hit rate {result['hit_rate']:.1%} (best possible {result['best_possible']:.1%}); "
                f"served without an upstream call {result['served_without_upstream']:.1%}; "
                f"upstream calls {result['upstream_calls']}"
            )
            calls, coalesced = cross_worker(stack)
            print(
                f"  20 concurrent identical requests over {args.workers} workers: {calls} upstream call(s), {coalesced} coalesced"
            )
            calls, coalesced, same = streaming_followers(stack)
            print(
                f"  8 concurrent identical streaming requests: {calls} upstream call(s), {coalesced} followed the stream, "
                f"{'all got the same text' if same else 'TEXTS DIFFER'}"
            )

        rss = stack.gateway_worker_rss_mb()
        print(f"\n(d) gateway worker memory after the run: {', '.join(f'{r:.0f} MB' for r in rss)}")

        print("\nTargets (same run, this machine):")
        floor, hit = rows[("floor", 64)], rows[("gateway hit", 64)]
        streamed = rows[("gateway stream hit", 64)]
        checks = [
            ("hit req/s >= 80% of the floor's at 64 connections", f"{hit[0] / floor[0]:.0%}", hit[0] >= 0.8 * floor[0]),
            ("hit p99 <= 1.3x the floor's at 64 connections", f"{hit[2] / floor[2]:.2f}x", hit[2] <= 1.3 * floor[2]),
            (
                "streamed hit req/s >= 60% of the floor's",
                f"{streamed[0] / floor[0]:.0%}",
                streamed[0] >= 0.6 * floor[0],
            ),
            *miss_checks,
            ("worker RSS < 150 MB", f"{max(rss, default=0):.0f} MB", bool(rss) and max(rss) < 150),
        ]
        on, off = rows[("hit, limits+usage on", 64)], rows[("hit, usage hook off", 64)]
        checks.append(("limits+usage on: hit req/s >= 90% of hook off", f"{on[0] / off[0]:.0%}", on[0] >= 0.9 * off[0]))
        if stack.litellm:
            litellm = rows[("litellm hit", 64)]
            checks.append(("hit req/s >= 8x LiteLLM's", f"{hit[0] / litellm[0]:.1f}x", hit[0] >= 8 * litellm[0]))
            checks.append(("hit p99 <= 1/10 of LiteLLM's", f"{hit[2] / litellm[2]:.3f}x", hit[2] <= litellm[2] / 10))
        for label, value, ok in checks:
            print(f"  {label:52} {value:>9}  {'OK' if ok else 'MISSED'}")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
