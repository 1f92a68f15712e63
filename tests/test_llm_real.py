"""The conflict scenarios of the test suite through a REAL model server (opt-in: skipped unless
LLM_REAL_URL is set; bench/llm_real.sh starts llama.cpp's server with SmolLM2-135M and sets it).

    LLM_REAL_URL=http://127.0.0.1:8765/v1 LLM_REAL_MODEL=smollm2-135m pytest tests/test_llm_real.py

Any OpenAI-compatible endpoint works the same way (vLLM, Ollama, a hosted API: also set
OPENAI_API_KEY). What it proves is the path, not the model's quality: every request is accepted
by the server (never refused as malformed), every answer is used only after passing every check or
is refused for a reason stated in `why`, and each attempt records the calls, tokens and seconds."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests import scenarios
from tests.gitrepo import published
from tests.test_console import Store, converse

URL, MODEL = os.environ.get("LLM_REAL_URL", ""), os.environ.get("LLM_REAL_MODEL", "")
pytestmark = pytest.mark.skipif(not URL or not MODEL, reason="a real model server: set LLM_REAL_URL, LLM_REAL_MODEL")
TIMEOUT = float(os.environ.get("LLM_REAL_TIMEOUT", "300"))
REPORT = os.environ.get("LLM_REAL_REPORT")  # a JSON lines file: one line per scenario

# What `why` says of a hunk the model did not resolve: each is a stated reason.
REASONS = re.compile(r"LLM answer rejected: (the model gave no resolution|conflict markers remain|it changes lines "
                     r"outside the conflicted region|the fix's line .* is missing and the model did not say why|"
                     r"the file no longer parses)|LLM timed out|the LLM budget of this attempt is spent")
MODEL_FAILED = re.compile(r"the model's answer was not the JSON asked for|the model's answer was cut off at its limit")


@pytest.mark.parametrize("name", sorted(scenarios.ALL))
def test_a_scenario_through_the_real_model(name: str, tmp_path: Path, data_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", URL)
    monkeypatch.setenv("OPENAI_API_KEY", os.environ.get("OPENAI_API_KEY") or "not-needed-locally")
    work, remote, ref = published(tmp_path, scenarios.ALL[name])
    cfg = tmp_path / "bot.toml"
    context = os.environ.get("LLM_REAL_CONTEXT_TOKENS", "1500")
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n'
                   f'[llm]\nenabled = true\nmodel = "{MODEL}"\ntimeout = {TIMEOUT}\ncontext_tokens = {context}\n\n'
                   f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')
    number = ref.lstrip("#")
    start = time.monotonic()
    out = converse(cfg, data_dir, [f"/backport {number} to rel", f"/backport why {number} rel"])
    seconds = time.monotonic() - start
    store = Store(data_dir / "backportbot.db")
    (attempt,) = store.all_attempts()
    hunks = store.hunks(attempt.id)
    resolved = [h for h in hunks if h.resolved_by in ("llm", "llm-repair")]
    # every conflict hunk the rules left went to the model (whole-file conflicts never do)
    asked = [str(h.detail.get("note", "")) for h in hunks if h.resolved_by == "unresolved" and "line" in h.detail]
    refused = [n for n in asked if not (REASONS.search(n) or MODEL_FAILED.search(n))]
    usage = attempt.llm_usage
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"scenario": name, "llm_resolved": len(resolved), "llm_not_used": len(asked),
                                "usage": usage, "seconds": round(seconds, 1), "reasons": asked}) + "\n")
    assert "refused the request" not in out and "could not be reached" not in out, out  # well-formed, answered
    assert not refused, refused  # every answer not used says why
    if resolved or asked:  # usage and time recorded
        assert usage.get("calls", 0) >= 1 and usage.get("tokens", 0) > 0 and usage.get("seconds", 0) > 0, out
    if resolved:  # used only after every check, and never without a maintainer
        assert "waiting for a maintainer's approval" in out and "resolved by the LLM" in out, out


REPAIR_REASONS = re.compile(r"The LLM's repair was (timed out|not used: (the model proposed no repair|region \d+: .+|"
                            r"it names a region \d+ it was not given))|the LLM repaired \d+ resolved region")


def test_a_repair_request_through_the_real_model(tmp_path: Path, data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule resolves the conflict, then a test fails: the real model gets the one repair request,
    and its answer is used after the checks or refused for a stated reason."""
    monkeypatch.setenv("OPENAI_BASE_URL", URL)
    monkeypatch.setenv("OPENAI_API_KEY", os.environ.get("OPENAI_API_KEY") or "not-needed-locally")
    work, remote, ref = published(tmp_path, scenarios.context_moved)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n'
                   f'[llm]\nenabled = true\nmodel = "{MODEL}"\ntimeout = {TIMEOUT}\n\n'
                   f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n\n'
                   '[[repos.commands]]\nname = "test"\nrun = "echo \'FAIL: handle(6) returned 12, expected -1\'; '
                   'grep -n \'if (y\' src/server.c; exit 1"\n')
    number = ref.lstrip("#")
    start = time.monotonic()
    out = converse(cfg, data_dir, [f"/backport {number} to rel", f"/backport why {number} rel"])
    store = Store(data_dir / "backportbot.db")
    (attempt,) = store.all_attempts()
    said = REPAIR_REASONS.search(out)
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"scenario": "repair after a failed test (context_moved)",
                                "usage": attempt.llm_usage, "seconds": round(time.monotonic() - start, 1),
                                "reasons": [said.group(0) if said else None]}) + "\n")
    assert "refused the request" not in out and "could not be reached" not in out, out
    assert said, out
    assert attempt.llm_usage.get("calls", 0) >= 1 and attempt.llm_usage.get("seconds", 0) > 0
