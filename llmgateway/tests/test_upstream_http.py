"""A whole answer's upstream call against raw local HTTP servers that do what real ones do.

Each server here is a plain socket speaking HTTP by hand: Connection: close,
HTTP/1.0 without a length, chunked bodies, interim 1xx responses, bytes
trickled slower than the call's deadline, oversized and compressed bodies.
"""

import gzip
import http.client as http_client
import io
import json
import os
import socket
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest

from llmgateway.cache import coalesce
from llmgateway.cache.store import get_store
from llmgateway.models import ModelConfig, UsageRecord
from llmgateway.providers import http

REQUEST = {"model": "raw", "messages": [{"role": "user", "content": "hi"}]}


def answer(text):
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def read_request(conn):
    """One request (head and Content-Length body) from a connection; None when it closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            return None
        data += part
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += conn.recv(65536)
    return head.decode("latin-1"), body


class RawServer:
    """Accepts connections and hands each request to `reply(conn, head, body, n)`; n counts requests."""

    def __init__(self, reply, keep=True):
        self.reply, self.keep = reply, keep
        self.heads, self.connections, self.closed = [], 0, 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                request = read_request(conn)
                if request is None:
                    return
                self.heads.append(request[0])
                if self.reply(conn, *request, len(self.heads)) is False or not self.keep:
                    return
        except OSError:
            return
        finally:
            conn.close()
            self.closed += 1

    def close(self):
        self.sock.close()


@pytest.fixture
def raw_server():
    servers = []

    def start(reply, keep=True):
        server = RawServer(reply, keep)
        servers.append(server)
        return server

    http.reset()
    yield start
    http.reset()
    for server in servers:
        server.close()


@pytest.fixture
def raw_model(db):
    def make(url, timeout=5):
        model = ModelConfig(
            name="raw",
            provider="openai-compatible",
            base_url=url,
            upstream_model="m",
            price_input_per_1k="0.5",
            price_output_per_1k="1.5",
            timeout_seconds=timeout,
            max_retries=0,
        )
        model.set_api_key("k")
        model.save()
        return model

    return make


def _text(response):
    assert response.status_code == 200, response.content[:300]
    return response.json()["choices"][0]["message"]["content"]


def _ask(v1, n):
    return v1({**REQUEST, "messages": [{"role": "user", "content": f"question {n}"}]})


# Framing: Connection: close, HTTP/1.0, chunked -------------------------------------------------------


def test_connection_close_answers_are_read_and_the_next_call_reconnects(v1, raw_server, raw_model):
    def reply(conn, head, body, n):
        data = answer(f"answer {n}")
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
        )
        return False

    server = raw_server(reply)
    raw_model(server.url)
    assert _text(_ask(v1, 1)) == "answer 1"
    assert _text(_ask(v1, 2)) == "answer 2"
    assert server.connections == 2


def test_a_kept_connection_the_upstream_closed_while_idle_is_not_used_again(v1, raw_server, raw_model):
    def reply(conn, head, body, n):
        data = answer(f"answer {n}")
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
        )
        return False  # closes the connection after the answer, without saying so (an idle timeout)

    server = raw_server(reply)
    raw_model(server.url)
    assert _text(_ask(v1, 1)) == "answer 1"
    assert _wait(lambda: server.closed == 1)  # the upstream's close has arrived (its thread may come late)
    assert _text(_ask(v1, 2)) == "answer 2"
    assert server.connections == 2


def test_http_1_0_without_a_length_is_read_to_the_close(v1, raw_server, raw_model):
    def reply(conn, head, body, n):
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + answer(f"old {n}"))
        return False

    server = raw_server(reply)
    raw_model(server.url)
    assert _text(_ask(v1, 1)) == "old 1"
    assert _text(_ask(v1, 2)) == "old 2"


def test_a_chunked_answer_is_read_whole_on_a_kept_connection(v1, raw_server, raw_model):
    def reply(conn, head, body, n):
        data = answer(f"chunked {n}")
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i : i + 7]), data[i : i + 7]) for i in range(0, len(data), 7))
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunks
            + b"0\r\n\r\n"
        )

    server = raw_server(reply)
    raw_model(server.url)
    assert _text(_ask(v1, 1)) == "chunked 1"
    assert _text(_ask(v1, 2)) == "chunked 2"
    assert server.connections == 1


def test_interim_responses_are_skipped_and_no_answer_goes_to_the_next_request(v1, raw_server, raw_model):
    def reply(conn, head, body, n):
        question = json.loads(body)["messages"][0]["content"]
        conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
        conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        time.sleep(0.2)
        data = answer(f"for {question}")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data))
        conn.sendall(data)

    server = raw_server(reply)
    raw_model(server.url)
    assert _text(_ask(v1, 1)) == "for question 1"
    assert _text(_ask(v1, 2)) == "for question 2"
    assert _text(_ask(v1, 3)) == "for question 3"


# The whole call's deadline holds on every read -----------------------------------------------------


class Trickler:
    """A reply that sends `prefix` at once, `slow` a byte every 0.1 s (4 s or more), then `rest`: a whole answer."""

    def __init__(self, prefix, slow, rest):
        self.prefix, self.slow, self.rest = prefix, slow, rest
        self.done = threading.Event()

    def __call__(self, conn, head, body, n):
        conn.sendall(self.prefix)
        for byte in self.slow:
            time.sleep(0.1)
            conn.sendall(bytes([byte]))
        conn.sendall(self.rest)
        self.done.set()


DATA = answer("slow")
LENGTH = b"Content-Length: %d\r\n\r\n" % len(DATA)
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
TRICKLED = {
    "status line": (b"", b"HTTP/1.1 200 " + b"O" * 40, b"\r\n" + LENGTH + DATA),
    "headers": (b"HTTP/1.1 200 OK\r\n", b"X-Pad: " + b"a" * 40, b"\r\n" + LENGTH + DATA),
    "chunk sizes": (
        CHUNKED + b"1\r\n" + DATA[:1] + b"\r\n",
        b"0" * 40 + b"1\r\n",
        DATA[1:2] + b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(DATA) - 2, DATA[2:]),
    ),
    "body": (b"HTTP/1.1 200 OK\r\n" + LENGTH, DATA[:40], DATA[40:]),
}


@pytest.mark.parametrize("part", TRICKLED)
def test_a_trickling_upstream_is_cut_off_at_the_calls_end(raw_server, part):
    # The upstream sends a whole answer, a byte at a time for far longer than the call may last:
    # the call ends with a timeout while the upstream is still sending.
    trickler = Trickler(*TRICKLED[part])
    server = raw_server(trickler)
    with pytest.raises(httpx.TimeoutException):
        http.post_json(server.url + "/chat/completions", headers={}, body={"q": 1}, until=time.monotonic() + 0.5)
    assert not trickler.done.is_set()


# Size caps ------------------------------------------------------------------------------------------


def test_an_oversized_answer_is_refused(raw_server, settings):
    settings.LLM_MAX_RESPONSE_BYTES = 64 * 1024

    def reply(conn, head, body, n):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        try:
            for _ in range(64):
                conn.sendall(b" " * 4096)
        except OSError:
            pass
        return False

    server = raw_server(reply)
    with pytest.raises(httpx.RemoteProtocolError, match="over 65536 bytes"):
        http.post_json(server.url, headers={}, body={}, until=time.monotonic() + 5)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_refused(raw_server, settings, encoding):
    settings.LLM_MAX_RESPONSE_BYTES = 1024 * 1024
    plain = b"[" + b" " * (50 * 1024 * 1024) + b"]"
    data = gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)
    assert len(data) < settings.LLM_MAX_RESPONSE_BYTES

    def reply(conn, head, body, n):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (encoding.encode(), len(data), data)
        )

    server = raw_server(reply)
    with pytest.raises(httpx.RemoteProtocolError, match="once decompressed"):
        http.post_json(server.url, headers={}, body={}, until=time.monotonic() + 5)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw deflate"])
def test_a_compressed_answer_is_decoded(v1, raw_server, raw_model, encoding):
    data = answer("squeezed")
    if encoding == "gzip":
        packed = gzip.compress(data)
    elif encoding == "deflate":
        packed = zlib.compress(data)
    else:
        squeezer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = squeezer.compress(data) + squeezer.flush()
    header = encoding.split()[-1].encode()

    def reply(conn, head, body, n):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s" % (header, len(packed), packed)
        )

    server = raw_server(reply)
    raw_model(server.url)
    assert _text(_ask(v1, 1)) == "squeezed"
    assert "accept-encoding: identity" in server.heads[0].lower()


# URLs ------------------------------------------------------------------------------------------------


def _plain(conn, head, body, n):
    data = answer(f"ok {n}")
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
    )


@pytest.mark.parametrize("stream", [False, True])
def test_a_base_url_with_credentials_is_a_clear_502(v1, raw_server, raw_model, stream):
    server = raw_server(_plain)
    raw_model(server.url.replace("http://", "http://user:secret@"))  # saved without the form's check
    response = v1({**REQUEST, "stream": stream})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_url_invalid" and "password" in error["message"]
    assert server.heads == []


def test_a_path_with_spaces_and_non_ascii_is_percent_encoded(v1, raw_server, raw_model):
    server = raw_server(_plain)
    raw_model(server.url + "/déploiement à/v1")
    assert _text(_ask(v1, 1)) == "ok 1"
    assert server.heads[0].startswith("POST /v1/d%C3%A9ploiement%20%C3%A0/v1/chat/completions HTTP/1.1")


# An unexpected failure in the call -------------------------------------------------------------------


def test_an_unexpected_failure_is_an_openai_shaped_502_and_releases_the_reservation(
    v1, raw_server, raw_model, monkeypatch
):
    from llmgateway.metering import records

    server = raw_server(_plain)
    raw_model(server.url)

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'settimeout'")

    monkeypatch.setattr(http, "post_json", broken)
    response = _ask(v1, 1)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_call_failed"
    assert "Traceback" not in response.content.decode()
    records.drain()
    # A failure, not a cancellation (499) that would keep the reserved cost.
    assert list(UsageRecord.objects.values_list("status", "cost")) == [(502, 0)]


# The coalescing lock ---------------------------------------------------------------------------------


def test_a_flight_removes_only_its_own_lock():
    store = get_store()
    lock = coalesce.lock_key("k-own-lock")
    store.delete(lock)
    store.add(lock, "otherflight", 30)  # taken by another flight after ours expired
    store.batch(coalesce._closing_ops(f"{coalesce.flight_key('k-own-lock')}:ourflight", "k-own-lock", "done"))
    assert store.get_many([lock])[0] in ("otherflight", b"otherflight")
    store.batch(coalesce._closing_ops(f"{coalesce.flight_key('k-own-lock')}:otherflight", "k-own-lock", "done"))
    assert store.get_many([lock])[0] is None


# Streams without end ------------------------------------------------------------------------------


def _endless(first, piece, sent):
    """A reply: `first` (the status line and headers), then chunks of `piece` as fast as the gateway reads them.

    sent["all"] tells whether the gateway read them all (40 MB and more) rather than hanging up.
    """

    def reply(conn, head, body, n):
        conn.sendall(first)
        try:
            for _ in range(10_000):
                conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent["all"] = True
        except OSError:
            sent["all"] = False
        return False

    return reply


def _wait(condition, seconds=10.0):
    until = time.monotonic() + seconds
    while time.monotonic() < until and not condition():
        time.sleep(0.02)
    return condition()


STREAM_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENT = b"data: " + json.dumps({"id": "x", "object": "chat.completion.chunk", "choices": []}).encode() + b"\n\n"
ENDLESS = {
    "events": (STREAM_HEAD, EVENT * 50),
    "one-line": (STREAM_HEAD, b"a" * 4096),
    "error-body": (
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"<p>" + b"a" * 4093,
    ),
}


@pytest.mark.parametrize("kind", ENDLESS)
def test_a_stream_without_end_is_cut_at_the_size_bound(v1, raw_server, raw_model, settings, kind):
    settings.LLM_MAX_RESPONSE_BYTES = 256 * 1024
    sent = {}
    raw_model(raw_server(_endless(*ENDLESS[kind], sent)).url)
    response = v1({**REQUEST, "stream": True})
    if response.status_code == 200:  # events had started: the stream ends with an error event
        events = b"".join(response.streaming_content)
        assert b'"error"' in events and events.count(b"data: ") * 60 < 256 * 1024 + 4096
        assert b"over 262144 bytes" in events
    else:
        assert response.status_code == 502 and response.json()["error"]["type"] == "api_error"
    # The gateway hung up past the bound, rather than reading (and holding) all of it.
    assert _wait(lambda: "all" in sent) and sent["all"] is False


@pytest.mark.parametrize(
    "block",
    [
        b"Content-Type: application/json\r\nContent-Length: 3\r\n\r\n",
        b"Server: x\r\nX-Spaces:   kept at the end  \r\nX-Empty:\r\nX-Tab:\tv\r\nset-cookie: a\r\nSet-Cookie: b\r\n\r\n",
        b"Content-Length: 3\nConnection: close\n\n",  # bare LF line ends
        b"X-Latin: caf\xe9\r\n\r\n",
        b"\r\n",
        # Not plain: the email parser's own reading is kept (folded lines, stray breaks, no colon, multipart).
        b"X-Folded: a\r\n b\r\nContent-Length: 1\r\n\r\n",
        b"X-Odd: a\rb\r\nContent-Length: 1\r\n\r\n",
        b"X-Odd: a\x85b\r\n\r\n",
        b"X-Odd: a\x0bb\r\n\r\n",
        b"not a header\r\nContent-Length: 1\r\n\r\n",
        b": empty name\r\nContent-Length: 1\r\n\r\n",
        b"From somebody\r\nContent-Length: 1\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n",
        b"Content-Type: message/rfc822\r\n\r\n",
    ],
)
def test_answer_headers_are_read_as_http_clients_parser_reads_them(block):
    ours = http._parse_headers(io.BytesIO(block + b"body"))
    theirs = http_client.parse_headers(io.BytesIO(block + b"body"))
    assert type(ours) is type(theirs) is http_client.HTTPMessage
    # Defects and parts are objects without equality of their own: compared by kind and by text.
    plain = ("defects", "_payload")
    assert {k: v for k, v in vars(ours).items() if k not in plain} == {
        k: v for k, v in vars(theirs).items() if k not in plain
    }
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
    assert type(ours.get_payload()) is type(theirs.get_payload())
    assert ours.as_string() == theirs.as_string()
    assert ours.items() == theirs.items()
    assert ours.get("content-length") == theirs.get("content-length")


CHECKOUT_SCRIPT = """
from gevent import monkey; monkey.patch_all()
import json, socket, time, django
django.setup()
import gevent, httpcore
from httpcore._backends.sync import SyncStream
from llmgateway.providers import http

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
origin = ("http", "127.0.0.1", listener.getsockname()[1])


