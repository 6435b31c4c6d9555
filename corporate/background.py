"""A process's periodic writes, done by a background thread of their own (a greenlet under gevent).

Statistics, usage records and per-minute figures are added up in memory and
written out every fraction of a second. Written by the request that found
them due, after its response, the write's round trips would hold that
request's connection: its next request waits while the worker's event loop
goes round all the other connections once per round trip (tens of
milliseconds each under load, hundreds for the per-minute figures' several
round trips), which made the tail of a cache hit. A `Flusher` owns the
write instead: a request that finds it due only wakes it, and the thread
writes while every connection goes on being served.

Each process starts its own thread on first use (threads do not survive a
fork); a thread that is never woken still runs its job every `interval`
seconds, which writes what is left once traffic stops.
"""

import itertools
import logging
import os
import secrets
import sys
import threading

log = logging.getLogger("corporate")

_pid = [os.getpid()]  # this process's id, kept current across forks (os.getpid is a system call)
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def current_pid():
    """This process's id, without a system call."""
    return _pid[0]


def gevent_patched(module="socket"):
    """True in a process where gevent has made `module` of the standard library cooperative (a gevent worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched(module)


class ProcessIds:
    """Ids unique across processes, without a system call each: a random prefix per process and a count.

    `next()` gives (prefix, number); a forked process starts a prefix of its own.
    """

    def __init__(self, random_hex, first=0):
        self._random_hex, self._first = random_hex, first
        self._state = (None, "", None)

    def next(self):
        pid, prefix, counter = self._state
        if pid != current_pid():
            prefix, counter = secrets.token_hex(self._random_hex // 2), itertools.count(self._first)
            self._state = current_pid(), prefix, counter
        return prefix, next(counter)


class Flusher:
    """Runs `job(woken)` in a daemon thread every `interval` seconds, and as soon as it can when woken.

    `woken` is True when `wake()` asked for the run, False when the interval
    ran out: the job decides whether there is anything to write.
    """

    def __init__(self, name, job, interval):
        self.name, self.job, self.interval = name, job, interval
        self._pid = None  # the process whose thread is running
        self._event = None
        self._start_lock = threading.Lock()

    def wake(self):
        """Ask for a run now (a request found the write due); starts the thread in this process if needed."""
        if self._pid != current_pid():
            self.start()
        self._event.set()

    def start(self):
        """Start this process's thread unless it is running (cheap to call on every request)."""
        if self._pid == _pid[0]:
            return
        with self._start_lock:
            if self._pid == _pid[0]:
                return
            self._event = event = threading.Event()
            threading.Thread(target=self._loop, args=(event,), name=self.name, daemon=True).start()
            self._pid = _pid[0]

    def _loop(self, event):
        while True:
            woken = event.wait(self.interval)
            event.clear()
            try:
                self.job(woken)
            except Exception:  # never let a periodic write end the thread
                log.exception("%s failed", self.name)
