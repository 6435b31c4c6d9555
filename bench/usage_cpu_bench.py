"""CPU time of a cached hit in one process: metering off, records only, limits, limits with a concurrency cap.

    DATABASE_URL=postgres://... REDIS_URL=redis://127.0.0.1:6379/N CACHE_KEY_PREFIX=... \\
        .venv/bin/python bench/usage_cpu_bench.py

Runs `gateway.complete` on the offline model against the configured store
(Redis when REDIS_URL is set) in the first workspace of the database
(migrated, with at least one workspace). Prints hits per CPU-second of this
process (time.process_time: steadier than the wall clock on a shared
machine) and the MGET and EVALSHA round trips per hit. The limits it sets
are removed at the end.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")

CONFIGS = {
    "off": ("llmgateway.usage.UsageHook", None),
    "records": ("llmgateway.metering.Meter", None),
    "limits": ("llmgateway.metering.Meter", {"rpm": 10**9, "tpm": 2 * 10**9, "daily_budget": 10**6}),
    "limits+concurrency": (
        "llmgateway.metering.Meter",
        {"rpm": 10**9, "tpm": 2 * 10**9, "daily_budget": 10**6, "max_concurrent": 10**4},
    ),
}


def main(rounds=3, hits=1000):
    import django

    django.setup()
    from django.conf import settings

    from llmgateway import gateway, usage
    from llmgateway.cache.store import get_store
    from llmgateway.models import Limit
    from workspaces.models import Workspace

    workspace = Workspace.objects.first()
    body = {"model": "offline", "messages": [{"role": "user", "content": "hello there"}]}
    client = getattr(get_store(), "client", None)

    def calls(name):
        return int(client.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0)) if client else 0

    results = {name: [] for name in CONFIGS}
    trips = {}
    try:
        for _ in range(rounds):
            for name, (hook, limits) in CONFIGS.items():
                Limit.objects.filter(kind="workspace", workspace=workspace).delete()
                if limits:
                    Limit.objects.create(kind="workspace", workspace=workspace, **limits)
                settings.LLM_USAGE_HOOK = hook
                usage.hook.reset()
                gateway.complete(workspace.pk, body)
                before = calls("mget"), calls("evalsha")
                started = time.process_time()
                for _ in range(hits):
                    assert gateway.complete(workspace.pk, body).cache_hit
                results[name].append(hits / (time.process_time() - started))
                trips[name] = ((calls("mget") - before[0]) / hits, (calls("evalsha") - before[1]) / hits)
    finally:
        Limit.objects.filter(kind="workspace", workspace=workspace).delete()
    print(f"{'configuration':<20}{'hits per CPU-second':>22}{'MGET/hit':>10}{'EVALSHA/hit':>13}")
    base = max(results["off"])
    for name, values in results.items():
        best = max(values)
        print(f"{name:<20}{best:>22.0f}{trips[name][0]:>10.2f}{trips[name][1]:>13.2f}  ({best / base:.0%} of off)")


if __name__ == "__main__":
    main()
