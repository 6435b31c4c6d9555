"""Model gateway benchmark: cached-hit throughput against a floor, added latency of a miss, hit rate.

    .venv/bin/python bench/gateway_bench.py            # about two minutes
    .venv/bin/python bench/gateway_bench.py --duration 10 --rounds 5 --workers 2

Starts everything it needs on 127.0.0.1 and stops it afterwards: a
redis-server of its own on a free port, the local OpenAI-compatible upstream
(llmgateway/tests/fake_openai.py, in a process of its own) with a fixed 200 ms delay, and gunicorn
with gevent workers (deploy/gunicorn.conf.py, overridden on the command line:
workers, bind, logs) serving bench.gateway_settings, i.e. the site plus the
floor view at /bench/floor. The database is a throw-away SQLite file (or
--database-url); a cache hit does not touch it.

Measures, and prints:
(a) requests/s, p50 and p99 of POST /v1/chat/completions cache hits and of the
    floor view (reads the bearer token, one Redis round trip, fixed JSON), at
    16 and 64 connections, with h2load over HTTP/1.1 (package nghttp2-client);
    floor and gateway runs alternate and the median of each is reported, so a
    burst of other load on the machine hits both alike;
(b) what the gateway adds to a miss: p50 through the gateway minus p50 of the
    same requests sent straight to the upstream;
(c) the hit rate of a replayed workload with repeats (and how many upstream
    calls it caused), 20 concurrent identical requests spread over the
    workers (cross-worker coalescing) and 8 identical streaming requests (the
    followers get the leader's chunks).
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

SETUP = """
from django.contrib.auth import get_user_model
from llmgateway.management.commands.add_model import add_model
from llmgateway.models import ApiKey
from workspaces.models import Membership, Workspace
user = get_user_model().objects.create_user(email="bench@example.com", password="bench-password-1")
workspace = Workspace.objects.create(name="Bench", slug="bench", created_by=user)
Membership.objects.create(workspace=workspace, user=user, role="owner")
add_model("{model}", provider="openai-compatible", base_url="{base_url}", upstream_model="fake-model",
          timeout_seconds=10, max_retries=0, price_input_per_1k="0.5", price_output_per_1k="1.5")
key, full = ApiKey.create(workspace, "bench", user, scopes=["completions", "read"])
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
        stack._spawn(
            [PYTHON, "-m", "llmgateway.tests.fake_openai", "--port", str(self.port), "--delay", str(delay)],
            "upstream.log",
        )
        wait_for_port(self.port)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self):
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.port}/_calls", timeout=5).json()["calls"]


