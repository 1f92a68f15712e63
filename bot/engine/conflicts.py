"""Conflict hunks in zdiff3 style: parse a conflicted file into text and hunks, and render it back."""

from __future__ import annotations

from dataclasses import dataclass

OURS, BASE, SEP, THEIRS = "<<<<<<< ", "||||||| ", "=======", ">>>>>>> "


@dataclass(frozen=True)
class Hunk:
    """One conflict region. Lines keep their line endings."""

    index: int
    ours: tuple[str, ...]  # the target branch
    base: tuple[str, ...]  # the fix's parent
    theirs: tuple[str, ...]  # the fix
    line: int  # 1-based line of the `<<<<<<<` marker in the conflicted file
    before: tuple[str, ...]  # up to 3 lines of merged text just above the hunk
    after: tuple[str, ...]  # up to 3 lines just below


@dataclass(frozen=True)
class ConflictedFile:
    """Alternating plain text chunks and hunks: parts[i] is a tuple of lines or a Hunk."""

    parts: tuple[tuple[str, ...] | Hunk, ...]

    @property
    def hunks(self) -> list[Hunk]:
        return [p for p in self.parts if isinstance(p, Hunk)]

    def render(self, resolutions: dict[int, list[str]]) -> str:
        """The file with resolved hunks replaced; unresolved hunks keep their markers."""
        out: list[str] = []
        for part in self.parts:
            if not isinstance(part, Hunk):
                out.extend(part)
            elif part.index in resolutions:
                out.extend(resolutions[part.index])
            else:
                out.append(OURS + "ours\n")
                out.extend(part.ours)
                out.append(BASE + "base\n")
                out.extend(part.base)
                out.append(SEP + "\n")
                out.extend(part.theirs)
                out.append(THEIRS + "theirs\n")
        return "".join(out)


def _is(line: str, marker: str) -> bool:
    return line.startswith(marker) or line.rstrip("\r\n") == marker.rstrip()


def parse(text: str) -> ConflictedFile:
    lines = text.splitlines(keepends=True)
    parts: list[tuple[str, ...] | Hunk] = []
    plain: list[str] = []
    i = 0
    while i < len(lines):
        if not _is(lines[i], OURS):
            plain.append(lines[i])
            i += 1
            continue
        start = i
        sections: dict[str, list[str]] = {"ours": [], "base": [], "theirs": []}
        current = "ours"
        i += 1
        while i < len(lines) and not _is(lines[i], THEIRS):
            if _is(lines[i], BASE) and current == "ours":
                current = "base"
            elif lines[i].rstrip("\r\n") == SEP and current in ("ours", "base"):
                current = "theirs"
            else:
                sections[current].append(lines[i])
            i += 1
        if i >= len(lines):  # an unterminated marker is text, not a conflict
            plain.extend(lines[start:])
            break
        i += 1  # the >>>>>>> line
        parts.append(tuple(plain))
        parts.append(Hunk(
            index=len([p for p in parts if isinstance(p, Hunk)]),
            ours=tuple(sections["ours"]), base=tuple(sections["base"]), theirs=tuple(sections["theirs"]),
            line=start + 1, before=tuple(plain[-3:]), after=(),
        ))
        plain = []
    parts.append(tuple(plain))
    # fill in the text after each hunk now that it is known
    fixed: list[tuple[str, ...] | Hunk] = []
    for n, part in enumerate(parts):
        if isinstance(part, Hunk) and n + 1 < len(parts) and not isinstance(parts[n + 1], Hunk):
            nxt = parts[n + 1]
            assert not isinstance(nxt, Hunk)
            part = Hunk(part.index, part.ours, part.base, part.theirs, part.line, part.before, nxt[:3])
        fixed.append(part)
    return ConflictedFile(tuple(fixed))


def has_markers(text: str) -> bool:
    return any(_is(line, OURS) or _is(line, THEIRS) for line in text.splitlines())
