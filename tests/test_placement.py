"""Placement by the fix's own hunks: patch with fuzz, but only where the answer is unambiguous."""

from __future__ import annotations

from bot.engine import conflicts, placement


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


# The fix's parent on main has an `else if` branch from a later feature; the release branch never
# got it. The fix inserts a check between the first branch and that `else if`.
MAIN_BASE = """\
static int classify(int kind)
{
        if (kind == KIND_A)
                return handle_a();
        else if (kind == KIND_C)
                return handle_c();
        return 0;
}
"""
CHECK = "        if (kind < 0)\n                return -EINVAL;\n"
MAIN_FIX = MAIN_BASE.replace("                return handle_a();\n", "                return handle_a();\n" + CHECK)
BRANCH = """\
static int classify(int kind)
{
        if (kind == KIND_A)
                return handle_a();
        return 0;
}
"""


def test_an_insertion_is_anchored_by_its_preceding_context_when_the_following_is_missing():
    found = placement.place("a.c", lines(MAIN_BASE), lines(BRANCH), lines(MAIN_FIX))
    assert found is not None
    text, (p,) = "".join(found[0]), found[1]
    assert text == BRANCH.replace("return handle_a();\n", "return handle_a();\n        if (kind < 0)\n"
                                  "                return -EINVAL;\n")
    assert (p.before, p.after, p.fuzz) == (3, 0, (0, 3))
    assert "matched 3 lines of context above and 0 below (fuzz 0 above, 3 below)" in p.describe()


def test_a_line_the_branch_changed_next_to_the_fix_is_kept():
    base = "a = read();\nif (a < 0)\n        return a;\nb = a * 2;\nlog(b);\n"
    fix = "a = read();\nif (a <= 0)\n        return a;\nb = a * 2;\nlog(b);\n"
    branch = "a = read_checked();\nif (a < 0)\n        return a;\nb = a * 2;\nlog(b);\n"
    found = placement.place("a.c", lines(base), lines(branch), lines(fix))
    assert found is not None
    assert "".join(found[0]) == "a = read_checked();\nif (a <= 0)\n        return a;\nb = a * 2;\nlog(b);\n"
    assert found[1][0].fuzz == (1, 0)


def test_removed_lines_must_be_there_up_to_whitespace():
    base = "x = 1;\nif (x)\n    call(x, 2);\ny = 2;\n"
    fix = "x = 1;\nif (x)\n    call(x, 3);\ny = 2;\n"
    reflowed = "x = 1;\nif (x)\n\tcall(x,  2);\ny = 2;\n"
    found = placement.place("a.c", lines(base), lines(reflowed), lines(fix))
    assert found is not None and "".join(found[0]) == "x = 1;\nif (x)\n\tcall(x,  3);\ny = 2;\n"  # branch's layout
    changed = "x = 1;\nif (x)\n    call(x, 5);\ny = 2;\n"
    assert placement.place("a.c", lines(base), lines(changed), lines(fix)) is None
    # ...but in Python the indentation is the code
    assert placement.place("a.py", lines("if x:\n    call(x, 2)\ny = 2\n"), lines("if x:\n  call(x, 2)\ny = 2\n"),
                           lines("if x:\n    call(x, 3)\ny = 2\n")) is None


def test_an_ambiguous_place_is_refused():
    base = "start();\nvalue = 0;\nstop();\n"
    fix = "start();\nvalue = 1;\nstop();\n"
    branch = "begin();\nvalue = 0;\nend();\nbegin();\nvalue = 0;\nend();\n"
    assert placement.place("a.c", lines(base), lines(branch), lines(fix)) is None
    once = "begin();\nvalue = 0;\nend();\n"
    assert "".join(placement.place("a.c", lines(base), lines(once), lines(fix))[0]) == "begin();\nvalue = 1;\nend();\n"


def test_an_insertion_with_a_single_line_of_context_is_refused():
    base = "}\n\nint other(void);\n"
    fix = "}\n\nint added(void);\nint other(void);\n"
    branch = "}\n\nint renamed(void);\n"
    assert placement.place("a.h", lines(base), lines(branch), lines(fix)) is None


def test_a_fix_using_a_name_the_branch_took_away_is_not_a_drift():
    base = "int f(int n, int limit)\n{\n        if (n > limit)\n                return -1;\n        return n;\n}\n"
    fix = base.replace("        return n;\n", "        if (n == limit)\n                return 0;\n        return n;\n")
    branch = base.replace("int n, int limit", "int n").replace("n > limit", "n > 10")
    assert placement.place("a.c", lines(base), lines(branch), lines(fix)) is None


def test_blocks_land_in_order_or_not_at_all():
    base = "one();\ntwo();\nthree();\nfour();\nfive();\nsix();\nseven();\neight();\n"
    fix = base.replace("two();\n", "two(); /* a */\n").replace("seven();\n", "seven(); /* b */\n")
    swapped = "five();\nsix();\nseven();\neight();\none();\ntwo();\nthree();\nfour();\n"
    assert placement.place("a.c", lines(base), lines(swapped), lines(fix)) is None


def test_resolutions_split_the_placed_file_into_the_conflict_hunks():
    conflicted = ("keep();\n<<<<<<< ours\nbranch();\n||||||| base\nmain();\n=======\nmain(1);\n>>>>>>> theirs\n"
                  "tail();\n")
    parsed = conflicts.parse(conflicted)
    assert placement.resolutions(parsed, lines("keep();\nbranch(1);\ntail();\n")) == {0: ["branch(1);\n"]}
    # A difference outside the conflict: the placement disagrees with git's own merge.
    assert placement.resolutions(parsed, lines("keep(0);\nbranch(1);\ntail();\n")) is None


