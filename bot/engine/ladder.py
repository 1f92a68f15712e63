"""The resolution ladder: recorded resolutions (rerere), then deterministic rules, then the LLM
(when one is configured), then a clean give-up. Every hunk records how it was resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.engine import conflicts, rules
from bot.engine.conflicts import Hunk
from bot.engine.git import Git
from bot.ports import LLM, HunkRequest

UNRESOLVED = "unresolved"
DETAIL_CHARS = 2000


@dataclass
class HunkOutcome:
    hunk: Hunk | None  # None for a whole-file conflict
    resolved_by: str
    resolution: list[str] | None = None
    note: str = ""

    def detail(self) -> dict[str, Any]:
        d: dict[str, Any] = {"note": self.note} if self.note else {}
        if self.hunk is not None:
            d.update(line=self.hunk.line, ours="".join(self.hunk.ours)[:DETAIL_CHARS],
                     base="".join(self.hunk.base)[:DETAIL_CHARS], theirs="".join(self.hunk.theirs)[:DETAIL_CHARS])
        if self.resolution is not None:
            d["resolution"] = "".join(self.resolution)[:DETAIL_CHARS]
        return d


@dataclass
class FileOutcome:
    path: str
    kind: str  # content | deleted_on_target | deleted_by_fix | added_by_both | binary
    hunks: list[HunkOutcome] = field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return all(h.resolved_by != UNRESOLVED for h in self.hunks)

    def summary(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "hunks": len(self.hunks),
                "resolved_by": [h.resolved_by for h in self.hunks]}


_KIND_BY_STAGES = {
    frozenset({1, 3}): ("deleted_on_target", "the file does not exist on the target branch (deleted or moved there)"),
    frozenset({3}): ("deleted_on_target", "the file does not exist on the target branch"),
    frozenset({1, 2}): ("deleted_by_fix", "the fix deletes a file the target branch changed"),
    frozenset({2}): ("deleted_by_fix", "the fix deletes or moves a file the target branch changed"),
}


def unmerged_paths(wt: Git) -> dict[str, set[int]]:
    out = wt.raw("ls-files", "-u", "-z").decode("utf-8", "surrogateescape")
    stages: dict[str, set[int]] = {}
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            stages.setdefault(path, set()).add(int(meta.split()[2]))
    return stages


class Ladder:
    def __init__(self, llm: LLM | None = None) -> None:
        self.llm = llm

    def resolve(self, wt: Git, commit_message: str, fix_diff: dict[str, str]) -> list[FileOutcome]:
        """Resolve what can be resolved in the work tree; stage the files that are fully resolved."""
        stages = unmerged_paths(wt)
        remaining = set(wt.out("rerere", "remaining").splitlines())
        outcomes = []
        for path, st in sorted(stages.items()):
            if 2 not in st or 3 not in st:
                kind, why = _KIND_BY_STAGES.get(frozenset(st), ("other", "a tree-level conflict"))
                outcomes.append(FileOutcome(path, kind, [HunkOutcome(None, UNRESOLVED, note=why)]))
                continue
            outcomes.append(self._content(wt, path, path not in remaining, commit_message, fix_diff.get(path, "")))
        done = [o.path for o in outcomes if o.resolved]
        if done:
            wt.run("add", "--", *done)
        return outcomes

    def _content(self, wt: Git, path: str, by_rerere: bool, message: str, diff: str) -> FileOutcome:
        file = wt.cwd / path
        try:
            text = file.read_text()
        except UnicodeDecodeError:
            return FileOutcome(path, "binary", [HunkOutcome(None, UNRESOLVED, note="binary file")])
        if by_rerere and not conflicts.has_markers(text):
            # rerere applied a recorded resolution; rebuild the conflict only to record its hunks.
            wt.run("checkout", "--conflict=zdiff3", "--", path)
            hunks = conflicts.parse(file.read_text()).hunks
            file.write_text(text)
            return FileOutcome(path, "content", [HunkOutcome(h, "rerere") for h in hunks])
        parsed = conflicts.parse(text)
        outcomes = [self._hunk(path, h, message, diff) for h in parsed.hunks]
        resolutions = {o.hunk.index: o.resolution for o in outcomes if o.hunk and o.resolution is not None}
        if resolutions:
            file.write_text(parsed.render(resolutions))
        return FileOutcome(path, "content", outcomes)

    def _hunk(self, path: str, h: Hunk, message: str, diff: str) -> HunkOutcome:
        for name, rule in rules.RULES:
            lines = rule(h, path)
            if lines is not None:
                return HunkOutcome(h, name, lines)
        if self.llm is None:
            return HunkOutcome(h, UNRESOLVED, note="no deterministic rule applies (no LLM configured)")
        answer = self.llm.resolve_hunk(HunkRequest(
            path, "".join(h.ours), "".join(h.base), "".join(h.theirs), "".join(h.before), "".join(h.after),
            diff, message))
        if answer.resolution is None or conflicts.has_markers(answer.resolution):
            return HunkOutcome(h, UNRESOLVED, note=f"LLM declined: {answer.explanation}")
        return HunkOutcome(h, "llm", answer.resolution.splitlines(keepends=True), note=answer.explanation)
