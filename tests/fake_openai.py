"""A local server speaking `/v1/chat/completions` with scripted answers; records every request."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A script entry gets the request's data (the user message parsed as JSON when it is) and returns
# the assistant's content, or a dict {"sleep": seconds} / {"status": code}.
Script = Callable[[dict[str, Any]], str | dict[str, Any]]


@dataclass
class FakeOpenAI:
    script: list[Script] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.requests.append(body)
                user = body["messages"][-1]["content"]
                try:
                    data = json.loads(user)
                except ValueError:
                    data = {"text": user}
                step = fake.script.pop(0) if fake.script else (lambda d: "{}")
                answer = step(data)
                if isinstance(answer, dict) and "sleep" in answer:
                    time.sleep(answer["sleep"])
                    answer = "{}"
                status = answer.get("status", 200) if isinstance(answer, dict) else 200
                content = answer if isinstance(answer, str) else ""
                payload = ({"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                            "model": body["model"],
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": content}}],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
                           if status == 200 else {"error": {"message": "boom", "type": "server_error"}})
                data_out = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data_out)))
                    self.end_headers()
                    self.wfile.write(data_out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
