"""The thinnest misses the benchmark compares with: WSGI applications with no framework at all.

`/v1/chat/completions` posts the body to the upstream on a kept connection and returns its answer
as it came: what one more HTTP hop through gunicorn costs on this machine. `/redis/v1/chat/completions`
first makes one Redis read (two keys, redis-py, a held connection): what a proxy that checks a
cache costs at the least. Served by the same gunicorn settings as the gateway
(`bench/gateway_bench.py`); never part of the site.
"""

import http.client
import os
import threading
from urllib.parse import urlsplit

_kept = threading.local()  # a greenlet's own under gevent
_store = None


def _redis():
    global _store
    if _store is None:
        import redis

        _store = redis.Redis.from_url(os.environ["REDIS_URL"])
    return _store


def _upstream():
    connection = getattr(_kept, "connection", None)
    if connection is None:
        address = urlsplit(os.environ["FLOOR_UPSTREAM"])
        connection = _kept.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    return connection


def forward(body):
    """(status, reason, body) of the upstream's answer to `body`, posted on this greenlet's kept connection."""
    connection = _upstream()
    try:
        connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, answer.reason, answer.read()
    except (OSError, http.client.HTTPException):
        connection.close()
        _kept.connection = None
        raise


def application(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if environ["PATH_INFO"].startswith("/redis/"):
        token = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
        _redis().mget(["bench:raw:" + token[:24], "bench:raw:entry"])
    status, reason, data = forward(body)
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
