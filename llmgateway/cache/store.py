"""Where the gateway keeps shared state: Redis when the cache is Redis, else this process's cache.

Two implementations of one small interface:

- `RedisStore` talks to Redis directly (the django-redis connection pool, so
  the same socket timeouts), storing plain bytes. When Redis fails, it
  answers "nothing there"; after a connection error or timeout the process's
  Redis circuit (corporate/redis_circuit.py, shared with Django's cache)
  answers "unavailable" for REDIS_RETRY_SECONDS without trying again, so no
  request waits more than one socket timeout, and one warning is logged per
  interval.
- `LocalStore` keeps the same data in a Django cache: without Redis, files
  under VAR_DIR/gateway-cache, shared by the workers and management commands
  of the host (counters under a file lock); in tests, the default
  local-memory cache, emptied before each test. When the cache is
  per process, records that must change everywhere at once (key info,
  workspace info, model specs) carry an epoch read from a stamp file under
  VAR_DIR (one per installation): `invalidate` also bumps the stamp, and every
  other process on the host stops using its old records on its next request
  (one stat call).

Keys go through `cache.make_key`, so the deployment's CACHE_KEY_PREFIX and
the database's installation id apply. Values are bytes (JSON) in both.
"""

import logging
import os
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.cache import cache as default_cache

log = logging.getLogger("llmgateway.cache.store")


class Store:
    """Interface; see the two implementations below."""

    shared = False  # True when other processes see the same data

    def get_many(self, keys):
        raise NotImplementedError

    def lookup(self, keys, lock=None, settle=True):
        """get_many(keys); with lock=(lock key, value, ttl), also takes the lock when the last key has no value.

        Then the result has one value more: who holds the lock (`value`, as bytes, when
        taken here), or None when the last key had a value. With Redis in one round trip,
        atomically: a cache miss and its coalescing lock (cache/coalesce.py) at once.
        settle=False: a likely miss, whose reply is read as soon as it is there (RedisStore._pipe).
        """
        values = self.get_many(keys)
        if lock is None:
            return values
        holder = None
        if values[-1] is None:
            lock_key, value, ttl = lock
            holder = value if self.add(lock_key, value, ttl) else self.get_many([lock_key])[0]
            holder = holder.encode() if isinstance(holder, str) else holder
        return [*values, holder]

    def set(self, key, value, ttl):
        raise NotImplementedError

    def delete(self, *keys):
        raise NotImplementedError

    def delete_if(self, key, value):
        """Delete `key` only while it holds `value` (a str); True when deleted."""
        current = self.get_many([key])[0]
        if isinstance(current, bytes):
            current = current.decode()
        if current != value:
            return False
        self.delete(key)
        return True

    def invalidate(self, *keys):
        """Drop cached records because what they were built from changed."""
        self.delete(*keys)

    def add(self, key, value, ttl):
        """Set only if absent; True when this call set it."""
        raise NotImplementedError

    def incr_hashes(self, updates):
        """updates: {hash key: {field: int}}; counters that never expire."""
        raise NotImplementedError

    def read_hash(self, key):
        raise NotImplementedError

    def push(self, key, value, ttl):
        """Append to a list that expires ttl seconds after the last append."""
        raise NotImplementedError

    def read_list(self, key, start):
        raise NotImplementedError

    def append(self, key, values):
        """Append values to a list that never expires (a queue); False when the store did not take them."""
        raise NotImplementedError

    def head(self, key, count):
        """The first `count` items of a queue."""
        raise NotImplementedError

    def drop_head(self, key, count):
        """Remove the first `count` items of a queue (after they were handled)."""
        raise NotImplementedError

    def length(self, key):
        raise NotImplementedError

    def exists(self, key):
        raise NotImplementedError

    def batch(self, ops):
        """Several operations in one round trip; one result per op.

        ops: ("get", key) | ("set", key, value, ttl) | ("add", key, value, ttl)
        | ("push", key, value, ttl) | ("delete", key) | ("delete_if", key, value): deleted only while it
        holds `value` (a str).
        """
        results = []
        for name, key, *args in ops:
            if name == "get":
                results.append(self.get_many([key])[0])
            elif name == "delete":
                results.append(self.delete(key))
            elif name == "delete_if":
                results.append(self.delete_if(key, args[0]))
            else:
                results.append(getattr(self, name)(key, *args))
        return results

    def available(self):
        return True

    def unreliable_before(self):
        """Records cached before this moment (time.time()) may have missed an invalidation."""
        return 0.0


