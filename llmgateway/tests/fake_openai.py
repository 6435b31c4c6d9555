"""A real local HTTP server that speaks the OpenAI chat-completions API.

Used by the provider tests and the benchmark (`python -m llmgateway.tests.fake_openai --delay 0.2`,
in its own process; `GET /_calls` then tells how many completions it answered).

    server = FakeOpenAI().start()           # on a free port of 127.0.0.1
    server.base_url                         # "http://127.0.0.1:PORT/v1"
    server.latency = 0.2                    # seconds before each answer
    server.chunk_delay = 0.05               # seconds between streamed chunks
    server.script(500, 429, ...)            # the next calls fail like this, in order;
                                            # (429, {"Retry-After": "1"}) adds headers;
                                            # {"status": 400, "error": {...}} answers that error body;
                                            # "hang" answers nothing until release() or the client leaves;
                                            # "trickle" sends the answer one byte per trickle_interval;
                                            # "stall" streams the first chunk, then hangs
    server.trickle_interval, server.trickle_for  # 0.5 s per byte, for 10 s (then the rest at once)
    server.usage_reply = "lots"             # answered as "usage" in place of the token counts
    server.release()                        # end every hang now
    server.disconnects                      # calls whose client hung up before the answer was complete
    server.calls                            # completions answered or failed so far
    server.requests                         # their JSON bodies; server.headers: their headers
    server.stop()

The answer is "Echo: <last user message>" and, unless `stable` is set, the
call number, so tests can tell whose answer a request received.
"""

import argparse
import json
import select
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeOpenAI/1"

    def log_message(self, *args):
        pass

    def _send_json(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        # end_headers(), with the body in the same write: one system call, and the
        # client wakes once for the whole answer (as from a real provider's server).
        self._headers_buffer.append(b"\r\n" + data)
        self.flush_headers()

    def _client_left(self):
        """True when the client closed the connection (it sends nothing else while waiting)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _hang(self, released):
        """Answer nothing until released or the client leaves; True when released."""
        while not released.wait(0.05):
            if self._client_left():
                self.server.fake._disconnected()
                self.close_connection = True
                return False
        return True

    def _write(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.server.fake._disconnected()
            self.close_connection = True
            raise

    def _trickle(self, data):
        """A 200 whose body arrives one byte per trickle_interval (then the rest after trickle_for seconds)."""
        fake = self.server.fake
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        until = time.monotonic() + fake.trickle_for
        for index in range(len(data)):
            if time.monotonic() >= until:
                self._write(data[index:])
                return
            self._write(data[index : index + 1])
            time.sleep(fake.trickle_interval)

    def do_GET(self):
        if self.path == "/_calls":
            # For a benchmark running this server in its own process.
            self._send_json(200, {"calls": self.server.fake.calls})
        elif self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        embeddings = self.path.split("?")[0].rstrip("/").endswith("/embeddings")
        if not embeddings and not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": "not found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "bad json"}})
            return
        number, planned, released = fake._next_call(body, dict(self.headers))
        if fake.latency:
            time.sleep(fake.latency)
        if planned == "hang" and not self._hang(released):
            return
        if isinstance(planned, dict):
            self._send_json(planned["status"], {"error": planned["error"]}, planned.get("headers"))
            return
        if planned is not None and planned not in ("hang", "trickle", "stall"):
            status, headers = planned if isinstance(planned, tuple) else (planned, {})
            self._send_json(
                status, {"error": {"message": f"scripted failure {status}", "type": "server_error"}}, headers
            )
            return
        try:
            if embeddings:
                self._embeddings(body)
            else:
                self._answer(body, number, planned, released)
        except OSError:
            pass  # the client hung up; counted in _write

    def _embeddings(self, body):
        """Vectors of `fake.embedding_dims` numbers, the same for the same text (word hashes)."""
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = []
        for index, text in enumerate(inputs):
            vector = [0.0] * self.server.fake.embedding_dims
            for word in str(text).lower().split():
                vector[zlib.crc32(word.encode()) % len(vector)] += 1.0
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(str(t).split()) for t in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _answer(self, body, number, planned, released):
        fake = self.server.fake
        text = fake.answer(body, number)
        usage = {"prompt_tokens": 11, "completion_tokens": len(text.split()), "total_tokens": 11 + len(text.split())}
        created = int(time.time())
        id_ = f"chatcmpl-fake{number}"
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            answer = {
                "id": id_,
                "object": "chat.completion",
                "created": created,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                "usage": usage if fake.usage_reply is None else fake.usage_reply,
            }
            if planned == "trickle":
                self._trickle(json.dumps(answer).encode())
            else:
                self._send_json(200, answer)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(delta, finish=None, with_usage=False):
            data = {
                "id": id_,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model"),
                "choices": [] if with_usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if with_usage:
                data["usage"] = usage if fake.usage_reply is None else fake.usage_reply
            payload = b"data: " + json.dumps(data).encode() + b"\n\n"
            self._write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

        chunk({"role": "assistant", "content": ""})
        if planned == "stall" and not self._hang(released):
            return
        for word in text.split(" "):
            if fake.chunk_delay:
                time.sleep(fake.chunk_delay)
            chunk({"content": word + " "})
        chunk({}, finish="stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk({}, with_usage=True)
        done = b"data: [DONE]\n\n"
        self._write(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many connections arrive at once under load (benchmarks open 64 and more).
    request_queue_size = 512

    def handle_error(self, request, client_address):
        # A client that hangs up mid-stream is part of the tests, not an error.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeOpenAI:
    def __init__(self, latency=0.0, chunk_delay=0.0, stable=False):
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.stable = stable
        self.trickle_interval = 0.5
        self.trickle_for = 10.0
        self.usage_reply = None  # answered as "usage" instead of the counted tokens
        self.embedding_dims = 8
        self.calls = 0
        self.disconnects = 0
        self.requests = []
        self.headers = []
        self._plan = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = None

    def _next_call(self, body, headers):
        with self._lock:
            self.calls += 1
            self.requests.append(body)
            self.headers.append(headers)
            planned = self._plan.pop(0) if self._plan else None
            return self.calls, planned, self._released

    def _disconnected(self):
        with self._lock:
            self.disconnects += 1

    def release(self):
        """Let every hanging call go on with its answer."""
        with self._lock:
            self._released.set()
            self._released = threading.Event()

    def answer(self, body, number):
        question = ""
        for message in body.get("messages") or []:
            if message.get("role") == "user" and isinstance(message.get("content"), str):
                question = message["content"]
        return f"Echo: {question}" if self.stable else f"Echo: {question} (call {number})"

    def script(self, *outcomes):
        with self._lock:
            self._plan.extend(outcomes)

    def reset(self):
        self.release()
        with self._lock:
            self.calls = 0
            self.disconnects = 0
            self.requests.clear()
            self.headers.clear()
            self._plan.clear()

    def start(self, port=0):
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.fake = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def main():
    parser = argparse.ArgumentParser(description="A local OpenAI-compatible server for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    server = FakeOpenAI(latency=args.delay, stable=True).start(args.port)
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
