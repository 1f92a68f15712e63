"""Code nobody has read yet (written by the model into a conflict hunk, or a change policy flagged)
never runs outside the sandbox before a maintainer's ✅. The project's test command here runs
what the source asks it to (`// RUN:` lines, as lit-style test harnesses do), and the model's
answer adds such a line: unisolated, it runs only after the ✅; in bubblewrap it runs before,
but cannot write outside its work tree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import scenarios
from tests.gitrepo import published
from tests.test_console import converse, prs
from tests.test_sandbox import bubblewrap_works


def configure(tmp_path: Path, isolation: str, scenario=scenarios.prerequisite) -> Path:
    _, remote, _ = published(tmp_path, scenario)
    cfg = tmp_path / "bot.toml"
    test = "grep -h '// RUN: ' src/*.c | sed 's|.*// RUN: ||' | bash; true"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\nisolation = "{isolation}"\n\n[chat.console]\nuser = "ada"\n\n'
                   f'[llm]\nenabled = true\nmodel = "local-model"\ntimeout = 5\n\n'
                   f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n'
                   f'[[repos.commands]]\nname = "test"\nrun = "{test}"\n')
    return cfg


def hostile(marker: Path):
    """A resolution that is right, plus a line that makes the test command touch `marker`."""
    def answer(data: dict) -> str:
        region = data["branch_version"].replace("y > 10", "y >= 10") + f"    // RUN: touch {marker}\n"
        return json.dumps({"window": data["before"] + region + data["after"], "confidence": 0.9,
                           "omitted": ["    if (y >= limit) {"], "explanation": "adapted to the branch"})
    return answer


def test_unisolated_the_models_code_runs_only_after_the_approval(tmp_path, data_dir, model):
    cfg = configure(tmp_path, "none")
    marker = tmp_path / "ran-before-review"
    model.script = [hostile(marker)]
    out = converse(cfg, data_dir, ["/backport 16 to rel"])
    waiting = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval: .*resolved by the LLM.*"
                        r"React ✅ its build and tests run \(unisolated: isolation is off\) and then the PR opens", out)
    assert waiting, out
    assert not marker.exists()  # nothing the model wrote has run
    assert prs(data_dir) == []
    out = converse(cfg, data_dir, [f"react {waiting.group(1)} ✅", "/backport why 16 rel"])
    assert marker.exists(), out  # approved: now the build and tests ran, then the PR opened
    (pr,) = prs(data_dir)
    assert "**Verification:** `test` passed" in pr["body"] and "Verified without isolation" in pr["body"]


def test_unisolated_a_flagged_pick_runs_its_tests_after_the_approval_and_their_failure_opens_no_pr(tmp_path, data_dir):
    """A clean pick the names check flagged (it calls a helper the branch lacks) whose test fails: the
    failure comes after the ✅, in the thread."""
    cfg = configure(tmp_path, "none", scenarios.uses_new_api)
    cfg.write_text(cfg.read_text().replace("enabled = true", "enabled = false")
                   .replace("; true", "; exit 3"))
    out = converse(cfg, data_dir, ["/backport 41 to rel"])
    waiting = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
    assert waiting and "its build and tests run (unisolated" in out, out
    assert not list((data_dir / "logs").rglob("*.log"))  # not run before the ✅
    out = converse(cfg, data_dir, [f"react {waiting.group(1)} ✅", "/backport why 41 rel"])
    assert prs(data_dir) == []
    assert "`test` (" in out and "exited with status 3" in out, out


def test_in_bubblewrap_the_models_code_runs_before_approval_but_cannot_leave_the_sandbox(tmp_path, data_dir, model):
    reason = bubblewrap_works()
    if reason:
        pytest.skip(reason)
    cfg = configure(tmp_path, "bubblewrap")
    marker = tmp_path / "escaped"
    model.script = [hostile(marker)]
    out = converse(cfg, data_dir, ["/backport 16 to rel"])
    assert re.search(r"✋ rel: waiting for a maintainer's approval: .*React ✅ to open the PR", out), out
    (log,) = (data_dir / "logs").rglob("1-test.log")
    assert f"cannot touch '{marker}'" in log.read_text()  # it ran, in the sandbox, and could not write out
    assert not marker.exists()
