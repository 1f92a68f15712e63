"""Placement by the fix's own hunks: the rung after the per-hunk rules.

Where git's three-way merge gives up, apply the fix's change blocks (base -> theirs) to the
branch's whole file the way `patch` does with fuzz, but stricter:

- the lines a block removes must be found as they are (up to whitespace where indentation is not
  syntax), and with the context kept around them the match must be unique in the file;
- context may be dropped from either outer end (fuzz), never from between changes, so a line the
  branch changed next to the fix is kept as the branch has it;
- a pure insertion is anchored by at least two lines of preceding *or* following context;
- the blocks must land in order without overlapping, and the fix must not use a name that the
  branch no longer has anywhere in the file (then the context did not merely drift).

Each placed block records where it landed, the context it matched and the fuzz it needed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.engine import conflicts, linediff, tokens

Lines = Sequence[str]
CONTEXT = 3  # lines of context on each side, as in git's and patch's hunks
_WS = re.compile(r"\s+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Files where leading whitespace is syntax: a change of indentation there is a real change.
# Words of the languages themselves: absent from a file, they say nothing about its names.
KEYWORDS = frozenset("""
    if else for while do switch case default break continue return goto sizeof typedef struct union enum
    static const volatile extern inline register auto void char short int long float double signed unsigned
    bool true false NULL nullptr class public private protected virtual template typename namespace using new
    delete this throw try catch def elif lambda pass yield import from as with global nonlocal assert del in
    is not and or None True False async await raise except finally func go chan select defer range map var
    type interface package fallthrough nil let fn match mut impl pub use mod self super
""".split())
INDENT_SIGNIFICANT = re.compile(r"(\.(py|pyi|pyx|yml|yaml|coffee|haml|nim|sass|pug)|Makefile|\.mk)$")


@dataclass(frozen=True)
class Block:
    """One change of the fix, with the base lines around it."""

    before: tuple[str, ...]  # context above (at most CONTEXT lines, none from another change)
    removed: tuple[str, ...]
    added: tuple[str, ...]
    after: tuple[str, ...]
    base_line: int  # 1-based line of the change in the fix's parent
    span: tuple[int, int, int, int] = (0, 0, 0, 0)  # base[i1:i2] becomes theirs[j1:j2]
    at_start: bool = False  # nothing of the fix's parent above it: the start of the file anchors it
    at_end: bool = False  # likewise below: the end of the file


@dataclass(frozen=True)
class Placed:
    block: Block
    start: int  # 0-based index in the branch's file of the first removed line (or the insertion point)
    before: int  # context lines matched above
    after: int  # context lines matched below

    @property
    def fuzz(self) -> tuple[int, int]:
        return len(self.block.before) - self.before, len(self.block.after) - self.after

    def describe(self) -> str:
        fb, fa = self.fuzz
        return (f"fix's change at its line {self.block.base_line} placed at line {self.start + 1}, matched "
                f"{self.before} line{'s' * (self.before != 1)} of context above and {self.after} below "
                f"(fuzz {fb} above, {fa} below)")


def blocks(base: Lines, theirs: Lines) -> list[Block]:
    ops = [op[1:] for op in linediff.opcodes(base, theirs) if op[0] != "equal"]
    out = []
    for n, (i1, i2, j1, j2) in enumerate(ops):
        low = ops[n - 1][1] if n else 0
        high = ops[n + 1][0] if n + 1 < len(ops) else len(base)
        out.append(_block(base, theirs, (i1, i2, j1, j2), low, high))
    return out


def _block(base: Lines, theirs: Lines, span: tuple[int, int, int, int], low: int, high: int) -> Block:
    i1, i2, j1, j2 = span
    return Block(tuple(base[max(low, i1 - CONTEXT):i1]), tuple(base[i1:i2]), tuple(theirs[j1:j2]),
                 tuple(base[i2:min(high, i2 + CONTEXT)]), i1 + 1, span, i1 == 0, i2 == len(base))


def _merged(base: Lines, theirs: Lines, fix: list[Block], first: int, last: int) -> Block:
    """fix[first..last] as one change: the lines between them must then match as they are."""
    low = fix[first - 1].span[1] if first > 0 else 0
    high = fix[last + 1].span[0] if last + 1 < len(fix) else len(base)
    return _block(base, theirs, (fix[first].span[0], fix[last].span[1], fix[first].span[2], fix[last].span[3]),
                  low, high)


def key(line: str, keep_indent: bool) -> str:
    folded = _WS.sub(" ", line).strip()
    return line[: len(line) - len(line.lstrip())] + folded if keep_indent and folded else folded


def _significant(lines: Lines) -> bool:
    """Enough text that finding it is not a coincidence (braces and blank lines are not)."""
    return sum(len(line.strip()) for line in lines) >= 8


class Keys:
    """A file's lines as compared (whitespace folded), with where each line occurs."""

    def __init__(self, lines: Lines, keep_indent: bool) -> None:
        self.keys = [key(line, keep_indent) for line in lines]
        self.where: dict[str, list[int]] = {}
        for i, k in enumerate(self.keys):
            self.where.setdefault(k, []).append(i)

    def __len__(self) -> int:
        return len(self.keys)

    def matches(self, needle: list[str]) -> list[int]:
        n = len(needle)
        if not n:  # only an edge of the file anchors it: every place, for the caller to keep the edge
            return list(range(len(self.keys) + 1))
        return [i for i in self.where.get(needle[0], ()) if self.keys[i:i + n] == needle]