def kept_connection():
    client = socket.create_connection(origin[1:])
    server, _ = listener.accept()
    kept = http._Kept(origin, http._BoundedStream(SyncStream(client)))
    kept.since = time.monotonic()
    return kept, server


hub = gevent.get_hub()
idle, server = kept_connection()
http._idle[origin] = [idle]
before = hub.loop.iteration
reused = http._checkout(origin) is idle
turns = hub.loop.iteration - before
before = hub.loop.iteration
pool_check = idle.stream.get_extra_info("is_readable")  # how httpcore's pool checks a stream's connection
turns += hub.loop.iteration - before
closed, peer = kept_connection()
peer.close()  # the upstream closed it while it was idle
time.sleep(0.05)
print(json.dumps({"reused": reused, "turns": turns, "closed_reused": not http._readable_now(closed.stream),
                  "pool_check": pool_check, "closed_pool_check": closed.stream.get_extra_info("is_readable")}))
"""


def test_a_kept_connection_is_checked_without_a_turn_of_a_gevent_workers_event_loop(tmp_path):
    """The check that an idle connection is still good asks the system at once: through gevent's `select.poll`
    it waited for a whole turn of the loop (every other connection's work) before each upstream call."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="corporate.settings", VAR_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", CHECKOUT_SCRIPT],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "reused": True,
        "turns": 0,
        "closed_reused": False,
        "pool_check": False,
        "closed_pool_check": True,
    }, report
