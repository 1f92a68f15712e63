"""`with deps`: a fix whose conflict comes from an earlier fix the branch lacks is picked together
with it, in order, in one result, and the PR says so; a feature is never carried along."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.core import grammar
from tests import scenarios
from tests.gitrepo import GitRepo
from tests.test_backport_cli import backport, why
from tests.test_console import converse, prs, setup


def test_the_named_prerequisite_fix_is_picked_first(repo: GitRepo, capsys):
    ref = scenarios.prerequisite_fix(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1 and "#50" in out["reason"]  # without it: backport it first
    code, (out,) = backport_with_deps(repo, ref, capsys)
    assert code == 0, out
    assert [(p["pr"], p["picked"]) for p in out["prerequisites"]] == [(50, True)]
    subjects = repo.git("log", "--format=%s", f"rel..{out['result_commit']}").splitlines()
    assert subjects == ["Fix off-by-one in the bounds (#51)", "Fix the lower bound in handle (#50)"]
    assert "if (y >= 10 || y < -10)" in repo.show(out["result_commit"], "src/server.c")
    assert "Picked first, with the fix (asked for with `with deps`):" in why(repo, ref, "rel", capsys)


def backport_with_deps(repo: GitRepo, ref: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["backport", ref, "--to", "rel", "--repo", str(repo.path), "--json", "--with-deps"])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_a_feature_is_not_carried_along(repo: GitRepo, capsys):
    ref = scenarios.prerequisite(repo)  # #10 adds a parameter: no fix
    code, (out,) = backport_with_deps(repo, ref, capsys)
    assert code == 1 and out["kind"] == "conflict"
    assert "Not picked with its prerequisites: " in out["reason"] and "is not a fix" in out["reason"]
    assert not any(p.get("picked") for p in out["prerequisites"])


def test_with_deps_in_chat_and_in_the_pr_body(tmp_path, data_dir):
    _, cfg, _ = setup(tmp_path, scenarios.prerequisite_fix)
    out = converse(cfg, data_dir, ["/backport 51 to rel with deps"])
    assert "✅ rel: PR opened" in out, out
    (pr,) = prs(data_dir)
    assert "**Prerequisites picked first** (asked for with `with deps`; each is a fix the branch lacked):" in pr["body"]
    assert "Fix the lower bound in handle (#50)" in pr["body"]


def test_the_grammar():
    assert grammar.parse("/backport 51 to 8.0 8.1 with deps") == grammar.Backport("#51", ("8.0", "8.1"), True)
    assert grammar.parse("/backport 51 to 8.1") == grammar.Backport("#51", ("8.1",), False)
    with pytest.raises(grammar.ParseError, match="with deps"):
        grammar.parse("/backport 51 to 8.1 with dependencies please")
