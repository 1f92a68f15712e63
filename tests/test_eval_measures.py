"""What `backportbot eval` measures (issue 16 point 7): pairs found by subject with the release
prefix removed, the names check on clean pairs, no rerere replay of the bot's own resolutions,
kept versus changed +/- lines, and named prerequisites already on the target."""

from __future__ import annotations

import io
import json
from collections import Counter

from bot.cli import main
from bot.engine.evaluate import Pair, already_there, bare_subject, human_kept, mine, replay, tables
from bot.engine.git import Git
from tests.gitrepo import GitRepo, lines
from tests.test_eval import BASE, REL_5, build, edit


def test_bare_subject_removes_release_prefixes_and_pr_numbers():
    for subject in ("[release-1.2] bgpd: fix a leak", "[1.2] bgpd: fix a leak", "[v255-stable] bgpd: fix a leak",
                    "[backport 1.2] bgpd: fix a leak", "Backport: bgpd: fix a leak", "backport: bgpd: fix a leak",
                    "[Backport stable/9.1] bgpd: fix a leak (#1234)", "(backport) bgpd: fix a leak",
                    "[9.1] [backport] bgpd: fix a leak (#77)", "bgpd: fix a leak"):
        assert bare_subject(subject) == "bgpd: fix a leak", subject
    assert bare_subject("bgpd: fix a leak (#1) in peers") == "bgpd: fix a leak (#1) in peers"


def test_mining_by_subject_with_the_release_prefix_removed(repo: GitRepo):
    """Backports that changed the patch and carry no trailer (as FRRouting's `[stable/x.y]`
    and Go projects' `[release-x.y]` PRs): found when exactly one main commit has the subject."""
    repo.commit("Initial", {"a.c": BASE, "b.c": BASE, "c.c": BASE})
    repo.branch("rel")
    a = repo.commit("bgpd: fix the leak in peer teardown", {"a.c": edit(BASE, 6, "fixed a")})
    repo.commit("Update docs", {"b.c": edit(BASE, 2, "docs 1")})
    repo.commit("Update docs", {"b.c": edit(BASE, 2, "docs 2")})
    repo.checkout("rel")
    human_a = repo.commit("[release-1.2] bgpd: fix the leak in peer teardown (#99)",
                          {"a.c": edit(BASE, 6, "fixed a, the rel way")})
    repo.commit("[release-1.2] Update docs", {"b.c": edit(BASE, 2, "docs rel")})  # two on main: ambiguous
    repo.commit("[release-1.2] ospfd: something only the branch has", {"c.c": edit(BASE, 3, "rel only")})
    repo.checkout("main")
    pairs, counts = mine(Git(repo.path), "main", ["rel"])
    assert [(p.original, p.human, p.method) for p in pairs] == [(a, human_a, "subject-prefix")]
    assert counts == {"subject-prefix": 1}
    results = replay(repo.path, "main", pairs, jobs=1, progress=io.StringIO())
    out = tables(results, counts, 1.0)
    assert "Pairs mined: subject-prefix 1 (1 in all)" in out
    assert any(line.startswith("found by subject-prefix") for line in out.splitlines())


def names_history(repo: GitRepo) -> tuple[str, str]:
    """A fix that calls a helper main gained after the branch point (systemd's fixes often call a
    new `*_free_and_replace`-style helper): the pick onto the branch is clean but cannot build."""
    util = "int util_old(int x)\n{\n        return x;\n}\n"
    user = "int user(int x)\n{\n        int y = util_old(x);\n        return y;\n}\n"
    repo.commit("Initial", {"util.c": util, "user.c": user})
    repo.branch("rel")
    repo.commit("util: add util_new", {"util.c": util + "\nint util_new(int x)\n{\n        return x + 1;\n}\n"})
    fix = repo.commit("user: fix the off-by-one", {"user.c": user.replace("util_old(x)", "util_new(x)")})
    repo.checkout("rel")
    repo.commit(f"user: fix the off-by-one\n\n(cherry picked from commit {fix})",
                {"user.c": user.replace("util_old(x)", "util_old(x) + 1")})
    repo.checkout("main")
    return fix, repo.head("rel")


