"""Moved and split code: the fix changes a file the branch does not have (modify/delete).

Often the code is there under another name: the file was split or moved on one side and git's
rename detection did not pair them. Each change block of the fix is looked for in the branch's
other files (a distinctive line found with `git grep`, then placed with the same strict placement
as in one file); when every block lands in exactly one place, the changes are applied there and
the missing file stays missing. The result is recorded as `relocated`, which always asks for a
maintainer's look.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.engine import placement
from bot.engine.git import Git

MAX_FILES = 20  # files that contain a block's probe line; more and it is not distinctive
_PROBE_CHARS = 12


@dataclass(frozen=True)
class Relocation:
    files: dict[str, list[str]]  # path -> its new lines
    where: list[str]  # one sentence per change block


def _probe(block: placement.Block) -> str | None:
    """The most distinctive line of a block to search the branch for: its longest removed line,
    else its longest context line."""
    for group in (block.removed, block.before + block.after):
        best = max((line.strip() for line in group), key=len, default="")
        if len(best) >= _PROBE_CHARS:
            return best
    return None


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def relocate(wt: Git, path: str, base: str, theirs: str) -> Relocation | None:
    """Where the fix's changes to `path` (base -> theirs) go on the branch, or None when a change is
    not found in exactly one place of one other file."""
    fix = placement.blocks(_lines(base), _lines(theirs))
    if not fix:
        return None
    texts: dict[str, list[str]] = {}
    keys: dict[str, placement.Keys] = {}
    candidates: list[list[str]] = []
    for block in fix:
        probe = _probe(block)
        if probe is None:
            return None
        res = wt.run("grep", "-l", "-F", "-I", "--no-color", "-e", probe, "--", f":!{path}", check=False)
        candidates.append(res.stdout.splitlines())
    # Blocks with a distinctive line say which files the code went to; a block whose lines are
    # common (`return true;`) is looked for only there.
    home: set[str] = set()
    placed: dict[str, list[placement.Placed]] = {}
    for distinctive in (True, False):
        for block, files in zip(fix, candidates, strict=True):
            if (len(files) <= MAX_FILES) != distinctive:
                continue
            if not distinctive:
                files = [f for f in files if f in home]
            hits = []
            for f in files:
                keep = bool(placement.INDENT_SIGNIFICANT.search(f))
                if f not in texts:
                    texts[f] = _lines((wt.cwd / f).read_text(errors="surrogateescape"))
                    keys[f] = placement.Keys(texts[f], keep)
                if (p := placement.place_block(block, keys[f], keep)) is not None:
                    hits.append((f, p))
            least = min((sum(p.fuzz) for _f, p in hits), default=0)
            hits = [(f, p) for f, p in hits if sum(p.fuzz) == least]  # the best match, across files too
            if len(hits) != 1:
                return None
            home.add(hits[0][0])
            placed.setdefault(hits[0][0], []).append(hits[0][1])
    out: dict[str, list[str]] = {}
    where = []
    for f, ps in placed.items():
        ps.sort(key=lambda p: p.start)
        for a, b in zip(ps, ps[1:], strict=False):
            if b.start < a.start + len(a.block.removed):
                return None
        lines = list(texts[f])
        for p in reversed(ps):
            lines[p.start:p.start + len(p.block.removed)] = p.block.added
        out[f] = lines
        where += [f"{p.describe()} in {f}" for p in ps]
    return Relocation(out, where)


def apply(wt: Git, path: str, relocation: Relocation) -> None:
    """Write the relocated changes and keep `path` missing, all staged."""
    for f, lines in relocation.files.items():
        (wt.cwd / f).write_text("".join(lines), errors="surrogateescape")
    wt.run("rm", "-q", "--cached", "--", path)
    Path(wt.cwd / path).unlink(missing_ok=True)
    wt.run("add", "--", *relocation.files)

