"""Request coalescing: concurrent identical misses share one upstream call.

Two layers, so it holds within a worker and across workers and hosts:

1. In this process, the first request for a cache key opens a `Flight`;
   identical requests that arrive while it is open follow it (a condition
   variable, cooperative under gevent).
2. With Redis, the flight's opener then takes a Redis lock for the key
   (SET NX with the flight's id). If another process holds it, the opener
   follows that flight instead, reading its events from a Redis list
   (`<key>:flight:<id>`) with short sleeps, and relays them to its own local
   followers. The lock is usually asked for with the cache lookup itself
   (`Prelock`, `Store.lookup`): taken atomically when the entry is missing,
   so a miss makes one round trip before its upstream call, not two.

The leader publishes each streamed chunk as it arrives and then "done" with
the full response, so a follower that joins mid-stream gets the chunks so
far and then the rest live. If the leader's own client leaves mid-stream while
others follow, the leader still reads the answer to its end for them (and
stores it); with no follower it hangs up. If the leader fails, followers get the same
error; if it vanishes (its lock expires or it stops publishing for
LLM_COALESCE_WAIT seconds) followers give up waiting and make their own call.
A follower never waits past its own request's deadline (`until`): then it
gets `Expired`.

The leader's lock lives as long as the leader's deadline (plus a little), and
the leader ends its flight on every path: answer, failure, or abandon.
"""

import json
import threading
import time
from functools import partial

from django.conf import settings

from corporate.background import ProcessIds
from llmgateway.cache import deferred
from llmgateway.cache.entries import FLIGHT_TTL, compact_json, flight_key, lock_key
from llmgateway.cache.store import get_store


class Abandoned(Exception):
    """The flight ended without an answer; make your own call."""


class Expired(Exception):
    """The follower's own deadline passed while it waited."""


class Failed(Exception):
    """The leader's call failed; followers report the same error."""

    def __init__(self, error):
        super().__init__(error.get("message", "upstream error"))
        self.error = error


def answer_of(kind, data):
    """How a flight ended, as its followers see it: the leader's payload, or Failed / Abandoned raised."""
    if kind == "done":
        return data
    if kind == "fail":
        raise Failed(data)
    raise Abandoned


class Flight:
    """One in-process flight: chunks so far and, at the end, the outcome."""

    def __init__(self, key):
        self.key = key
        self.cond = threading.Condition()
        self.chunks = []
        self.outcome = None  # ("done", payload) | ("fail", error dict) | ("abandon", None)
        self.followers = 0

    def publish(self, chunk):
        with self.cond:
            self.chunks.append(chunk)
            self.cond.notify_all()

    def end(self, kind, data=None):
        with self.cond:
            if self.outcome is None:
                self.outcome = (kind, data)
            self.cond.notify_all()

    def follow(self, wait, until=None):
        """Yield ("chunk", chunk)... then ("done", payload); raise Failed, Abandoned or Expired.

        wait: seconds without news before giving up; until: the follower's deadline (time.monotonic()).
        """
        seen = 0
        while True:
            with self.cond:
                give_up = time.monotonic() + wait
                while len(self.chunks) == seen and self.outcome is None:
                    now = time.monotonic()
                    if until is not None and now >= until:
                        raise Expired
                    if now >= give_up:
                        raise Abandoned
                    self.cond.wait(min(give_up, until or give_up) - now)
                new = self.chunks[seen:]
                seen = len(self.chunks)
                # Chunks come before the outcome, so this snapshot is consistent.
                outcome = self.outcome
            for chunk in new:
                yield "chunk", chunk
            if outcome is not None:
                yield "done", answer_of(*outcome)
                return


_flights = {}
_flights_lock = threading.Lock()
_flight_ids = ProcessIds(12)


def followed_key(list_key):
    """The mark a follower in another process puts on a flight (its events' list key)."""
    return f"{list_key}:followed"


def _flight_id():
    """A new flight's id, unique across processes (no system call, unlike a random token)."""
    prefix, number = _flight_ids.next()
    return f"{prefix}{number:x}"


def _closing_ops(list_key, key, kind, data=None, response_json=None):
    """The store operations that end a flight led across processes: its last event, and its lock removed.

    response_json: `data["response"]` already encoded as compact JSON (bytes), put into the event as it is.
    """
    event = _event_json(kind, data, response_json)
    # The lock is removed only while it is still this flight's (its id ends the list key): a lock that
    # expired under a slow leader may since have been taken by another flight.
    flight_id = list_key.rsplit(":", 1)[1]
    return [("push", list_key, event, FLIGHT_TTL), ("delete_if", lock_key(key), flight_id)]


