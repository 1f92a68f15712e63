"""Prerequisite detection: for a hunk that still conflicts, the main-branch commits missing on
the target that last touched those lines ("backport #1200 first")."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from bot.engine.conflicts import Hunk
from bot.engine.git import Git
from bot.engine.policy import find_present
from bot.engine.source import Source, read_commits

NAMED = 3  # prerequisites named to people; more only make the advice useless


@dataclass(frozen=True)
class Prerequisite:
    commit: str
    subject: str
    pr: int | None
    paths: tuple[str, ...]
    named: bool = True  # False: beyond the NAMED that explain most of the conflict (counted, not listed)

    def as_dict(self) -> dict[str, object]:
        return {"commit": self.commit, "subject": self.subject, "pr": self.pr, "paths": list(self.paths),
                "named": self.named}

    def __str__(self) -> str:
        pr = f" (#{self.pr})" if self.pr and f"(#{self.pr})" not in self.subject else ""
        return f"{self.commit[:10]} {self.subject}{pr}"


def _locate(lines: list[str], needle: tuple[str, ...]) -> int | None:
    n = len(needle)
    for i in range(len(lines) - n + 1):
        if tuple(lines[i:i + n]) == needle:
            return i
    return None


def _ranges(git: Git, parent: str, commit: str, path: str, hunk: Hunk | None) -> list[tuple[int, int]]:
    """1-based line ranges of `path` in the fix's parent to blame for this hunk."""
    if hunk is not None:
        text = git.run("show", f"{parent}:{path}", check=False).stdout
        lines = text.splitlines(keepends=True)
        at = _locate(lines, hunk.base) if hunk.base else None
        if at is None and hunk.before:
            near = _locate(lines, hunk.before)
            if near is not None:
                at = near + len(hunk.before)
        if at is not None:
            return [(max(1, at), min(len(lines), at + len(hunk.base) + 1) or 1)]
    # Fall back to every hunk of the fix in that file (its old side, one line either way).
    diff = git.out("diff", "-U0", "--no-color", parent, commit, "--", path)
    out = []
    for m in re.finditer(r"^@@ -(\d+)(?:,(\d+))? ", diff, re.M):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        out.append((max(1, start - 1), start + max(count, 1)))
    return out


def _blame(git: Git, base: str, parent: str, path: str, ranges: list[tuple[int, int]]) -> Counter[str]:
    """The commits since `base` that last touched those lines, with how many lines each."""
    if not ranges:
        return Counter()
    args = ["blame", "--porcelain"]
    for start, end in ranges:
        args += ["-L", f"{start},{end}"]
    res = git.run(*args, f"{base}..{parent}", "--", path, check=False)
    found: Counter[str] = Counter()
    boundary: set[str] = set()
    current = None
    for line in res.stdout.splitlines():
        if m := re.match(r"^([0-9a-f]{40}) \d+ \d+", line):
            current = m.group(1)
            found[current] += 1
        elif line == "boundary" and current:
            boundary.add(current)
    for sha in boundary:
        del found[sha]
    return found


def _formatting_only(git: Git, sha: str, paths: set[str]) -> bool:
    """Whether the commit only re-indents, re-wraps or re-spaces those files (a reformatter run):
    naming it would send people after a change that carries nothing."""
    diff = git.run("diff", "--no-color", "-U0", f"{sha}^", sha, "--", *sorted(paths), check=False).stdout
    removed = "".join(line[1:] for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    added = "".join(line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    return bool(removed or added) and re.sub(r"\s+", "", removed) == re.sub(r"\s+", "", added)


def _effect_present(git: Git, sha: str, target_ref: str, paths: set[str]) -> bool:
    """Whether every line the commit adds to those files is already in the target's files: it
    was backported under another SHA, adapted (no trailer, another patch-id), or made there anew."""
    for path in paths:
        diff = git.run("diff", "--no-color", "-U0", f"{sha}^", sha, "--", path, check=False).stdout
        added = {line[1:].strip() for line in diff.splitlines()
                 if line.startswith("+") and not line.startswith("+++") and len(line[1:].strip()) > 3}
        if not added:
            continue
        there = git.run("show", f"{target_ref}:{path}", check=False)
        if there.returncode != 0 or not added <= {line.strip() for line in there.stdout.splitlines()}:
            return False
    return True


def find(git: Git, commit: str, parent: str, target_ref: str, main_ref: str,
         unresolved: list[tuple[str, Hunk | None]], predicted: bool = False,
         base: str | None = None) -> list[Prerequisite]:
    """Commits on the main branch, missing on the target, that last touched the conflicting lines.

    `unresolved` lists (path, hunk) pairs; a None hunk is a whole-file conflict (the file does
    not exist on the target): then the commit that added the file is the prerequisite.
    `predicted`: the conflicts come from an in-memory pick (no hunks): blame the fix's own hunks.
    """
    base = base or git.out("merge-base", target_ref, main_ref)
    touched: dict[str, set[str]] = {}
    explains: Counter[str] = Counter()  # conflicting lines each commit last touched
    for path, hunk in unresolved:
        exists = predicted and git.ok("cat-file", "-e", f"{target_ref}:{path}")
        if hunk is None and not exists:
            shas = git.out("log", "--format=%H", "--diff-filter=A", f"{base}..{parent}", "--", path).split()
            blamed = Counter(shas[-1:])  # the first time it was added
        else:
            blamed = _blame(git, base, parent, path, _ranges(git, parent, commit, path, hunk))
        for sha, n in blamed.items():
            touched.setdefault(sha, set()).add(path)
            explains[sha] += n
    if not touched:
        return []
    result = []
    commits = sorted(read_commits(git, *touched), key=lambda c: int(c.author_date.split()[0]))  # oldest first
    for c in commits:
        if git.is_ancestor(c.sha, target_ref):
            continue
        if not predicted and find_present(git, Source(c.sha, (c,), None, c.subject, pr_number=c.pr_number),
                                          target_ref, main_ref):
            continue  # already backported (a digest's quick look skips this costly check)
        if _formatting_only(git, c.sha, touched[c.sha]) or _effect_present(git, c.sha, target_ref, touched[c.sha]):
            continue
        result.append(Prerequisite(c.sha, c.subject, c.pr_number, tuple(sorted(touched[c.sha]))))
    # The few that explain most of the conflict, kept in history order; the rest are only counted.
    named = {p.commit for p in sorted(result, key=lambda p: -explains[p.commit])[:NAMED]}
    return [p for p in result if p.commit in named] + [
        Prerequisite(p.commit, p.subject, p.pr, p.paths, named=False) for p in result if p.commit not in named]
