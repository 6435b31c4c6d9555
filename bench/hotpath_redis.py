"""Redis instructions per /v1 cache hit (metering off, records, records and limits), counted with callgrind.

    DATABASE_URL=postgres://... .venv/bin/python bench/hotpath_redis.py [--metering off,records,limits]

For each metering mode, runs bench/hotpath_cpu.py twice (--only hit, --requests 200 and 600)
against a redis-server of its own under `valgrind --tool=callgrind`, counting only the
server's command processing (`--toggle-collect=processInputBuffer`: parsing, the commands,
the scripts), and prints the difference of the two totals divided by 400: what Redis
spends on one hit, warm-up and setup cancelled out. The worker is not under valgrind.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from callgrind_redis import redis_instructions

ROOT = Path(__file__).resolve().parent.parent


def count(metering, requests):
    def run(url):
        env = {**os.environ, "REDIS_URL": url, "HOTPATH_STEADY": "1", "REDIS_SOCKET_TIMEOUT_MS": "30000"}
        subprocess.run(
            [sys.executable, str(ROOT / "bench/hotpath_cpu.py"), "--only", "hit", "--requests", str(requests),
             "--metering", metering],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    return redis_instructions(run)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metering", default="off,records,limits")
    args = parser.parse_args()
    for metering in args.metering.split(","):
        low, high = count(metering, 200), count(metering, 600)
        print(f"metering {metering}: Redis {(high - low) / 400:,.0f} instructions a hit")


if __name__ == "__main__":
    main()
