"""A local server speaking `/v1/chat/completions` with scripted answers; records every request."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import serve, stop

# A script entry gets the request's data (the user message parsed as JSON when it is) and returns
# the assistant's content, or a dict {"sleep": seconds} / {"status": code}.
CHARS_PER_TOKEN = 4  # the stand-in's tokenizer

Script = Callable[[dict[str, Any]], str | dict[str, Any]]


@dataclass
class FakeOpenAI:
    script: list[Script] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    # llama-cpp-python's server (0.3.x): json_schema refused with a 500 carrying its validation error
    python_llamacpp: bool = False

    def __post_init__(self) -> None:
        self.server, base = serve(self._handle)
        self.url = f"{base}/v1"

    def close(self) -> None:
        stop(self.server)

    def _handle(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        body = json.loads(raw)
        self.requests.append(body)
        kind = (body.get("response_format") or {}).get("type", "text")
        if self.python_llamacpp and kind not in ("text", "json_object"):
            return 500, {}, {"error": {"message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
                                                  "'response_format', 'type'), 'msg': \"Input should be 'text' or "
                                                  f"'json_object'\", 'input': '{kind}', 'ctx': {{'expected': "
                                                  "\"'text' or 'json_object'\"}}\n\n  File \"llama_cpp/server/app.py"
                                                  "\", line 376, in create_chat_completion\n    POST /v1/chat/"
                                                  "completions", "type": "internal_server_error", "param": None,
                                       "code": None}}
        user = body["messages"][-1]["content"]
        try:
            data = json.loads(user)
        except ValueError:
            data = {"text": user}
        step = self.script.pop(0) if self.script else (lambda d: "{}")
        answer = step(data)
        if isinstance(answer, dict) and "sleep" in answer:
            time.sleep(answer["sleep"])
            answer = "{}"
        status = answer.get("status", 200) if isinstance(answer, dict) else 200
        if status != 200:
            return status, {}, {"error": {"message": "boom", "type": "server_error"}}
        content = answer if isinstance(answer, str) else ""
        # Like llama.cpp, vLLM and OpenAI: an answer longer than its bound stops there ("length").
        bound = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if bound and len(content) > bound * CHARS_PER_TOKEN:
            content, finish = content[:bound * CHARS_PER_TOKEN], "length"
        return 200, {}, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                         "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": finish,
                                      "message": {"role": "assistant", "content": content}}],
                         "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