# Keys of records that every process must drop together (see LocalStore).
RECORD_MARKERS = (":gw:key:", ":gw:wsinfo:", ":gw:ws:", ":gw:model:")


def default_stamp():
    """One stamp per database: the processes that share a database share their records' epoch."""
    from corporate import installation

    if getattr(settings, "TESTING", False):
        # Each test run has its own database; keep its stamp out of var/.
        import atexit
        import tempfile

        path = Path(tempfile.gettempdir()) / f"gateway-records-test-{os.getpid()}.stamp"
        atexit.register(path.unlink, missing_ok=True)
        return path
    return Path(settings.VAR_DIR) / f"gateway-records-{installation.current()}.stamp"


class LocalStore(Store):
    """This process only, in Django's cache (local memory by default)."""

    def __init__(self, cache=None, stamp=None, lock_path=None):
        self.cache = cache or default_cache
        self._thread_lock = threading.Lock()
        # With a file cache shared by processes, counters are updated under a file lock.
        self._lock_file = Path(lock_path) / ".counters.lock" if lock_path else None
        self.stamp = Path(stamp or default_stamp())

    @contextmanager
    def _lock(self):
        with self._thread_lock:
            if self._lock_file is None:
                yield
                return
            import fcntl

            self._lock_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self._lock_file, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _epoch(self):
        try:
            return os.stat(self.stamp).st_mtime_ns
        except OSError:
            return 0

    def _keys(self, keys):
        epoch = None
        mapped = []
        for key in keys:
            if any(marker in key for marker in RECORD_MARKERS):
                epoch = self._epoch() if epoch is None else epoch
                key = f"{key}@{epoch}"
            mapped.append(key)
        return mapped

    def get_many(self, keys):
        mapped = self._keys(keys)
        found = self.cache.get_many(mapped)
        return [found.get(key) for key in mapped]

    def set(self, key, value, ttl):
        self.cache.set(self._keys([key])[0], value, ttl)

    def delete(self, *keys):
        self.cache.delete_many(self._keys(keys))

    def invalidate(self, *keys):
        self.delete(*keys)
        try:
            self.stamp.touch()
            os.utime(self.stamp, ns=(time.time_ns(), time.time_ns()))
        except OSError:
            log.warning("cannot touch %s; other processes keep their cached gateway records", self.stamp)

    def add(self, key, value, ttl):
        return self.cache.add(key, value, ttl)

    def incr_hashes(self, updates):
        with self._lock():
            for key, fields in updates.items():
                current = self.cache.get(key) or {}
                for field, amount in fields.items():
                    current[field] = current.get(field, 0) + amount
                self.cache.set(key, current, None)

    def read_hash(self, key):
        return dict(self.cache.get(key) or {})

    def push(self, key, value, ttl):
        with self._lock():
            items = self.cache.get(key) or []
            items.append(value)
            self.cache.set(key, items, ttl)

    def read_list(self, key, start):
        return (self.cache.get(key) or [])[start:]

    def append(self, key, values):
        with self._lock():
            self.cache.set(key, (self.cache.get(key) or []) + list(values), None)
        return True

    def head(self, key, count):
        return (self.cache.get(key) or [])[:count]

    def drop_head(self, key, count):
        with self._lock():
            self.cache.set(key, (self.cache.get(key) or [])[count:], None)

    def length(self, key):
        return len(self.cache.get(key) or [])

    def exists(self, key):
        return self.cache.get(key) is not None


def _packed(connection, commands):
    """The commands in Redis's protocol: hiredis's packer itself when the connection uses it.

    redis-py's wrapper inspects every argument in Python first (about 1.5 µs each: a limit
    script's 26 arguments cost more than the round trip's other work); ours are str, bytes or int.
    """
    if _pack_command is not None and type(connection._command_packer).__name__ == "HiredisRespSerializer":
        return [b"".join([_pack_command(command) for command in commands])]
    return connection.pack_commands(commands)


try:
    from hiredis import pack_command as _pack_command
