"""Database rows kept in the store and read through on a miss: one helper for every such record.

    workspaces = ReadThrough(workspace_info_key, WorkspaceInfo.loads, load_from_database, ttl=300)
    found, info = workspaces.from_cached(raw)      # raw bytes read in a caller's own round trip
    info = workspaces.load(workspace_id) if not found else info
    info = workspaces.get(workspace_id)            # both steps, with its own read
    workspaces.forget(workspace_id)                # what it was built from changed

A row that does not exist is kept as MISSING for NEGATIVE_TTL, so a junk
name or token does not reach the database on every request. Cached bytes are
parsed once per process: the parse is memoised by the bytes themselves
(content-addressed, so never stale), least recently used first out.
`fresh(value)` may say a parsed record is due for a new database read (an
API key's record counts for a few seconds only).
"""

from functools import lru_cache

from llmgateway.cache.store import get_store

MISSING = b"-"
NEGATIVE_TTL = 30  # "no such key / model / workspace", so junk does not reach the database each time


class ReadThrough:
    def __init__(self, key, parse, load, ttl, *, fresh=None, parsed=4096):
        self.key = key  # identity -> store key
        self._parse = lru_cache(maxsize=parsed)(parse)
        self._load = load  # identity -> value (with .dumps()) or None, from the database
        self.ttl = ttl
        self.fresh = fresh

    def from_cached(self, raw):
        """(found, value): (False, None) when not cached or due for a read; (True, None) for "no such row"."""
        if raw is None:
            return False, None
        if raw == MISSING:
            return True, None
        value = self._parse(raw)
        if self.fresh is not None and not self.fresh(value):
            return False, None
        return True, value

    def load(self, identity):
        """The value from the database (None: no such row), kept in the store for the next request."""
        value = self._load(identity)
        if value is None:
            get_store().set(self.key(identity), MISSING, NEGATIVE_TTL)
        else:
            get_store().set(self.key(identity), value.dumps(), self.ttl)
        return value

    def get(self, identity):
        found, value = self.from_cached(get_store().get_many([self.key(identity)])[0])
        return value if found else self.load(identity)

    def forget(self, *identities):
        if identities:
            get_store().invalidate(*[self.key(identity) for identity in identities])
