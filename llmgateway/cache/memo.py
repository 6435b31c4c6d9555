"""A small least-recently-used map of what this process learnt, for the request path."""

from collections import OrderedDict
from threading import Lock


class BoundedMemo:
    """A small least-recently-used map (what this process learnt), safe to share between greenlets."""

    def __init__(self, limit=10_000):
        self.limit = limit
        self._items = OrderedDict()
        self._lock = Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def clear(self):
        with self._lock:
            self._items.clear()