except ImportError:  # redis-py's own packer
    _pack_command = None


def _gevent_wait():
    """Under gevent: a function that waits for a connection's reply through the event loop, else None.

    A request of a gevent worker whose Redis reply is already in its socket when it reads it would go
    on without letting the loop run; one whose reply is not there yet waits a whole turn of the loop,
    every other connection's work. So one hit of two waited a turn and the other did not, and the
    waiting ones made the tail of a cache hit (p99 1.3-1.5x the bare floor's at 64 connections, whose
    django-redis read always waits). Waiting for every reply through the loop serves them all alike
    (p99 1.04-1.08x in the same runs, with no fewer requests a second); waiting only after a hit's
    reply was read did not give the hits the same tail (1.56x), so the wait comes before the read.
    A likely miss (a request body the process has not prepared before) skips the wait: it would pay a
    whole turn before its upstream call (its added latency at 64 connections 9-11 -> 18-22 ms on 2
    cores) for a fairness among hits it takes no part in. The wait is bounded by the
    connection's own socket timeout and ends as redis-py's read would (TimeoutError); a TLS connection
    is read as it is (its decrypted bytes may wait in the TLS layer where the loop cannot see them).
    """
    try:
        from gevent import monkey
    except ImportError:
        return None
    if not monkey.is_module_patched("socket"):
        return None
    import ssl

    import redis
    from gevent.socket import wait_read

    def wait(connection):
        sock = connection._sock
        if sock is None or isinstance(sock, ssl.SSLSocket):
            return
        wait_read(
            sock.fileno(),
            timeout=connection.socket_timeout,
            timeout_exc=redis.exceptions.TimeoutError("Timeout reading from socket"),
        )

    return wait


_green_wait = _gevent_wait()  # modules are imported after the worker has patched the standard library


