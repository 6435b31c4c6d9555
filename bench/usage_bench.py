"""Usage metering on the hot path: cached hits with metering off, on without limits, and on with limits.

    .venv/bin/python bench/usage_bench.py                        # about one minute
    .venv/bin/python bench/usage_bench.py --duration 10 --rounds 5

Starts a redis-server of its own, the local OpenAI-compatible upstream and
three gunicorn servers of the site (deploy/gunicorn.conf.py, gevent, 2
workers each) on one throw-away SQLite database:
- "off": LLM_USAGE_HOOK=llmgateway.usage.UsageHook (no records, no limits);
- "records": the default hook (llmgateway.metering.Meter), no limits set;
- "limits": the default hook, and the key limited by requests and tokens per
  minute and daily and monthly budgets, high enough that nothing is refused
  (a concurrency cap adds the release of the slot, after the response).
Each is loaded with cached POST /v1/chat/completions by h2load at 64
connections, the three alternating, the median of each printed, with the
Redis commands each hit costs (INFO commandstats before and after) and how
many usage records reached the database afterwards.
"""

import argparse
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_bench import (  # noqa: E402
    HIT_BODY,
    MODEL,
    ROOT,
    SETUP,
    Stack,
    Target,
    Upstream,
    _gunicorn_command,
    _warm,
    free_port,
    h2load,
    wait_for_port,
    wait_until_ok,
)

LIMITS = """
from llmgateway.models import ApiKey, Limit
key = ApiKey.objects.get(name="bench-limited")
Limit.objects.create(kind="key", workspace=key.workspace, api_key=key, rpm=10_000_000, tpm=2_000_000_000,
                     daily_budget=1_000_000, monthly_budget=1_000_000)
"""
SECOND_KEY = """
from django.contrib.auth import get_user_model
from llmgateway.models import ApiKey
from workspaces.models import Workspace
key, full = ApiKey.create(Workspace.objects.get(slug="bench"), "bench-limited", get_user_model().objects.get())
print(full)
"""
COUNT_ROWS = "from llmgateway.models import UsageRecord; print(UsageRecord.objects.count())"


class UsageStack(Stack):
    def start(self):
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
        self._manage("migrate", "--noinput", "-v0")
        self.key = self._manage("shell", "-c", SETUP.format(model=MODEL, base_url=self.upstream.base_url)).split()[-1]
        self.limited_key = self._manage("shell", "-c", SECOND_KEY).split()[-1]
        self._manage("shell", "-c", LIMITS)
        self.targets = {}
        for name, key, hook in (
            ("off", self.key, "llmgateway.usage.UsageHook"),
            ("records", self.key, "llmgateway.metering.Meter"),
            ("limits", self.limited_key, "llmgateway.metering.Meter"),
        ):
            port = free_port()
            env = {**self.env, "LLM_USAGE_HOOK": hook}
            self._spawn(
                _gunicorn_command("corporate.wsgi:application", port, self.args.workers, self.tmp / f"{name}.log"),
                f"{name}.out",
                env=env,
            )
            self.targets[name] = Target(name, f"http://127.0.0.1:{port}", key)
        for target in self.targets.values():
            wait_until_ok(target.base + "/health", 60, what=f"gunicorn ({target.name})")
        return self

    def redis_calls(self):
        out = subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "info", "commandstats"], capture_output=True, text=True
        ).stdout
        calls = {}
        for line in out.splitlines():
            if line.startswith("cmdstat_"):
                calls[line[8:].split(":")[0]] = int(line.split("calls=")[1].split(",")[0])
        return calls

    def rows(self):
        self._manage("flush_usage")
        return int(self._manage("shell", "-c", COUNT_ROWS).split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    stack = UsageStack(args).start()
    try:
        results = {name: [] for name in stack.targets}
        for target in stack.targets.values():
            response = _warm(target, HIT_BODY)
            limited = response.headers.get("x-ratelimit-limit-requests")
            print(f"{target.name}: X-Cache {response.headers['x-cache']}, x-ratelimit-limit-requests {limited}")
        # Redis commands per hit, one server at a time, sequentially (no pipelines hidden by concurrency).
        import httpx

        # Round trips of the request itself: the lookup (MGET) and the limits script (EVALSHA); batched
        # writes of statistics and usage records (pipelines, RPUSH) come every 0.25-0.5 s per process.
        per_hit = {}
        for target in stack.targets.values():
            before = stack.redis_calls()
            headers = {"Authorization": f"Bearer {target.key}"}
            for _ in range(200):
                httpx.post(target.base + "/v1/chat/completions", json=HIT_BODY, headers=headers, timeout=30)
            after = stack.redis_calls()
            per_hit[target.name] = "/".join(
                f"{(after.get(c, 0) - before.get(c, 0)) / 200:.2f}" for c in ("mget", "evalsha", "rpush")
            )
        rows_before = stack.rows()
        sent = 0
        for _ in range(args.rounds):
            for target in stack.targets.values():
                rps, p50, p99, failed = h2load(stack, target, args.connections, args.duration, HIT_BODY)
                results[target.name].append((rps, p50, p99, failed))
                sent += int(rps * args.duration)
        print(f"\ncached hits, {args.workers} workers, {args.connections} connections, median of {args.rounds} runs")
        print(f"{'server':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}{'mget/evalsha/rpush per hit':>28}")
        base = statistics.median(r[0] for r in results["off"])
        for name, runs in results.items():
            rps = statistics.median(r[0] for r in runs)
            p50 = statistics.median(r[1] for r in runs)
            p99 = statistics.median(r[2] for r in runs)
            failed = sum(r[3] or 0 for r in runs)
            print(
                f"{name:<10}{rps:>10.0f}{p50:>10.2f}{p99:>10.2f}{failed:>8}{per_hit[name]:>28}  ({rps / base:.0%} of off)"
            )
        print(f"\nusage rows written by flush_usage after the runs: {stack.rows() - rows_before}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
