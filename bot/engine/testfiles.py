"""Tests that exist only on the main branch.

A fix often brings a test next to the code. When that test lives in a file (or uses fixtures and
helpers) the branch does not have, the test cannot be carried as it is; the fix's code still can.
Such test files are left out as the branch has them, the attempt says so and asks for approval.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.engine.git import Git

TEST_PATH = re.compile(r"(^|/)(tests?|testing|testsuite|test-suite|spec|__tests__|topotests)/"
                       r"|(^|/)test_[^/]*\.py$|_test\.(go|py|c|cc|cpp)$|\.(test|spec)\.[jt]sx?$")


def is_test(path: str) -> bool:
    return bool(TEST_PATH.search(path))


def leave_out(wt: Git, path: str, on_branch: bool) -> None:
    """Resolve a conflicted test file to the branch's version (or its absence)."""
    if on_branch:
        wt.run("checkout", "HEAD", "--", path)
    else:
        wt.run("rm", "-q", "--cached", "--", path)
        Path(wt.cwd / path).unlink(missing_ok=True)
