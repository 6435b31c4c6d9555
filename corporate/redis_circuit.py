"""One fast-fail pause for every use of Redis in this process.

After a connection error or a timeout, every use of Redis in the process
(Django's cache: the sessions' cache layer and anything else on `cache`;
the gateway's store; the health check) is answered "unavailable" at once for
REDIS_RETRY_SECONDS, without touching the network. Then one caller tries
again while the others still fail fast; if it gets an answer, Redis is used
again. An outage thus costs a process one socket timeout
(REDIS_SOCKET_TIMEOUT_MS) per interval instead of one per cache operation,
and the log gets one warning per interval instead of a traceback per
operation.

The pause lives in the redis-py connections: `CircuitConnectionFactory`
(django-redis's CONNECTION_FACTORY) builds its pools with connection classes
bound to `circuit`, so every client taken from them shares it, including the
raw client the gateway's store gets from django-redis.

`circuit.failed_at` (wall clock) tells caches of the database what this
process knows: an invalidation sent around that time may have been lost.
"""

import logging
import threading
import time

from django.conf import settings
from django_redis.pool import ConnectionFactory
from redis import Redis, exceptions
from redis.connection import Connection, parse_url

# What "Redis is not answering" looks like to redis-py (connection refused or lost, timeouts, loading ...).
UNAVAILABLE = (exceptions.ConnectionError, exceptions.TimeoutError)

log = logging.getLogger("corporate.redis")


class Circuit:
    """Closed (use Redis), or open until a moment (answer "unavailable"), then one probe."""

    def __init__(self, retry_seconds=None):
        self._retry_seconds = retry_seconds
        self._open_until = 0.0  # time.monotonic(); 0 when closed
        self._prober = None  # the thread (greenlet) allowed to try while open
        self._warned_at = None
        self._lock = threading.Lock()
        self.failed_at = 0.0  # time.time() of the last failure
        # Failures so far: a connection made before the last one may hold a dead socket (Redis restarted).
        self.generation = 0

    @property
    def retry_seconds(self):
        if self._retry_seconds is not None:
            return self._retry_seconds
        return settings.REDIS_RETRY_SECONDS

    def allow(self):
        """May this caller use Redis now? False while paused; once the pause is over, True for one caller."""
        until = self._open_until
        if not until:
            return True
        me = threading.get_ident()
        now = time.monotonic()
        if now < until:
            return self._prober == me
        with self._lock:
            if self._open_until == until:
                # The pause is over: this caller tries; the others keep failing fast meanwhile.
                self._open_until = now + self.retry_seconds
                self._prober = me
                return True
            return self._prober == me

    def is_open(self):
        until = self._open_until
        return bool(until) and time.monotonic() < until

    def failed(self, exc):
        retry = self.retry_seconds
        now = time.monotonic()
        with self._lock:
            self._open_until = now + retry
            self._prober = None
            self.failed_at = time.time()
            self.generation += 1
            warn = self._warned_at is None or now - self._warned_at >= retry
            if warn:
                self._warned_at = now
        if warn:
            log.warning(
                "Redis unavailable (%s: %s); every use of Redis in this process answers 'unavailable' for %ss",
                exc.__class__.__name__,
                exc,
                retry,
            )

    def succeeded(self):
        if not self._open_until:
            return
        with self._lock:
            reopened, self._open_until, self._prober = bool(self._open_until), 0.0, None
        if reopened:
            log.info("Redis answers again")

    def reset(self):
        with self._lock:
            self._open_until, self._prober, self._warned_at, self.failed_at = 0.0, None, None, 0.0


circuit = Circuit()


class CircuitOpen(exceptions.ConnectionError):
    """Not tried: Redis failed a moment ago (a ConnectionError, so every caller treats it as one)."""


class CircuitConnectionMixin:
    """A redis-py connection that asks its circuit before using the network and reports failures."""

    circuit = None  # set by bind()
    generation = 0  # the circuit's generation when this connection's socket was made

    def _check(self):
        circuit = self.circuit
        if not circuit.allow():
            raise CircuitOpen("Redis is paused after a failure")
        if self.generation != circuit.generation and self._sock is not None:
            # Made before Redis last failed: after a restart its socket is dead, and trying it would cost
            # another whole interval (connections held outside a pool, like the gateway store's, are not
            # checked on the way out of one). A new socket is a millisecond.
            self.disconnect()

    def connect_check_health(self, *args, **kwargs):
        if self._sock:
            return super().connect_check_health(*args, **kwargs)
        self._check()
        self.generation = self.circuit.generation  # before connecting: the handshake sends commands
        try:
            return super().connect_check_health(*args, **kwargs)
        except UNAVAILABLE as exc:
            self.circuit.failed(exc)
            raise

    def send_packed_command(self, command, check_health=True):
        self._check()
        try:
            return super().send_packed_command(command, check_health=check_health)
        except CircuitOpen:
            raise
        except UNAVAILABLE as exc:
            self.circuit.failed(exc)
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except UNAVAILABLE as exc:
            self.circuit.failed(exc)
            raise
        self.circuit.succeeded()
        return response


_bound = {}


def bind(connection_class, to=None):
    """connection_class (redis-py) with the circuit `to` (default: the process's) in front of it."""
    to = to or circuit
    key = (connection_class, id(to))
    if key not in _bound:
        _bound[key] = type(f"Circuit{connection_class.__name__}", (CircuitConnectionMixin, connection_class), {})
        _bound[key].circuit = to
    return _bound[key]


def connection_class_for(url, to=None):
    """The circuit-bound connection class for a redis://, rediss:// or unix:// URL."""
    return bind(parse_url(url).get("connection_class", Connection), to)


def client(url, timeout, to=None):
    """A redis-py client for url whose connections go through the circuit `to`."""
    return Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, connection_class=connection_class_for(url, to)
    )


class CircuitConnectionFactory(ConnectionFactory):
    """django-redis's connection factory, with the process's circuit in every pooled connection."""

    _pools = {}  # not shared with the plain factory's pools

    def get_connection_pool(self, params):
        return super().get_connection_pool({**params, "connection_class": connection_class_for(params["url"])})


def cache_settings(url, timeout, key_prefix):
    """The Django cache on Redis: django-redis, errors turned into misses, the circuit in front."""
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": key_prefix,
        "KEY_FUNCTION": "corporate.installation.make_key",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "CONNECTION_FACTORY": "corporate.redis_circuit.CircuitConnectionFactory",
            "SOCKET_CONNECT_TIMEOUT": timeout,
            "SOCKET_TIMEOUT": timeout,
            # A Redis outage degrades to "no cache", never to an error page.
            "IGNORE_EXCEPTIONS": True,
        },
    }