class RedisStore(Store):
    """Redis, with every failure turned into "nothing there" and a pause (the circuit's) before the next try."""

    shared = True

    def __init__(self, client, make_key=None, retry_interval=None, circuit=None):
        import redis

        from corporate.redis_circuit import UNAVAILABLE, Circuit

        self._unavailable = (*UNAVAILABLE, OSError)
        self._refused = redis.RedisError
        self.client = client
        self._make_key = make_key or (lambda key: key)
        # Clients from django-redis (and from_url) have the circuit in their connections; share it.
        bound = getattr(getattr(client, "connection_pool", None), "connection_class", None)
        self.circuit = circuit or getattr(bound, "circuit", None) or Circuit(retry_interval)
        self._refused_at = None
        self._response_error = redis.ResponseError
        self._no_script = redis.exceptions.NoScriptError
        # Connections of the store's own (see `_pipe`), made like the client pool's, and the process that made them.
        self._idle, self._idle_pid = [], os.getpid()
        self._lookup_script = None

    @classmethod
    def from_url(cls, url, timeout=None, retry_interval=None, **kwargs):
        """A store on its own Redis, with a circuit of its own (benchmarks, tests)."""
        from corporate import redis_circuit

        timeout = timeout if timeout is not None else settings.REDIS_SOCKET_TIMEOUT
        circuit = redis_circuit.Circuit(retry_interval)
        return cls(redis_circuit.client(url, timeout, to=circuit), circuit=circuit, **kwargs)

    def _run(self, default, operation):
        if not self.circuit.allow():
            return default
        try:
            return operation(self.client)
        except self._unavailable as exc:
            if not self.circuit.is_open():  # a client without the circuit in its connections
                self.circuit.failed(exc)
            return default
        except self._refused as exc:
            # Redis answered, with an error (out of memory, a wrong type): not an outage.
            now = time.monotonic()
            if self._refused_at is None or now - self._refused_at >= self.circuit.retry_seconds:
                self._refused_at = now
                log.warning("Redis refused a gateway operation: %s", exc)
            return default

    def available(self):
        return not self.circuit.is_open()

    def unreliable_before(self):
        """Records cached before this moment (time.time()) may have missed an invalidation: Redis failed then."""
        return self.circuit.failed_at

    # The hot path's commands ------------------------------------------------------------------
    #
    # redis-py spends more CPU choosing a connection from its pool, retrying
    # and recording its own metrics than the round trip itself takes (about
    # 80 µs a command against 15 µs for the same bytes on a held connection).
    # The commands of a cache hit and a miss (and the limit scripts) go out on
    # connections the store keeps itself: every command of a round trip packed
    # into one write, the replies read in order. Connections are made by the
    # client pool's own class, so the Redis circuit (corporate/redis_circuit.py)
    # and the socket timeouts apply; a connection that fails or is interrupted
    # mid-reply is dropped, never reused. The list needs no lock: pop and append
    # are atomic, and an empty list on pop (another thread was first) means a new one.

    IDLE_KEPT = 64

    def _connection(self):
        if self._idle_pid != os.getpid():  # a forked child must not use its parent's sockets
            self._idle, self._idle_pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:  # none idle, or the last one taken by another thread (not greenlet) just now
            pass
        pool = self.client.connection_pool
        return pool.connection_class(**pool.connection_kwargs)

    def _pipe(self, commands, settle=True):
        """Run commands in one round trip: their replies, in order (a ResponseError instance for a refused one).

        settle=False: under gevent, the reply is read without first letting the event loop run
        (`_gevent_wait`), for a lookup that is likely a miss and goes on to the upstream.
        """
        connection = self._connection()
        try:
            connection.send_packed_command(_packed(connection, commands))
            if settle and _green_wait is not None:
                _green_wait(connection)
            replies = []
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except self._response_error as exc:
                    replies.append(exc)
        except BaseException:
            connection.disconnect()
            raise
        if len(self._idle) < self.IDLE_KEPT:
            self._idle.append(connection)
        else:
            connection.disconnect()
        return replies

    def _pipe_checked(self, commands, settle=True):
        replies = self._pipe(commands, settle)
        for reply in replies:
            if isinstance(reply, self._response_error):
                raise reply
        return replies

    def run_script(self, script, keys, args, also=(), settle=True):
        """A registered Lua script (redis-py's Script) after the commands `also`, in one round trip.

        Returns (replies of `also`, the script's reply); raises what Redis answered.
        Loads the script once when Redis does not know it (a restart). settle: as for `_pipe`.
        """
        commands = [*also, ("EVALSHA", script.sha, len(keys), *keys, *args)]
        replies = self._pipe(commands, settle)
        if isinstance(replies[-1], self._no_script):
            self._pipe_checked([("SCRIPT", "LOAD", script.script)])
            replies[-1] = self._pipe([commands[-1]])[0]
        for reply in replies:
            if isinstance(reply, self._response_error):
                raise reply
        return replies[:-1], replies[-1]

    def get_many(self, keys):
        return self._run([None] * len(keys), lambda r: self._pipe_checked([("MGET", *keys)])[0])

    # KEYS: the keys to read, then the lock's; ARGV: the lock's value and its TTL in seconds.
    LOOKUP_OR_LOCK = """
local values = redis.call('MGET', unpack(KEYS, 1, #KEYS - 1))
if values[#KEYS - 1] then
  return values
end
local lock = KEYS[#KEYS]
if redis.call('SET', lock, ARGV[1], 'NX', 'EX', ARGV[2]) then
  values[#KEYS] = ARGV[1]
else
  values[#KEYS] = redis.call('GET', lock)
end
return values
"""

    def lookup(self, keys, lock=None, settle=True):
        if lock is None:
            return self._run([None] * len(keys), lambda r: self._pipe_checked([("MGET", *keys)], settle)[0])
        lock_key, value, ttl = lock
        width = len(keys) + 1
        if self._lookup_script is None:
            self._lookup_script = self.client.register_script(self.LOOKUP_OR_LOCK)

        def run(r):
            reply = self.run_script(self._lookup_script, [*keys, lock_key], [value, int(ttl)], settle=settle)[1]
            return [*reply, *[None] * (width - len(reply))]

        return self._run([None] * width, run)

    def set(self, key, value, ttl):
        self._run(None, lambda r: self._pipe_checked([("SET", key, value, "EX", int(ttl))]))

    def delete(self, *keys):
        if keys:
            self._run(None, lambda r: r.delete(*keys))

    # Compare and delete, in one step: a lock is removed only by the flight that holds it.
    DELETE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

    def delete_if(self, key, value):
        return bool(self.batch([("delete_if", key, value)])[0])

    def add(self, key, value, ttl):
        # On an error nobody holds the lock; the caller then works alone.
        return bool(self._run(True, lambda r: self._pipe_checked([("SET", key, value, "EX", int(ttl), "NX")])[0]))

    def incr_hashes(self, updates):
        def run(r):
            pipe = r.pipeline(transaction=False)
            for key, fields in updates.items():
                for field, amount in fields.items():
                    if amount:
                        pipe.hincrby(key, field, amount)
            pipe.execute()

        self._run(None, run)

    def read_hash(self, key):
        raw = self._run({}, lambda r: r.hgetall(key))
        return {k.decode(): int(v) for k, v in raw.items()}

    def push(self, key, value, ttl):
        def run(r):
            pipe = r.pipeline(transaction=False)
            pipe.rpush(key, value)
            pipe.expire(key, ttl)
            pipe.execute()

        self._run(None, run)

    def read_list(self, key, start):
        return self._run([], lambda r: r.lrange(key, start, -1))

    def append(self, key, values):
        values = list(values)
        return bool(values) and self._run(False, lambda r: r.rpush(key, *values) is not None)

    def head(self, key, count):
        return self._run([], lambda r: r.lrange(key, 0, count - 1))

    def drop_head(self, key, count):
        self._run(None, lambda r: r.ltrim(key, count, -1))

    def length(self, key):
        return self._run(0, lambda r: r.llen(key))

    def exists(self, key):
        return bool(self._run(0, lambda r: r.exists(key)))

    def batch(self, ops):
        defaults = [True if op[0] == "add" else None for op in ops]

        def run(r):
            commands, shape = [], []
            for name, key, *args in ops:
                if name == "get":
                    commands.append(("GET", key))
                elif name == "set":
                    commands.append(("SET", key, args[0], "EX", int(args[1])))
                elif name == "add":
                    commands.append(("SET", key, args[0], "EX", int(args[1]), "NX"))
                elif name == "push":
                    commands += [("RPUSH", key, args[0]), ("EXPIRE", key, int(args[1]))]
                elif name == "delete":
                    commands.append(("DEL", key))
                elif name == "delete_if":
                    commands.append(("EVAL", self.DELETE_IF, 1, key, args[0]))
                else:
                    raise ValueError(f"unknown store operation {name!r}")
                shape.append(2 if name == "push" else 1)
            replies = self._pipe_checked(commands)
            results, index = [], 0
            for (name, *_), width in zip(ops, shape, strict=True):
                reply = replies[index]
                index += width
                results.append(bool(reply) if name in ("add", "set") else reply)
            return results

        return self._run(defaults, run)