class Stack:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
        self.processes = []
        self.upstream = None

    def start(self):
        for tool in ("redis-server", "h2load"):
            if not shutil.which(tool):
                package = "redis-server" if tool == "redis-server" else "nghttp2-client"
                sys.exit(f"{tool} is missing: apt-get install -y {package}")
        redis_port = free_port()
        self._spawn(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            "redis.log",
        )
        wait_for_port(redis_port)
        self.upstream = Upstream(self, delay=0.2)
        self.env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}}
        self.env.update(
            DJANGO_SETTINGS_MODULE="bench.gateway_settings",
            VAR_DIR=str(self.tmp),
            STATIC_ROOT=str(ROOT / "var" / "static"),
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            CACHE_KEY_PREFIX="bench",
            SECRET_KEY="bench-" + uuid.uuid4().hex,
            LOG_LEVEL="WARNING",
        )
        if self.args.database_url:
            self.env["DATABASE_URL"] = self.args.database_url
        self._manage("migrate", "--noinput", "-v0")
        script = SETUP.format(model=MODEL, base_url=self.upstream.base_url)
        self.key = self._manage("shell", "-c", script).strip().splitlines()[-1]
        self.port = free_port()
        self._spawn(
            [
                GUNICORN,
                "-c",
                str(ROOT / "deploy" / "gunicorn.conf.py"),
                "--workers",
                str(self.args.workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "/dev/null",
                "--error-logfile",
                str(self.tmp / "gunicorn.log"),
                "--log-level",
                "warning",
                "--max-requests",
                "0",
                "corporate.wsgi:application",
            ],
            "gunicorn.out",
            env=self.env,
        )
        wait_for_port(self.port)
        self.base = f"http://127.0.0.1:{self.port}"
        import httpx

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not become healthy; see " + str(self.tmp / "gunicorn.log"))
        return self

    def _spawn(self, command, log, env=None):
        handle = open(self.tmp / log, "w")  # noqa: SIM115 - closed when the process ends
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
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
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


def h2load(stack, path, connections, duration, body):
    """(requests/s, p50 ms, p99 ms, failed) for POSTs of body to path."""
    body_file = stack.tmp / "body.json"
    body_file.write_text(json.dumps(body))
    log = stack.tmp / f"h2load-{uuid.uuid4().hex}.log"
    command = [
        "h2load",
        "--h1",
        "-c",
        str(connections),
        "-t",
        "1",
        "-D",
        str(duration),
        "--warm-up-time",
        "1",
        "-d",
        str(body_file),
        "-H",
        f"Authorization: Bearer {stack.key}",
        "-H",
        "Content-Type: application/json",
        f"--log-file={log}",
        stack.base + path,
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = failed = None
    for line in output.splitlines():
        if line.startswith("finished in"):
            rps = float(line.split(",")[1].split()[0])
        if line.startswith("requests:"):
            parts = {p.split()[1]: int(p.split()[0]) for p in line.split(":", 1)[1].split(",")}
            failed = parts.get("failed", 0) + parts.get("errored", 0) + parts.get("timeout", 0)
        if line.startswith("status codes:"):
            codes = line.split(":", 1)[1]
            non_2xx = sum(int(p.split()[0]) for p in codes.split(",") if not p.strip().endswith("2xx"))
            failed = (failed or 0) + non_2xx
    latencies = []
    for line in log.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            latencies.append(int(fields[2]) / 1000)
    return rps, percentile(latencies, 0.5), percentile(latencies, 0.99), failed


def throughput(stack, duration, rounds):
    """Floor and gateway hit, alternating, `rounds` times per connection count; the median of each."""
    import httpx

    headers = {"Authorization": f"Bearer {stack.key}"}
    first = httpx.post(stack.base + "/v1/chat/completions", json=HIT_BODY, headers=headers, timeout=10)
    second = httpx.post(stack.base + "/v1/chat/completions", json=HIT_BODY, headers=headers, timeout=10)
    assert first.status_code == 200 and second.headers["x-cache"] == "HIT", (first.text, second.headers)
    rows = {}
    for connections in (16, 64):
        runs = {"floor": [], "gateway hit": []}
        for _ in range(rounds):
            for name, path in (("floor", "/bench/floor"), ("gateway hit", "/v1/chat/completions")):
                runs[name].append(h2load(stack, path, connections, duration, HIT_BODY))
        for name, results in runs.items():
            rows[(name, connections)] = (
                statistics.median(r[0] for r in results),
                statistics.median(r[1] for r in results),
                statistics.median(r[2] for r in results),
                sum(r[3] or 0 for r in results),
            )
    return rows


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
            parts[name] = float(dur)
    return parts


def miss_overhead(stack, count):
    """Median latency of the same misses sent straight to the upstream and through the gateway."""
    import http.client

    run = uuid.uuid4().hex[:8]
    direct, through, inside = [], [], []
    upstream = http.client.HTTPConnection("127.0.0.1", stack.upstream.port, timeout=10)
    gateway = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
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
        if i >= 0:
            direct.append(elapsed_direct)
            through.append(elapsed_gateway)
            parts = _timing(timing)
            inside.append(parts["gateway"] - parts["upstream"])
    upstream.close()
    gateway.close()
    return {
        "direct": statistics.median(direct),
        "through": statistics.median(through),
        "direct_p90": percentile(direct, 0.9),
        "through_p90": percentile(through, 0.9),
        "inside": statistics.median(inside),
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per h2load run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating floor/gateway runs per load (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--miss-requests", type=int, default=30)
    parser.add_argument("--database-url", help="PostgreSQL instead of a throw-away SQLite file")
    args = parser.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores; other work skews latency)")
    stack = Stack(args)
    try:
        stack.start()
        print(f"gunicorn {args.workers} gevent workers on {stack.base}; Redis and the 200 ms upstream are local\n")

        print(
            f"(a) cached-hit throughput, h2load --h1, {args.duration}s per run, "
            f"median of {args.rounds} alternating runs"
        )
        rows = throughput(stack, args.duration, args.rounds)
        print(f"  {'endpoint':14} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
        for (name, connections), (rps, p50, p99, failed) in rows.items():
            print(f"  {name:14} {connections:>5} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} {failed:>7}")
        ratios = {}
        for connections in (16, 64):
            floor, hit = rows[("floor", connections)], rows[("gateway hit", connections)]
            ratios[connections] = (hit[0] / floor[0], hit[2] / floor[2])
            print(
                f"  at {connections} connections: gateway/floor throughput {ratios[connections][0]:.0%}, "
                f"p99 ratio {ratios[connections][1]:.2f}"
            )

        print(f"\n(b) added latency of a miss ({args.miss_requests} sequential requests, upstream delay 200 ms)")
        miss = miss_overhead(stack, args.miss_requests)
        direct, through = miss["direct"], miss["through"]
        print(f"  upstream directly: p50 {direct:.2f} ms, p90 {miss['direct_p90']:.2f} ms")
        print(f"  through gateway:   p50 {through:.2f} ms, p90 {miss['through_p90']:.2f} ms")
        print(f"  added by the gateway: p50 {through - direct:.2f} ms")
        print(
            f"  of which the gateway's own code (Server-Timing: gateway minus upstream call): p50 {miss['inside']:.2f} ms"
        )

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

        import httpx

        server = httpx.get(
            stack.base + "/api/gateway/bench/cache/", headers={"Authorization": f"Bearer {stack.key}"}, timeout=10
        ).json()
        print(
            f"  server-side stats: hits {server['hit']}, misses {server['miss']}, coalesced {server['coalesced']}, "
            f"hit latency mean {server['hit_latency_ms']['mean']} ms, miss latency mean {server['miss_latency_ms']['mean']} ms"
        )

        print("\nTargets (same run, this machine):")
        throughput_ok = ratios[64][0] >= 0.6
        p99_ok = ratios[64][1] <= 2.0
        miss_ok = through - direct < 5
        print(
            f"  hit throughput >= 60% of floor at 64 connections: {ratios[64][0]:.0%}  {'OK' if throughput_ok else 'MISSED'}"
        )
        print(
            f"  hit p99 <= 2x floor p99 at 64 connections:        {ratios[64][1]:.2f}x  {'OK' if p99_ok else 'MISSED'}"
        )
        print(
            f"  miss adds < 5 ms p50:                              {through - direct:.2f} ms  {'OK' if miss_ok else 'MISSED'}"
        )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
