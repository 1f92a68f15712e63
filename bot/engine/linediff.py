"""A line diff of two versions of one file, fast when they are mostly equal.

difflib alone is quadratic on a 7,000-line file (a second or more); a fix changes a few places.
The common head and tail are cut, the rest is split at lines that occur once on each side and
keep their order (patience anchors), and difflib runs only between anchors.
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter
from collections.abc import Sequence

Opcode = tuple[str, int, int, int, int]  # as difflib's: tag, a[i1:i2] becomes b[j1:j2]


def opcodes(a: Sequence[str], b: Sequence[str]) -> list[Opcode]:
    n, m = len(a), len(b)
    head = 0
    while head < n and head < m and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and tail < m - head and a[n - 1 - tail] == b[m - 1 - tail]:
        tail += 1
    out: list[Opcode] = [("equal", 0, head, 0, head)] if head else []
    out += _between_anchors(a, b, head, n - tail, head, m - tail)
    if tail:
        out.append(("equal", n - tail, n, m - tail, m))
    return _joined(out)


def _between_anchors(a: Sequence[str], b: Sequence[str], i1: int, i2: int, j1: int, j2: int) -> list[Opcode]:
    once_a, once_b = Counter(a[i1:i2]), Counter(b[j1:j2])
    where_b = {line: j for j, line in enumerate(b[j1:j2], j1) if once_b[line] == 1}
    pairs = [(i, where_b[line]) for i, line in enumerate(a[i1:i2], i1) if once_a[line] == 1 and line in where_b]
    out: list[Opcode] = []
    ai, bj = i1, j1
    for i, j in [*_in_order(pairs), (i2, j2)]:
        matcher = difflib.SequenceMatcher(a=list(a[ai:i]), b=list(b[bj:j]), autojunk=False)
        out += [(tag, x1 + ai, x2 + ai, y1 + bj, y2 + bj) for tag, x1, x2, y1, y2 in matcher.get_opcodes()]
        if i < i2:
            out.append(("equal", i, i + 1, j, j + 1))
        ai, bj = i + 1, j + 1
    return out


def _in_order(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of pairs increasing on both sides (pairs come sorted by the first)."""
    tails: list[int] = []  # tails[k]: the smallest second value ending a run of length k + 1
    ends: list[int] = []  # the index in `pairs` of that run's end
    back: list[int] = []
    for n, (_i, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            ends.append(n)
        else:
            tails[k], ends[k] = j, n
        back.append(ends[k - 1] if k else -1)
    run, n = [], ends[-1] if ends else -1
    while n >= 0:
        run.append(pairs[n])
        n = back[n]
    return run[::-1]


def _joined(ops: list[Opcode]) -> list[Opcode]:
    """Adjacent ranges of the same kind as one; empty ones dropped."""
    out: list[Opcode] = []
    for tag, i1, i2, j1, j2 in ops:
        if i1 == i2 and j1 == j2:
            continue
        if out and out[-1][0] == tag == "equal":
            out[-1] = (tag, out[-1][1], i2, out[-1][3], j2)
        else:
            out.append((tag, i1, i2, j1, j2))
    return out


def matching(a: Sequence[str], b: Sequence[str]) -> dict[int, int]:
    """Line i of `a` -> its line in `b`, for the lines the diff keeps."""
    return {i1 + k: j1 + k for tag, i1, i2, j1, _j2 in opcodes(a, b) if tag == "equal" for k in range(i2 - i1)}
