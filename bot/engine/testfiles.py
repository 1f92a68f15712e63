"""Tests that exist only on the main branch.

A fix often brings a test next to the code. When that test lives in a file (or uses fixtures and
helpers) the branch does not have, the test cannot be carried as it is; the fix's code still can.
Such test files are left out as the branch has them, the attempt says so and asks for approval:
those that conflict (the ladder's `tests-left-out` rung) and those that pick cleanly but use names
the branch lacks (the names check's findings, `needing_what_the_branch_lacks`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
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


def needing_what_the_branch_lacks(git: Git, parent: str, commit: str, flagged: Iterable[str]) -> set[str]:
    """Of the files where the names check found something the branch lacks, the test files the
    fix can be carried without: it changes code too, and no other file it keeps names a new one
    among its added lines (a build file listing a new test would then name a missing file)."""
    changed = git.out("diff", "--name-only", "--no-renames", parent, commit).splitlines()
    tests = {p for p in flagged if is_test(p)}
    kept = [p for p in changed if p not in tests]
    if not tests or not any(not is_test(p) for p in kept):
        return set()
    added = "\n".join(line for line in git.out("diff", "--no-color", "-U0", parent, commit, "--", *kept).splitlines()
                      if line.startswith("+") and not line.startswith("+++"))
    new = {p for p in tests if not git.ok("cat-file", "-e", f"{parent}:{p}")}
    return set() if any(Path(p).name in added for p in new) else tests


def tree_without(git: Git, tree: str, target: str, paths: Iterable[str]) -> str:
    """`tree` with `paths` as `target` has them (or absent, as there): no work tree needed."""
    with tempfile.TemporaryDirectory() as tmp:
        index = git.with_env(GIT_INDEX_FILE=str(Path(tmp) / "index"))
        index.run("read-tree", tree)
        for path in paths:
            entry = git.out("ls-tree", target, "--", path)
            if entry:
                mode, _, sha = entry.split("\t", 1)[0].split(" ")
                index.run("update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}")
            else:
                index.run("update-index", "--force-remove", "--", path)
        return index.out("write-tree")


def restore(wt: Git, target: str, paths: Iterable[str]) -> bool:
    """In a work tree whose last commit is a pick: `paths` back as `target` has them, the pick
    amended. Whether anything changed."""
    for path in paths:
        if wt.ok("cat-file", "-e", f"{target}:{path}"):
            wt.run("checkout", target, "--", path)
        else:
            wt.run("rm", "-q", "--ignore-unmatch", "--", path)
    if wt.ok("diff", "--cached", "--quiet", "HEAD"):
        return False
    wt.run("commit", "-q", "--amend", "--no-edit", "--allow-empty")
    return True
