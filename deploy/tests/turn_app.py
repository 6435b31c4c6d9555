"""A bare WSGI app for the worker's turn-taking test: each answer says in which order the worker served it.

`/hold` blocks the whole worker (not just its greenlet) until the file named
by its `release` parameter exists, after creating the one named by `started`:
while it holds, requests pile up in the sockets, as they do on a busy worker.
"""

import os
import time
from itertools import count
from urllib.parse import parse_qs

from gevent import monkey

_served = count(1)
_blocking_sleep = monkey.get_original("time", "sleep")


def app(environ, start_response):
    if environ["PATH_INFO"] == "/hold":
        query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
        open(query["started"], "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(query["release"]) and time.monotonic() < deadline:
            _blocking_sleep(0.01)
    body = str(next(_served)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
