"""The one place the gateway makes HTTP calls to model providers.

Connections to each upstream stay alive between requests (a miss should
cost the upstream's time and little more). A streamed answer (`post_stream`)
goes through a shared httpx client. A whole answer (`post_json`, the cache
miss's call) goes out on connections kept here, opened by the same network
layer, its request in one write and its answer read by http.client's parser
(httpx's transport, httpcore and h11 take about three times the
instructions for the same call, and httpcore's pool more the more calls are
in flight). Both raise httpx's exceptions. Neither uses proxies from
the environment (HTTPS_PROXY and the like): the client is built on a
transport of its own, which httpx then does not route through them; an
upstream reached through an egress proxy is not supported. A base URL with a
user name or password is refused (the model's API key is the credential);
a path with spaces or other characters is percent-encoded, as httpx does.
Tests point a model's base URL at a real local server; nothing here is mocked.

Two things happen in the network layer every connection goes through:

- Time. httpx's timeouts count per connect, per write and per read, so an
  upstream that sends a byte every few seconds never times out. Here every
  call has an end (`until`, a `time.monotonic()` moment) and each socket
  operation inside `bounded(until)` may wait only for what is left of it:
  the whole call, status line, headers and body, is over by then.
- Addresses. Each new connection resolves the host once, as it would anyway,
  and refuses link-local and metadata addresses (addresses.py) before
  connecting, so a name that comes to resolve there is refused at call time
  with no extra lookup. Kept-alive connections need neither.

A whole answer is at most settings.LLM_MAX_RESPONSE_BYTES, as received and
once decompressed.
"""

import email.parser
import http.client as http_client
import io
import json
import logging
import re
import select
import threading
import time
import types
import zlib
from contextlib import contextmanager
from functools import lru_cache

import httpcore
import httpx
from django.conf import settings
from httpx._transports.default import map_httpcore_exceptions

from corporate.background import gevent_patched
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
        if info == "is_readable":  # httpcore's pool asks it of every idle connection (streams' calls)
            return _readable_now(self._stream)
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


# The JSON that httpx's Client.post(json=...) would send, made here: the client's request building
# (URL merging, cookies, auth, redirects, event hooks) costs more CPU than the rest of a call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


@lru_cache(maxsize=256)
def _parsed_url(url):
    """The httpx URL of a model's endpoint; a ProviderError for one the gateway will not call."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProviderError(
            "The model's base URL is not a valid http(s) URL; an administrator must correct it.",
            status=502,
            code="upstream_url_invalid",
        )
    if parsed.userinfo:
        raise ProviderError(
            "The model's base URL carries a user name or password, which the gateway does not send; "
            "an administrator must put the credential in the model's API key.",
            status=502,
            code="upstream_url_invalid",
        )
    return parsed


def post_json(url, *, headers, body, until):
    """POST a JSON body and read the whole response, all by `until` (time.monotonic()).

    Sent on a kept-alive connection of this module's own (`_Kept`), opened by
    the same network layer as the client's (the checks above). Returns a `Reply`
    with the body decoded; raises httpx's exceptions (a timeout, a connection
    or protocol error, an answer over settings.LLM_MAX_RESPONSE_BYTES read or
    decoded). No redirect is followed.
    """
    target = _parsed_url(url)
    data = _encode_json(body).encode()
    head = _request_head(url, tuple(headers.items())) + b"Content-Length: %d\r\n\r\n" % len(data)
    limit = settings.LLM_MAX_RESPONSE_BYTES
    with bounded(until), map_httpcore_exceptions():
        status, answer_headers, content = _exchange(target, head + data, limit)
    encoding = (answer_headers.get("Content-Encoding") or "identity").strip().lower()
    return Reply(status, answer_headers, _decoded(encoding, content, limit))


# Whole answers: connections kept here, answers read by http.client's parser -------------------------
#
# httpx's transport (httpcore and h11 under it) takes about three times the instructions of this path for the
# same call, and its pool walks every connection, for each connection, on every request and every response
# handed back. A whole answer needs none of it: the request leaves in one write, and http.client's parser reads the
# answer from the connection's buffered reader, which every read of the call goes through (`_Kept`), so:
# - every read, of the status line, headers, chunk sizes or body, waits at most for what is left of the call
#   (the stream is a `_BoundedStream`);
# - interim 1xx answers are read and skipped on the same buffer, with nothing lost between them;
# - a connection goes back to the idle list only once its answer was read to the end and the upstream did
#   not ask to close it (`Connection: close`, HTTP/1.0): no answer is left for the next request to find.

# The answer as it is: a compressed one (from an upstream that compresses anyway) is decoded by `_decoded`.
_WHOLE_HEADERS = {"Accept-Encoding": "identity", "Content-Type": "application/json"}
READ_SIZE = 65536
_idle = {}  # (scheme, host, port) -> [_Kept, ...], the most recently used last
# At most this many whole-answer calls at once per process, as the client's pool allows for its connections.
_slots = threading.BoundedSemaphore(LIMITS.max_connections)
_ssl_context = lru_cache(maxsize=1)(httpx.create_ssl_context)


@lru_cache(maxsize=256)
def _request_head(url, headers):
    """The request's head in bytes up to its Content-Length: the client's headers, then the whole answer's, then the
    call's (by any case). Made once per endpoint and headers (a model's calls all send the same ones).

    headers: the call's (name, value) pairs.
    """
    target = _parsed_url(url)
    merged = _fixed_headers().copy()
    for name, value in headers:
        merged[name.lower()] = (name, value)
    lines = [b"POST %s HTTP/1.1\r\nHost: %s\r\n" % (target.raw_path, target.netloc)]
    try:
        for name, value in merged.values():
            if _FORBIDDEN.search(name) or _FORBIDDEN.search(value):
                raise httpx.LocalProtocolError(f"the header {name!r} has a line break or a NUL character")
            lines.append(b"%s: %s\r\n" % (name.encode("ascii"), value.encode("ascii")))
    except UnicodeEncodeError:
        raise httpx.LocalProtocolError("a header of the call is not ASCII") from None
    return b"".join(lines)


_FORBIDDEN = re.compile(r"[\r\n\0]")


@lru_cache(maxsize=1)
def _fixed_headers():
    """{lower-case name: (name, value)} of the client's headers and the whole answer's."""
    return {name.lower(): (name, value) for name, value in [*client().headers.items(), *_WHOLE_HEADERS.items()]}


class _Unclosed(io.BufferedReader):
    """The connection's read buffer: an answer that is done with it (http.client closes it) leaves it open."""

    def close(self):
        pass


