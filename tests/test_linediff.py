"""The fast line diff: what it reports always rebuilds the new version, and it finds the few
changes of a fix in a long file as difflib does."""

from __future__ import annotations

import random

from bot.engine import linediff


def rebuilt(a: list[str], b: list[str]) -> list[str]:
    out: list[str] = []
    for tag, i1, i2, j1, j2 in linediff.opcodes(a, b):
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]
            out += a[i1:i2]
        else:
            out += b[j1:j2]
    return out


def test_random_edits_are_rebuilt_exactly():
    rng = random.Random(16)
    for _ in range(300):
        a = [rng.choice(["{", "}", "", "x++;", "return 0;"]) if rng.random() < 0.3 else f"line {rng.randrange(60)}"
             for _ in range(rng.randrange(0, 80))]
        b = list(a)
        for _ in range(rng.randrange(0, 6)):
            at = rng.randrange(0, len(b) + 1)
            op = rng.choice(["insert", "delete", "replace"])
            if op == "insert":
                b[at:at] = [f"new {rng.randrange(9)}"] * rng.randrange(1, 3)
            elif b and at < len(b):
                b[at:at + rng.randrange(1, 3)] = [] if op == "delete" else [f"changed {rng.randrange(9)}"]
        assert rebuilt(a, b) == b
        ops = linediff.opcodes(a, b)
        assert [op[1] for op in ops] == sorted(op[1] for op in ops)


def test_a_fix_in_a_long_file_is_the_few_lines_it_changes():
    a = [f"        call_{n}(ctx);\n" for n in range(7000)]
    b = list(a)
    b[10] = "        call_10(ctx, 1);\n"
    b[6990:6990] = ["        check(ctx);\n"]
    changes = [op for op in linediff.opcodes(a, b) if op[0] != "equal"]
    assert changes == [("replace", 10, 11, 10, 11), ("insert", 6990, 6990, 6990, 6991)]
