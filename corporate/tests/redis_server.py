"""A redis-server of a test's own, on a free port, that the test may pause, stop, restart and flush.

Never the machine's shared Redis: outage tests do things to their server
that would break everyone else's.
"""

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.process = None
        self.paused = False

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--enable-debug-command", "local"],  # DEBUG SLEEP stalls it
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def pause(self):
        """SIGSTOP: connections are still accepted by the kernel, but nothing answers."""
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

    def stop(self):
        if self.process and self.process.poll() is None:
            if self.paused:
                self.resume()
            self.process.terminate()
            self.process.wait(10)

    def restart(self):
        self.stop()
        return self.start()

    def client(self, db=0):
        import redis

        return redis.Redis.from_url(self.url(db), socket_timeout=2)

    def flushall(self):
        self.client().flushall()

    def connections_received(self):
        """Connections the server has accepted since it started (INFO stats)."""
        return int(self.client().info("stats")["total_connections_received"])


@pytest.fixture
def own_redis():
    if not shutil.which("redis-server"):
        from conftest import require_service

        require_service("redis-server", "the redis-server binary is not installed")
    server = RedisServer().start()
    yield server
    server.stop()


def redis_caches(url):
    """CACHES as settings.py builds them for REDIS_URL=url."""
    from django.conf import settings

    from corporate.redis_circuit import cache_settings

    return {"default": cache_settings(url, settings.REDIS_SOCKET_TIMEOUT, settings.CACHE_KEY_PREFIX)}


@pytest.fixture
def redis_cache(own_redis, settings):
    """Django's cache and the gateway's store on the test's own Redis, configured as in production."""
    from corporate.redis_circuit import circuit
    from llmgateway.cache import store

    settings.CACHES = redis_caches(own_redis.url(9))
    circuit.reset()
    previous = store.set_store(store._build_default())
    yield own_redis
    store.set_store(previous)
    circuit.reset()