class _Kept(io.RawIOBase):
    """A connection for whole answers: a `_BoundedStream` and the buffer its answers are parsed from."""

    def __init__(self, origin, stream):
        self.origin, self.stream, self.since = origin, stream, 0.0
        self.reader = _Unclosed(self, READ_SIZE)

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.stream.read(len(buffer))  # bounded by what is left of the call
        buffer[: len(data)] = data
        return len(data)

    def makefile(self, mode):
        """For http.client.HTTPResponse, which reads an answer from its socket's file."""
        return self.reader

    def close(self):
        super().close()
        self.stream.close()


def _readable_now(stream):
    """Has an idle connection something to read (it was closed or spoiled by the upstream)? Asked of the system.

    httpcore's own check (`get_extra_info("is_readable")`) polls through `select.poll`, which in a gevent
    worker waits for a whole turn of the event loop, every other connection's work, before the upstream call.
    """
    sock = stream.get_extra_info("socket")
    if sock is None:
        return True  # not a socket we can ask: not used again
    poll = _system_poll()()
    poll.register(sock.fileno(), select.POLLIN)
    return bool(poll.poll(0))


@lru_cache(maxsize=1)
def _system_poll():
    """`select.poll` as the system gives it, also where gevent has made it cooperative."""
    if gevent_patched("select"):
        from gevent.monkey import get_original

        return get_original("select", "poll")
    return select.poll


def _checkout(origin):
    """An idle connection to `origin` still good to use, or a new one (address checks and the call's time apply)."""
    idle, now = _idle.get(origin), time.monotonic()
    while idle:
        try:
            kept = idle.pop()
        except IndexError:  # taken by another thread meanwhile
            break
        # An idle connection with something to read was closed (or spoiled) by the upstream.
        if now - kept.since < LIMITS.keepalive_expiry and not _readable_now(kept.stream):
            return kept
        kept.close()
    scheme, host, port = origin
    stream = _GuardedBackend().connect_tcp(host, port, timeout=10.0)
    if scheme == "https":
        try:
            stream = stream.start_tls(_ssl_context(), server_hostname=host, timeout=10.0)
        except BaseException:
            stream.close()
            raise
    return _Kept(origin, stream)


def _checkin(kept):
    idle = _idle.setdefault(kept.origin, [])
    if len(idle) < LIMITS.max_keepalive_connections:
        kept.since = time.monotonic()
        idle.append(kept)
    else:
        kept.close()


def _exchange(target, request, limit):
    """(status, headers, body) of the answer to `request` (bytes) at `target`; httpcore's or httpx's errors."""
    scheme = target.scheme
    origin = (scheme, target.host, target.port or (443 if scheme == "https" else 80))
    if not _slots.acquire(timeout=_left(None, httpcore.PoolTimeout)):
        raise httpcore.PoolTimeout("no connection came free in the call's time")
    try:
        return _exchange_on(_checkout(origin), request, limit)
    finally:
        _slots.release()