def _event_json(kind, data, response_json=None):
    """The event {"t": kind, "d": data} as compact JSON; the same text when `response_json` (its response) is given."""
    if response_json is None or not isinstance(data, dict) or next(iter(data), None) != "response":
        return compact_json({"t": kind, "d": data})
    rest = {name: value for name, value in data.items() if name != "response"}
    tail = compact_json(rest)[1:] if rest else "}"
    return f'{{"t":{compact_json(kind)},"d":{{"response":{response_json.decode()}{"," if rest else ""}{tail}}}'


def _end_ops(key, remote, kind, data, also, response_json=None):
    """The store operations that end a flight: `also()`'s (the cache entry), then the flight's closing ones."""
    ops = also() if also is not None else []
    if remote:
        ops += _closing_ops(remote, key, kind, data, response_json)
    return ops


class Participation:
    """This request's part in a flight: leader, follower, or solo (no coalescing)."""

    role = "solo"

    def __init__(self, key=None, flight=None):
        self.key = key
        self.flight = flight
        self._remote = None  # Redis list key when this process leads across processes
        self._closed = False
        # The cache entry as read when the flight was opened: an identical call may
        # have finished between the lookup and now. None when not read.
        self.rechecked = False
        self.recheck = None

    # Leader side -------------------------------------------------------
    def publish(self, chunk):
        if self.flight is not None:
            self.flight.publish(chunk)
        if self._remote:
            get_store().push(self._remote, compact_json({"t": "c", "d": chunk}), FLIGHT_TTL)

    def _end(self, kind, data=None, also=None, response_json=None, written=None):
        """Close the flight; `also`: a function giving store operations to run in the same round trip (the entry).

        response_json: the answer's response already encoded (`_closing_ops`); written: called once they were sent.
        """
        remote = None
        if not self._closed:
            self._closed = True
            if self.flight is not None:
                self.flight.end(kind, data)
                with _flights_lock:
                    if _flights.get(self.key) is self.flight:
                        del _flights[self.key]
            remote = self._remote
        if also is not None or remote:
            # In a view, after the response is sent (the entry and the event encoded then too); local
            # followers already have the answer.
            deferred.defer_write(partial(_end_ops, self.key, remote, kind, data, also, response_json), written)
        elif written is not None:
            written()

    def finish(self, payload, also=None, response_json=None, written=None):
        self._end("done", payload, also, response_json, written)

    def fail(self, error):
        self._end("fail", error)

    def abandon(self):
        self._end("abandon")

    def leave(self):
        """This request stops taking part: a flight it opened and did not end is abandoned."""
        if not self._closed:
            self.abandon()

    def has_followers(self):
        """Whether identical requests follow this flight: in this process, or in others (they mark it)."""
        if self.flight is not None and self.flight.followers:
            return True
        return bool(self._remote) and get_store().exists(followed_key(self._remote))

    # Follower side -----------------------------------------------------
    def follow(self, until=None):
        raise NotImplementedError


class Leader(Participation):
    role = "leader"


class LocalFollower(Participation):
    role = "follower"

    def leave(self):
        # The flight is its leader's to end; this request no longer reads it.
        if not self._closed:
            self._closed = True
            with _flights_lock:  # as it was counted (enter)
                self.flight.followers -= 1

    def follow(self, until=None):
        return self.flight.follow(settings.LLM_COALESCE_WAIT, until)