def place_block(block: Block, keys: Keys, keep_indent: bool) -> Placed | None:
    """The one place of `block` in the file with the least fuzz, or None when it is nowhere or
    ambiguous at that fuzz. A change at the start or the end of the fix's parent stays at the
    start or the end: that edge anchors it like context."""
    removed = [key(x, keep_indent) for x in block.removed]
    before = [key(x, keep_indent) for x in block.before]
    after = [key(x, keep_indent) for x in block.after]
    if removed and not _significant(block.removed) and not (before or after):
        return None
    for fuzz in range(len(before) + len(after) + 1):
        found: set[tuple[int, int, int]] = set()
        for drop_before in range(max(0, fuzz - len(after)), min(fuzz, len(before)) + 1):
            kb, ka = len(before) - drop_before, len(after) - (fuzz - drop_before)
            ctx_b, ctx_a = block.before[len(block.before) - kb:], block.after[:ka]
            edge = (block.at_start and kb == len(before)) or (block.at_end and ka == len(after))
            if not block.removed:
                # A pure insertion is anchored by at least two lines on one side, with some text.
                if not edge and not any(len(c) >= 2 and _significant(c) for c in (ctx_b, ctx_a)):
                    continue
            elif not edge and not _significant(ctx_b + block.removed + ctx_a):
                continue
            needle = before[len(before) - kb:] + removed + after[:ka]
            hits = keys.matches(needle)
            if block.at_start and kb == len(before):
                hits = [at for at in hits if at == 0]
            if block.at_end and ka == len(after):
                hits = [at for at in hits if at + len(needle) == len(keys)]
            found.update((at + kb, kb, ka) for at in hits)
        if len(found) == 1:
            start, kb, ka = found.pop()
            return Placed(block, start, kb, ka)
        if len({start for start, _kb, _ka in found}) > 1:
            return None  # ambiguous at the least fuzz that finds it: never guess
    return None


