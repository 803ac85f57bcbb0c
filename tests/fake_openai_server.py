"""A scripted OpenAI-compatible server on 127.0.0.1 for cases a real server cannot produce on demand.

Each POST to /v1/chat/completions takes the next `Scripted` response from the queue; GET /v1/models,
GET /props and the other probe paths return entries of `documents`. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    """One scripted response: an HTTP error (`status` with `body`) or an SSE stream of `chunks`.

    `stall_after` stops sending after that many chunks and holds the connection for `stall_seconds`;
    `done=False` ends the stream without `[DONE]`; `first_chunk_delay` waits that long after the headers,
    as a server evaluating a long prompt does.
    """

    status: int = 200
    body: Any = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    done: bool = True
    stall_after: int | None = None
    stall_seconds: float = 0.0
    first_chunk_delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def chunk(content: str = "", *, reasoning: str = "", calls: list | None = None, finish: str | None = None, **extra) -> dict:
    """Build one chat.completion.chunk with whatever delta parts are given."""
    delta: dict[str, Any] = {}
    if content:
        delta["content"] = content
    if reasoning:
        delta["reasoning_content"] = reasoning
    if calls:
        delta["tool_calls"] = calls
    data = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    data.update(extra)
    return data


def text_stream(text: str, pieces: int = 3, finish: str = "stop") -> list[dict]:
    """Split `text` into a few content chunks followed by a finishing chunk."""
    size = max(1, len(text) // pieces)
    parts = [text[i:i + size] for i in range(0, len(text), size)]
    return [chunk(part) for part in parts] + [chunk(finish=finish)]


class FakeServer:
    """Runs the fake server on a free loopback port until `close()`."""

    def __init__(self, documents: dict[str, Any] | None = None):
        self.queue: list[Scripted] = []
        self.requests: list[dict[str, Any]] = []
        self.documents = {"/v1/models": {"object": "list", "data": [{"id": "fake-model"}]}}
        self.documents.update(documents or {})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                document = server.documents.get(self.path)
                self._send_json(200 if document is not None else 404, document or {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/chat/completions":
                    document = server.documents.get(self.path)
                    self._send_json(200 if document is not None else 404, document or {"error": "not found"})
                    return
                server.requests.append(body)
                scripted = server.queue.pop(0) if server.queue else Scripted(status=500, body={"error": "script empty"})
                if scripted.status != 200:
                    self._send_json(scripted.status, scripted.body, scripted.headers)
                    return
                self._send_stream(scripted)

            def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _send_stream(self, scripted: Scripted) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                self.wfile.flush()
                time.sleep(scripted.first_chunk_delay)
                for number, data in enumerate(scripted.chunks):
                    if scripted.stall_after is not None and number == scripted.stall_after:
                        time.sleep(scripted.stall_seconds)
                        return
                    self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                if scripted.done:
                    self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler
