"""The resolution ladder: recorded resolutions (rerere), then deterministic rules, then the LLM
(when one is configured), then a clean give-up. Every hunk records how it was resolved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.engine import conflicts, linediff, placement, relocate, rules, syntax, testfiles
from bot.engine.conflicts import Hunk
from bot.engine.context import CHARS_PER_TOKEN, Gatherer
from bot.engine.git import Git
from bot.engine.ports import HunkAnswer, HunkRequest, HunkResolver, Region, RepairAnswer, Usage

UNRESOLVED = "unresolved"
RELOCATED = "relocated"  # always asks for a maintainer's look
TESTS_LEFT_OUT = "tests-left-out"  # likewise
DETAIL_CHARS = 2000


@dataclass
class HunkOutcome:
    hunk: Hunk | None  # None for a whole-file conflict
    resolved_by: str
    resolution: list[str] | None = None
    note: str = ""
    omitted: tuple[str, ...] = ()  # lines of the fix the model left out, saying why

    def detail(self) -> dict[str, Any]:
        d: dict[str, Any] = {"note": self.note} if self.note else {}
        if self.omitted:
            d["omitted"] = list(self.omitted)
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


def stage(wt: Git, path: str, n: int) -> str:
    """One side of a conflicted file: 1 the fix's parent, 2 the branch, 3 the fix."""
    return wt.raw("show", f":{n}:{path}").decode("utf-8", "surrogateescape")


def unmerged_paths(wt: Git) -> dict[str, set[int]]:
    out = wt.raw("ls-files", "-u", "-z").decode("utf-8", "surrogateescape")
    stages: dict[str, set[int]] = {}
    for entry in out.split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            stages.setdefault(path, set()).add(int(meta.split()[2]))
    return stages


@dataclass
class Budget:
    """What the LLM may spend on one attempt, and what it is shown: `context` gathers the code
    around each hunk within its own per-request token budget (none: the hunk alone)."""

    max_calls: int = 8
    max_tokens: int = 40_000  # the attempt's, or what is left of the repository's day when less
    used: Usage = field(default_factory=Usage)
    context: Gatherer | None = None
    spent_why: str = "the LLM budget of this attempt is spent"

    def allows(self) -> bool:
        return self.used.calls < self.max_calls and self.used.tokens < self.max_tokens


