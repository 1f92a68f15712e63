"""`backportbot eval` on a synthetic history whose classification is known pair by pair."""

from __future__ import annotations

import io
import json

from bot.cli import main
from bot.engine.evaluate import mine, replay
from bot.engine.git import Git
from tests.gitrepo import GitRepo, lines

BASE = lines(12, "    total += weight *")
REL_5 = "    total += weight * 5 + rel_bias;"


def edit(text: str, n: int, new: str) -> str:
    out = text.splitlines(keepends=True)
    out[n - 1] = new + "\n"
    return "".join(out)


def build(repo: GitRepo) -> dict[str, str]:
    """One file per case so the cases never touch each other. Returns human backport -> class."""
    files = {f"{case}.c": BASE for case in ("a", "b", "c", "d", "e", "f", "g", "h")}
    repo.commit("Initial", files)
    repo.branch("rel")
    # Drift on the release branch, next to where fixes will land.
    repo.commit("Branch-only tweaks", {"c.c": edit(BASE, 5, REL_5), "d.c": edit(BASE, 5, REL_5),
                                       "h.c": edit(BASE, 6, "    total += weight * 6 + rel_bias;")}, on="rel")
    repo.checkout("main")
    fixes = {
        "a": repo.commit("Fix a (#1)", {"a.c": edit(BASE, 6, "fixed a")}),
        "b": repo.commit("Fix b (#2)", {"b.c": edit(BASE, 6, "fixed b")}),
        "c": repo.commit("Fix c (#3)", {"c.c": edit(BASE, 6, "fixed c")}),
        "d": repo.commit("Fix d (#4)", {"d.c": edit(BASE, 6, "fixed d")}),
    }
    # e reaches main through a merged branch: mining must look beyond main's first parents
    repo.git("checkout", "-q", "-b", "topic-e")
    fixes["e"] = repo.commit("Fix e", {"e.c": edit(BASE, 6, "fixed e")})
    repo.checkout("main")
    repo.merge("topic-e", "Merge branch topic-e")
    x = repo.commit("Rework f (#10)", {"f.c": edit(BASE, 6, "reworked f")})
    fixes["f"] = repo.commit("Fix f (#11)", {"f.c": edit(BASE, 6, "reworked and fixed f")})
    repo.commit("Rework g (#20)", {"g.c": edit(BASE, 6, "reworked g")})
    fixes["g"] = repo.commit("Fix g (#21)", {"g.c": edit(BASE, 6, "reworked and fixed g")})
    fixes["h"] = repo.commit("Fix h (#30)", {"h.c": edit(BASE, 6, "fixed h")})

    expected: dict[str, str] = {}
    repo.checkout("rel")

    def human(case: str, message: str, files: dict[str, str], cls: str) -> None:
        expected[repo.commit(message, files)] = cls

    repo.git("cherry-pick", "-x", fixes["a"])
    expected[repo.head()] = "reproduced"
    human("b", "Fix b (#2)", {"b.c": edit(edit(BASE, 6, "fixed b"), 7, "and more")}, "clean-different")
    human("c", f"[1.x] Fix c\n\nBackport of {fixes['c']} from main",
          {"c.c": edit(edit(BASE, 5, REL_5), 6, "fixed c")}, "resolved-equal")
    human("d", f"Fix d\n\n(cherry picked from commit {fixes['d']})",
          {"d.c": edit(edit(BASE, 5, REL_5), 6, "fixed d, the rel way")}, "resolved-different")
    repo.git("cherry-pick", fixes["e"])
    repo.git("commit", "--amend", "-q", "-m", "Port the e fix")  # found by patch-id only
    expected[repo.head()] = "reproduced"
    # f: the human backported #10 in a parallel PR merged before the backport of #11.
    fork = repo.head()
    repo.git("cherry-pick", "-x", x)
    xh = repo.head()
    repo.git("checkout", "-q", "-b", "backport-f", fork)
    human("f", f"Fix f\n\n(cherry picked from commit {fixes['f']})", {"f.c": edit(BASE, 6, "fixed f")},
          "unresolved-prereq-confirmed")
    repo.checkout("rel")
    assert repo.head() == xh
    repo.git("merge", "-q", "-s", "ours", "-m", "Merge backport-f", "backport-f")
    human("g", f"Fix g\n\n(cherry picked from commit {fixes['g']})", {"g.c": edit(BASE, 6, "fixed g")},
          "unresolved-prereq-named")
    human("h", f"Fix h\n\n(cherry picked from commit {fixes['h']})", {"h.c": edit(BASE, 6, "fixed h")},
          "unresolved")
    expected[xh] = "reproduced"
    repo.checkout("main")
    return expected


def test_mining_finds_each_method(repo):
    expected = build(repo)
    pairs, counts = mine(Git(repo.path), "main", ["rel"])
    assert {p.human for p in pairs} == set(expected)
    assert counts == {"trailer": 6, "subject": 1, "backport-of": 1, "patch-id": 1}


def test_replay_classifies_every_pair(repo):
    expected = build(repo)
    pairs, _ = mine(Git(repo.path), "main", ["rel"])
    results = replay(repo.path, "main", pairs, jobs=2, progress=io.StringIO())
    assert {r.pair.human: r.cls for r in results} == expected
    rungs = {r.pair.human: r.rungs for r in results}
    assert all(rungs[h] == ["context-moved"] for h, cls in expected.items() if cls.startswith("resolved"))
    confirmed = next(r for r in results if r.cls == "unresolved-prereq-confirmed")
    assert confirmed.prerequisites == [repo.git("log", "--format=%H", "--grep=(#10)", "main")]
    # the repository itself is untouched: no branches, worktrees or rerere records left behind
    assert repo.git("branch", "--list", "backport/*") == ""
    assert not (repo.path / ".git" / "rr-cache").exists()


def test_eval_command_prints_tables_and_writes_json(repo, tmp_path, capsys):
    build(repo)
    out_json = tmp_path / "pairs.json"
    assert main(["eval", "--repo", str(repo.path), "--branches", "rel", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "Pairs mined: trailer 6, " in out
    assert "rel" in out and "Plain cherry-pick reproduces the human backport: 3/9 " in out
    assert "context-moved" in out
    details = json.loads(out_json.read_text())
    assert len(details) == 9 and {"original", "human", "branch", "method", "class", "rungs"} <= set(details[0])


def test_eval_can_verify_every_replayed_pair(repo, capsys):
    build(repo)
    # a "test suite" that rejects the engine's d.c (the human wrote it another way) and passes the rest
    assert main(["eval", "--repo", str(repo.path), "--branches", "rel", "--json", str(repo.path.parent / "v.json"),
                 "--verify", "! grep -qx 'fixed d' d.c"]) == 0
    details = {d["human"]: d for d in json.loads((repo.path.parent / "v.json").read_text())}
    classes = sorted(d["class"] for d in details.values())
    assert classes.count("other") == 1 and classes.count("reproduced") == 3 and classes.count("resolved-equal") == 1
    (failed,) = [d for d in details.values() if d["class"] == "other"]
    assert failed["reason"].startswith("verify: `verify 1`")
    assert "fixed d, the rel way" in repo.show(failed["human"], "d.c")
