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
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def count(metering, requests):
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
            env = {
                **os.environ,
                "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                "HOTPATH_STEADY": "1",
                "REDIS_SOCKET_TIMEOUT_MS": "30000",
            }
            subprocess.run(
                [sys.executable, str(ROOT / "bench/hotpath_cpu.py"), "--only", "hit", "--requests", str(requests),
                 "--metering", metering],
                env=env, check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], stdout=subprocess.DEVNULL)
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
        text = out.read_text()
        return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metering", default="off,records,limits")
    args = parser.parse_args()
    for metering in args.metering.split(","):
        low, high = count(metering, 200), count(metering, 600)
        print(f"metering {metering}: Redis {(high - low) / 400:,.0f} instructions a hit")


if __name__ == "__main__":
    main()