class Ladder:
    def __init__(self, llm: HunkResolver | None = None) -> None:
        self.llm = llm

    def resolve(self, wt: Git, commit_message: str, fix_diff: dict[str, str],
                budget: Budget | None = None, leave_out_tests: bool = False) -> list[FileOutcome]:
        """Resolve what can be resolved in the work tree; stage the files that are fully resolved.
        With `leave_out_tests` (the fix also changes code), a test file that stays unresolved is
        left as the branch has it."""
        stages = unmerged_paths(wt)
        remaining = set(wt.out("rerere", "remaining").splitlines())
        budget = budget or Budget()
        outcomes = []
        staged: set[str] = set()  # resolved by removing or moving the file: nothing left to add
        for path, st in sorted(stages.items()):
            if 2 not in st or 3 not in st:
                kind, why = _KIND_BY_STAGES.get(frozenset(st), ("other", "a tree-level conflict"))
                outcome = HunkOutcome(None, UNRESOLVED, note=why)
                if st == {1, 3} and (moved := self._relocate(wt, path)) is not None:
                    outcome = moved
                    staged.add(path)
                outcomes.append(FileOutcome(path, kind, [outcome]))
                continue
            outcomes.append(self._content(wt, path, path not in remaining, commit_message,
                                          fix_diff.get(path, ""), budget))
        for o in outcomes:
            if leave_out_tests and not o.resolved and testfiles.is_test(o.path):
                testfiles.leave_out(wt, o.path, on_branch=2 in stages[o.path])
                staged.add(o.path)
                o.hunks = [HunkOutcome(None, TESTS_LEFT_OUT, note="a test the branch cannot take as it is: left out")]
        done = [o.path for o in outcomes if o.resolved and o.path not in staged]
        if done:
            wt.run("add", "--", *done)
        return outcomes

    @staticmethod
    def _relocate(wt: Git, path: str) -> HunkOutcome | None:
        """The fix changes a file the branch does not have: its changes placed where the same
        lines live in the branch's other files, if each is found in exactly one place."""
        base, theirs = stage(wt, path, 1), stage(wt, path, 3)
        found = relocate.relocate(wt, path, base, theirs)
        if found is None:
            return None
        relocate.apply(wt, path, found)
        return HunkOutcome(None, RELOCATED, note=f"{path} is not on the branch; " + "; ".join(found.where))

    def _content(self, wt: Git, path: str, by_rerere: bool, message: str, diff: str,
                 budget: Budget) -> FileOutcome:
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
        outcomes = [self._rules(path, h) for h in parsed.hunks]
        if any(o.resolved_by == UNRESOLVED for o in outcomes):
            self._place(wt, path, parsed, outcomes)
        for n, o in enumerate(outcomes):
            if o.hunk is not None and o.resolution is not None and not parses_no_worse(
                    path, parsed, o.hunk, o.resolution, judge_broken=False):
                outcomes[n] = HunkOutcome(o.hunk, UNRESOLVED, note=f"the {o.resolved_by} rule's result does not parse")
        self._keep_constructs(wt, path, parsed, outcomes)
        if self.llm is not None:
            for n, outcome in enumerate(outcomes):
                if outcome.resolved_by == UNRESOLVED and outcome.hunk is not None:
                    outcomes[n] = self._llm(path, parsed, outcome.hunk, message, diff, budget)
        elif any(o.resolved_by == UNRESOLVED for o in outcomes):
            for o in outcomes:
                if o.resolved_by == UNRESOLVED:
                    o.note = f"{o.note or 'no deterministic rule applies'} (no LLM configured)"
        resolutions = {o.hunk.index: o.resolution for o in outcomes if o.hunk and o.resolution is not None}
        if resolutions:
            file.write_text(parsed.render(resolutions))
        return FileOutcome(path, "content", outcomes)

    @staticmethod
    def _keep_constructs(wt: Git, path: str, parsed: conflicts.ConflictedFile, outcomes: list[HunkOutcome]) -> None:
        """The rules' results, together, must keep each new line of the fix in the kind of construct
        it has on main (a field in a struct, a statement in a function); else none of them stands."""
        ruled = [o for o in outcomes if o.hunk is not None and o.resolution is not None]
        if not ruled or syntax.language(path) is None:
            return
        base, theirs = stage(wt, path, 1), stage(wt, path, 3)
        result = parsed.render({**{h.index: list(h.ours) for h in parsed.hunks},
                                **{o.hunk.index: list(o.resolution) for o in ruled if o.hunk and o.resolution}})
        if (moved := moved_construct(path, base, theirs, result)) is None:
            return
        for n, o in enumerate(outcomes):
            if o in ruled and o.hunk is not None:
                outcomes[n] = HunkOutcome(o.hunk, UNRESOLVED, note=f"the {o.resolved_by} rule's result moves {moved}")

    def _rules(self, path: str, h: Hunk) -> HunkOutcome:
        for name, rule in rules.RULES:
            lines = rule(h, path)
            if lines is not None:
                return HunkOutcome(h, name, lines)
        return HunkOutcome(h, UNRESOLVED, note="no deterministic rule applies")

    @staticmethod
    def _place(wt: Git, path: str, parsed: conflicts.ConflictedFile, outcomes: list[HunkOutcome]) -> None:
        """The fix's own change blocks placed in the branch's whole file (patch with a strict fuzz);
        it resolves the hunks the rules left, or none of them."""
        base, ours, theirs = (stage(wt, path, n).splitlines(keepends=True) for n in (1, 2, 3))
        found = placement.place(path, base, ours, theirs)
        split = placement.resolutions(parsed, found[0]) if found else None
        if found is None or split is None:
            return
        where = "; ".join(p.describe() for p in found[1])
        for n, o in enumerate(outcomes):
            if o.resolved_by == UNRESOLVED and o.hunk is not None:
                outcomes[n] = HunkOutcome(o.hunk, "placement", split[o.hunk.index], note=where)

    def _llm(self, path: str, parsed: conflicts.ConflictedFile, h: Hunk, message: str, diff: str,
             budget: Budget) -> HunkOutcome:
        """The last rung. The model's answer can only ever replace this hunk's region, and only
        when every check passes; otherwise the hunk needs a human, with the model's explanation."""
        if not budget.allows():
            return HunkOutcome(h, UNRESOLVED, note=budget.spent_why)
        assert self.llm is not None
        request = HunkRequest(path, "".join(h.ours), "".join(h.base), "".join(h.theirs), "".join(h.before),
                              "".join(h.after), diff, message)
        if budget.context is not None:
            fixed = sum(len(t) for t in (request.ours, request.base, request.theirs, request.before, request.after,
                                         message[:4000]))
            if (size := fixed // CHARS_PER_TOKEN) > budget.context.tokens:  # the conflict itself cannot be cut
                return HunkOutcome(h, UNRESOLVED, note=f"LLM not asked: the conflict alone is about {size} tokens, "
                                                       f"over the budget of {budget.context.tokens} per request "
                                                       "([llm] context_tokens)")
            gathered = budget.context.for_hunk(path, parsed, h, fixed, diff)
            request = replace(request, fix_diff=gathered.sections.pop("fix_diff", ""), context=gathered.sections,
                              cut=tuple(gathered.cut))
        answer = self.llm.resolve_hunk(request)
        budget.used = budget.used + answer.usage
        if answer.timed_out:
            return HunkOutcome(h, UNRESOLVED, note=f"LLM {answer.explanation}")  # "LLM timed out: ..."
        lines, problem = check_llm_answer(path, parsed, h, answer)
        if lines is None:
            return HunkOutcome(h, UNRESOLVED, note=f"LLM answer rejected: {problem}. Model said: {answer.explanation}")
        return HunkOutcome(h, "llm", lines, note=f"{answer.explanation} (confidence {answer.confidence:.2f})",
                           omitted=answer.omitted)


def check_llm_answer(path: str, parsed: conflicts.ConflictedFile, h: Hunk,
                     answer: HunkAnswer) -> tuple[list[str] | None, str]:
    """The resolved lines for the region, or None and what was wrong with the answer."""
    if answer.window is None:
        return None, "the model gave no resolution"
    if conflicts.has_markers(answer.window):
        return None, "conflict markers remain"
    window = answer.window.splitlines(keepends=True)
    if window and not window[-1].endswith("\n"):
        window[-1] += "\n"
    def same(a: list[str], b: list[str]) -> bool:
        return [x.rstrip("\r\n") for x in a] == [x.rstrip("\r\n") for x in b]

    before, after = list(h.before), list(h.after)
    if (len(window) < len(before) + len(after) or not same(window[:len(before)], before)
            or not same(window[len(window) - len(after):], after)):
        return None, "it changes lines outside the conflicted region"
    region = window[len(before):len(window) - len(after)]
    added = {line.strip() for line in h.theirs if line.strip() and line not in h.base}
    kept = {line.strip() for line in region} | {line.strip() for line in answer.omitted}
    if missing := sorted(added - kept):
        return None, f"the fix's line {missing[0]!r} is missing and the model did not say why"
    if not parses_no_worse(path, parsed, h, region):
        return None, "the file no longer parses"
    return region, ""


def moved_construct(path: str, base: str, theirs: str, result: str) -> str | None:
    """The first new line of the fix (base -> theirs) that sits in `result` inside another kind of
    construct than in `theirs`, said in words; None when every one kept its kind (or no parser
    knows the file)."""
    b, t, r = base.splitlines(), theirs.splitlines(), result.splitlines()
    added = [j for tag, _i1, _i2, j1, j2 in linediff.opcodes(b, t) if tag != "equal"
             for j in range(j1, j2) if t[j].strip() not in ("", "{", "}", "};", ")", "),")]
    where = linediff.matching(t, r)
    pairs = [(j, where[j]) for j in added if j in where]
    if not pairs:
        return None
    on_main = syntax.enclosing_kinds(path, theirs, [j + 1 for j, _ in pairs])
    here = syntax.enclosing_kinds(path, result, [k + 1 for _, k in pairs])
    for (j, _), was, now in zip(pairs, on_main, here, strict=True):
        if was and now and was != now:
            return f"`{t[j].strip()[:60]}` into a {now} body (on main it is in a {was} body)"
    return None


def parses_no_worse(path: str, parsed: conflicts.ConflictedFile, h: Hunk, region: list[str],
                    judge_broken: bool = True) -> bool:
    """Whether the file, with this hunk resolved to `region` (the others as the branch has them),
    has no more parse errors than the branch's version (macros can confuse a parser already).
    Without `judge_broken`, a branch file the parser already fails on is not judged: the count of
    error nodes in a file it cannot read moves with any edit."""
    others = {o.index: list(o.ours) for o in parsed.hunks if o.index != h.index}
    branch = syntax.errors(path, parsed.render({**others, h.index: list(h.ours)}))
    if branch is None or (branch and not judge_broken):
        return True
    resolved = syntax.errors(path, parsed.render({**others, h.index: region}))
    return resolved is None or resolved <= branch


def check_repair(files: dict[str, str], regions: Sequence[Region], answer: RepairAnswer
                 ) -> tuple[dict[str, str] | None, dict[int, list[str]], str]:
    """The files with the model's repair applied, and each changed region's new lines; or None and
    what was wrong. Each window goes through the same checks as a hunk answer, with the region as
    it stands in place of the branch's side: only the region changes, no marker, every line the
    fix adds kept or said left out, the file parses no worse."""
    if not answer.windows:
        return None, {}, "the model proposed no repair"
    out = dict(files)
    changed: dict[int, list[str]] = {}
    for i, window in sorted(answer.windows.items()):
        if not 0 <= i < len(regions):
            return None, {}, f"it names a region {i} it was not given"
        r = regions[i]
        text, old = out[r.path], r.before + r.text + r.after
        if text.count(old) != 1:
            return None, {}, f"region {i} is not found exactly once in {r.path}"
        at = text.index(old)

        def lines(s: str) -> tuple[str, ...]:
            return tuple(s.splitlines(keepends=True))

        h = Hunk(0, lines(r.text), lines(r.base), lines(r.theirs), text.count("\n", 0, at) + 1,
                 lines(r.before), lines(r.after))
        parsed = conflicts.ConflictedFile((lines(text[:at + len(r.before)]), h,
                                           lines(text[at + len(r.before) + len(r.text):])))
        region, problem = check_llm_answer(r.path, parsed, h, HunkAnswer(window, answer.explanation,
                                                                         answer.confidence, answer.omitted))
        if region is None:
            return None, {}, f"region {i}: {problem}"
        out[r.path] = parsed.render({0: region})
        changed[i] = region
    return out, changed, ""
