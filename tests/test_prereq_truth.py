"""Prerequisites that are true, few and honest (issue 16 point 4). Each case rebuilds, small, a
situation seen in public backport histories: a prerequisite already carried back under another SHA
(with a cherry-pick trailer; by equal patch; adapted, by equal effect); a reformatter run or a
re-wrap blamed for the conflicting lines; a fix to code that came with a feature the branch never
got."""

from __future__ import annotations

import json

import pytest

from adapters.store.sqlite import SQLiteStore
from bot.cli import main
from bot.core import reports
from bot.core.workflow import Workflow
from bot.engine import prereq
from bot.engine.errors import Conflict, Stage
from bot.engine.git import Git
from bot.engine.policy import BranchIndex
from bot.engine.source import read_commits
from tests import scenarios
from tests.gitrepo import GitRepo, lines
from tests.scenarios import SERVER, fixed

WITH_LIMIT = fixed(fixed(fixed(SERVER, "int handle(int x) {", "int handle(int x, int limit) {"),
                         "if (y > 10)", "if (y > limit)"), "handle(add(1, 2))", "handle(add(1, 2), 10)")


def backport(repo: GitRepo, ref: str, capsys: pytest.CaptureFixture[str]) -> dict:
    code = main(["backport", ref, "--to", "rel", "--repo", str(repo.path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1, out
    return out


def why(repo: GitRepo, ref: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["why", ref, "rel", "--repo", str(repo.path)]) == 0
    return capsys.readouterr().out


def carried_back(repo: GitRepo, how: str) -> str:
    """#10 (a limit parameter) then the fix #16 on main, which also changes `return -1;`. rel got
    #10 back under another SHA (`how`), then changed `return -1;` its own way: the fix conflicts
    on lines #10 last touched on main, yet #10 is there."""
    scenarios.base(repo)
    ten = repo.commit("Add a limit parameter to handle (#10)", {"src/server.c": WITH_LIMIT})
    repo.commit("Fix off-by-one in the limit (#16)",
                {"src/server.c": fixed(fixed(WITH_LIMIT, "y > limit", "y >= limit"), "return -1;", "return -2;")})
    repo.checkout("rel")
    adapted = WITH_LIMIT.replace("int handle(", "/* limit: from the caller */\nint handle(")  # another patch
    if how == "trailer":  # adapted by hand, but the message says where it came from
        repo.commit(f"Add a limit parameter to handle\n\n(cherry picked from commit {ten})", {"src/server.c": adapted})
    elif how == "patch-id":  # picked as is, with a message of its own: no trailer, no (#10)
        repo.git("cherry-pick", "--no-commit", ten)
        repo.commit("Let callers pass a limit")
    else:  # adapted, no trailer, another subject, another patch-id: only its effect says so
        repo.commit("Let callers set handle's limit", {"src/server.c": adapted})
    repo.commit("Return zero past the limit on rel", {"src/server.c": fixed(repo.show("rel", "src/server.c"),
                                                                             "return -1;", "return 0;")})
    repo.checkout("main")
    return ten


@pytest.mark.parametrize("how", ["trailer", "patch-id", "effect"])
def test_a_prerequisite_already_carried_back_under_another_sha_is_not_named(repo, capsys, how):
    ten = carried_back(repo, how)
    git = Git(repo.path)
    found = BranchIndex(git, "refs/heads/rel", "refs/heads/main").presence(read_commits(git, ten), own_pr=True)
    assert (found[ten].how if ten in found else "effect") == how
    if how == "effect":
        assert prereq._effect_present(git, ten, "rel", {"src/server.c"})
    out = backport(repo, "#16", capsys)
    assert out["kind"] == "conflict" and out["conflicts"][0]["resolved_by"] == ["unresolved"], out
    assert out["prerequisites"] == [], out["prerequisites"]
    assert "prerequisite" not in out["reason"] and "#10" not in why(repo, "#16", capsys)


def test_without_it_on_the_branch_the_prerequisite_is_named_with_the_lines_it_explains(repo, capsys):
    scenarios.prerequisite(repo)
    out = backport(repo, "#16", capsys)
    (p,) = out["prerequisites"]
    assert p["pr"] == 10 and p["named"] and p["lines"] >= 1 and not p["feature"]
    assert "backport it first" in out["reason"]


def test_a_copy_whose_lines_are_scattered_elsewhere_is_not_equal_effect(repo):
    """The same lines, but far apart in the branch's file, are not the prerequisite's effect."""
    scenarios.prerequisite(repo)
    ten = repo.git("log", "--format=%H", "--grep=(#10)", "main")
    far = SERVER + "\n" * 40 + "int handle(int x, int limit) {\n    return 0;\n}\n" + "\n" * 40 \
        + "/* if (y > limit) { */\n/* handle(add(1, 2), 10) */\n"
    far = far.replace('printf("%d\\n", handle(add(1, 2)));', 'printf("%d\\n", handle(add(1, 2), 10));')
    repo.commit("Unrelated growth on rel", {"src/server.c": far}, on="rel")
    repo.checkout("main")
    assert not prereq._effect_present(Git(repo.path), ten, "rel", {"src/server.c"})


def rel_changes_return(repo: GitRepo) -> None:
    repo.commit("Return zero past the limit on rel", {"src/server.c": fixed(SERVER, "return -1;", "return 0;")},
                on="rel")
    repo.checkout("main")


def test_a_reformat_blamed_for_the_conflict_is_not_named(repo, capsys):
    """A reformatter re-indented the file on main; the fix then changes lines the branch changed
    too. Blame lands on the reformat, which carries nothing to backport."""
    scenarios.base(repo)
    spaced = SERVER.replace("    ", "  ")
    repo.commit("Reformat with two spaces (#30)", {"src/server.c": spaced})
    repo.commit("Tighten the limit (#31)", {"src/server.c": fixed(spaced, "return -1;", "return -2;")})
    rel_changes_return(repo)
    out = backport(repo, "#31", capsys)
    assert out["kind"] == "conflict" and out["prerequisites"] == [], out


def test_a_rewrap_is_formatting_and_a_sweep_is_judged_by_most_of_its_hunks(repo):
    scenarios.base(repo)
    wrapped = SERVER.replace('    printf("%d\\n", handle(add(1, 2)));',
                             '    printf("%d\\n",\n           handle(add(1, 2)));')
    rewrap = repo.commit("Wrap long lines (#32)", {"src/server.c": wrapped})
    git = Git(repo.path)
    assert prereq._formatting_only(git, rewrap, {"src/server.c"})
    # A sweep over hundreds of files: five hunks re-indented, one small real change among them.
    text = wrapped
    for old in ("return a + b;", "int y = x * 2;", "return y;", "return 0;", "#include <stdio.h>"):
        text = fixed(text, old, "  " + old)
    sweep = repo.commit("Run the formatter everywhere (#33)",
                        {"src/server.c": fixed(text, "return -1;", "return -2;")})
    assert not prereq._formatting_only(git, sweep, {"src/server.c"}, files=3)
    assert prereq._formatting_only(git, sweep, {"src/server.c"}, files=prereq.SWEEP + 200)


def test_four_candidates_name_three_and_count_one_in_why_and_json(repo, capsys):
    scenarios.base(repo)
    text = SERVER
    for n, (old, new) in enumerate([("int y = x * 2;", "int y = x * 3;"), ("if (y > 10) {", "if (y > 11) {"),
                                    ("return -1;", "return -2;"), ("return y;", "return y + 0;")], start=1):
        text = fixed(text, old, new)
        repo.commit(f"Feature {n} (#{50 + n})", {"src/server.c": text})
    whole = text.replace("x * 3", "x * 4").replace("y > 11", "y >= 11").replace("return -2", "return -3") \
        .replace("y + 0", "y + 1")
    repo.commit("Fix handle's arithmetic (#60)", {"src/server.c": whole})
    out = backport(repo, "#60", capsys)
    assert sum(p["named"] for p in out["prerequisites"]) == 3 and len(out["prerequisites"]) == 4
    assert "(and 1 more)" in out["reason"]
    assert "and 1 more that explain less of the conflict" in why(repo, "#60", capsys)


def test_rows_stored_before_these_fields_still_read(tmp_path):
    """An attempt recorded before `named`, `lines` and `feature` existed names every one."""
    store = SQLiteStore(tmp_path / "db.sqlite")
    request = store.add_request("r", "#16", ["rel"], requested_by="cli", origin="cli")
    attempt = store.add_attempt(request, "r", "#16", "rel")
    wf = Workflow(store, "test")
    wf.queue(attempt)
    old = {"commit": "a" * 40, "subject": "Add a limit parameter to handle (#10)", "pr": 10, "paths": ["src/server.c"]}
    wf.fail(attempt, Conflict("a1b2 does not apply", stage=Stage.RESOLVING, details={"prerequisites": [old]}))
    text = reports.why(store, "r", "#16", "rel")
    assert "Missing prerequisites (backport these first):" in text and "aaaaaaaaaa Add a limit" in text
    assert "more" not in text and "probably" not in text


def feature_then_fix(repo: GitRepo, feature_subject: str) -> None:
    """main grew a retry loop in handle (`feature_subject`), then the fix changed a line of that loop;
    rel never got the loop."""
    scenarios.base(repo)
    loop = fixed(SERVER, "    return y;\n",
                 "    for (int tries = 0; tries < 3; tries++) {\n        y = retry_handle(y, tries);\n"
                 "        if (y >= 0) break;\n    }\n    return y;\n")
    repo.commit(feature_subject, {"src/server.c": loop})
    repo.commit("Fix the retry count in handle (#36)", {"src/server.c": fixed(loop, "tries < 3", "tries < 5")})
    repo.commit("Tidy rel's handle", {"src/server.c": fixed(SERVER, "    return y;\n",
                                                              "    /* rel keeps one try */\n    return y;\n")},
                on="rel")
    repo.checkout("main")


def test_a_fix_to_code_from_a_feature_the_branch_never_got_probably_does_not_apply(repo, capsys):
    feature_then_fix(repo, "Add a retry loop to handle (#35)")
    feature = repo.git("log", "--format=%H", "--grep=(#35)", "main")
    out = backport(repo, "#36", capsys)
    assert out["kind"] == "conflict", out
    assert (f"probably does not apply to rel: the code it changes came with {feature[:10]} "
            f"(Add a retry loop to handle (#35))") in out["reason"], out["reason"]
    assert "backport it first" not in out["reason"]
    assert [p["feature"] for p in out["prerequisites"]] == [True]
    text = why(repo, "#36", capsys)
    assert "The fix probably does not apply to rel: the code it changes came with" in text
    assert "backport these first" not in text


def test_when_the_code_came_with_a_fix_it_is_a_prerequisite_to_backport_first(repo, capsys):
    feature_then_fix(repo, "Fix lost requests: retry handle (#35)")
    out = backport(repo, "#36", capsys)
    assert [(p["pr"], p["feature"]) for p in out["prerequisites"]] == [(35, False)]
    assert "backport it first" in out["reason"] and "probably" not in out["reason"]


def test_a_file_from_a_feature_the_branch_never_got(repo, capsys):
    scenarios.deleted_on_target(repo)
    out = backport(repo, "#20", capsys)
    assert "probably does not apply to rel: the code it changes came with" in out["reason"]
    assert "(Add the cache module (#19))" in out["reason"]


def test_a_fix_to_code_a_refactor_reshaped_names_the_refactor_instead(repo, capsys):
    """The code exists on the branch in its old shape: the fix can be adapted, so it is no
    'probably does not apply', even though the refactor is no fix."""
    scenarios.base(repo)
    reshaped = fixed(SERVER, "    if (y > 10) {\n        return -1;\n",
                     "    if (exceeds_limit(y, 10)) {\n        return fail_with(-1);\n")
    repo.commit("Rework handle's limit check (#37)", {"src/server.c": reshaped})
    repo.commit("Return the right code past the limit (#38)",
                {"src/server.c": fixed(reshaped, "fail_with(-1)", "fail_with(-2)")})
    rel_changes_return(repo)
    out = backport(repo, "#38", capsys)
    assert [(p["pr"], p["feature"]) for p in out["prerequisites"]] == [(37, False)], out
    assert "backport it first" in out["reason"] and "probably" not in out["reason"]


@pytest.mark.parametrize("culprit_is_a_fix", [True, False])
def test_the_commit_a_fix_says_brought_the_bug_is_named_first(repo, capsys, culprit_is_a_fix: bool):
    """systemd's follow-ups name the commit they fix ("Follow-up for <sha>"): that commit is the
    prerequisite, though blame ranks others above it; when it is no fix, the fix probably does
    not apply."""
    text = lines(12)
    repo.commit("Initial", {"a.txt": text})
    repo.branch("rel")
    for n, (first, second) in ((51, (5, 6)), (52, (7, 8)), (53, (9, 10))):
        text = text.replace(f"line {first}\n", f"step {first}\n").replace(f"line {second}\n", f"step {second}\n")
        repo.commit(f"Rename steps {first} and {second} (#{n})", {"a.txt": text})
    text = text.replace("line 4\n", "limit 4\n")
    culprit = repo.commit("Fix the limit (#54)" if culprit_is_a_fix else "Add a limit (#54)", {"a.txt": text})
    for i in range(4, 11):
        text = text.replace(f" {i}\n", f" {i} checked\n")
    repo.commit(f"Check every step (#55)\n\nFollow-up for {culprit}", {"a.txt": text})
    out = backport(repo, "#55", capsys)
    assert out["kind"] == "conflict", out
    named = [p["pr"] for p in out["prerequisites"] if p["named"]]
    assert 54 in named and len(named) == 3, out["prerequisites"]
    first = next(p for p in out["prerequisites"] if p["pr"] == 54)
    assert first["feature"] is not culprit_is_a_fix
    if culprit_is_a_fix:
        assert "backport them first" in out["reason"], out["reason"]
    else:
        assert f"probably does not apply to rel: the code it changes came with {culprit[:10]} (Add a limit (#54))" \
            in out["reason"], out["reason"]
