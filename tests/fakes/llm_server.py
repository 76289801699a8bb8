"""A real HTTP server on loopback that speaks OpenAI chat completions from a script of replies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Response:
    """One scripted HTTP response: status, JSON (dict) or raw (str) body, headers, delay."""

    status: int = 200
    body: dict[str, Any] | str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


# A script entry: a reply text (a 200 completion), a (status, body) pair, or a full Response.
Entry = str | tuple[int, dict[str, Any] | str] | Response


def completion(
    text: str | None,
    model: str = "fake-model",
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A chat-completion body with one choice holding `text`, and its usage."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error(status: int, message: str) -> Response:
    """An OpenAI-style error response."""
    return Response(status, {"error": {"message": message, "type": "fake", "code": status}})


class FakeLLMServer:
    """Serves `POST /v1/chat/completions` from a script, recording each request's JSON body."""

    def __init__(self, script: Iterable[Entry] = ()) -> None:
        self.script: list[Entry] = list(script)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of this server (ends in /v1)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def models(self) -> list[str]:
        """The model field of every recorded request, in order."""
        return [str(r.get("model")) for r in self.requests]

    def _serve(self) -> None:
        """Serve until `stop`, checking for it often so tests end fast."""
        self._server.serve_forever(poll_interval=0.01)

    def push(self, *entries: Entry) -> None:
        """Append entries to the script."""
        with self._lock:
            self.script.extend(entries)

    def start(self) -> FakeLLMServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def next_response(self, request: dict[str, Any]) -> Response:
        """Record the request and pop the next scripted response (a 500 once the script is out)."""
        with self._lock:
            self.requests.append(request)
            entry = self.script.pop(0) if self.script else None
        model = str(request.get("model", "fake-model"))
        if entry is None:
            return error(500, "fake server: script exhausted")
        if isinstance(entry, str):
            return Response(200, completion(entry, model=model))
        if isinstance(entry, tuple):
            return Response(entry[0], entry[1])
        return entry


def _handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to `server`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path != PATH:
                self._send(error(404, f"no route {self.path}"))
                return
            self._send(server.next_response(json.loads(raw or b"{}")))

        def _send(self, response: Response) -> None:
            time.sleep(response.delay_s)
            body = response.body
            data = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
            try:
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
