"""A loopback mock of OpenAI-compatible providers, for tests and examples.

Each provider is a path prefix on one 127.0.0.1 server (`base_url("ali")` ->
`http://127.0.0.1:<port>/ali/v1`); its answers are scripted per prefix and every request is
recorded (with the auth header it carried). A `Stream` answer sends its body in timed pieces
(chunked), and can stall, cut the connection, or never answer at all.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

QUOTA_429 = (429, {"error": {"message": "usage allocated quota exceeded.", "type": "insufficient_quota",
                             "code": "quota_exceeded"}})
DEEPSEEK_401 = (401, {"error": {"message": "Authentication Fails, Your api key: ****abcd is invalid",
                                "type": "authentication_error", "param": None, "code": "invalid_request_error"}})


def completion(content: str, model: str = "mock") -> dict[str, Any]:
    return {"id": "mock-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: `data` as is (str) or as compact JSON."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


def chunk(content: str | None = None, finish: str | None = None, model: str = "mock") -> bytes:
    """An OpenAI chat-completion stream chunk carrying `content` (or the role, or the finish)."""
    delta = {"content": content} if content is not None else {} if finish else {"role": "assistant"}
    return sse({"id": "mock-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


DONE = sse("[DONE]")


def openai_stream(*contents: str, delay_s: float = 0.0) -> list[tuple[float, bytes]]:
    """A whole OpenAI stream: role, one chunk per content, the finish, `[DONE]`, each `delay_s` apart."""
    events = [chunk()] + [chunk(c) for c in contents] + [chunk(finish="stop"), DONE]
    return [(delay_s, e) for e in events]


@dataclass
class Stream:
    """A streamed answer: the head after `head_delay_s` (never, with `silent`), then each piece
    after its delay; then the body ends (`then="end"`), the connection is cut without the
    body's end (`"cut"`), or nothing more comes while the connection stays open (`"stall"`).
    `wait_for`, when set, is awaited (up to 5 s) before the pieces after the first two: whether
    it was set in time is kept in `released`."""

    pieces: list[tuple[float, bytes]]
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    head_delay_s: float = 0.0
    silent: bool = False
    then: str = "end"
    wait_for: threading.Event | None = None
    released: bool | None = None


@dataclass
class Seen:
    provider: str
    path: str
    auth: str | None
    body: Any
    port: int = 0  # the client's port: which connection carried the request
    at: float = 0.0  # time.monotonic() when it arrived


class MockProviders:
    """`answers[prefix]` is (status, json body) or a callable(body) returning one; the default is a
    completion naming the prefix and the requested model."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.seen: list[Seen] = []
        # Set on exit: ends every stall and silence at once.
        self.closing = threading.Event()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as providers do, so clients pool connections

            def handle(self) -> None:
                # A client that stops reading at `[DONE]` drops its connection: no news for a mock.
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                prefix = self.path.strip("/").split("/")[0]
                auth = self.headers.get("authorization")
                mock.seen.append(Seen(prefix, self.path, auth, body, self.client_address[1], time.monotonic()))
                answer = mock.answers.get(prefix)
                if callable(answer):
                    answer = answer(body)
                if isinstance(answer, Stream):
                    return self._stream(answer)
                model = body.get("model", "?") if isinstance(body, dict) else "?"
                status, payload = answer or (200, completion(f"hello from {prefix}", model))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, answer: Stream) -> None:
                if answer.silent or mock.closing.wait(answer.head_delay_s):
                    mock.closing.wait(60)
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                for n, (delay, data) in enumerate(answer.pieces):
                    if n == 2 and answer.wait_for is not None:
                        answer.released = answer.wait_for.wait(5)
                    if mock.closing.wait(delay):
                        return
                    try:
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:  # the client went away: what a stream's reader may do
                        return
                if answer.then == "stall":
                    mock.closing.wait(60)
                elif answer.then == "end":
                    self.wfile.write(b"0\r\n\r\n")
                self.close_connection = answer.then != "end"  # a cut or a stall never ends its body

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def base_url(self, prefix: str, suffix: str = "/v1") -> str:
        return f"http://127.0.0.1:{self.port}/{prefix}{suffix}"

    def sent_to(self, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.provider == prefix]

    def __enter__(self) -> MockProviders:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
