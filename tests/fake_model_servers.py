"""Local stand-ins for the model servers people run, each answering /v1/chat/completions the way the
real one does: what it accepts, what it refuses, and the status codes, texts and body shapes of its
errors (as seen in each project's code and issue trackers).

- openai:           gpt-4o. Strict json_schema checked ("required" must list every property).
- openai-reasoning: o1/o3/gpt-5. Refuses `temperature` other than 1 and `max_tokens` (400, OpenAI's
                    `{"error": {message, type, param, code}}`).
- openai-legacy:    a model without structured outputs (gpt-4-0613, also behind Azure): refuses
                    json_schema and json_object.
- vllm:             everything accepted; 400 when prompt + max_tokens exceed the context
                    (`{"error": {..., "type": "BadRequestError", "code": 400}}`, vLLM ≥ 0.16).
- ollama:           its OpenAI-compatible endpoint: json_schema and json_object accepted; errors are
                    `{"error": {message, type, "param": null, "code": null}}`; 404 for an unpulled
                    model; 503 "server busy" when its queue is full.
- llamacpp:         llama-server: `{"error": {code, message, type}}`; 503 "Loading model". With
                    `old=True`, a build from before json_schema support: 500 server_error for it.
- lmstudio:         json_schema accepted, json_object refused with `{"error": "<text>"}`.

`transient` lists failures to give before answering, as (status, headers), in the server's own
shape: 429 (OpenAI's rate limit, with its Retry-After; `quota` for an unpaid bill) or 503.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import serve, stop

Reply = tuple[int, dict[str, str], Any]
# The assistant's content for a request's data (the user message parsed as JSON).
Answer = Callable[[dict[str, Any]], str]

KINDS = ("openai", "openai-reasoning", "openai-legacy", "vllm", "ollama", "llamacpp", "lmstudio")


def openai_error(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> Reply:
    return status, {}, {"error": {"message": message, "type": type_, "param": param, "code": code}}


def ollama_error(status: int, message: str) -> Reply:
    # ollama/openai.NewError: the type follows the status; param and code are always null.
    type_ = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return status, {}, {"error": {"message": message, "type": type_, "param": None, "code": None}}


def llamacpp_error(status: int, message: str, type_: str) -> Reply:
    return status, {}, {"error": {"code": status, "message": message, "type": type_}}


def vllm_error(status: int, message: str, param: str | None = None) -> Reply:
    return status, {}, {"error": {"message": message, "type": "BadRequestError", "param": param, "code": status}}


@dataclass
class ModelServer:
    kind: str
    answer: Answer = lambda data: "{}"
    transient: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    old: bool = False  # llamacpp: a build from before json_schema support
    context: int = 32768  # vllm: --max-model-len
    pulled: bool = True  # ollama: the model is there
    key: str = ""  # openai*: the only API key accepted ("" accepts any)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        self.server, base = serve(self._handle)
        self.url = f"{base}/v1"

    def close(self) -> None:
        stop(self.server)

    def formats(self) -> list[str]:
        """The response_format type of each request received ("" when none was sent)."""
        return [(r.get("response_format") or {}).get("type", "") for r in self.requests]

    def _handle(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        body = json.loads(raw)
        self.requests.append(body)
        if self.transient:
            status, extra = self.transient.pop(0)
            code, _, payload = self._transient(status, extra)
            return code, {k: v for k, v in extra.items() if k != "quota"}, payload
        given = headers.get("authorization", "").removeprefix("Bearer ")
        if self.kind.startswith("openai") and self.key and given != self.key:
            return openai_error(401, f"Incorrect API key provided: {given[:8]}{'*' * 20}{given[-4:]}. You can find "
                                     "your API key at https://platform.openai.com/account/api-keys.",
                                code="invalid_api_key")
        refuse: Callable[[dict[str, Any]], Reply | None] = getattr(self, "_" + self.kind.replace("-", "_"))
        refused = refuse(body)
        if refused is not None:
            return refused
        user = body["messages"][-1]["content"]
        try:
            data = json.loads(user)
        except ValueError:
            data = {"text": user}
        return 200, {}, {"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                         "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": self.answer(data)}}],
                         "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}

    def _transient(self, status: int, extra: dict[str, str]) -> Reply:
        if status == 429 and extra.get("quota"):
            return openai_error(429, "You exceeded your current quota, please check your plan and billing details. "
                                     "For more information on this error, read the docs: "
                                     "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                                "insufficient_quota", None, "insufficient_quota")
        if status == 429:  # OpenAI's request-rate limit
            return openai_error(429, "Rate limit reached for gpt-4o in organization org-test on requests per min "
                                     "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
                                     "https://platform.openai.com/account/rate-limits to learn more.",
                                "requests", None, "rate_limit_exceeded")
        if self.kind == "ollama":
            return ollama_error(503, "server busy, please try again.  maximum pending requests exceeded")
        if self.kind == "llamacpp":
            return llamacpp_error(503, "Loading model", "unavailable_error")
        return openai_error(status, "The server is overloaded or not ready yet.", "server_error")

    # --- what each one refuses ------------------------------------------------------------------

    def _openai(self, body: dict[str, Any]) -> Reply | None:
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema" and fmt["json_schema"].get("strict"):
            schema = fmt["json_schema"]["schema"]
            missing = [k for k in schema["properties"] if k not in schema.get("required", [])]
            if missing:
                return openai_error(400, f"Invalid schema for response_format '{fmt['json_schema']['name']}': In "
                                         "context=(), 'required' is required to be supplied and to be an array "
                                         f"including every key in properties. Missing '{missing[0]}'.")
        return None

    def _openai_reasoning(self, body: dict[str, Any]) -> Reply | None:
        if "max_tokens" in body:
            return openai_error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                                     "Use 'max_completion_tokens' instead.", param="max_tokens",
                                code="unsupported_parameter")
        if body.get("temperature", 1) != 1:
            return openai_error(400, f"Unsupported value: 'temperature' does not support {body['temperature']} "
                                     "with this model. Only the default (1) value is supported.",
                                param="temperature", code="unsupported_value")
        return self._openai(body)

    def _openai_legacy(self, body: dict[str, Any]) -> Reply | None:
        kind = (body.get("response_format") or {}).get("type")
        if kind == "json_schema":
            return openai_error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                     "with this model. Learn more about supported models at the Structured "
                                     "Outputs guide: https://platform.openai.com/docs/guides/structured-outputs")
        if kind == "json_object":
            return openai_error(400, "Invalid parameter: 'response_format' of type 'json_object' is not supported "
                                     "with this model.", param="response_format")
        return None

    def _vllm(self, body: dict[str, Any]) -> Reply | None:
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        wanted = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        if prompt + wanted > self.context:
            return vllm_error(400, f"You passed {prompt} input tokens and requested {wanted} output tokens. However, "
                                   f"the model's context length is only {self.context} tokens, resulting in a "
                                   f"maximum input length of {self.context - wanted} tokens. Please reduce the "
                                   f"length of the input prompt. (parameter=input_tokens, value={prompt})",
                              "input_tokens")
        return None

    def _ollama(self, body: dict[str, Any]) -> Reply | None:
        if not self.pulled:
            return ollama_error(404, f"model \"{body['model']}\" not found, try pulling it first")
        return None

    def _llamacpp(self, body: dict[str, Any]) -> Reply | None:
        kind = (body.get("response_format") or {}).get("type", "text")
        if self.old and kind not in ("text", "json_object"):
            return llamacpp_error(500, f'response_format type must be one of "text" or "json_object", but got: {kind}',
                                  "server_error")
        return None

    def _lmstudio(self, body: dict[str, Any]) -> Reply | None:
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind not in ("json_schema", "text"):
            return 400, {}, {"error": "'response_format.type' must be 'json_schema' or 'text'"}
        return None
