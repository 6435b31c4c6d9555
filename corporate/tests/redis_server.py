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

from corporate.tests.ports import free_port


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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:  # e.g. the port was taken meanwhile: never use another's server
                raise RuntimeError(f"redis-server exited with {self.process.returncode} (port {self.port})")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.05)
                continue
            if self.process.poll() is None:
                return self
        raise RuntimeError(f"redis-server did not start within 30 s (port {self.port})")

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

    def used_again(self, timeout=30):
        """After start(): wait until this process uses Redis again (see `until_closed`); the server."""
        from django.core.cache import cache

        from corporate.redis_circuit import circuit

        until_closed(circuit, lambda: cache.get("redis-server-used-again"), timeout)
        return self

    def client(self, db=0):
        import redis

        return redis.Redis.from_url(self.url(db), socket_timeout=2)

    def flushall(self):
        self.client().flushall()

    def connections_received(self):
        """Connections the server has accepted since it started (INFO stats)."""
        return int(self.client().info("stats")["total_connections_received"])


def until_closed(circuit, probe, timeout=30):
    """Wait until `circuit` is closed again after an outage, calling `probe` (a use of Redis) meanwhile.

    A circuit tries Redis again REDIS_RETRY_SECONDS after the last failure, in whichever thread comes
    first: often the usage flusher. While that try is under way, every other caller is answered
    "unavailable" (by design), so a test that only sleeps out the interval may send its request in the
    middle of the flusher's try and see the outage behaviour instead of the recovery.
    """
    deadline = time.monotonic() + timeout
    while circuit._open_until:
        if time.monotonic() > deadline:
            raise AssertionError(f"Redis was not used again within {timeout} s")
        probe()  # tries Redis once the pause is over (unless another thread is trying)
        time.sleep(0.05)


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

    # The session's store, built now if no test built it yet: never None, or a thread that looks the store
    # up while this test ends (the usage or statistics flusher), before CACHES is put back, would build
    # one on this server and keep it for the rest of the run, long after the server has stopped.
    previous = store.get_store()
    settings.CACHES = redis_caches(own_redis.url(9))
    circuit.reset()
    store.set_store(store._build_default())
    yield own_redis
    store.set_store(previous)
    circuit.reset()
