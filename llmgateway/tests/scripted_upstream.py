"""An OpenAI chat-completions upstream on a loopback port that answers what a test scripts.

`script({...})` queues one answer: `{"text": ...}` or `{"message": {...}}` whole, or streamed `{"chunks":
[delta, ..., None]}` (None: the finish chunk; "DROP": the connection closes), with `finish` the finish reason.
"""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        upstream = self.server.upstream
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with upstream.lock:
            upstream.requests.append(body)
            plan = upstream.plans.pop(0) if upstream.plans else {"text": "default answer"}
        finish = plan.get("finish", "stop")
        if body.get("stream"):
            self._stream(plan.get("chunks") or [{"role": "assistant", "content": plan.get("text", "")}, None], finish)
            return
        message = plan.get("message") or {"role": "assistant", "content": plan.get("text", "")}
        answer = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": USAGE,
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, deltas, finish):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(payload):
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()

        def chunk(choices, **extra):
            data = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1, "model": "m"}
            send(b"data: " + json.dumps(dict(data, choices=choices, **extra)).encode() + b"\n\n")

        for delta in deltas:
            if delta == "DROP":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if delta is None:
                chunk([{"index": 0, "delta": {}, "finish_reason": finish}])
            else:
                chunk([{"index": 0, "delta": delta, "finish_reason": None}])
        chunk([], usage=USAGE)
        send(b"data: [DONE]\n\n")
        send(b"")


class ScriptedUpstream:
    def __init__(self):
        self.lock = threading.Lock()
        self.plans, self.requests = [], []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.upstream = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *plans):
        with self.lock:
            self.plans.extend(plans)

    def reset(self):
        with self.lock:
            self.plans.clear()
            self.requests.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
