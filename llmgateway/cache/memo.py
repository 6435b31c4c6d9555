"""Small least-recently-used maps of what this process learnt, for the request path (cachetools' LRUCache)."""

from threading import Lock

from cachetools import LRUCache


class BoundedMemo:
    """At most `limit` entries, the least recently used dropped first; safe to share between threads and greenlets.

    cachetools' caches are not thread-safe by themselves: every access holds
    the lock (nothing inside yields, so under gevent it is never contended).
    """

    def __init__(self, limit=10_000):
        self._items = LRUCache(maxsize=limit)
        self._lock = Lock()

    def get(self, key):
        with self._lock:
            return self._items.get(key)

    def put(self, key, value):
        with self._lock:
            self._items[key] = value

    def clear(self):
        with self._lock:
            self._items.clear()
