"""Prerequisite detection: for a hunk that still conflicts, the main-branch commits missing on
the target that last touched those lines ("backport #1200 first")."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass

from bot.engine.conflicts import Hunk
from bot.engine.git import Git
from bot.engine.policy import BranchIndex, branch_index
from bot.engine.predict import Pick, Predictor
from bot.engine.source import Commit, changed_paths, read_commits

NAMED = 3  # prerequisites named to people; more only make the advice useless
SWEEP = 100  # a commit touching this many files is a repository-wide sweep
SWEEP_FORMATTING = 0.8  # a sweep is a reformat when this share of its hunks in the conflicting files only re-space
# How a message names the commit that brought the bug: "Fixes: 1a2b3c4d" (Linux style), systemd's
# "Follow-up for <sha>", "regression introduced by <sha>".
CULPRIT = re.compile(r"(?:^fixes:?|\bfollow[- ]?up (?:for|to|of)|\bregression (?:introduced )?(?:by|in|from|since)"
                     r"|\bintroduced (?:by|in)|\b(?:broken|caused|regressed) (?:by|in|since))\s*:?\s*(?:commit\s+)?"
                     r"([0-9a-f]{7,40})\b", re.I | re.M)


@dataclass(frozen=True)
class Prerequisite:
    commit: str
    subject: str
    pr: int | None
    paths: tuple[str, ...]
    named: bool = True  # False: beyond the NAMED that explain most of the conflict (counted, not listed)
    lines: int = 0  # how many of the conflicting lines it last touched
    feature: bool = False  # the code the fix changes came with it, it is no fix, and the branch has none of that code

    def as_dict(self) -> dict[str, object]:
        return {"commit": self.commit, "subject": self.subject, "pr": self.pr, "paths": list(self.paths),
                "named": self.named, "lines": self.lines, "feature": self.feature}

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


def _culprit(git: Git, commit: str, index: BranchIndex) -> Commit | None:
    """The commit the fix's message names as having brought the bug, when the target carries none
    of those it names."""
    (fix,) = read_commits(git, commit)
    named = culprits(git, {commit: fix.body})[commit]
    return never_reached(named, index.presence(named, own_pr=True)) if named else None


def _blame(git: Git, base: str, parent: str, path: str, ranges: list[tuple[int, int]],
           deadline: float | None = None) -> Counter[str]:
    """The commits since `base` that last touched those lines, with how many lines each.
    subprocess.TimeoutExpired past `deadline` (a time.monotonic() value)."""
    if not ranges or git.rev(base) == git.rev(parent):
        # No main commit in between. (`blame X..X` blames the work tree's file: "Not Committed Yet".)
        return Counter()
    args = ["blame", "--porcelain"]
    for start, end in ranges:
        args += ["-L", f"{start},{end}"]
    timeout = None if deadline is None else max(0.01, deadline - time.monotonic())
    res = git.run(*args, f"{base}..{parent}", "--", path, check=False, timeout=timeout)
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


def _meaningful(line: str) -> bool:
    """A line that says something: not blank, not a lone brace or keyword."""
    text = line.strip()
    return len(text) > 3 and any(ch.isalnum() for ch in text)


def _hunks(diff: str) -> dict[str, list[tuple[list[str], list[str]]]]:
    """path -> the hunks of a `diff -U0`, each as (removed lines, added lines)."""
    out: dict[str, list[tuple[list[str], list[str]]]] = {}
    path = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None
            if path is not None:
                out.setdefault(path, [])
        elif line.startswith("--- ") or line.startswith("diff --git"):
            continue
        elif line.startswith("@@") and path is not None:
            out[path].append(([], []))
        elif path is not None and out[path] and line[:1] in "-+":
            out[path][-1][0 if line[0] == "-" else 1].append(line[1:])
    return out


def _diff(git: Git, sha: str, paths: set[str]) -> dict[str, list[tuple[list[str], list[str]]]]:
    return _hunks(git.run("diff", "--no-color", "--no-renames", "-U0", f"{sha}^", sha, "--", *sorted(paths),
                          check=False).stdout)


def _respaced(removed: list[str], added: list[str]) -> bool:
    """A hunk whose old and new sides are the same text once whitespace is removed: re-indented,
    re-wrapped, re-spaced."""
    return re.sub(r"\s+", "", "".join(removed)) == re.sub(r"\s+", "", "".join(added))


def _formatting_only(git: Git, sha: str, paths: set[str], files: int = 0,
                     hunks: dict[str, list[tuple[list[str], list[str]]]] | None = None) -> bool:
    """Whether the commit only re-indents, re-wraps or re-spaces those files (a reformatter run),
    judged hunk by hunk: naming it would send people after a change that carries nothing. A sweep
    over hundreds of files (`files`) counts as a reformat when most of its hunks there are."""
    every = [h for hs in (hunks if hunks is not None else _diff(git, sha, paths)).values() for h in hs]
    if not every:
        return False
    respaced = sum(_respaced(removed, added) for removed, added in every)
    return respaced == len(every) or (files >= SWEEP and respaced >= SWEEP_FORMATTING * len(every))


def _near(wanted: list[str], there: list[str], slack: int = 10) -> bool:
    """Whether every meaningful line of `wanted` occurs in `there` within one window a few times
    their number long: the same lines, at one place, not scattered through the file."""
    want = {line.strip() for line in wanted if _meaningful(line)}
    if not want:
        return True
    span = 3 * len(wanted) + slack
    at = [(i, line) for i, line in enumerate(there) if line in want]
    seen: Counter[str] = Counter()
    lo = 0
    for i, line in at:
        seen[line] += 1
        while at[lo][0] < i - span:
            seen[at[lo][1]] -= 1
            if not seen[at[lo][1]]:
                del seen[at[lo][1]]
            lo += 1
        if len(seen) == len(want):
            return True
    return False


def _effect_present(git: Git, sha: str, target_ref: str, paths: set[str],
                    hunks: dict[str, list[tuple[list[str], list[str]]]] | None = None) -> bool:
    """Whether the commit's effect on those files is already in the target's: each hunk's added
    lines at one place there (and what a deleting hunk removed, nowhere there). It was backported
    under another SHA, adapted (no trailer, another patch-id), or made there anew."""
    hunks = hunks if hunks is not None else _diff(git, sha, paths)
    if not any(hunks.values()):
        return False
    for path, each in hunks.items():
        shown = git.run("show", f"{target_ref}:{path}", check=False)
        if shown.returncode != 0:
            return False
        there = [line.strip() for line in shown.stdout.splitlines()]
        for removed, added in each:
            if any(_meaningful(line) for line in added):
                if not _near(added, there):
                    return False
            elif {line.strip() for line in removed if _meaningful(line)} & set(there):
                return False
    return True


def _empty_picks(git: Git, commits: list[Commit], target_ref: str) -> set[str]:
    """The commits whose cherry-pick onto the target would change nothing (predicted in memory)."""
    picks = [c for c in commits if len(c.parents) == 1]
    if not picks:
        return set()
    with Predictor(git) as predictor:
        preds = predictor.predict([Pick(c.sha, c.parents[0], target_ref) for c in picks])
        (tree,) = predictor.trees([target_ref])
    return {c.sha for c, p in zip(picks, preds, strict=True) if p.clean and p.tree == tree}


def _absent(git: Git, target_ref: str, path: str, hunk: Hunk | None) -> bool:
    """Whether the code a conflicting hunk changes is nowhere on the target: the file is missing,
    or (almost) none of the meaningful lines of the fix's side before it are in the target's file."""
    shown = git.run("show", f"{target_ref}:{path}", check=False)
    if shown.returncode != 0:
        return True
    if hunk is None:
        return False
    lines = {line.strip() for line in hunk.base if _meaningful(line)}
    if len(lines) < 2:
        return False  # too little to say
    there = {line.strip() for line in shown.stdout.splitlines()}
    return len(lines & there) * 5 <= len(lines)


def _absent_change(git: Git, commit: str, target_ref: str, path: str) -> bool:
    """Whether the code the fix changes in `path` is nowhere on the target (a predicted conflict
    has no hunks: the fix's own hunks are judged): the file is missing, or every hunk that says
    enough finds (almost) none of the lines it removes there."""
    if not git.ok("cat-file", "-e", f"{target_ref}:{path}"):
        return True
    judged = [_absent(git, target_ref, path, Hunk(0, (), tuple(removed), (), 0, (), ()))
              for removed, _ in _diff(git, commit, {path}).get(path, [])
              if sum(_meaningful(line) for line in removed) >= 2]
    return bool(judged) and all(judged)


def culprits(git: Git, messages: dict[str, str]) -> dict[str, list[Commit]]:
    """Per message, the commits it names as having brought the bug (`CULPRIT`) that the repository has."""
    named = {k: list(dict.fromkeys(m.group(1).lower() for m in CULPRIT.finditer(text))) for k, text in messages.items()}
    refs = sorted({r for rs in named.values() for r in rs})
    if not refs:
        return {k: [] for k in messages}
    lines = git.out("cat-file", "--batch-check=%(objectname) %(objecttype)", input="".join(f"{r}\n" for r in refs))
    full = {r: line.split()[0] for r, line in zip(refs, lines.splitlines(), strict=True) if line.endswith(" commit")}
    commits = {c.sha: c for c in read_commits(git, *sorted(set(full.values())))} if full else {}
    return {k: list({full[r]: commits[full[r]] for r in rs if r in full}.values()) for k, rs in named.items()}


def never_reached(named: list[Commit], there: Collection[str]) -> Commit | None:
    """The first commit a fix names as having brought the bug, when the branch carries none of
    them (`there`: what it carries): the bug never reached that branch."""
    return named[0] if named and not any(c.sha in there for c in named) else None


def find(git: Git, commit: str, parent: str, target_ref: str, main_ref: str,
         unresolved: list[tuple[str, Hunk | None]], predicted: bool = False,
         base: str | None = None, *, index: BranchIndex | None = None,
         is_fix: Callable[[Commit], bool] | None = None, deadline: float | None = None) -> list[Prerequisite]:
    """Commits on the main branch, missing on the target, that last touched the conflicting lines.

    `unresolved` lists (path, hunk) pairs; a None hunk is a whole-file conflict (the file does
    not exist on the target): then the commit that added the file is the prerequisite.
    `predicted`: the conflicts come from an in-memory pick (no hunks): blame the fix's own hunks,
    and skip the look for copies on the branch under other SHAs and the empty picks (a digest's
    quick look: a copy is found by its lines); whether the code is on the target is then judged
    by the lines the fix's own hunks remove.
    `deadline` (a time.monotonic() value): blame stops there with subprocess.TimeoutExpired.
    `is_fix`: with it, when the code the fix changes is nowhere on the target and came with one
    commit that is no fix and that added it (not one that reshaped older code: a refactor's fix
    can be adapted), that commit is marked `feature`: the fix probably does not apply.

    Never named: a commit the target carries (ancestor, trailer, `(#N)`, patch-id: `index`, read
    once per target), one whose effect is already there (its lines at that place, or an empty
    pick), a reformat. The NAMED that explain most of the conflicting lines are named; the rest
    are returned with `named=False`, to be counted.
    """
    index = index or (None if predicted else branch_index(git, target_ref, main_ref))
    base = base or (index.base if index else git.out("merge-base", target_ref, main_ref))
    touched: dict[str, set[str]] = {}
    explains: Counter[str] = Counter()  # conflicting lines each commit last touched
    absent_by: Counter[str] = Counter()  # lines of code missing on the target each commit brought
    every_absent = bool(unresolved)
    for path, hunk in unresolved:
        exists = predicted and git.ok("cat-file", "-e", f"{target_ref}:{path}")
        if hunk is None and not exists:
            shas = git.out("log", "--format=%H", "--diff-filter=A", f"{base}..{parent}", "--", path).split()
            blamed = Counter({sha: 1 for sha in shas[-1:]})  # the first time it was added
        else:
            blamed = _blame(git, base, parent, path, _ranges(git, parent, commit, path, hunk), deadline)
        for sha, n in blamed.items():
            touched.setdefault(sha, set()).add(path)
            explains[sha] += n
        if is_fix is not None and (_absent_change(git, commit, target_ref, path) if predicted and hunk is None
                                   else _absent(git, target_ref, path, hunk)):
            absent_by.update(blamed)
        else:
            every_absent = False
    culprit = _culprit(git, commit, index) if index is not None else None
    if not touched and culprit is None:
        return []
    commits = sorted(read_commits(git, *touched), key=lambda c: int(c.author_date.split()[0]))  # oldest first
    if not predicted:  # predicted: blamed in merge-base..parent, so none is an ancestor of the target
        commits = [c for c in commits if not git.is_ancestor(c.sha, target_ref)]
    if index is not None and commits:
        there = index.presence(commits, own_pr=True)
        commits = [c for c in commits if c.sha not in there]
    files = {sha: len(paths) for sha, paths in changed_paths(git, [c.sha for c in commits]).items()} \
        if commits else {}
    kept = []
    grew: set[str] = set()  # commits that brought new code there (mostly added lines), not reshaped old code
    for c in commits:
        hunks = _diff(git, c.sha, touched[c.sha])
        if _formatting_only(git, c.sha, touched[c.sha], files.get(c.sha, 0), hunks) \
                or _effect_present(git, c.sha, target_ref, touched[c.sha], hunks):
            continue
        kept.append(c)
        removed = sum(_meaningful(line) for hs in hunks.values() for h in hs for line in h[0])
        added = sum(_meaningful(line) for hs in hunks.values() for h in hs for line in h[1])
        if added and added >= 3 * removed:
            grew.add(c.sha)
    empty = _empty_picks(git, kept, target_ref) if kept and not predicted else set()  # the digest: lines only
    kept = [c for c in kept if c.sha not in empty]
    # The code the fix changes came with one commit the branch never got, and it is no fix.
    brought = absent_by.most_common(1)[0][0] if every_absent and absent_by else None
    feature = next((c.sha for c in kept if c.sha == brought and c.sha in grew and is_fix is not None
                    and not is_fix(c)), None)
    if culprit is not None:  # the fix says which commit brought the bug: that one is the prerequisite
        kept = [c for c in kept if c.sha != culprit.sha] + [culprit]
        feature = culprit.sha if is_fix is not None and not is_fix(culprit) else None
    result = [Prerequisite(c.sha, c.subject, c.pr_number, tuple(sorted(touched.get(c.sha, ()))),
                           lines=explains[c.sha], feature=c.sha == feature)
              for c in sorted(kept, key=lambda c: int(c.author_date.split()[0]))]
    # The few that explain most of the conflict (the culprit's or the feature's commit first), kept in
    # history order; the rest are only counted.
    ranked = sorted(result, key=lambda p: (culprit is None or p.commit != culprit.sha, not p.feature, -p.lines))
    named = {p.commit for p in ranked[:NAMED]}
    return [p for p in result if p.commit in named] + [
        Prerequisite(p.commit, p.subject, p.pr, p.paths, named=False, lines=p.lines)
        for p in result if p.commit not in named]
