"""A local OpenAI-style upstream that starts streaming an answer and then drops the connection."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for word in ["Vacation ", "days "]:
            data = {
                "id": "chatcmpl-cut",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "cut",
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            payload = b"data: " + json.dumps(data).encode() + b"\n\n"
            self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            self.wfile.flush()
        # No final chunk, no [DONE]: the connection just ends.
        self.close_connection = True


class CutoffServer:
    def __init__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
