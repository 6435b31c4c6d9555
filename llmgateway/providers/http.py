"""The one place the gateway makes HTTP calls to model providers.

Connections to each upstream stay alive between requests (a miss should
cost the upstream's time and little more). A whole answer (`post_json`, the
cache miss's call) goes out on the standard library's `http.client`, on
connections kept here: the request in one write, the answer read whole, no
client machinery in between (httpx and its httpcore/h11 layers cost about
three times its CPU). Streamed answers (`post_stream`) go through a shared
httpx client. Both raise httpx's exceptions. Neither uses proxies from the
environment (HTTPS_PROXY and the like): the httpx client is built on a
transport of its own, which httpx then does not route through them. Tests
point a model's base URL at a real local server; nothing here is mocked.

Two things happen in the network layer every connection goes through (for
httpx, below it):

- Time. httpx's timeouts count per connect, per write and per read, so an
  upstream that sends a byte every few seconds never times out. Here every
  call has an end (`until`, a `time.monotonic()` moment) and each socket
  operation inside `bounded(until)` may wait only for what is left of it:
  the whole call, headers and body, is over by then.
- Addresses. Each new connection (of either kind) resolves the host once, as it would anyway,
  and refuses link-local and metadata addresses (addresses.py) before
  connecting, so a name that comes to resolve there is refused at call time
  with no extra lookup. Kept-alive connections need neither.
"""

import http.client
import json
import logging
import select
import socket
import threading
import time
import zlib
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlsplit

import httpcore
import httpx

from llmgateway.providers import addresses
from llmgateway.providers.base import ProviderError

log = logging.getLogger("llmgateway.providers")
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=30)

USER_AGENT = "corporate-ai-gateway/1"
_client = None
_lock = threading.Lock()
# The end of the call in progress on this thread (a greenlet under gevent), or None.
_bound = threading.local()


class AddressRefused(ProviderError):
    def __init__(self, reason):
        super().__init__(
            "The gateway does not connect to this model's upstream address; an administrator must correct "
            "the model's base URL.",
            status=502,
            code="upstream_address_refused",
        )
        self.reason = reason


@contextmanager
def bounded(until):
    """Every connect, write and read inside the block ends by `until` (time.monotonic()), or times out."""
    previous = getattr(_bound, "until", None)
    _bound.until = until if previous is None else min(until, previous)
    try:
        yield
    finally:
        _bound.until = previous


def _left(timeout, timeout_error):
    """The socket timeout for one operation: httpx's own, cut to what is left of the call."""
    until = getattr(_bound, "until", None)
    if until is None:
        return timeout
    remaining = until - time.monotonic()
    if remaining <= 0:
        raise timeout_error("the call's time is up")
    return remaining if timeout is None else min(timeout, remaining)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose writes wait for the next read, so a request's head and body leave in one system call.

    httpcore writes a request's head and each part of its body separately;
    every write on a socket is a system call that also wakes the upstream.
    Nothing is sent until the response is read, so the request is sent whole,
    in one write, right before it.
    """

    def __init__(self, stream):
        self._stream = stream
        self._unsent = []

    def _flush(self, timeout=None):
        if self._unsent:
            data, self._unsent = b"".join(self._unsent), []
            self._stream.write(data, _left(timeout, httpcore.WriteTimeout))

    def read(self, max_bytes, timeout=None):
        self._flush(timeout)
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer, timeout=None):
        _left(timeout, httpcore.WriteTimeout)  # a call whose time is up writes nothing more
        if buffer:
            self._unsent.append(bytes(buffer))

    def close(self):
        self._unsent = []
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _BoundedStream(
            self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info):
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, with allowed addresses only and the call's end applied."""

    def __init__(self):
        self._backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = _left(timeout, httpcore.ConnectTimeout)
        try:
            candidates = addresses.addresses_to_connect(host, port)
        except addresses.Refused as exc:
            log.warning("refused to connect to a model upstream: %s", exc)
            raise AddressRefused(str(exc)) from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        failure = None
        for address in candidates:
            try:
                stream = self._backend.connect_tcp(
                    address, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            return _BoundedStream(stream)
        raise failure

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("the gateway calls models over TCP only")

    def sleep(self, seconds):
        time.sleep(seconds)


def _transport():
    transport = httpx.HTTPTransport(limits=LIMITS)
    # httpx takes no network backend of its own; its pool is httpcore's, which does.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=LIMITS.max_connections,
        max_keepalive_connections=LIMITS.max_keepalive_connections,
        keepalive_expiry=LIMITS.keepalive_expiry,
        network_backend=_GuardedBackend(),
    )
    return transport


def client():
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = httpx.Client(
                    transport=_transport(),
                    follow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                )
    return _client


def _timeout(until):
    seconds = max(0.001, until - time.monotonic())
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


# The JSON that httpx's Client.post(json=...) would send.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def post_json(url, *, headers, body, until):
    """POST a JSON body and read the whole response, all by `until` (time.monotonic()).

    Returns a `Reply`; raises httpx's exceptions (a timeout, a connection or protocol error).
    No redirect is followed.
    """
    data = _encode_json(body).encode()
    with bounded(until):
        return _post_direct(_target(url), headers, data)


class Reply:
    """A whole upstream answer: status, headers (looked up by any case) and body."""

    __slots__ = ("status_code", "headers", "content")

    def __init__(self, status_code, headers, content):
        self.status_code, self.headers, self.content = status_code, headers, content

    @property
    def text(self):
        return self.content.decode(errors="replace")

    def json(self):
        return json.loads(self.content)


