"""A loopback mock of OpenAI-compatible providers, for tests and examples.

Each provider is a path prefix on one 127.0.0.1 server (`base_url("ali")` ->
`http://127.0.0.1:<port>/ali/v1`); its answers are scripted per prefix and every request is
recorded (with the auth header it carried).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

QUOTA_429 = (429, {"error": {"message": "usage allocated quota exceeded.", "type": "insufficient_quota",
                             "code": "quota_exceeded"}})
DEEPSEEK_401 = (401, {"error": {"message": "Authentication Fails, Your api key: ****abcd is invalid",
                                "type": "authentication_error", "param": None, "code": "invalid_request_error"}})


def completion(content: str, model: str = "mock") -> dict[str, Any]:
    return {"id": "mock-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


@dataclass
class Seen:
    provider: str
    path: str
    auth: Optional[str]
    body: Any
    port: int = 0  # the client's port: which connection carried the request


class MockProviders:
    """`answers[prefix]` is (status, json body) or a callable(body) returning one; the default is a
    completion naming the prefix and the requested model."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.seen: list[Seen] = []
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as providers do, so clients pool connections

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                prefix = self.path.strip("/").split("/")[0]
                auth = self.headers.get("authorization")
                mock.seen.append(Seen(prefix, self.path, auth, body, self.client_address[1]))
                answer = mock.answers.get(prefix)
                if callable(answer):
                    answer = answer(body)
                model = body.get("model", "?") if isinstance(body, dict) else "?"
                status, payload = answer or (200, completion(f"hello from {prefix}", model))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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

    def __enter__(self) -> "MockProviders":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
