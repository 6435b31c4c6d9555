#!/usr/bin/env python3
"""Throughput and latency of the production stack: nginx (TLS, HTTP/2) and gunicorn (gevent) directly.

    apt-get install -y nghttp2-client wrk      # h2load; wrk for the direct runs
    .venv/bin/python bench/deploy_bench.py     # ~10 minutes: 2 targets x 2 paths x 2 conns x 3 worker counts x 2 rounds

Starts the same stack as deploy/tests/test_stack.py (deploy/start_production.sh
against a throw-away PostgreSQL database and Redis, nginx from the rendered
template) once per worker count, and for each target and connection count
runs h2load over HTTPS with HTTP/2 through nginx and wrk over HTTP/1.1
straight against gunicorn (h2load --h1 where wrk is missing). Prints
requests/s and p50/p99 latency as a Markdown table (median of --repeat
rounds); --json also saves them. Needs PostgreSQL (TEST_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres, allowed to create databases) and
Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/13).

Targets (--targets):
  health      GET /health: a PostgreSQL query and a Redis ping per request
  completion  POST /v1/chat/completions that the gateway answers from its
              cache: seeds the demo data, creates an API key, warms the cache
              with one call, then measures cache hits. Skipped, with the
              reason, when the gateway's endpoint or commands are missing.

Every request goes to loopback only and each run is bounded by --duration.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.request import Request, urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.tests.stack import Stack  # noqa: E402

COMPLETION_BODY = {
    "model": "offline",
    "temperature": 0,
    "messages": [
        {"role": "system", "content": "Answer from the passages."},
        {"role": "user", "content": "Passage: The cafeteria opens at eight. Question: when does the cafeteria open?"},
    ],
}


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run_h2load(url, connections, duration, workdir, http1=False, body=None, headers=()):
    """h2load for `duration` s after a 2 s warm-up; latencies from its per-request log."""
    log = Path(workdir) / f"h2load-{time.monotonic_ns()}.tsv"
    command = ["h2load", "-D", str(duration), "--warm-up-time", "2", "-c", str(connections), "-m", "1", "-t", "1"]
    command += ["--log-file", str(log)]
    if http1:
        command.append("--h1")
    for header in headers:
        command += ["-H", header]
    if body is not None:
        data = Path(workdir) / "body.json"
        data.write_text(body)
        command += ["-d", str(data)]
    command.append(url)
    out = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not finished or not counts:
        raise RuntimeError(f"h2load printed no result:\n{out}")
    latencies_ms = []
    for line in log.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].startswith("2"):
            latencies_ms.append(int(parts[2]) / 1000)
    return {
        "rps": float(finished.group(3)),
        "p50_ms": percentile(latencies_ms, 0.50),
        "p99_ms": percentile(latencies_ms, 0.99),
        "requests": int(counts.group(2)),
        "non_2xx": sum(int(codes.group(i)) for i in (2, 3, 4)) if codes else None,
        "failed": int(counts.group(4)),
    }


WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def run_wrk(url, connections, duration, workdir, body=None, headers=()):
    """wrk with its latency distribution; a short warm-up run first."""
    script = Path(workdir) / "request.lua"
    lines = []
    if body is not None:
        lines += ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    for header in headers:
        name, value = header.split(":", 1)
        lines.append(f"wrk.headers[{json.dumps(name.strip())}] = {json.dumps(value.strip())}")
    script.write_text("\n".join(lines) + "\n")
    threads = "1"  # as h2load: on a 2-core host a second client thread takes CPU from the server
    base = ["wrk", "-t", threads, "-c", str(connections), "-s", str(script)]
    subprocess.run([*base, "-d", "2s", url], capture_output=True, timeout=60)
    out = subprocess.run(
        [*base, "-d", f"{duration}s", "--latency", url], capture_output=True, text=True, timeout=duration + 60
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise RuntimeError(f"wrk printed no result:\n{out}")

    def latency(label):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
        return float(match.group(1)) * WRK_UNITS[match.group(2)] if match else float("nan")

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "requests": int(total.group(1)),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "failed": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def measure(stack, path, connections, duration, workdir, direct_tool, body=None, headers=()):
    """One run through nginx (HTTPS, HTTP/2) and one straight against gunicorn (HTTP/1.1)."""
    load = os.getloadavg()[0]
    through_nginx = run_h2load(f"{stack.https}{path}", connections, duration, workdir, body=body, headers=headers)
    direct_url = f"http://127.0.0.1:{stack.web_port}{path}"
    # As nginx forwards it, so production's HTTPS redirect does not answer instead.
    direct_headers = [*headers, "X-Forwarded-Proto: https"]
    if direct_tool == "wrk":
        load_direct = os.getloadavg()[0]
        direct = run_wrk(direct_url, connections, duration, workdir, body=body, headers=direct_headers)
    else:
        load_direct = os.getloadavg()[0]
        direct = run_h2load(direct_url, connections, duration, workdir, http1=True, body=body, headers=direct_headers)
    return [
        {"path": "nginx h2 (h2load)", "connections": connections, "load": load, **through_nginx},
        {"path": f"gunicorn h1 ({direct_tool})", "connections": connections, "load": load_direct, **direct},
    ]


def manage(stack, *args):
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", *args],
        cwd=ROOT,
        env=stack.app_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def prepare_completion(stack):
    """(body, headers) for a cached completion, or raise RuntimeError saying why it cannot run."""
    seeded = manage(stack, "seed_demo")
    if seeded.returncode != 0:
        raise RuntimeError(f"seed_demo failed: {seeded.stderr.strip()[-300:]}")
    created = manage(stack, "create_api_key", "demo", "benchmark")
    if created.returncode != 0 or not created.stdout.strip():
        raise RuntimeError(f"create_api_key failed: {created.stderr.strip()[-300:]}")
    key = created.stdout.strip().splitlines()[-1]
    body = json.dumps(COMPLETION_BODY)
    headers = [f"Authorization: Bearer {key}", "Content-Type: application/json"]
    request = Request(
        f"http://127.0.0.1:{stack.web_port}/v1/chat/completions",
        data=body.encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "X-Forwarded-Proto": "https"},
    )
    for _ in range(2):  # the first call fills the cache, the second must hit it
        with urlopen(request, timeout=30) as response:
            if response.status != 200:
                raise RuntimeError(f"the warm-up completion answered {response.status}")
            cache_state = response.headers.get("X-Cache", "")
    if cache_state != "HIT":
        raise RuntimeError(f"the repeated completion was not answered from the cache (X-Cache: {cache_state!r})")
    return body, headers


def median_row(rows):
    first = rows[0]
    return {
        **{k: first[k] for k in ("target", "workers", "path", "connections")},
        "rps": statistics.median(r["rps"] for r in rows),
        "p50_ms": statistics.median(r["p50_ms"] for r in rows),
        "p99_ms": statistics.median(r["p99_ms"] for r in rows),
        "errors": sum((r["non_2xx"] or 0) + (r["failed"] or 0) for r in rows),
        "load": statistics.mean(r["load"] for r in rows),
        "rounds": [{k: r[k] for k in ("rps", "p50_ms", "p99_ms", "load")} for r in rows],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,3,5", help="gunicorn worker counts (default 1,3,5)")
    parser.add_argument("--connections", default="16,64", help="concurrent connections (default 16,64)")
    parser.add_argument("--duration", type=int, default=10, help="seconds each measurement runs (default 10)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; each figure is the median (default 2)")
    parser.add_argument("--targets", default="health,completion", help="health and/or completion (default both)")
    parser.add_argument("--direct-tool", choices=["auto", "wrk", "h2load"], default="auto")
    parser.add_argument("--pool-size", type=int, default=10, help="DB_POOL_SIZE per worker (default 10)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)

    for tool in ("nginx", "h2load"):
        if not (shutil.which(tool) or shutil.which(f"/usr/sbin/{tool}")):
            sys.exit(f"deploy_bench: {tool} is missing: apt-get install -y nginx-light nghttp2-client")
    direct_tool = args.direct_tool
    if direct_tool == "auto":
        direct_tool = "wrk" if shutil.which("wrk") else "h2load"
    elif direct_tool == "wrk" and not shutil.which("wrk"):
        sys.exit("deploy_bench: wrk is missing: apt-get install -y wrk")
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for target in targets:
        if target not in {"health", "completion"}:
            sys.exit(f"deploy_bench: unknown target {target!r} (health, completion)")

    postgres_url = os.environ.get("TEST_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    redis_url = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/13"
    worker_counts = [int(x) for x in args.workers.split(",")]
    connection_counts = [int(x) for x in args.connections.split(",")]
    print(
        f"cores: {os.cpu_count()}; {args.duration} s per run, median of {args.repeat} rounds; "
        f"direct tool: {direct_tool}; DB_POOL_SIZE={args.pool_size}"
    )
    # One stack per worker count, all up at once (idle ones cost no CPU), and
    # the worker counts measured back to back for each cell: load from other
    # work on a shared host then skews all of them alike.
    stacks = {}
    requests = {}  # (workers, target) -> (path, body, headers)
    with tempfile.TemporaryDirectory(prefix="deploy-bench-") as tmp:
        try:
            for workers in worker_counts:
                folder = Path(tmp) / f"w{workers}"
                folder.mkdir()
                stacks[workers] = Stack(
                    folder, postgres_url, redis_url, workers=workers, pool_size=args.pool_size, upload_max_mb=50
                ).start()
                for target in targets:
                    if target == "health":
                        requests[workers, target] = ("/health", None, [])
                        continue
                    try:
                        body, headers = prepare_completion(stacks[workers])
                    except (RuntimeError, OSError) as exc:
                        print(f"completion skipped: {exc}")
                        continue
                    requests[workers, target] = ("/v1/chat/completions", body, headers)
            raw = {}
            for round_number in range(1, args.repeat + 1):
                print(f"round {round_number} of {args.repeat} ...", flush=True)
                for target in targets:
                    for connections in connection_counts:
                        for workers in worker_counts:
                            if (workers, target) not in requests:
                                continue
                            path, body, headers = requests[workers, target]
                            rows = measure(
                                stacks[workers], path, connections, args.duration, tmp, direct_tool, body, headers
                            )
                            for row in rows:
                                row.update(target=target, workers=workers)
                                raw.setdefault((target, row["path"], connections, workers), []).append(row)
        finally:
            for stack in stacks.values():
                stack.stop()

    # load: the host's 1-minute load average during the cell (2 cores: above 2 means other work competed)
    results = [median_row(rows) for rows in raw.values()]
    print("| target | path | conns | workers | req/s | p50 ms | p99 ms | errors | load |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        print(
            f"| {row['target']} | {row['path']} | {row['connections']} | {row['workers']} | {row['rps']:.0f} "
            f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} | {row['load']:.1f} |"
        )
    best = {}
    for row in results:
        key = (row["target"], row["path"], row["connections"])
        if key not in best or row["rps"] > best[key]["rps"]:
            best[key] = row
    print()
    for (target, path, connections), row in best.items():
        print(
            f"best for {target}, {path}, {connections} connections: {row['workers']} workers ({row['rps']:.0f} req/s)"
        )
    if results:
        by_workers = {w: statistics.mean(r["rps"] for r in results if r["workers"] == w) for w in worker_counts}
        print("mean req/s over all cells by workers: " + ", ".join(f"{w}: {v:.0f}" for w, v in by_workers.items()))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