class RemoteFollower(Participation):
    """Opened the local flight but another process leads: relay its events here and to local followers."""

    role = "follower"

    def __init__(self, key, flight, list_key):
        super().__init__(key, flight)
        self.list_key = list_key

    def follow(self, until=None):
        store = get_store()
        # Tells the leader someone reads its flight: should its own client leave, it goes on to the end.
        # Kept for as long as this follower may wait (its deadline), however long the answer takes.
        mark_ttl = FLIGHT_TTL if until is None else max(FLIGHT_TTL, int(until - time.monotonic()) + 10)
        store.add(followed_key(self.list_key), b"1", mark_ttl)
        wait = settings.LLM_COALESCE_WAIT
        index, pause = 0, 0.002
        last_progress = last_lock_check = time.monotonic()
        lock_gone = False
        while True:
            items = store.read_list(self.list_key, index)
            if items:
                last_progress, pause = time.monotonic(), 0.002
            for raw in items:
                index += 1
                event = json.loads(raw)
                kind, data = event.get("t"), event.get("d")
                if kind == "c":
                    self.flight.publish(data)
                    yield "chunk", data
                    continue
                self._end(kind, data)
                yield "done", answer_of(kind, data)
                return
            if items:
                continue
            now = time.monotonic()
            if until is not None and now >= until:
                self.abandon()  # local followers of this one decide for themselves
                raise Expired
            if lock_gone or now - last_progress > wait or not store.available():
                self.abandon()
                raise Abandoned
            if now - last_lock_check > 0.25:
                last_lock_check = now
                # Lock gone and no outcome: read once more, then give up.
                lock_gone = not store.exists(lock_key(self.key))
            time.sleep(pause)
            pause = min(0.05, pause * 1.5)


class Prelock:
    """A coalescing lock asked for with the cache lookup (`Store.lookup`), taken there if the entry is missing.

    After the lookup, `holder` is the lock's holder (this flight's id when it
    was taken here), or None when the entry was there (nothing asked). `enter`
    then uses it instead of a round trip of its own; a request that does not
    get that far gives the lock back with `release()`.
    """

    def __init__(self, key, lock_ttl):
        self.key = key
        self.flight_id = _flight_id()
        self.ttl = max(1, int(lock_ttl))
        self.holder = None

    def command(self):
        return (lock_key(self.key), self.flight_id, self.ttl)

    def found(self, holder):
        self.holder = holder.decode() if isinstance(holder, bytes) else holder

    @property
    def taken(self):
        return self.holder == self.flight_id

    def release(self):
        """Give back a lock taken by the lookup and not used (safe to repeat; nothing when not taken here)."""
        if self.taken:
            self.holder = None
            ops = _closing_ops(f"{flight_key(self.key)}:{self.flight_id}", self.key, "abandon")
            deferred.defer_write(lambda: ops)


def _enter_locked(prelock):
    """enter() once the lookup asked for the lock: no round trip."""
    key, holder = prelock.key, prelock.holder
    prelock.holder = None  # the lock, if taken, is now the flight's to end
    with _flights_lock:
        flight = _flights.get(key)
        if holder != prelock.flight_id and flight is not None and flight.outcome is None:
            flight.followers += 1
            return LocalFollower(key, flight)
        # A flight of this process that is still open follows the lock's holder, which is now this one.
        flight = Flight(key)
        _flights[key] = flight
    if holder == prelock.flight_id:
        part = Leader(key, flight)
        part._remote = f"{flight_key(key)}:{holder}"
    else:
        part = RemoteFollower(key, flight, f"{flight_key(key)}:{holder}")
    # Read and locked in one atomic step: no identical call finished in between.
    part.rechecked, part.recheck = True, None
    return part


def enter(key, lock_ttl, prelock=None):
    """This request's Participation for a cache key (prelock: the lock as asked for with the lookup)."""
    if prelock is not None and prelock.holder is not None and prelock.key == key:
        return _enter_locked(prelock)
    with _flights_lock:
        flight = _flights.get(key)
        if flight is not None and flight.outcome is None:
            flight.followers += 1
            return LocalFollower(key, flight)
        flight = Flight(key)
        _flights[key] = flight
    store = get_store()
    if not store.shared:
        return Leader(key, flight)
    flight_id = _flight_id()
    try:
        # One round trip: take the lock, re-read the entry, and see who holds the lock.
        acquired, entry, holder = store.batch(
            [("add", lock_key(key), flight_id, max(1, int(lock_ttl))), ("get", key), ("get", lock_key(key))]
        )
    except BaseException:
        Leader(key, flight).abandon()
        raise
    if acquired or holder is None:
        # Ours, or the other leader finished just now (its answer is in `entry`).
        leader = Leader(key, flight)
        if acquired:
            leader._remote = f"{flight_key(key)}:{flight_id}"
        leader.rechecked, leader.recheck = True, entry
        return leader
    follower = RemoteFollower(key, flight, f"{flight_key(key)}:{holder.decode()}")
    follower.rechecked, follower.recheck = True, entry
    return follower


def reset():
    """Forget local flights (tests)."""
    with _flights_lock:
        _flights.clear()
