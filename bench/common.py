"""Shared by the benchmarks: find real backport pairs in a repository's history.

A pair is (original commit on the main branch, the release branch commit the human backport
was made on). Found by `(cherry picked from commit X)` trailers and by equal `(#N)` subjects;
`backportbot eval` will mine more thoroughly.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

TRAILER = re.compile(r"cherry picked from commit ([0-9a-f]{40})")
PR = re.compile(r"\(#(\d+)\)\s*$")


@dataclass(frozen=True)
class Pair:
    original: str  # on the main branch
    target: str  # the first parent of the human backport
    human: str  # the human backport
    branch: str


def git(repo: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, input=input).stdout


def branches(repo: Path, pattern: str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
    return out.split()


def mine(repo: Path, main: str, release: list[str], limit: int) -> list[Pair]:
    originals: dict[str, str] = {}
    for line in git(repo, "log", "--first-parent", "--no-merges", "--format=%H%x1f%s", main).splitlines():
        sha, subject = line.split("\x1f", 1)
        if m := PR.search(subject):
            originals.setdefault(m.group(1), sha)
    pairs: list[Pair] = []
    for branch in release:
        base = git(repo, "merge-base", main, branch).strip()
        log = git(repo, "log", "--no-merges", "--format=%H%x1f%P%x1f%s%x1f%b%x1e", f"{base}..{branch}")
        for rec in log.split("\x1e"):
            if not rec.strip():
                continue
            sha, parents, subject, body = rec.strip("\n").split("\x1f")
            original = None
            if m := TRAILER.search(body):
                original = m.group(1)
            elif m := PR.search(subject):
                original = originals.get(m.group(1))
            if original and parents:
                pairs.append(Pair(original, parents.split()[0], sha, branch))
    # trailers may name commits that never reached this repository (a fork's, a rewritten one)
    check = git(repo, "cat-file", "--batch-check=%(objecttype)", input="".join(f"{p.original}\n" for p in pairs))
    pairs = [p for p, kind in zip(pairs, check.splitlines(), strict=True) if kind == "commit"]
    pairs.sort(key=lambda p: (p.branch, p.human))
    return pairs[:limit] if limit else pairs
