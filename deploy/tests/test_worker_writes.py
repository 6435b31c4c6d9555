"""The worker's responses: headers and the first body bytes leave in one write, and every response stays whole."""

import socket

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from deploy.gunicorn_worker import OneWriteResponse


class CountingSocket:
    """A real socket that counts the writes made on it."""

    def __init__(self, sock):
        self._sock = sock
        self.writes = 0

    def sendall(self, data):
        self.writes += 1
        return self._sock.sendall(data)

    def sendfile(self, file, offset=0, count=None):
        self.writes += 1
        return self._sock.sendfile(file, offset, count)

    def __getattr__(self, name):
        return getattr(self._sock, name)


@pytest.fixture
def exchange(monkeypatch):
    monkeypatch.setattr(wsgi, "Response", OneWriteResponse)
    server, client = socket.socketpair()
    server.settimeout(5)
    client.settimeout(5)

    def run(request, app_response):
        client.sendall(request)
        cfg = Config()
        req = next(iter(RequestParser(cfg, server, ("127.0.0.1", 50000))))
        counting = CountingSocket(server)
        resp, environ = wsgi.create(req, counting, ("127.0.0.1", 50000), ("127.0.0.1", 8000), cfg)
        app_response(resp, environ)
        server.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := client.recv(65536):
            raw += chunk
        return raw, counting.writes

    yield run
    server.close()
    client.close()


GET = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"


def test_headers_and_a_small_body_leave_in_one_write(exchange):
    def app(resp, environ):
        resp.start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
        resp.write(b'{"ok": true')
        resp.close()

    raw, writes = exchange(GET, app)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 11" in head
    assert body == b'{"ok": true'
    assert writes == 1


def test_a_streamed_response_is_chunked_correctly_and_ends(exchange):
    def app(resp, environ):
        resp.start_response("200 OK", [("Content-Type", "text/event-stream")])
        for part in (b"data: 1\n\n", b"data: 2\n\n"):
            resp.write(part)
        resp.close()

    raw, writes = exchange(GET, app)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"
    assert writes == 3  # headers with the first chunk, the second chunk, the end


def test_a_response_without_a_body_still_sends_its_headers(exchange):
    def app(resp, environ):
        resp.start_response("204 No Content", [])
        resp.close()

    raw, writes = exchange(GET, app)
    assert raw.startswith(b"HTTP/1.1 204 No Content\r\n") and raw.endswith(b"\r\n\r\n")
    assert writes == 1


def test_head_sends_headers_and_drops_the_body(exchange):
    def app(resp, environ):
        resp.start_response("200 OK", [("Content-Length", "5")])
        resp.write(b"hello")
        resp.close()

    raw, writes = exchange(b"HEAD / HTTP/1.1\r\nHost: example\r\n\r\n", app)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"\r\n\r\n")
    assert b"hello" not in raw


def test_a_file_goes_after_its_headers(exchange, tmp_path):
    path = tmp_path / "file.txt"
    path.write_bytes(b"file body")

    def app(resp, environ):
        resp.start_response("200 OK", [("Content-Length", "9")])
        with open(path, "rb") as handle:
            resp.write_file(wsgi.FileWrapper(handle))
        resp.close()

    raw, _ = exchange(GET, app)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b"file body"
