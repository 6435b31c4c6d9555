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
API key's record counts for a few seconds only). `renew(value)` may say a
record still good is close to that: given its identity, `from_cached` then
has it read again after the response (`cache.deferred`), once per process
and per RENEW_GAP, so the requests that arrive together at a due record do
not all query the database at once (a herd every few seconds on a busy key).
Records that know when they were read (`loaded_at`) get the same with
`renew=nearly_due(ttl)`: read again in the last RENEW_BEFORE seconds of
their TTL, so a busy workspace's or model's record never falls out of the
store while it is in use and the requests of a busy moment do not all query
the database when it would have.
"""

import time
from functools import lru_cache

from llmgateway.cache.deferred import defer
from llmgateway.cache.memo import BoundedMemo
from llmgateway.cache.store import get_store

MISSING = b"-"
NEGATIVE_TTL = 30  # "no such key / model / workspace", so junk does not reach the database each time
RENEW_GAP = 1.0  # seconds between two early reads of one record by one process (one that failed included)
RENEW_BEFORE = 60  # seconds before a long-lived record's TTL ends when it is read again early


def nearly_due(ttl, before=RENEW_BEFORE):
    """`renew` for records with a `loaded_at` (time.time() of their database read): in the last `before` s of `ttl`."""
    due = ttl - before

    def renew(value):
        return time.time() - value.loaded_at >= due

    return renew


class ReadThrough:
    def __init__(self, key, parse, load, ttl, *, fresh=None, renew=None, parsed=4096):
        self.key = key  # identity -> store key
        self._parse = lru_cache(maxsize=parsed)(parse)
        self._load = load  # identity -> value (with .dumps()) or None, from the database
        self.ttl = ttl
        self.fresh = fresh
        self.renew = renew
        self._renewed = BoundedMemo()  # identity -> time.monotonic() of this process's last early read

    def from_cached(self, raw, identity=None):
        """(found, value): (False, None) when not cached or due for a read; (True, None) for "no such row".

        identity: the record's, to have it read again early when `renew` says it is nearly due.
        """
        if raw is None:
            return False, None
        if raw == MISSING:
            return True, None
        value = self._parse(raw)
        if self.fresh is not None and not self.fresh(value):
            return False, None
        if identity is not None and self.renew is not None and self.renew(value):
            self._renew_soon(identity)
        return True, value

    def _renew_soon(self, identity):
        now = time.monotonic()
        last = self._renewed.get(identity)
        if last is None or now - last >= RENEW_GAP:
            self._renewed.put(identity, now)
            defer(self.load, identity)

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