def place(path: str, base: Lines, ours: Lines, theirs: Lines) -> tuple[list[str], list[Placed]] | None:
    """The branch's file with every change of the fix placed, and where each went; None when any
    change cannot be placed unambiguously. A change that cannot be placed alone is tried together
    with its neighbours (as one diff hunk would have it: the lines between must match)."""
    keep_indent = bool(INDENT_SIGNIFICANT.search(path))
    fix = blocks(base, theirs)
    if not fix:
        return None
    ours_names = set(_IDENT.findall("".join(ours)))
    keys = Keys(ours, keep_indent)
    placed: list[Placed] = []
    n = 0
    while n < len(fix):
        for back, ahead in ((0, 0), (0, 1), (1, 0), (1, 1)):
            first, last = n - back, n + ahead
            if last >= len(fix) or (back and not (placed and placed[-1].block == fix[first])):
                continue  # merge back only with a block placed alone
            block = fix[n] if first == last else _merged(base, theirs, fix, first, last)
            if _takes_away(block, ours_names):  # the fix uses a name the branch no longer has
                if first == last:
                    return None  # not a drift of context
                continue
            if (found := place_block(block, keys, keep_indent)) is not None:
                break
        else:
            return None
        if back:
            placed.pop()
        placed.append(found)
        n = last + 1
    for a, b in zip(placed, placed[1:], strict=False):
        if b.start < a.start + len(a.block.removed):
            return None  # out of order or overlapping
    out = list(ours)
    for p in reversed(placed):
        end = p.start + len(p.block.removed)
        region, new = out[p.start:end], list(p.block.added)
        if new and region != list(p.block.removed):
            # The removed lines were found only up to whitespace: write the fix in the branch's layout.
            new = tokens.in_layout_of(region, p.block.removed, p.block.added) or new
        out[p.start:end] = new
    return out, placed


def _takes_away(block: Block, ours_names: set[str]) -> bool:
    """Whether the fix's new lines use a name from around the change that the branch's file does
    not have at all (a parameter or field the branch renamed or never had)."""
    around = set(_IDENT.findall("".join(block.before + block.removed + block.after)))
    uses = set(_IDENT.findall("".join(block.added))) - KEYWORDS
    return bool(uses & around - ours_names)


def _slid(merged: list[str], at: int, new: list[str], spans: dict[int, tuple[int, int]]) -> tuple[int, list[str]]:
    """An insertion moved to the edge of a hunk where that gives the same text: inserting N at i
    equals inserting N[1:] + [merged[i]] at i + 1 when N[0] == merged[i] (and likewise upwards)."""
    def inside(i: int) -> bool:
        return any(s <= i <= e for s, e in spans.values())

    down_at, down = at, list(new)
    while not inside(down_at) and down_at < len(merged) and down[0] == merged[down_at]:
        down, down_at = down[1:] + [merged[down_at]], down_at + 1
    if inside(down_at):
        return down_at, down
    up_at, up = at, list(new)
    while not inside(up_at) and up_at > 0 and up[-1] == merged[up_at - 1]:
        up, up_at = [merged[up_at - 1]] + up[:-1], up_at - 1
    return up_at, up


def resolutions(parsed: conflicts.ConflictedFile, placed: Lines) -> dict[int, list[str]] | None:
    """Split the placed file into the conflict hunks' resolutions: every difference between the
    merged file (each hunk as the branch has it) and the placed file must fall inside one hunk,
    and the hunks' resolutions must rebuild the placed file exactly. None otherwise (the placement
    and git's own merge disagree outside the conflicts)."""
    merged: list[str] = []
    spans: dict[int, tuple[int, int]] = {}
    for part in parsed.parts:
        if isinstance(part, conflicts.Hunk):
            spans[part.index] = (len(merged), len(merged) + len(part.ours))
            merged.extend(part.ours)
        else:
            merged.extend(part)
    edits: dict[int, list[tuple[int, int, list[str]]]] = {i: [] for i in spans}
    for tag, i1, i2, j1, j2 in linediff.opcodes(merged, placed):
        if tag == "equal":
            continue
        new = list(placed[j1:j2])
        owner = [i for i, (s, e) in spans.items() if s <= i1 and i2 <= e]
        if not owner and tag == "insert":  # the same insertion may be drawn a few lines up or down
            i1, new = _slid(merged, i1, new, spans)
            i2 = i1
            owner = [i for i, (s, e) in spans.items() if s <= i1 <= e]
        if len(owner) != 1:
            return None
        s = spans[owner[0]][0]
        edits[owner[0]].append((i1 - s, i2 - s, new))
    out: dict[int, list[str]] = {}
    for hunk in parsed.hunks:
        lines = list(hunk.ours)
        for i1, i2, new in reversed(edits[hunk.index]):
            lines[i1:i2] = new
        out[hunk.index] = lines
    if parsed.render(out) != "".join(placed):
        return None
    return out
