"""Deterministic resolution rules, one function per rule, each taking a hunk and returning the
resolved lines or None. They only ever claim a hunk when the answer is unambiguous."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence

from bot.engine import tokens
from bot.engine.conflicts import Hunk

Lines = Sequence[str]
_WS = re.compile(r"\s+")


# Files where leading whitespace is syntax: a change of indentation there is a real change.
_INDENT_SIGNIFICANT = re.compile(r"(\.(py|pyi|pyx|yml|yaml|coffee|haml|nim|sass|pug)|Makefile|\.mk)$")


def _norm(lines: Lines, keep_indent: bool) -> list[str]:
    """Lines with whitespace folded; blank lines dropped (reformatters add and remove them)."""
    out = []
    for line in lines:
        folded = _WS.sub(" ", line).strip()
        if folded and keep_indent:
            folded = line[: len(line) - len(line.lstrip())] + folded
        if folded:
            out.append(folded)
    return out


def _edits(base: Lines, theirs: Lines) -> list[tuple[str, int, int, int, int]]:
    matcher = difflib.SequenceMatcher(a=list(base), b=list(theirs), autojunk=False)
    return [op for op in matcher.get_opcodes() if op[0] != "equal"]


def _find(haystack: Lines, needle: Lines) -> list[int]:
    n = len(needle)
    return [i for i in range(len(haystack) - n + 1) if list(haystack[i:i + n]) == list(needle)]


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names(lines: Lines) -> set[str]:
    return set(_IDENT.findall("".join(lines)))


def _significant(lines: Lines) -> bool:
    """Enough text that finding it elsewhere is not a coincidence."""
    return sum(len(line.strip()) for line in lines) >= 8


def whitespace(h: Hunk, path: str) -> list[str] | None:
    """The conflict exists only because one side changed whitespace."""
    keep = bool(_INDENT_SIGNIFICANT.search(path))
    ours, base, theirs = _norm(h.ours, keep), _norm(h.base, keep), _norm(h.theirs, keep)
    if ours == theirs:  # same change, different formatting: keep the branch's formatting
        return list(h.ours)
    if base == theirs:  # the fix only reformatted these lines
        return list(h.ours)
    if base == ours and len(h.base) == len(h.ours):
        # The branch only reformatted: apply the fix's edits, keeping the branch's version of
        # every line the fix left alone.
        matcher = difflib.SequenceMatcher(a=list(h.base), b=list(h.theirs), autojunk=False)
        out: list[str] = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            out.extend(h.ours[i1:i2] if tag == "equal" else h.theirs[j1:j2])
        return out
    return None


def reformatted(h: Hunk, path: str) -> list[str] | None:
    """The branch's region differs from the fix's parent only by whitespace and line wrapping (a
    reformatter ran on one side): the fix's edits, made on tokens, are applied to the branch's
    tokens and rendered in the branch's formatting; what the fix adds keeps the fix's."""
    if _INDENT_SIGNIFICANT.search(path) or "".join(h.base) == "".join(h.ours):
        return None
    return tokens.in_layout_of(h.ours, h.base, h.theirs)


def same_change(h: Hunk, path: str) -> list[str] | None:
    """The branch already carries the fix's change here (alone or among other changes): every
    block the fix adds is in the branch's version, and no line the fix removes is left there
    (compared without whitespace, so a reformatted leftover still counts as left)."""
    edits = _edits(h.base, h.theirs)
    if not edits:
        return None
    ours_lines = set(_norm(h.ours, keep_indent=False))
    theirs_lines = set(_norm(h.theirs, keep_indent=False))
    for _tag, i1, i2, j1, j2 in edits:
        added, removed = h.theirs[j1:j2], h.base[i1:i2]
        if added and (not _significant(added) or not _find(h.ours, added)):
            return None
        leftovers = [line for line in _norm(removed, keep_indent=False)
                     if line in ours_lines and line not in theirs_lines and len(line) >= 4]
        if leftovers or (not added and not _significant(removed)):
            return None
    return list(h.ours)


def context_moved(h: Hunk, path: str) -> list[str] | None:
    """The fix's +/- lines apply unchanged to the branch's version; only their context moved.

    Each edit of base->theirs is placed in ours by its removed lines (found exactly once) or, for
    a pure insertion, by the base line next to it (found exactly once); edits must land in order
    and must not overlap.
    """
    edits = _edits(h.base, h.theirs)
    if not edits:
        return None
    # If the fix uses a name that the branch's drift took away here (a parameter, a field), the
    # context did not merely move: the fix depends on a change the branch does not have.
    uses = _names([line for _t, _i1, _i2, j1, j2 in edits for line in h.theirs[j1:j2]])
    gone = (_names(h.base) - _names(h.ours) - _names(h.before) - _names(h.after))
    if uses & gone:
        return None
    placed: list[tuple[int, int, Lines]] = []  # (start, end) in ours, replacement
    for _tag, i1, i2, j1, j2 in edits:
        removed, added = h.base[i1:i2], h.theirs[j1:j2]
        if removed:
            hits = _find(h.ours, removed)
            if len(hits) != 1 or not _significant(removed):
                return None
            placed.append((hits[0], hits[0] + len(removed), added))
            continue
        anchor_after = _find(h.ours, h.base[i1 - 1:i1]) if i1 > 0 else []
        anchor_before = _find(h.ours, h.base[i1:i1 + 1]) if i1 < len(h.base) else []
        if len(anchor_after) == 1 and _significant(h.base[i1 - 1:i1]):
            at = anchor_after[0] + 1
        elif len(anchor_before) == 1 and _significant(h.base[i1:i1 + 1]):
            at = anchor_before[0]
        else:
            return None
        placed.append((at, at, added))
    for (s1, e1, _), (s2, _e2, _) in zip(placed, placed[1:], strict=False):
        if s2 < e1 or s2 < s1:
            return None
    out = list(h.ours)
    for start, end, lines in reversed(placed):
        out[start:end] = lines
    # Only a real move counts: when ours is base, git would not have conflicted.
    return out if list(h.ours) != list(h.base) else None


# The order is the ladder's order: cheapest and safest first.
RULES: list[tuple[str, Callable[[Hunk, str], list[str] | None]]] = [
    ("whitespace", whitespace),
    ("reformatted", reformatted),
    ("same-change", same_change),
    ("context-moved", context_moved),
]