def test_an_insertion_at_the_end_of_the_file_stays_at_the_end():
    # systemd's "env-util: add new setenvf() helper" appends a function after the last one, whose
    # "return 0; }" ending every function shares; the branch's last function is another one.
    base = "int a(void) {\n        x();\n        return 0;\n}\n\nint b(void) {\n        y();\n        return 0;\n}\n"
    fix = base + "\nint setenvf(void) {\n        return 1;\n}\n"
    branch = base.replace("        y();\n", "        y2();\n")
    found = placement.place("env-util.c", lines(base), lines(branch), lines(fix))
    assert found is not None and "".join(found[0]) == branch + "\nint setenvf(void) {\n        return 1;\n}\n"


def test_a_change_with_little_context_is_placed_together_with_its_neighbour():
    # systemd's "sd-dhcp-server: refuse invalid hostname": an insertion one line below another
    # change, and the lines below it differ on the branch.
    base = ("        case SD_DHCP_OPTION_HOST_NAME:\n                req->hostname = option;\n                break;\n"
            "        case SD_DHCP_OPTION_PARAMETER_REQUEST_LIST:\n                list = option;\n")
    fix = base.replace("req->hostname = option;", "req->hostname = hostname_is_valid(option) ? option : NULL;")
    fix = fix.replace("                break;\n", "                break;\n                /* checked above */\n")
    branch = base.replace("        case SD_DHCP_OPTION_PARAMETER_REQUEST_LIST:\n                list = option;\n",
                          "        case SD_DHCP_OPTION_PARAMETER_REQUEST_LIST:\n                req->list = option;\n")
    assert [b.before for b in placement.blocks(lines(base), lines(fix))][1] == ("                break;\n",)
    found = placement.place("sd-dhcp-server.c", lines(base), lines(branch), lines(fix))
    assert found is not None
    assert "".join(found[0]) == fix.replace("                list = option;\n", "                req->list = option;\n")


def test_a_line_found_up_to_whitespace_is_rewritten_in_the_branch_layout():
    # systemd's "user-util: validate the right field": main re-indented the condition, the branch
    # did not; the human wrote the one-word fix in the branch's indentation.
    base = ("        if (FLAGS_SET(flags, USER_CREDS_CLEAN) &&\n            (isempty(p->pw_shell) ||\n"
            "                       !path_is_valid(p->pw_dir) ||\n             !path_is_absolute(p->pw_shell)))\n")
    fix = base.replace("p->pw_dir", "p->pw_shell")
    branch = base.replace("                       !path_is_valid", "             !path_is_valid")
    found = placement.place("user-util.c", lines(base), lines(branch), lines(fix))
    assert found is not None and "".join(found[0]) == branch.replace("p->pw_dir", "p->pw_shell")


def test_a_sign_added_or_removed_in_an_aligned_column_keeps_the_fix_s_column():
    # systemd's "repart: Fix size round up/round down" swaps 1 and -1 in a config table main had
    # realigned wider; the human wrote the swap in the branch's narrower alignment.
    row = '    {{ "Partition", "{}",{}config_parse_size4096, {}, &p->{}{}}},\n'
    def table(width: int, signs: str) -> str:
        return "".join(row.format(key, " " * (width - len(key)), f"{sign:>6}", field, " " * 4)
                       for key, field, sign in zip(("SizeMinBytes", "SizeMaxBytes"), ("size_min", "size_max"),
                                                   signs.split(), strict=True))
    found = placement.place("repart.c", lines(table(24, "1 -1")), lines(table(18, "1 -1")),
                            lines(table(24, "-1 1")))
    assert found is not None and "".join(found[0]) == table(18, "-1 1")


def test_an_insertion_at_the_end_is_placed_even_when_the_lines_above_it_changed():
    # systemd's env-util.h: the last declaration before the fix's new one differs on the branch.
    base = "int a(void);\nint set_full_environment(char **env);\n"
    new = "int setenvf(const char *name, const char *valuef, ...);\n"
    branch = "int a(void);\nint b(void);\n"
    found = placement.place("env-util.h", lines(base), lines(branch), lines(base + new))
    assert found is not None and "".join(found[0]) == branch + new
    assert found[1][0].fuzz == (2, 0)


def test_a_new_function_drawn_above_the_conflict_is_slid_into_it():
    # systemd's "core: don't insert an extra space before each SocketBind{Allow,Deny}= item" adds a
    # function ending in "}" and a blank line above a conflicting one: a line diff may draw that
    # insertion a few lines higher, outside the hunk, where the same lines already are.
    text = ("        }\n}\n\n<<<<<<< ours\nint add(Ctx *c, const char *mode) {\n||||||| base\n"
            "int add(Ctx *c, Perm p) {\n=======\nvoid dump(Item *items) {\n        LIST(items) {\n"
            "                x();\n        }\n}\n\nint add(Ctx *c, Perm p) {\n>>>>>>> theirs\n        return 0;\n")
    new = "void dump(Item *items) {\n        LIST(items) {\n                x();\n        }\n}\n\n"
    placed = lines("        }\n}\n\n" + new + "int add(Ctx *c, const char *mode) {\n        return 0;\n")
    assert placement.resolutions(conflicts.parse(text), placed) == {
        0: lines(new + "int add(Ctx *c, const char *mode) {\n")}
