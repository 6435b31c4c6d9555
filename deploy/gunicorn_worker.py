"""The gunicorn worker: gevent, with psycopg2 made cooperative, and responses that start in one write.

gunicorn's gevent worker monkey-patches the standard library in `patch()`,
which runs in the forked worker before the application is loaded (the app is
not preloaded, and deploy/gunicorn.conf.py imports neither Django nor a
database driver). This worker sets psycopg2's wait callback in the same
step, so both happen once, before Django, psycopg2's users or redis-py are
imported, and a query waiting on PostgreSQL lets other requests run.

gunicorn sends a response's headers and its first body bytes in two
writes. On a small JSON answer (a cached completion) each write is a system
call that also wakes the client, so `OneWriteResponse` holds the headers
back and sends them with the first body bytes, or alone when the response
ends without a body.

Between two requests of a kept-alive connection the worker gives the other
connections their turn (`_next_turn`). Without it, a connection whose next
request is already in its socket, and whose answer needs no waiting (a cache
hit whose Redis reply arrived before it was read), is served again and again
while the others wait: under load, a low median and a tail of hundreds of
milliseconds (deploy/tests/test_worker_turns.py).
"""

import gevent
from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers.ggevent import GeventWorker


class OneWriteResponse(wsgi.Response):
    """gunicorn's response, with the header block sent together with the first body bytes."""

    _pending = None  # the header block, built and not yet sent
    _direct = False  # set while gunicorn writes to the socket itself (sendfile)

    def send_headers(self):
        if self.headers_sent:
            return
        if self._direct:
            super().send_headers()
            return
        tosend = self.default_headers()
        tosend.extend(["%s: %s\r\n" % (k, v) for k, v in self.headers])  # noqa: UP031 - gunicorn's own format
        self._pending = util.to_bytestring("%s\r\n" % "".join(tosend), "latin-1")  # noqa: UP031
        self.headers_sent = True

    def _take_pending(self):
        pending, self._pending = self._pending, None
        return pending or b""

    def _emit_body(self, data):
        if self.chunked:
            data = b"%X\r\n%s\r\n" % (len(data), data)
        self.sock.sendall(self._take_pending() + data)

    def sendfile(self, respiter):
        self._direct = True
        if self._pending:
            self.sock.sendall(self._take_pending())
        return super().sendfile(respiter)

    def close(self):
        if not self.headers_sent:
            self.send_headers()
        tail = b"0\r\n\r\n" if self.chunked else b""
        data = self._take_pending() + tail
        if data:
            self.sock.sendall(data)


def _next_turn(hub):
    """Let every other connection that is ready have its turn before this greenlet goes on.

    `gevent.sleep(0)` is not enough: it resumes the greenlet from the loop's
    callbacks, before the loop polls the sockets again, so a connection whose
    next requests are already buffered would still be served many times in a
    row. A timer of 0 s fires on the loop's next iteration, after the poll.
    """
    with hub.loop.timer(0) as timer:
        hub.wait(timer)


class Worker(GeventWorker):
    def handle_request(self, listener_name, req, sock, addr):
        hub = gevent.get_hub()
        polls = hub.loop.iteration
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            # A request that waited for the loop (Redis, the database, a slow client) let the others
            # run meanwhile; one that never did takes its turn now (a few microseconds).
            if hub.loop.iteration == polls:
                _next_turn(hub)

    def patch(self):
        super().patch()  # gevent.monkey.patch_all(), and gevent sockets for the listeners
        # psycopg2 cooperative, each wait for the database bounded (DB_CONNECT_TIMEOUT, DB_QUERY_TIMEOUT).
        from corporate.backends.postgresql.green import patch_psycopg

        patch_psycopg()
        # gunicorn.http.wsgi.create() builds its responses from this module-level name.
        wsgi.Response = OneWriteResponse