# Whole answers: http.client connections kept per upstream -------------------------------------------

KEEP_IDLE = LIMITS.max_keepalive_connections  # per upstream
_idle = {}  # (scheme, host, port) -> [(connection, time.monotonic() when put back)]
READ_SIZE = 65536


@lru_cache(maxsize=256)
def _target(url):
    """(scheme, host, port, path with query, Host header) of a URL."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host_header += f":{parts.port}"
    return scheme, host, port, path, host_header


def open_socket(host, port, timeout):
    """A TCP connection to an allowed address of `host` (addresses.py); AddressRefused or an httpx error."""
    try:
        candidates = addresses.addresses_to_connect(host, port)
    except addresses.Refused as exc:
        log.warning("refused to connect to a model upstream: %s", exc)
        raise AddressRefused(str(exc)) from None
    except (OSError, UnicodeError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
    failure = None
    for address in candidates:
        try:
            sock = socket.create_connection((address, port), _left(timeout, httpx.ConnectTimeout))
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host} timed out") from None
        except OSError as exc:
            failure = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise httpx.ConnectError(f"cannot connect to {host}: {failure}")


class _Connection(http.client.HTTPConnection):
    """http.client's connection over `open_socket`, whose request leaves in one write (see `sendall`)."""

    def __init__(self, host, port):
        super().__init__(host, port, timeout=10.0)
        self._unsent = []

    def connect(self):
        self.sock = open_socket(self.host, self.port, min(self.timeout, 10.0))

    def send(self, data):
        # http.client writes a request's head and its body separately: both wait for `sendall`.
        self._unsent.append(data)

    def sendall(self):
        data, self._unsent = b"".join(self._unsent), []
        self.sock.settimeout(_left(None, httpx.WriteTimeout))
        self.sock.sendall(data)


class _TLSConnection(_Connection):
    def connect(self):
        super().connect()
        self.sock.settimeout(_left(10.0, httpx.ConnectTimeout))
        self.sock = _ssl_context().wrap_socket(self.sock, server_hostname=self.host)


@lru_cache(maxsize=1)
def _ssl_context():
    return httpx.create_ssl_context()  # certifi's roots, as the httpx client uses


def _readable(sock):
    """An idle kept-alive socket with something to read has been closed (or spoiled) by the upstream."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _checkout(origin):
    idle = _idle.get(origin)
    now = time.monotonic()
    while idle:
        connection, since = idle.pop()
        if now - since < LIMITS.keepalive_expiry and not _readable(connection.sock):
            return connection
        connection.close()
    scheme, host, port = origin
    return (_TLSConnection if scheme == "https" else _Connection)(host, port)


def _checkin(origin, connection):
    idle = _idle.setdefault(origin, [])
    if len(idle) < KEEP_IDLE:
        idle.append((connection, time.monotonic()))
    else:
        connection.close()


def _post_direct(target, headers, data):
    scheme, host, port, path, host_header = target
    origin = (scheme, host, port)
    connection = _checkout(origin)
    phase = httpx.ConnectTimeout
    try:
        if connection.sock is None:
            connection.connect()
        phase = httpx.WriteTimeout
        connection.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host_header)
        for name, value in _request_headers(headers):
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        connection.sendall()
        phase = httpx.ReadTimeout
        connection.sock.settimeout(_left(None, httpx.ReadTimeout))
        response = connection.getresponse()
        parts = []
        while True:
            # Each read waits at most for what is left of the call: a trickling body times out too.
            connection.sock.settimeout(_left(None, httpx.ReadTimeout))
            part = response.read1(READ_SIZE)
            if not part:
                break
            parts.append(part)
        response.close()  # its reader only: the connection stays open
    except BaseException as exc:
        connection.close()
        if isinstance(exc, TimeoutError):
            raise phase(f"the upstream call timed out ({phase.__name__})") from None
        if phase is httpx.ConnectTimeout and isinstance(exc, OSError):  # TLS refused, connection reset
            raise httpx.ConnectError(f"cannot connect to {host}: {exc!r}") from None
        if isinstance(exc, http.client.HTTPException | ConnectionError):
            raise httpx.RemoteProtocolError(f"the upstream broke off the exchange: {exc!r}") from None
        if isinstance(exc, OSError) and not isinstance(exc, httpx.HTTPError):
            raise httpx.ReadError(f"the upstream connection failed: {exc!r}") from None
        raise
    if response.will_close:
        connection.close()
    else:
        _checkin(origin, connection)
    try:
        content = _decoded(response, b"".join(parts))
    except zlib.error:
        raise httpx.DecodingError("the upstream's compressed answer is corrupt") from None
    return Reply(response.status, response.headers, content)


def _request_headers(headers):
    # No Accept-Encoding: the answer comes as it is (small JSON; see `_decoded` for an upstream that compresses anyway).
    return {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}.items()


def _decoded(response, content):
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(content, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return zlib.decompress(content)
        except zlib.error:
            return zlib.decompress(content, -zlib.MAX_WBITS)
    return content


@contextmanager
def post_stream(url, *, headers, body, until):
    """POST a JSON body and yield the response with its headers read by `until` and its body unread.

    Read the body inside `bounded(...)` (each read ends by the bound in force).
    """
    http = client()
    request = http.build_request("POST", url, headers=headers, json=body, timeout=_timeout(until))
    with bounded(until):
        response = http.send(request, stream=True)
    try:
        yield response
    finally:
        response.close()


def reset():
    """Close pooled connections (tests that restart the upstream)."""
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _target.cache_clear()
        for idle in list(_idle.values()):
            while idle:
                idle.pop()[0].close()
