"""Prerequisites that are true and few. Each case is the situation seen in public backport
histories: a prerequisite already carried back under another SHA with an adapted patch (no
trailer, another patch-id); a reformatter run blamed for the neighbourhood; a conflict whose
lines many commits touched."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.engine import prereq
from bot.engine.git import Git
from tests import scenarios
from tests.gitrepo import GitRepo
from tests.scenarios import SERVER, fixed


def run(repo: GitRepo, ref: str, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["backport", ref, "--to", "rel", "--repo", str(repo.path), "--json"]) == 1
    return json.loads(capsys.readouterr().out)


def test_a_prerequisite_already_carried_back_with_another_patch_counts_as_there(repo):
    """#10 reached rel adapted by hand (a comment of its own, so another patch-id; no trailer,
    another subject): its effect is there, so it is not named; on a rel without it, it is."""
    scenarios.prerequisite(repo)
    ten = repo.git("log", "--format=%H", "--grep=(#10)", "main")
    git = Git(repo.path)
    assert not prereq._effect_present(git, ten, "rel", {"src/server.c"})
    with_10 = repo.show(ten, "src/server.c").replace(
        "int handle(int x, int limit) {", "/* limit: from the caller */\nint handle(int x, int limit) {")
    repo.commit("Let callers set handle's limit", {"src/server.c": with_10}, on="rel")
    repo.checkout("main")
    assert prereq._effect_present(git, ten, "rel", {"src/server.c"})


def test_a_reformat_commit_is_never_a_prerequisite(repo):
    scenarios.base(repo)
    spaced = SERVER.replace("    ", "  ")  # a reformatter run: indentation only
    reformat = repo.commit("Reformat with two spaces", {"src/server.c": spaced})
    feature = repo.commit("Add a limit parameter (#10)", {"src/server.c": fixed(spaced, "if (y > 10)",
                                                                                  "if (y > limit)")})
    git = Git(repo.path)
    assert prereq._formatting_only(git, reformat, {"src/server.c"})
    assert not prereq._formatting_only(git, feature, {"src/server.c"})


def test_at_most_three_are_named_those_that_explain_most_and_the_rest_counted(repo, capsys):
    scenarios.base(repo)
    text = SERVER
    # Four main-branch features each rewrote some lines of handle; the fix then changes them all.
    for n, (old, new) in enumerate([("int y = x * 2;", "int y = x * 3;"), ("if (y > 10) {", "if (y > 11) {"),
                                    ("return -1;", "return -2;"), ("return y;", "return y + 0;")], start=1):
        text = fixed(text, old, new)
        if n == 1:  # the first touches two more lines: it explains the most
            text = fixed(fixed(text, "int add(int a, int b) {", "int add(int a, int b) { /* v2 */"),
                         "return a + b;", "return b + a;")
        repo.commit(f"Feature {n} (#{30 + n})", {"src/server.c": text})
    whole = text.replace("x * 3", "x * 4").replace("y > 11", "y >= 11").replace("return -2", "return -3") \
        .replace("y + 0", "y + 1").replace("/* v2 */", "/* v3 */").replace("b + a", "a + b + 0")
    repo.commit("Fix handle's arithmetic (#40)", {"src/server.c": whole})
    out = run(repo, "#40", capsys)
    named = [p for p in out["prerequisites"] if p["named"]]
    assert len(out["prerequisites"]) == 4 and len(named) == 3, out["prerequisites"]
    assert any(p["pr"] == 31 for p in named)  # the one that touched most of the conflicting lines
    assert "(and 1 more)" in out["reason"]
    assert main(["why", "#40", "rel", "--repo", str(repo.path)]) == 0
    assert "and 1 more that explain less of the conflict" in capsys.readouterr().out
