"""Edits on tokens, rendered in another layout: how a fix made on reformatted code is written in
the branch's formatting (the reformatted rule, and placement where the lines matched only up to
whitespace)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

# A token: a string or character literal whole (the spaces inside are text), a word, or one mark.
_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|\w+|[^\w\s]')


def split(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """The tokens of some lines, and the whitespace before each (the last entry: what ends them)."""
    text = "".join(lines)
    tokens, spaces, end = [], [], 0
    for m in _TOKEN.finditer(text):
        spaces.append(text[end:m.start()])
        tokens.append(m.group())
        end = m.end()
    return tokens, spaces + [text[end:]]


def in_layout_of(branch: Sequence[str], old: Sequence[str], new: Sequence[str]) -> list[str] | None:
    """`old` -> `new` applied to `branch`, which has the same tokens as `old` in another layout:
    unchanged tokens keep the branch's spacing; a token replaced one for one takes the spacing of
    the one it replaces; added tokens bring the fix's, and so does the first unchanged token after
    tokens added or removed (its neighbour changed: `1` -> `-1` in an aligned column keeps the
    fix's column). None when the tokens are not the same."""
    before, _ = split(old)
    ours, ours_space = split(branch)
    after, after_space = split(new)
    if before != ours:
        return None
    out: list[str] = []
    neighbour_changed = False
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for k in range(j2 - j1):
                space = after_space[j1] if k == 0 and neighbour_changed else ours_space[i1 + k]
                out.append(space + after[j1 + k])
            neighbour_changed = False
        else:
            out += [after_space[j] + after[j] for j in range(j1, j2)]
            neighbour_changed = True
    return ("".join(out) + ours_space[-1]).splitlines(keepends=True)