def test_clean_pairs_get_the_names_check_and_unflagged_differences_are_a_headline(repo: GitRepo):
    names_history(repo)
    pairs, counts = mine(Git(repo.path), "main", ["rel"])
    (result,) = replay(repo.path, "main", pairs, jobs=1, progress=io.StringIO())
    assert result.cls == "clean-different"
    assert result.flagged and "util_new" in result.warnings[0]
    out = tables([result], counts, 1.0)
    assert "Flagged for approval by the names check: 1." in out
    assert "clean-different 1 (1 flagged or explained)" in out
    assert "neither flagged nor explained: 0" in out


def test_a_clean_pair_is_scored_with_the_tests_the_engine_leaves_out(repo: GitRepo):
    """As a real backport does: the fix's test uses a helper only main has, so the engine carries the
    code and leaves the test out; the human did the same. eval scores the engine's tree, not the
    plain pick's."""
    limits = "def clamp(x):\n    if x > 10:\n        return -1\n    return x\n"
    test = "from limits import clamp\n\n\ndef test_small():\n    assert clamp(3) == 3\n"
    repo.commit("Initial", {"limits.py": limits, "tests/test_limits.py": test})
    repo.branch("rel")
    repo.commit("Add test helpers", {"tests/helpers.py": "def expect_clamped(f, x):\n    assert f(x) == 10\n"})
    fix = repo.commit("Fix clamp of large values", {
        "limits.py": limits.replace("return -1", "return 10"),
        "tests/test_limits.py": "from tests.helpers import expect_clamped\n" + test
        + "\n\ndef test_large():\n    expect_clamped(clamp, 11)\n"})
    repo.commit(f"Fix clamp of large values\n\n(cherry picked from commit {fix})",
                {"limits.py": limits.replace("return -1", "return 10")}, on="rel")
    repo.checkout("main")
    pairs, _ = mine(Git(repo.path), "main", ["rel"])
    (result,) = replay(repo.path, "main", pairs, jobs=1, progress=io.StringIO())
    assert result.cls == "reproduced", result
    assert result.flagged and "tests/test_limits.py are left out" in result.warnings[0]


def test_eval_json_keeps_its_fields_and_adds_the_new_ones(repo: GitRepo, tmp_path, capsys):
    names_history(repo)
    out_json = tmp_path / "pairs.json"
    assert main(["eval", "--repo", str(repo.path), "--branches", "rel", "--json", str(out_json)]) == 0
    (d,) = json.loads(out_json.read_text())
    assert {"original", "human", "target", "branch", "method", "class", "rungs", "prerequisites", "reason",
            "flagged"} <= set(d)
    assert d["flagged"] and "util_new" in d["warnings"][0]
    assert d["human_kept_lines"] is None and d["prerequisites_present"] == []
    assert "neither flagged nor explained: 0" in capsys.readouterr().out


def test_the_bots_own_resolution_is_never_replayed_as_recorded(repo: GitRepo):
    """Two pairs with the same conflict (one fix, two branches with the same drift): each is
    resolved by the ladder; the second must not find the first's resolution in rerere."""
    repo.commit("Initial", {"a.c": BASE})
    repo.branch("rel1")
    repo.branch("rel2")
    for rel in ("rel1", "rel2"):
        repo.commit(f"Branch tweak on {rel}", {"a.c": edit(BASE, 5, REL_5)}, on=rel)
    repo.checkout("main")
    fix = repo.commit("Fix a (#1)", {"a.c": edit(BASE, 6, "fixed a")})
    for rel in ("rel1", "rel2"):
        repo.commit(f"Fix a\n\n(cherry picked from commit {fix})", {"a.c": edit(edit(BASE, 5, REL_5), 6, "fixed a")},
                    on=rel)
    repo.checkout("main")
    pairs, _ = mine(Git(repo.path), "main", ["rel1", "rel2"])
    assert [p.branch for p in pairs] == ["rel1", "rel2"]
    results = replay(repo.path, "main", pairs, jobs=1, progress=io.StringIO())
    assert [(r.cls, r.rungs) for r in results] == [("resolved-equal", ["context-moved"])] * 2


