"""A redis-server of its own under `valgrind --tool=callgrind`, counting only its command processing.

`--toggle-collect=processInputBuffer`: parsing, the commands, the scripts. Used by
bench/hotpath_redis.py and bench/limits_redis_bench.py.
"""

import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_instructions(run, keep=None):
    """Start the server, call run(url) while it answers, stop it; its instruction total (keep: a copy of the profile)."""
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
            run(f"redis://127.0.0.1:{port}/0")
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], stdout=subprocess.DEVNULL)
            server.wait(60)
        finally:
            if server.poll() is None:
                server.kill()
        text = out.read_text()
        if keep:
            Path(keep).write_text(text)
        return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))
