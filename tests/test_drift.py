"""Drift the per-hunk rules cannot see, end to end through the one-shot CLI: placement by the fix's
own hunks, code moved or split on main (relocated), and tests that exist only on main."""

from __future__ import annotations

import pytest

from bot.engine import ladder
from tests import scenarios
from tests.gitrepo import GitRepo, lines
from tests.test_backport_cli import backport, why


def test_an_insertion_beside_a_feature_the_branch_lacks_is_placed_by_its_own_context(repo: GitRepo, capsys):
    ref = scenarios.insertion_beside_missing_feature(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    assert out["conflicts"] == [{"path": "src/server.c", "kind": "content", "hunks": 1, "resolved_by": ["placement"]}]
    result = repo.show(out["result_commit"], "src/server.c")
    assert result == scenarios.fixed(scenarios.SERVER, "        return -1;\n", "        return -1;\n"
                                     "    } else if (y < 0) {\n        return -3;\n")
    assert "else if (y == 0)" not in result  # the feature stays off the branch
    assert out["warnings"] == []  # the fix's lines as they are: like a clean pick
    assert "matched 3 lines of context above" in why(repo, ref, "rel", capsys)


def test_code_split_out_on_main_is_changed_where_the_branch_has_it(repo: GitRepo, capsys):
    ref = scenarios.split_on_main(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    assert out["conflicts"] == [{"path": "src/handle.c", "kind": "deleted_on_target", "hunks": 1,
                                 "resolved_by": ["relocated"]}]
    assert repo.show(out["result_commit"], "src/server.c") == scenarios.fixed(scenarios.SERVER, "return -1;",
                                                                              "return 0;")
    assert "src/handle.c" not in repo.git("ls-tree", "-r", "--name-only", out["result_commit"])
    assert out["needs_approval"] is True
    assert "in src/server.c" in out["warnings"][0] and "relocated" in out["warnings"][0]


def test_a_split_that_matches_twice_is_not_guessed(repo: GitRepo, capsys):
    ref = scenarios.split_on_main(repo)
    repo.checkout("rel")
    # a second copy, with enough else around it that git's rename detection does not pair it
    repo.commit("Keep a copy of handle", {"src/copy.c": lines(60) + repo.show("rel", "src/server.c")})
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1 and out["kind"] == "conflict"
    assert out["conflicts"][0]["resolved_by"] == ["unresolved"]


def test_tests_only_on_main_are_left_out_and_said(repo: GitRepo, capsys):
    ref = scenarios.tests_only_on_main(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    assert "return 0;" in repo.show(out["result_commit"], "src/server.c")
    assert "tests/test_limit.c" not in repo.git("ls-tree", "-r", "--name-only", out["result_commit"])
    assert out["needs_approval"] is True
    assert out["warnings"] == ["the fix's test changes in tests/test_limit.c are left out (the branch does not have "
                               "that file); the fix's code is carried"]


def test_a_fix_made_only_of_tests_is_not_emptied(repo: GitRepo, capsys):
    scenarios.base(repo)
    test = "int test_limit(void) {\n    return 1;\n}\n"
    repo.commit("Add limit tests (#36)", {"tests/test_limit.c": test})
    repo.commit("Fix the limit test (#37)", {"tests/test_limit.c": test.replace("return 1;", "return 2;")})
    code, (out,) = backport(repo, "#37", capsys=capsys)
    assert code == 1 and out["kind"] == "conflict"


def test_a_split_change_with_common_lines_is_placed_in_the_file_its_distinctive_lines_went_to(repo: GitRepo, capsys):
    # systemd moved the battery helpers from src/shared/sleep-util.c into src/sleep/battery-capacity.c
    # on main; a fix there changes a distinctive line and a `return true;` that many files have.
    alarm = ("int battery_trip_point_alarm_exists(void) {\n        int battery_alarm;\n"
             "        r = safe_atoi(s, &battery_alarm);\n        if (r < 0)\n                return false;\n"
             "        return true;\n}\n")
    others = {f"src/other{n}.c": f"int other{n}(void) {{\n        return true;\n}}\n" for n in range(3)}
    repo.commit("Initial", {"src/shared/sleep-util.c": lines(30, "int sleep_thing_") + alarm, **others})
    repo.branch("rel")
    repo.commit("sleep: split out battery capacity (#60)",
                {"src/shared/sleep-util.c": lines(30, "int sleep_thing_"), "src/sleep/battery-capacity.c": alarm})
    fixed = alarm.replace("        int battery_alarm;\n", "        int battery_alarm = 0;\n").replace(
        "        return true;\n", "        return battery_alarm > 0;\n")
    repo.commit("sleep: don't report a trip alarm without a battery (#61)", {"src/sleep/battery-capacity.c": fixed})
    code, (out,) = backport(repo, "#61", capsys=capsys)
    assert code == 0, (out["reason"], out["conflicts"])
    assert out["conflicts"][0]["resolved_by"] == ["relocated"]
    assert repo.show(out["result_commit"], "src/shared/sleep-util.c") == lines(30, "int sleep_thing_") + fixed
    for path, text in others.items():
        assert repo.show(out["result_commit"], path) == text


def test_the_bot_never_replays_its_own_resolution_as_recorded(repo: GitRepo, capsys):
    ref = scenarios.context_moved(repo)
    repo.branch("rel2", "rel")  # the same conflict on a second branch
    code, outs = backport(repo, ref, "rel", capsys=capsys)
    assert code == 0 and outs[0]["conflicts"][0]["resolved_by"] == ["context-moved"]
    code, outs = backport(repo, ref, "rel2", capsys=capsys)
    assert code == 0 and outs[0]["conflicts"][0]["resolved_by"] == ["context-moved"]  # not "rerere"



def test_a_struct_field_is_never_placed_inside_a_function():
    # In a held-out Go history the context-moved rule put a struct field into a method, after its
    # return: the lines around the new field were found there. Every rule's result is checked.
    main = "package conf\n\ntype Conf struct {\n\tCount int\n\tTotal int\n}\n"
    fixed = main.replace("\tTotal int\n", "\tTotal int\n\tLimit int\n")
    wrong = ("package conf\n\ntype Conf struct {\n\tN int\n}\n\nfunc (c *Conf) Sum() int {\n\treturn c.N\n"
             "\tLimit int\n}\n")
    assert ladder.moved_construct("conf/conf.go", main, fixed, wrong) == (
        "`Limit int` into a function body (on main it is in a type body)")
    right = wrong.replace("\tN int\n}", "\tN int\n\tLimit int\n}")
    right = right.replace("\treturn c.N\n\tLimit int\n", "\treturn c.N\n")
    assert ladder.moved_construct("conf/conf.go", main, fixed, right) is None
    c_main = "struct conf {\n        int count;\n        int total;\n};\n"
    c_fixed = c_main.replace("        int total;\n", "        int total;\n        int limit;\n")
    c_wrong = "struct conf {\n        int n;\n};\nint run(void) {\n        int total;\n        int limit;\n}\n"
    assert "`int limit;` into a function body" in (ladder.moved_construct("conf.c", c_main, c_fixed, c_wrong) or "")


def test_a_fix_made_right_after_the_branch_point_names_no_prerequisite(repo: GitRepo, capsys):
    # The conflict comes from the branch alone: nothing on main lies between the branch point and
    # the fix's parent (blame of an empty range once named the fix itself as its prerequisite).
    repo.commit("Initial", {"src/conf.c": "struct conf {\n        int count;\n        int total;\n};\n"})
    repo.branch("rel")
    repo.commit("conf: fewer fields", {"src/conf.c": "struct conf {\n        int n;\n};\n"}, on="rel")
    repo.checkout("main")
    repo.commit("conf: a limit (#71)", {"src/conf.c": "struct conf {\n        int count;\n        int total;\n"
                                                      "        int limit;\n};\n"})
    code, (out,) = backport(repo, "#71", capsys=capsys)
    assert code == 1 and out["prerequisites"] == [] and "prerequisite" not in out["reason"]


LIMIT = "def clamp(x):\n    if x > 10:\n        return -1\n    return x\n"
TEST = "from limits import clamp\n\n\ndef test_small():\n    assert clamp(3) == 3\n"


@pytest.mark.parametrize("branch_drifted", [False, True])
def test_a_test_that_needs_a_helper_only_on_main_is_left_out_and_the_code_carried(repo: GitRepo, capsys,
                                                                                  branch_drifted: bool):
    # As in Go and Python histories: a fix's test uses a test helper main gained after the branch
    # was cut; it cannot run there. The code is carried (picked clean, or resolved when the branch
    # changed the line above it), the test left out.
    repo.commit("Initial import", {"limits.py": LIMIT, "tests/test_limits.py": TEST})
    repo.branch("rel")
    if branch_drifted:
        repo.commit("Say why", {"limits.py": LIMIT.replace("x > 10:", "x > 10:  # too large")}, on="rel")
        repo.checkout("main")
    repo.commit("Add test helpers (#60)", {"tests/helpers.py": "def expect_clamped(f, x):\n    assert f(x) == 10\n"})
    repo.commit("Fix clamp of large values (#61)", {
        "limits.py": LIMIT.replace("return -1", "return 10"),
        "tests/test_limits.py": TEST.replace("from limits import clamp\n", "from limits import clamp\n"
                                             "from tests.helpers import expect_clamped\n")
        + "\n\ndef test_large():\n    expect_clamped(clamp, 11)\n"})
    code, (out,) = backport(repo, "#61", capsys=capsys)
    assert code == 0, out
    assert bool(out["conflicts"]) is branch_drifted, out
    fixed = LIMIT.replace("return -1", "return 10")
    assert repo.show(out["result_commit"], "limits.py") == (fixed.replace("x > 10:", "x > 10:  # too large")
                                                            if branch_drifted else fixed)
    assert repo.show(out["result_commit"], "tests/test_limits.py") == TEST  # as the branch has it
    assert out["needs_approval"] is True
    (warning,) = out["warnings"]
    assert warning.startswith("the fix's test changes in tests/test_limits.py are left out (they need what rel "
                              "lacks: tests/test_limits.py:2 "), warning
    assert "tests.helpers" in warning and warning.endswith("; the fix's code is carried")


def test_a_new_test_a_build_file_lists_is_not_left_out(repo: GitRepo, capsys):
    # As in systemd: a new src/test/test-*.c is listed in meson.build by the same fix; leaving the
    # file out would make the build name a missing file, so the pick stays whole, and flagged.
    scenarios.base(repo)
    repo.commit("Add the assert helpers (#62)", {"src/shared/tests.h": "#define ASSERT_OK(x) (x)\n"})
    repo.commit("Fix overflow in handle (#63)", {
        "src/server.c": scenarios.fixed(scenarios.SERVER, "return -1;", "return 0;"),
        "src/test/test-handle.c": "#include \"tests.h\"\nint main(void) {\n    ASSERT_OK(handle(11));\n}\n",
        "src/test/meson.build": "tests += files('test-handle.c')\n"})
    code, (out,) = backport(repo, "#63", capsys=capsys)
    assert code == 0, out
    assert "src/test/test-handle.c" in repo.git("ls-tree", "-r", "--name-only", out["result_commit"])
    (warning,) = out["warnings"]
    assert warning.startswith("names check of ") and "ASSERT_OK" in warning, warning
