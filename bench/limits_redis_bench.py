"""Redis instructions of a cache hit's limit reservation (the script run with the lookup), counted with callgrind.

    .venv/bin/python bench/limits_redis_bench.py [--calls 2000] [--scopes 1]

Starts a redis-server of its own under `valgrind --tool=callgrind`, counting only its command
processing (`--toggle-collect=processInputBuffer`: parsing, commands, scripts), and makes
--calls round trips of a /v1 hit's lookup with its reservation ahead
(`limits.lookup_and_admit`: MGET of the entry and the admission script, one scope with
requests and tokens per minute and a daily budget, none reached; --scopes 2 adds a key's
scope with requests per minute), then as many bare MGETs. Prints the instructions a call
of each and their difference: what the limits cost Redis on a hit.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from callgrind_redis import redis_instructions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def measure(calls, scopes_count, mode):
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
import django
django.setup()
from llmgateway.cache.store import get_store
from llmgateway.metering import limits, records
if os.environ.get("LIMITS_REDIS_SCRIPT"):  # another script in its place (a floor: "return {1}")
    limits.HIT_LUA = os.environ["LIMITS_REDIS_SCRIPT"]
scopes = [limits.Scope("workspace", "1", {{"rpm": 10**9, "tpm": 2 * 10**9, "daily_budget": 10**6}})]
if {scopes_count} > 1:
    scopes.append(limits.Scope("key", "2", {{"rpm": 10**9}}))
store = get_store()
entry = ["bench:entry"]
for _ in range({calls}):
    if {mode!r} == "limits":
        reservation = limits.ahead(scopes, records.new_id(), 30)
        limits.lookup_and_admit(entry, reservation)
        assert int(reservation.reply[0]) == 1, reservation.reply
    else:
        store.get_many(entry)
"""

    def run(url):
        env = {**os.environ, "REDIS_URL": url, "REDIS_SOCKET_TIMEOUT_MS": "30000", "DATABASE_URL": "sqlite:///:memory:"}
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)

    # LIMITS_REDIS_KEEP: a copy of the profile, for callgrind_annotate
    return redis_instructions(run, keep=os.environ.get("LIMITS_REDIS_KEEP"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--scopes", type=int, default=1)
    args = parser.parse_args()
    figures = {}
    for mode in ("lookup", "limits"):
        low, high = measure(100, args.scopes, mode), measure(100 + args.calls, args.scopes, mode)
        figures[mode] = (high - low) / args.calls
    print(
        f"{args.scopes} scope(s): lookup alone {figures['lookup']:,.0f} instructions a call, "
        f"lookup and reservation {figures['limits']:,.0f}: the limits {figures['limits'] - figures['lookup']:,.0f}"
    )


if __name__ == "__main__":
    main()