_store = None
_store_lock = threading.Lock()


@lru_cache(maxsize=1)
def _key_parts():
    # The default cache's key function, prefix and version: settings, the same
    # in every thread. Read once, because `django.core.cache.cache` is a
    # per-thread proxy whose every attribute costs a lookup on the hot path.
    from django.core.cache import caches

    backend = caches["default"]
    return backend.key_func, backend.key_prefix, backend.version


def make_key(name):
    """The default cache's full key for `name` (CACHE_KEY_PREFIX, installation id, version)."""
    key_func, prefix, version = _key_parts()
    return key_func(name, prefix, version)


def get_store():
    """The store for this process, built once from the default cache's backend."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = _build_default()
    return _store


def _build_default():
    client_getter = getattr(default_cache, "client", None)
    if client_getter is not None and hasattr(client_getter, "get_client"):
        return RedisStore(client_getter.get_client(write=True))
    if getattr(settings, "TESTING", False):
        # Tests: the default cache, emptied before every test.
        return LocalStore()
    # The embedded default without Redis: files under VAR_DIR, so the web
    # workers and management commands of this host share one cache.
    from django.core.cache.backends.filebased import FileBasedCache

    folder = Path(settings.VAR_DIR) / "gateway-cache"
    return LocalStore(cache=FileBasedCache(str(folder), {"OPTIONS": {"MAX_ENTRIES": 20_000}}), lock_path=folder)


def set_store(store):
    """Use another store (tests, benchmarks); None goes back to the default. Returns the previous one."""
    global _store
    previous, _store = _store, store
    return previous
