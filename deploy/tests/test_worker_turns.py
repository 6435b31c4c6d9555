"""Kept-alive connections take turns: a connection whose next requests are already buffered does not hold the worker.

A worker serves one connection's requests one after another in a loop. When
the next request is already in the socket and the answer needs no waiting
(a cache hit whose Redis reply is already there), nothing in that loop gives
the other connections a turn, and one connection can be served dozens of
times while the others wait: under load, a low median with a long tail. The
worker yields to the event loop after every request (deploy/gunicorn_worker.py).
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from deploy.tests.stack import DEPLOY, ROOT, free_port, wait_for_port

pytestmark = pytest.mark.stack

PIPELINED = 30


@pytest.fixture
def worker(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "WEB_"))}
    command = [sys.executable, "-m", "gunicorn", "-c", str(DEPLOY / "gunicorn.conf.py"), "--workers", "1"]
    command += ["--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "deploy.tests.turn_app:app"]
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 60, process, "gunicorn")
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def get(path):
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


def read_answers(sock, number):
    """The bodies of `number` answers read from a kept-alive connection, in order."""
    data, bodies = b"", []
    while len(bodies) < number:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(
                next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            )
            if len(rest) >= length:
                bodies.append(int(rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    return bodies


def wait_for_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_a_connection_with_buffered_requests_does_not_starve_another(worker, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    busy = socket.create_connection(("127.0.0.1", worker), timeout=30)
    other = socket.create_connection(("127.0.0.1", worker), timeout=30)
    try:
        other.sendall(get("/first"))
        read_answers(other, 1)  # accepted, and waiting for its next request
        # One request that holds the worker, then many more behind it on the same connection...
        busy.sendall(get(f"/hold?started={started}&release={release}") + get("/next") * PIPELINED)
        wait_for_file(started)
        # ...and while it holds, one request on the other connection.
        other.sendall(get("/second"))
        time.sleep(0.2)  # on the loopback the bytes are already in the worker's socket; this only adds margin
        release.touch()
        busy_order = read_answers(busy, 1 + PIPELINED)
        (other_order,) = read_answers(other, 1)
    finally:
        busy.close()
        other.close()
    # Without turns the worker answers all of the busy connection's buffered requests first.
    assert other_order < busy_order[3], (other_order, busy_order)
