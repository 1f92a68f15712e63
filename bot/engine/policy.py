"""Policy before picking: refuse backports of backports, find fixes already on the branch, and
flag sources that are not labelled as fixes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.engine.errors import Circular
from bot.engine.git import Git
from bot.engine.source import Commit, Source, changed_paths, log_commits

# How a commit says it is a backport of another one.
ORIGIN = re.compile(r"(?:cherry picked from commit|Backport of|backported from)\s+([0-9a-f]{7,40})", re.I)
BACKPORT_SUBJECT = re.compile(r"^\[(Backport [^\]]+|\d+(\.\d+)+(\.x)?)\]", re.I)


@dataclass(frozen=True)
class Presence:
    commit: str  # the source commit
    on_branch: str  # the commit on the target that carries it
    how: str  # ancestor | trailer | subject | patch-id


def refuse_circular(source: Source) -> None:
    for c in source.commits:
        m = ORIGIN.search(c.body)
        if m or BACKPORT_SUBJECT.match(c.subject):
            origin = f"; backport {m.group(1)[:10]} instead" if m else ""
            raise Circular(f"commit {c.sha[:10]} ({c.subject}) is itself a backport{origin}",
                           details={"commit": c.sha})


def needs_approval(source: Source, fix_labels: list[str]) -> str | None:
    """Why a maintainer must approve explicitly, or None."""
    if source.labels is None:
        return None  # no forge to ask: the person who asked is the judge
    if {label.lower() for label in source.labels} & {f.lower() for f in fix_labels}:
        return None
    shown = ", ".join(source.labels) or "no labels"
    return f"the source is not labelled as a fix ({shown}; fix labels: {', '.join(fix_labels)})"


def patch_ids(git: Git, spec: list[str]) -> dict[str, str]:
    """commit -> stable patch-id for `git log -p` over spec (add "--first-parent", "-m" to the spec
    to diff merge commits against their first parent)."""
    diff = git.raw("log", "-p", "--no-color", "--format=commit %H", *spec)
    if not diff.strip():
        return {}
    out = git.out("patch-id", "--stable", input=diff)
    ids: dict[str, str] = {}
    for line in out.splitlines():
        pid, commit = line.split()
        ids.setdefault(commit, pid)
    return ids


def find_present(git: Git, source: Source, target_ref: str, main_ref: str) -> list[Presence]:
    """Which of the source's commits the target already carries, and how we know."""
    found: dict[str, Presence] = {}
    pending: list[Commit] = []
    for c in source.commits:
        if git.is_ancestor(c.sha, target_ref):
            found[c.sha] = Presence(c.sha, c.sha, "ancestor")
        else:
            pending.append(c)
    if not pending:
        return list(found.values())
    base = git.out("merge-base", target_ref, main_ref)
    for theirs in log_commits(git, f"{base}..{target_ref}"):
        for origin in ORIGIN.findall(theirs.body):
            for c in pending:
                if c.sha.startswith(origin.lower()):
                    found.setdefault(c.sha, Presence(c.sha, theirs.sha, "trailer"))
        if source.pr_number is not None and f"(#{source.pr_number})" in theirs.subject:
            for c in pending:
                found.setdefault(c.sha, Presence(c.sha, theirs.sha, "subject"))
    rest = [c for c in pending if c.sha not in found]
    if rest:
        files = [f for paths in changed_paths(git, [c.sha for c in rest]).values() for f in paths]
        candidates = git.out("log", "--format=%H", "--no-merges", f"{base}..{target_ref}", "--",
                             *sorted(set(files))).split() if files else []
        if candidates:
            their_ids = patch_ids(git, ["--no-walk=unsorted", "--first-parent", "-m", *candidates])
            by_id = {pid: sha for sha, pid in their_ids.items()}
            mine = patch_ids(git, ["--no-walk=unsorted", "--first-parent", "-m", *[c.sha for c in rest]])
            for c in rest:
                if (pid := mine.get(c.sha)) and pid in by_id:
                    found[c.sha] = Presence(c.sha, by_id[pid], "patch-id")
    return [found[c.sha] for c in source.commits if c.sha in found]
