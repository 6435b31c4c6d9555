"""Ports for the servers that tests start in processes of their own (redis-server, PostgreSQL, gunicorn, nginx, ...)."""

import random
import socket
from pathlib import Path

_choose = random.SystemRandom()  # not the `random` that a test may seed


def _ephemeral_range():
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A loopback port that nothing uses now, chosen below the kernel's range of ephemeral ports.

    The server binds it later, seconds later for gunicorn behind migrations. Meanwhile the kernel hands
    ports of the ephemeral range to every outgoing connection and every bind to port 0 on the machine,
    and one of those can take a port chosen from that range (the server then fails to start, or the
    test talks to somebody else). Below the range, only another chooser like this one picks ports.
    """
    low, _ = _ephemeral_range()
    if low > 11000:
        for _ in range(100):
            port = _choose.randrange(10000, low)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
