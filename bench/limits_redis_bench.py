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
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure(calls, scopes_count, mode):
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--toggle-collect=processInputBuffer", f"--callgrind-out-file={out}",
             "redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.2)
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
            env = {
                **os.environ,
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "REDIS_SOCKET_TIMEOUT_MS": "30000",
                "DATABASE_URL": "sqlite:///:memory:",
            }
            subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], stdout=subprocess.DEVNULL)
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
        if os.environ.get("LIMITS_REDIS_KEEP"):  # the profile, for callgrind_annotate
            Path(os.environ["LIMITS_REDIS_KEEP"]).write_text(out.read_text())
        return int(re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M).group(1))


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
