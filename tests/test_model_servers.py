"""The real OpenAIModel, built as bot/app.py builds it, against local stand-ins for OpenAI, vLLM,
Ollama, llama.cpp server and LM Studio (tests/fake_model_servers.py): the response format and the
parameters are negotiated once per endpoint, hunks resolve, retries are paid from the budget, and
the server's own words reach the explanation."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.llm.openai import OpenAIModel, json_object
from bot.engine.ports import HunkRequest
from tests.fake_model_servers import ModelServer
from tests.test_console import converse
from tests.test_llm import correct, setup

KEY = "sk-test-0123456789abcdef-secret"
REQUEST = HunkRequest("src/a.c", ours="    if (y > 10) {\n", base="    if (y > limit) {\n",
                      theirs="    if (y >= limit) {\n", before="int f(int y) {\n", after="        return 1;\n",
                      fix_diff="-if (y > limit)\n+if (y >= limit)\n", commit_message="Fix off-by-one")


def good(data: dict[str, Any]) -> str:
    region = data["branch_version"].replace("y > 10", "y >= 10")
    return json.dumps({"window": data["before"] + region + data["after"], "explanation": "applied >=",
                       "confidence": 0.8, "omitted": ["    if (y >= limit) {"]})


Connect = Callable[..., OpenAIModel]


@pytest.fixture
def connect(monkeypatch: pytest.MonkeyPatch) -> Iterator[Connect]:
    """Points the bot at a stand-in (OPENAI_BASE_URL, OPENAI_API_KEY) and builds the model as bot/app.py does."""
    from bot.app import openai_model
    from bot.secrets import Secrets

    started: list[ModelServer] = []

    def to(server: ModelServer, timeout: float = 5) -> OpenAIModel:
        started.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        return openai_model("m", timeout, Secrets())

    yield to
    for server in started:
        server.close()


# Per server: what the first question sends (response_format types, "" for none) before one is answered.
NEGOTIATION = {
    "openai": ["json_schema"],
    "openai-reasoning": ["json_schema"] * 3,  # max_tokens refused, then temperature, then answered
    "openai-legacy": ["json_schema", "json_object", ""],
    "vllm": ["json_schema"],
    "ollama": ["json_schema"],
    "llamacpp-old": ["json_schema", "json_object"],
    "llamacpp": ["json_schema"],
    "lmstudio": ["json_schema"],
}
# How each one's model words its answer once it is no longer held to a schema.
WRAPPED = {
    "openai-legacy": lambda d: "Here is the resolution:\n" + good(d) + "\nLet me know if you need more.",
    "vllm": lambda d: "```json\n" + good(d) + "\n```",  # vLLM 0.6.3 fenced even under json_schema (#9900)
    "llamacpp-old": lambda d: "<think>the branch has no {limit}</think>\n" + good(d),
}


@pytest.mark.parametrize("name", sorted(NEGOTIATION))
def test_each_server_negotiates_once_and_resolves(name: str, connect: Connect) -> None:
    kind, old = name.removesuffix("-old"), name.endswith("-old")
    server = ModelServer(kind, WRAPPED.get(name, good), old=old)
    llm = connect(server)
    first = llm.resolve_hunk(REQUEST)
    assert first.window is not None and "y >= 10" in first.window, first.explanation
    assert server.formats() == NEGOTIATION[name]
    assert first.usage.calls == len(NEGOTIATION[name])  # the refused requests are paid for too
    learned = server.requests[-1]

    second = llm.resolve_hunk(REQUEST)  # remembered: one request, as the last one was sent
    assert second.window == first.window and second.usage.calls == 1
    assert len(server.requests) == len(NEGOTIATION[name]) + 1
    sent = server.requests[-1]
    assert {k: v for k, v in sent.items() if k != "messages"} == {k: v for k, v in learned.items() if k != "messages"}


def test_a_reasoning_model_gets_no_temperature_and_a_completion_limit(connect: Connect) -> None:
    server = ModelServer("openai-reasoning", good)
    llm = connect(server)
    assert llm.resolve_hunk(REQUEST).window is not None
    refused_limit, refused_temperature, answered = server.requests
    bound = 256 + 2 * len(REQUEST.before + REQUEST.theirs + REQUEST.after) // 3  # sized to the window asked for
    assert refused_limit["max_tokens"] == bound and refused_limit["temperature"] == 0
    assert "max_tokens" not in refused_temperature and refused_temperature["temperature"] == 0
    assert "temperature" not in answered and answered["max_completion_tokens"] == bound * 4
    assert answered["response_format"]["json_schema"]["strict"] is True  # our schemas pass OpenAI's strict check


def test_other_servers_get_temperature_zero_and_a_bounded_answer(connect: Connect) -> None:
    server = ModelServer("ollama", good)
    llm = connect(server)
    llm.resolve_hunk(REQUEST)
    (sent,) = server.requests
    assert sent["temperature"] == 0 and sent["max_tokens"] == 292 and "max_completion_tokens" not in sent
    big = llm.resolve_hunk(replace(REQUEST, ours="    x();\n" * 2000))  # never more than max_answer_tokens
    assert big and server.requests[-1]["max_tokens"] == 2048


def test_classification_and_questions_on_a_server_without_json_modes(connect: Connect) -> None:
    verdict = json.dumps({"fix": True, "security": False, "reason": "fixes a crash"})
    server = ModelServer("openai-legacy", lambda d: f"Sure. {verdict}" if "title" in d else "It failed at `resolving`.")
    llm = connect(server)
    first = llm.classify("Fix crash", "details")
    assert (first.is_fix, first.is_security, first.reason, first.usage.calls) == (True, False, "fixes a crash", 3)
    text, usage = llm.answer("why?", "facts")
    assert text == "It failed at `resolving`." and usage.calls == 1
    assert "response_format" not in server.requests[-1]  # free text is never held to a format
    assert llm.classify("Fix crash", "details").usage.calls == 1


def test_429_and_503_are_retried_and_every_try_is_counted(connect: Connect) -> None:
    server = ModelServer("openai", good, transient=[(429, {"Retry-After": "0"}), (503, {"Retry-After": "0"})])
    llm = connect(server)
    answer = llm.resolve_hunk(REQUEST)
    assert answer.window is not None and answer.usage.calls == 3 == len(server.requests)


def test_retries_stop_after_three_tries_with_the_servers_words(connect: Connect) -> None:
    server = ModelServer("llamacpp", good, transient=[(503, {})] * 5)
    llm = connect(server)
    llm.backoff = 0.01  # no Retry-After from llama-server: our own backoff, made short for the test
    start = time.monotonic()
    answer = llm.resolve_hunk(REQUEST)
    assert time.monotonic() - start < 1
    assert answer.window is None and answer.usage.calls == 3 == len(server.requests)
    assert answer.explanation == "the model endpoint failed (503): Loading model"


def test_ollama_busy_is_retried_with_backoff(connect: Connect) -> None:
    server = ModelServer("ollama", good, transient=[(503, {})])
    llm = connect(server)
    llm.backoff = 0.01
    answer = llm.resolve_hunk(REQUEST)
    assert answer.window is not None and answer.usage.calls == 2


def test_a_retry_after_beyond_the_timeout_is_not_waited_for(connect: Connect) -> None:
    server = ModelServer("openai", good, transient=[(429, {"Retry-After": "30"})])
    llm = connect(server, timeout=5)
    start = time.monotonic()
    answer = llm.resolve_hunk(REQUEST)
    assert time.monotonic() - start < 1 and answer.usage.calls == 1
    assert answer.explanation.startswith("the model endpoint refused the request (429): Rate limit reached for gpt-4o")


def test_an_exhausted_quota_is_not_retried(connect: Connect) -> None:
    server = ModelServer("openai", good, transient=[(429, {"Retry-After": "0", "quota": "1"})])
    answer = connect(server).resolve_hunk(REQUEST)
    assert answer.usage.calls == 1
    assert "(429): You exceeded your current quota" in answer.explanation


def test_errors_keep_the_servers_words_but_never_the_key(connect: Connect) -> None:
    server = ModelServer("openai", good, key="sk-the-right-one-0000")
    answer = connect(server).resolve_hunk(REQUEST)
    assert answer.explanation.startswith("the model endpoint refused the request (401): Incorrect API key provided:")
    assert KEY not in answer.explanation and KEY[:8] not in answer.explanation and KEY[-4:] not in answer.explanation

    pulled = ModelServer("ollama", good, pulled=False)
    answer = connect(pulled).resolve_hunk(REQUEST)
    assert answer.explanation == ('the model endpoint refused the request (404): '
                                  'model "m" not found, try pulling it first')
    assert answer.usage.calls == 1  # not a format problem, not worth a retry


def test_the_server_error_reaches_backport_why(tmp_path: Path, data_dir: Path, connect: Connect) -> None:
    server = ModelServer("vllm", correct, context=256)  # a small --max-model-len: prompt and answer cannot fit
    connect(server)
    _, cfg = setup(tmp_path)
    out = converse(cfg, data_dir, ["/backport 16 to rel", "/backport why 16 rel"])
    assert "the model endpoint refused the request (400): You passed" in out, out
    assert "However, the model's context length is only 256 tokens" in out and KEY not in out


def test_retries_are_paid_from_the_attempts_budget(tmp_path: Path, data_dir: Path, connect: Connect) -> None:
    server = ModelServer("openai", correct, transient=[(429, {"Retry-After": "0"})])
    connect(server)
    _, cfg = setup(tmp_path)
    out = converse(cfg, data_dir, ["/backport 16 to rel"])
    number = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
    assert number, out
    out = converse(cfg, data_dir, [f"react {number.group(1)} ✅", "/backport stats"])
    assert "LLM use: 2 calls, 120 tokens" in out, out


def test_workers_share_what_was_learned(connect: Connect) -> None:
    server = ModelServer("openai-reasoning", good)
    llm = connect(server)
    answers = []

    def work() -> None:
        answers.append(llm.resolve_hunk(REQUEST))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.window is not None for a in answers) and len(server.requests) <= 4 * 3
    llm.resolve_hunk(REQUEST)
    assert len(server.requests) == sum(a.usage.calls for a in answers) + 1  # every request was counted once


@pytest.mark.parametrize("text", [
    '{"fix": true}',
    '```json\n{"fix": true}\n```',
    'Sure! Here it is:\n```\n{"fix": true}\n```\nAnything else?',
    '<think>maybe {not json}</think> {"fix": true} trailing words',
])
def test_json_is_found_in_fences_and_prose(text: str) -> None:
    assert json_object(text) == {"fix": True}
    with pytest.raises(ValueError):
        json_object("Sure! Here is the fix: if (y >= 10)")