def test_conflicts_split_by_whether_the_human_kept_the_fix_lines(repo: GitRepo):
    expected = build(repo)
    pairs, counts = mine(Git(repo.path), "main", ["rel"])
    results = replay(repo.path, "main", pairs, jobs=2, progress=io.StringIO())
    kept = {expected[r.pair.human]: r.kept for r in results}
    assert kept["resolved-equal"] is True  # c: only the line next to the fix drifted
    assert kept["resolved-different"] is False  # d: the human wrote "fixed d, the rel way"
    assert kept["reproduced"] is None  # clean pairs are not conflicts
    out = tables(results, counts, 1.0)
    by_kept = Counter(r.kept for r in results if r.kept is not None)
    assert f"Context drifted (kept) conflicts reproduced: 1/{by_kept[True]} " in out
    assert "context-moved kept" in out and "context-moved changed" in out


def test_human_kept_compares_added_and_removed_lines_not_context(repo: GitRepo):
    text = lines(10)
    repo.commit("Initial", {"x.c": text})
    repo.branch("rel")
    repo.commit("Drift", {"x.c": edit(text, 4, "line 4 on rel")}, on="rel")
    target = repo.head()
    repo.checkout("main")
    parent = repo.head()
    fix = repo.commit("Fix", {"x.c": edit(text, 5, "  fixed   5")})
    repo.checkout("rel")
    same = repo.commit("Fix, re-spaced", {"x.c": edit(edit(text, 4, "line 4 on rel"), 5, "fixed 5")})
    repo.git("reset", "-q", "--hard", target)
    other = repo.commit("Fix, another way", {"x.c": edit(edit(text, 4, "line 4 on rel"), 5, "fixed 5 otherwise")})
    git = Git(repo.path)
    assert human_kept(git, Pair(fix, same, target, "rel", "trailer"), parent)
    assert not human_kept(git, Pair(fix, other, target, "rel", "trailer"), parent)


def test_named_prerequisites_already_on_the_target_are_counted(repo: GitRepo):
    """Each way a branch carries a commit under another SHA (trailer, `(#N)`, equal patch) and
    as an ancestor: all counted; one the branch lacks is not."""
    repo.commit("Initial", {f"{c}.c": BASE for c in "abcde"})
    ancestor = repo.commit("Before the branch (#1)", {"e.c": edit(BASE, 1, "e")})
    repo.branch("rel")
    by_trailer = repo.commit("Change a (#2)", {"a.c": edit(BASE, 2, "a")})
    by_pr = repo.commit("Change b (#3)", {"b.c": edit(BASE, 2, "b")})
    by_patch = repo.commit("Change c (#4)", {"c.c": edit(BASE, 2, "c")})
    missing = repo.commit("Change d (#5)", {"d.c": edit(BASE, 2, "d")})
    repo.checkout("rel")
    repo.commit(f"Change a, adapted\n\n(cherry picked from commit {by_trailer})", {"a.c": edit(BASE, 2, "a'")})
    repo.commit("[rel] Change b, adapted (#3)", {"b.c": edit(BASE, 2, "b'")})
    repo.commit("Port of change c", {"c.c": edit(BASE, 2, "c")})
    target = repo.head()
    repo.checkout("main")
    named = [ancestor, by_trailer, by_pr, by_patch, missing]
    assert already_there(Git(repo.path), target, "main", named) == [ancestor, by_trailer, by_pr, by_patch]
