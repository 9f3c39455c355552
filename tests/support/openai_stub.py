"""A tiny OpenAI-compatible chat server on 127.0.0.1, for tests that need a
real endpoint reached through litellm's real `openai/<name>` path.

It answers `POST .../chat/completions` with scripted content and usage
counts, and keeps every request it got (path, Authorization header, body),
so a test can see which endpoint each call reached and with what.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class OpenAIStub:
    """`with OpenAIStub(reply) as stub:` serves at `stub.api_base` (http://127.0.0.1:PORT/v1).

    `reply(body)` gives the assistant's text for a request body (default: a fixed line).
    """

    def __init__(self, reply: Callable[[dict], str] | str = "ok", *, prompt_tokens: int = 11,
                 completion_tokens: int = 7):
        self.reply = reply if callable(reply) else (lambda body, text=reply: text)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with stub._lock:
                    stub.requests.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                                          "body": body})
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                payload = json.dumps({
                    "id": f"chatcmpl-{len(stub.requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": stub.reply(body)}}],
                    "usage": {"prompt_tokens": stub.prompt_tokens, "completion_tokens": stub.completion_tokens,
                              "total_tokens": stub.prompt_tokens + stub.completion_tokens},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.api_base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
