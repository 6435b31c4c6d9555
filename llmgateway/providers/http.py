"""The one place the gateway makes HTTP calls to model providers.

A shared httpx client keeps connections to each upstream alive between
requests (a miss should cost the upstream's time and little more). Tests
point a model's base URL at a real local server; nothing here is mocked.
"""

import threading
from contextlib import contextmanager

import httpx

_client = None
_lock = threading.Lock()


def client():
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(
                    limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30),
                    follow_redirects=False,
                    headers={"User-Agent": "corporate-ai-gateway/1"},
                )
    return _client


def _timeout(seconds):
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def post_json(url, *, headers, body, timeout):
    """POST a JSON body and read the whole response."""
    return client().post(url, headers=headers, json=body, timeout=_timeout(timeout))


@contextmanager
def post_stream(url, *, headers, body, timeout):
    """POST a JSON body and yield the response unread, for server-sent events."""
    with client().stream("POST", url, headers=headers, json=body, timeout=_timeout(timeout)) as response:
        yield response


def reset():
    """Close pooled connections (tests that restart the upstream)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