# http.client reads an answer's headers into an HTTPMessage through the email package's parser, which costs
# more than the rest of reading the answer. A plain header block (a "Name: value" a line, no folded lines,
# no line breaks other than CRLF or LF, not a multipart or message type) gives the same HTTPMessage, built
# here directly; anything else goes through the email parser as before.
_PLAIN_HEADERS = re.compile(r"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n\x0b\x0c\x1c-\x1e\x85]*\r?\n)*\r?\n")
_PLAIN_HEADER = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n\x0b\x0c\x1c-\x1e\x85]*)\r?\n")


def _parse_headers(fp, _class=http_client.HTTPMessage):
    """http.client.parse_headers: the same HTTPMessage, without the email parser for a plain header block."""
    text = b"".join(http_client._read_headers(fp)).decode("iso-8859-1")
    if _PLAIN_HEADERS.fullmatch(text):
        headers = _PLAIN_HEADER.findall(text)
        if not any(
            name.lower() == "content-type" and ("multipart" in value.lower() or "message" in value.lower())
            for name, value in headers
        ):
            message = _class()
            message._headers = headers
            message.set_payload("")
            return message
    return email.parser.Parser(_class=_class).parsestr(text)


class _Response(http_client.HTTPResponse):
    """http.client's response, its headers read by `_parse_headers`.

    `begin` is http.client's own code (this Python's), run with `_parse_headers` in place of the module's
    parse_headers: the status line, interim answers, chunked and Content-Length handling are unchanged.
    """

    begin = types.FunctionType(
        http_client.HTTPResponse.begin.__code__,
        {**vars(http_client), "parse_headers": _parse_headers},
        "begin",
        http_client.HTTPResponse.begin.__defaults__,
        http_client.HTTPResponse.begin.__closure__,
    )


def _exchange_on(kept, request, limit):
    try:
        kept.stream.write(request)  # leaves with the first read
        response = _Response(kept, method="POST")
        response.begin()
        while 100 <= response.status < 200:  # interim answers (102, 103...): the real one follows
            if response.status == 101:
                raise httpx.RemoteProtocolError("the upstream switched protocols")
            response = _Response(kept, method="POST")
            response.begin()
        parts, size = [], 0
        while part := response.read1(READ_SIZE):
            size += len(part)
            if size > limit:
                raise httpx.RemoteProtocolError(f"the upstream's answer is over {limit} bytes")
            parts.append(part)
        if response.length:
            raise http_client.IncompleteRead(b"".join(parts), response.length)
    except http_client.HTTPException as exc:
        kept.close()
        raise httpx.RemoteProtocolError(f"the upstream broke off the exchange: {exc!r}") from None
    except BaseException:
        kept.close()
        raise
    if response.will_close:
        kept.close()
    else:
        _checkin(kept)
    return response.status, response.headers, b"".join(parts)


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


def _decoded(encoding, content, limit):
    """The body without its Content-Encoding (gzip or deflate), at most `limit` bytes once decoded."""
    if encoding in ("identity", ""):
        return content
    if encoding in ("gzip", "x-gzip"):
        windows = (16 + zlib.MAX_WBITS,)
    elif encoding == "deflate":
        windows = (zlib.MAX_WBITS, -zlib.MAX_WBITS)  # zlib-wrapped, or raw as some servers send
    else:
        raise httpx.DecodingError(f"the upstream's answer has an unknown Content-Encoding {encoding[:40]!r}")
    failure = None
    for window in windows:
        decoder = zlib.decompressobj(window)
        try:
            data = decoder.decompress(content, limit + 1)
        except zlib.error as exc:
            failure = exc
            continue
        if len(data) > limit:
            raise httpx.RemoteProtocolError(f"the upstream's answer is over {limit} bytes once decompressed")
        if not decoder.eof:
            raise httpx.DecodingError("the upstream's compressed answer is cut short")
        return data
    raise httpx.DecodingError(f"the upstream's compressed answer is corrupt: {failure}")


@contextmanager
def post_stream(url, *, headers, body, until):
    """POST a JSON body and yield the response with its headers read by `until` and its body unread.

    Read the body inside `bounded(...)` (each read ends by the bound in force).
    """
    http = client()
    request = http.build_request("POST", _parsed_url(url), headers=headers, json=body, timeout=_timeout(until))
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
        _parsed_url.cache_clear()
        _fixed_headers.cache_clear()
        _request_head.cache_clear()
        for idle in list(_idle.values()):
            while idle:
                idle.pop().close()
