"""The deterministic rules on single hunks: each claims only what it can resolve unambiguously."""

from __future__ import annotations

from bot.engine import conflicts, rules


def hunk(ours: str, base: str, theirs: str, before: str = "", after: str = "") -> conflicts.Hunk:
    def split(t: str) -> tuple[str, ...]:
        return tuple(t.splitlines(keepends=True))

    return conflicts.Hunk(0, split(ours), split(base), split(theirs), 1, split(before), split(after))


def test_parse_and_render_round_trip():
    text = "a\n<<<<<<< HEAD\nours\n||||||| base\nbase\n=======\ntheirs\n>>>>>>> fix\nb\n"
    parsed = conflicts.parse(text)
    (h,) = parsed.hunks
    assert (h.ours, h.base, h.theirs, h.line, h.before, h.after) == (
        ("ours\n",), ("base\n",), ("theirs\n",), 2, ("a\n",), ("b\n",))
    assert parsed.render({0: ["resolved\n"]}) == "a\nresolved\nb\n"
    assert conflicts.has_markers(parsed.render({}))


def test_whitespace_keeps_the_branch_formatting_of_untouched_lines():
    h = hunk("\tx = 1;\n\ty = 2;\n", "    x = 1;\n    y = 2;\n", "    x = 1;\n    y = 3;\n")
    assert rules.whitespace(h, "a.c") == ["\tx = 1;\n", "    y = 3;\n"]


def test_whitespace_respects_indentation_in_python():
    h = hunk("x = 1\n", "  x = 1\n", "  x = 2\n")
    assert rules.whitespace(h, "a.py") is None


def test_context_moved_applies_the_edit_where_it_now_is():
    h = hunk("int y = x * 3;\nif (y > 10) {\n", "int y = x * 2;\nif (y > 10) {\n", "int y = x * 2;\nif (y > 8) {\n")
    assert rules.context_moved(h, "a.c") == ["int y = x * 3;\n", "if (y > 8) {\n"]


def test_context_moved_refuses_when_the_fix_uses_a_name_the_branch_lacks():
    h = hunk("def limit(values, n):\n    if n < 0:\n",
             "def limit(values, n, *, strict=False):\n    if n < 0:\n",
             "def limit(values, n, *, strict=False):\n    if n < 0 or strict:\n")
    assert rules.context_moved(h, "a.py") is None


def test_context_moved_refuses_ambiguous_places():
    h = hunk("call();\ncall();\n", "other();\ncall();\n", "other();\ncall2();\n")
    assert rules.context_moved(h, "a.c") is None


def test_same_change_needs_the_whole_change_present():
    present = hunk("if (y > 8) {\n  log();\n", "if (y > 10) {\n", "if (y > 8) {\n")
    assert rules.same_change(present, "a.c") == ["if (y > 8) {\n", "  log();\n"]
    absent = hunk("if (y > 9) {\n", "if (y > 10) {\n", "if (y > 8) {\n")
    assert rules.same_change(absent, "a.c") is None


def test_trivial_lines_are_never_evidence():
    h = hunk("}\n}\n", "}\n", "}\n}\n")
    assert rules.same_change(h, "a.c") is None


def test_same_change_refuses_a_deletion_the_branch_only_reformatted():
    # The fix deletes a method (moved elsewhere); the branch has it on one line instead of three.
    h = hunk("    def spawn(self, n: int) -> list[G]: ...\n    def other(self) -> None: ...\n",
             "    def spawn(\n        self, n: int\n    ) -> list[G]: ...\n    def other(self) -> None: ...\n",
             "")
    assert rules.same_change(h, "a.pyi") is None


# FRRouting's "isisd: fix code formatting in files to be modified" ran clang-format on main before
# the fixes that followed, joining wrapped calls; a stable branch keeps them wrapped.
REFLOWED = "\tcopy = XCALLOC(MTYPE_ISIS_NEXTHOP_LABELS, sizeof(struct mpls_label_stack) + array_size);\n"
WRAPPED = "\tcopy = XCALLOC(MTYPE_ISIS_NEXTHOP_LABELS,\n\t\t       sizeof(struct mpls_label_stack) + array_size);\n"


def test_reformatted_applies_the_fix_on_tokens_in_the_branch_formatting():
    fix = REFLOWED.replace("+ array_size)", "+ array_size + 1)")
    h = hunk(WRAPPED + "\tif (!copy)\n", REFLOWED + "\tif (!copy)\n", fix + "\tif (!copy)\n\t\treturn NULL;\n")
    assert rules.reformatted(h, "isisd/isis_route.c") == [
        "\tcopy = XCALLOC(MTYPE_ISIS_NEXTHOP_LABELS,\n",
        "\t\t       sizeof(struct mpls_label_stack) + array_size + 1);\n",
        "\tif (!copy)\n", "\t\treturn NULL;\n"]


def test_reformatted_needs_the_same_tokens_and_a_file_where_layout_is_not_syntax():
    fix = REFLOWED.replace("+ array_size)", "+ array_size + 1)")
    changed = WRAPPED.replace("array_size", "size")
    assert rules.reformatted(hunk(changed, REFLOWED, fix), "a.c") is None
    assert rules.reformatted(hunk("x = f(a,\n      b)\n", "x = f(a, b)\n", "x = f(a, b, c)\n"), "a.py") is None
    # spaces inside a string are text, not layout
    assert rules.reformatted(hunk('s = "a  b";\n', 's = "a b";\n', 's = "a b"; t();\n'), "a.c") is None
