"""One attempt, end to end: policy, pick, resolve, verify. Every step is reported to a Recorder as
it happens and every failure is a typed exception in the Outcome, so "why" can always answer."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.engine import policy, prereq, symbols, testfiles
from bot.engine.candidates import classify
from bot.engine.context import Gatherer
from bot.engine.errors import AlreadyPresent, BackportFailure, Conflict, Internal, PushFailed, Stage, VerifyFailed
from bot.engine.git import Git, GitError, brief
from bot.engine.ladder import (
    DETAIL_CHARS,
    RELOCATED,
    TESTS_LEFT_OUT,
    UNRESOLVED,
    Budget,
    FileOutcome,
    HunkOutcome,
    Ladder,
    check_repair,
    unmerged_paths,
)
from bot.engine.ports import (
    Command,
    CommandResult,
    HunkRecord,
    HunkResolver,
    Recorder,
    Region,
    RepairRequest,
    Sandbox,
    Usage,
)
from bot.engine.predict import Predictor
from bot.engine.source import Commit, Source, raw_message, read_commits
from bot.engine.workspace import Workspace, remove_worktree

log = logging.getLogger(__name__)

_TRAILER = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*: |\(cherry picked from commit )")


@dataclass(frozen=True)
class Plan:
    """Everything one attempt needs."""

    workspace: Workspace
    source: Source
    branch: str  # the name people use, e.g. 8.1
    target_ref: str  # the full ref to pick onto
    main_ref: str
    commands: Sequence[Command] = ()
    fix_labels: Sequence[str] = ()
    label: str = ""  # names this attempt's work tree and logs; unique among attempts running at once
    result_name: str | None = None  # the branch to write the result on, when the caller chose one
    with_deps: bool = False  # on a conflict, pick the named prerequisites first (when each is a fix)
    llm_tokens_today: int = 0  # what the repository's attempts spent on models today (UTC), for its day budget

    @property
    def work_name(self) -> str:
        return self.label or f"{self.source.slug}-to-{self.branch}"

    @property
    def result_branch(self) -> str:
        return self.result_name or f"backport/{self.source.slug}-to-{self.branch}"


@dataclass
class Outcome:
    """What one attempt came to: a result commit on `result_branch`, or a failure."""

    failure: BackportFailure | None = None
    result_branch: str | None = None
    result_commit: str | None = None
    base_commit: str | None = None  # the target branch's head the result was built on
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # per file: how its hunks were resolved
    warnings: list[str] = field(default_factory=list)  # why a maintainer must approve; empty: no need
    hunks: list[HunkRecord] = field(default_factory=list)
    verified: list[CommandResult] = field(default_factory=list)
    verify_after_approval: bool = False  # the build and tests wait for the ✅ (they would run unisolated)
    llm: Usage = field(default_factory=Usage)
    with_deps: list[dict[str, Any]] = field(default_factory=list)  # prerequisites picked first, in order
    # The regions a rung wrote (position in `hunks`, how): what a repair after a failed build may change.
    regions: list[tuple[int, HunkOutcome]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.failure is None

    @property
    def needs_approval(self) -> bool:
        return bool(self.warnings)


def cherry_pick_message(raw: str, sha: str) -> str:
    """The message `git cherry-pick -x` writes: the original plus an origin line, which joins an
    existing trailer block or starts a new paragraph."""
    msg = raw if raw.endswith("\n") else raw + "\n"
    paragraphs = msg.strip("\n").split("\n\n")
    last = [line for line in paragraphs[-1].splitlines() if line.strip()] if len(paragraphs) > 1 else []
    trailers = [line for line in last if _TRAILER.match(line)]
    continuation = [line for line in last if line[:1].isspace()]
    git_made = any(t.startswith(("Signed-off-by: ", "(cherry picked from commit ")) for t in trailers)
    conforming = bool(last) and (len(trailers) + len(continuation) == len(last)
                                 or (git_made and 4 * len(trailers) >= len(last)))
    return msg + ("" if conforming else "\n") + f"(cherry picked from commit {sha})\n"


class Engine:
    def __init__(self, llm: HunkResolver | None = None, sandbox: Sandbox | None = None, llm_calls: int = 8,
                 llm_tokens: int = 40_000, llm_context: int = 3000, llm_day_tokens: int | None = None) -> None:
        self.ladder = Ladder(llm)
        self.sandbox = sandbox
        self.llm_calls, self.llm_tokens = llm_calls, llm_tokens
        self.llm_context = llm_context  # tokens per request, the hunk and its context together
        self.llm_day_tokens = llm_day_tokens  # per repository and UTC day

    def run(self, plan: Plan, recorder: Recorder) -> Outcome:
        """One attempt. Failures come back in the Outcome, never as exceptions (but Ctrl-C)."""
        outcome = Outcome()
        return self._guarded(plan, outcome, lambda: self._run(plan, recorder, outcome))

    def verify_approved(self, plan: Plan, recorder: Recorder, commit: str) -> Outcome:
        """The build and tests of a result whose verification waited for a maintainer's ✅."""
        outcome = Outcome()

        def verify() -> None:
            with self._worktree(recorder, plan.workspace, plan, commit) as wt:
                self._verify(recorder, outcome, plan, wt)
        return self._guarded(plan, outcome, verify)

    @staticmethod
    def _guarded(plan: Plan, outcome: Outcome, work: Callable[[], None]) -> Outcome:
        try:
            work()
        except BackportFailure as failure:
            outcome.failure = failure
        except Exception as exc:  # a bug or an environment problem: still recorded, never silent
            log.exception("a backport of %s to %s failed unexpectedly", plan.source.key, plan.branch)
            outcome.failure = Internal(f"{type(exc).__name__}: {exc}",
                                       details={"traceback": traceback.format_exc()[-4000:]})
        return outcome

    def _run(self, plan: Plan, recorder: Recorder, outcome: Outcome) -> None:
        ws, source = plan.workspace, plan.source
        git = ws.git
        recorder.started({"target": plan.target_ref, "source_commits": [c.sha for c in source.commits],
                          "pr_number": source.pr_number})
        ws.fetch()
        policy.refuse_circular(source)
        present = policy.find_present(git, source, plan.target_ref, plan.main_ref)
        if present:
            recorder.note({"already_present": [asdict(p) for p in present]})
        if len(present) == len(source.commits):
            p = present[0]
            how = {"ancestor": "the branch already contains the commit itself",
                   "trailer": "its message says it was cherry-picked from the fix",
                   "subject": f"its subject carries the same (#{source.pr_number})",
                   "patch-id": "it has the same patch (git patch-id)"}[p.how]
            raise AlreadyPresent(f"already on {plan.branch} as {p.on_branch[:10]}: {how}",
                                 details={"present": [asdict(p) for p in present]})
        skip = {p.commit for p in present}
        commits = [c for c in source.commits if c.sha not in skip]
        if why := policy.needs_approval(source, list(plan.fix_labels)):
            self._flag(recorder, outcome, why)

        target = git.out("rev-parse", f"{plan.target_ref}^{{commit}}")
        leave_out = self._check_names(recorder, outcome, git, commits, source.mainline, target, plan.branch)
        result = self._pick_in_memory(git, commits, source.mainline, target, leave_out)
        if result is not None:
            recorder.note({"picked": "in memory", "commits": [c.sha for c in commits]})
            if plan.commands and not self._verify_later(recorder, outcome):
                with self._worktree(recorder, ws, plan, result) as wt:
                    self._verify(recorder, outcome, plan, wt)
        else:
            try:
                result = self._pick_all(recorder, outcome, plan, commits, target, leave_out)
            except Conflict as conflict:
                deps = self._prerequisites_to_pick(plan, conflict) if plan.with_deps else None
                if not deps:
                    raise
                named = {p["commit"]: p for p in conflict.details["prerequisites"]}
                outcome.with_deps = [{**named[c.sha], "picked": True} for c in deps]
                recorder.note({"with_deps": outcome.with_deps})
                outcome.conflicts.clear()
                outcome.hunks.clear()
                outcome.regions.clear()
                result = self._pick_all(recorder, outcome, plan, deps + commits, target, leave_out)
        try:
            ws.update_branch(plan.result_branch, result)
        except GitError as e:
            raise PushFailed(f"could not write the branch {plan.result_branch}: {brief(e.stderr)}") from None
        outcome.result_branch, outcome.result_commit, outcome.base_commit = plan.result_branch, result, target

    def _pick_all(self, recorder: Recorder, outcome: Outcome, plan: Plan, commits: list[Commit],
                  target: str, leave_out: set[str]) -> str:
        """Pick the commits in a work tree, resolving what the ladder can; verify; the result."""
        budget = Budget(self.llm_calls, self.llm_tokens)
        if self.llm_day_tokens is not None and self.llm_day_tokens - plan.llm_tokens_today < self.llm_tokens:
            budget.max_tokens = max(0, self.llm_day_tokens - plan.llm_tokens_today)
            budget.spent_why = (f"today's LLM budget for this repository is spent ({plan.llm_tokens_today:,} of "
                                f"{self.llm_day_tokens:,} tokens, UTC day)")
        with self._worktree(recorder, plan.workspace, plan, target) as wt:
            try:
                for commit in commits:
                    self._pick_in_worktree(recorder, outcome, plan, wt, commit, budget)
                    if leave_out and commit.parents and testfiles.restore(wt, target, leave_out):
                        recorder.note({"tests_left_out": sorted(leave_out), "commit": commit.sha})
            finally:
                outcome.llm = outcome.llm + budget.used
            result = wt.out("rev-parse", "HEAD")
            if result == target:
                raise AlreadyPresent(f"already on {plan.branch}: every change of the fix is already there")
            if plan.commands and not self._verify_later(recorder, outcome):
                try:
                    self._verify(recorder, outcome, plan, wt)
                except VerifyFailed as failed:
                    if not self._repair(recorder, outcome, plan, wt, target, budget, failed):
                        raise
                    self._verify(recorder, outcome, plan, wt, again=True)
                    result = wt.out("rev-parse", "HEAD")
        return result

    @staticmethod
    def _prerequisites_to_pick(plan: Plan, conflict: Conflict) -> list[Commit] | None:
        """With deps: the prerequisites a conflict named, oldest first, when they are few enough to
        be all named and each is itself a fix (a feature is not carried back to make a fix apply).
        None, with the reason added to the conflict's, when they cannot be picked."""
        found = conflict.details.get("prerequisites", [])
        labels = list(plan.fix_labels)
        why = ""
        if not found:
            why = "no prerequisite was found"
        elif not all(p["named"] for p in found):
            why = f"{len(found)} prerequisites are too many to pick"
        commits = read_commits(plan.workspace.git, *(p["commit"] for p in found)) if not why else []
        if not why and (other := next((c for c in commits if not classify(c.subject, c.body, labels)[0]), None)):
            why = f"{other.sha[:10]} ({other.subject}) is not a fix"
        if why:
            conflict.reason += f". Not picked with its prerequisites: {why}"
            return None
        git = plan.workspace.git  # oldest first: each after those of them it descends from
        return sorted(commits, key=lambda c: sum(git.is_ancestor(o.sha, c.sha) for o in commits if o is not c))

    @staticmethod
    def _flag(recorder: Recorder, outcome: Outcome, why: str) -> None:
        """Something a maintainer must look at before this backport is published."""
        outcome.warnings.append(why)
        recorder.note({"needs_approval": why})

    def _verify_later(self, recorder: Recorder, outcome: Outcome) -> bool:
        """Whether the build and tests must wait for the ✅: code a maintainer has not read yet (the
        model's, or flagged by policy) never runs outside a sandbox."""
        if not outcome.warnings or self.sandbox is None or self.sandbox.isolated:
            return False
        outcome.verify_after_approval = True
        recorder.note({"verify_after_approval": "isolation is off: the build and tests run after a maintainer's ✅"})
        return True

    def _check_names(self, recorder: Recorder, outcome: Outcome, git: Git, commits: list[Commit],
                     mainline: int | None, target: str, branch: str = "the branch") -> set[str]:
        """The names check of every commit, clean picks included (`check_names`): its flags, and
        the test files to leave out."""
        leave_out: set[str] = set()
        for c in commits:
            if not c.parents:
                continue
            flags, tests = check_names(git, c.sha, c.parents[(mainline or 1) - 1], target, branch)
            for why in flags:
                self._flag(recorder, outcome, why)
            leave_out |= tests
        return leave_out

    @contextmanager
    def _worktree(self, recorder: Recorder, ws: Workspace, plan: Plan, commit: str) -> Iterator[Git]:
        path = ws.worktree_path(plan.work_name)
        recorder.worktree(path)  # first, so that recovery can find it
        try:
            yield ws.add_worktree(path, commit)
        finally:
            remove_worktree(path)
            recorder.worktree(None)

    def _pick_in_memory(self, git: Git, commits: list[Commit], mainline: int | None, target: str,
                        leave_out: set[str]) -> str | None:
        """Commit the picks without a work tree when every one applies cleanly, the test files to
        leave out as the branch has them; else None."""
        chain = [(c.sha, c.parents[(mainline or 1) - 1] if c.parents else None) for c in commits]
        with Predictor(git, keep_objects=True) as predictor:
            preds = predictor.predict_chain(chain, target)
            head_tree = predictor.trees([target])[0]
        if len(preds) != len(commits) or not all(p.clean for p in preds):
            return None
        head = target
        for commit, pred in zip(commits, preds, strict=True):
            assert pred.tree is not None
            tree = testfiles.tree_without(git, pred.tree, target, leave_out) if leave_out else pred.tree
            if tree == head_tree:
                continue  # empty pick: this change is already there
            raw = raw_message(git, commit.sha).rstrip("\n") + "\n"
            author = {"GIT_AUTHOR_NAME": commit.author_name, "GIT_AUTHOR_EMAIL": commit.author_email,
                      "GIT_AUTHOR_DATE": commit.author_date}
            head = git.with_env(**author).out("commit-tree", tree, "-p", head,
                                              input=cherry_pick_message(raw, commit.sha))
            head_tree = tree
        return head if head != target else None

    def _pick_in_worktree(self, recorder: Recorder, outcome: Outcome, plan: Plan, wt: Git, commit: Commit,
                          budget: Budget) -> None:
        mainline = ["-m", str(plan.source.mainline)] if plan.source.mainline else []
        res = wt.run("cherry-pick", "-x", *mainline, commit.sha, check=False)
        if res.returncode == 0:
            recorder.note({"picked": commit.sha})
            return
        if not unmerged_paths(wt):
            if not wt.run("status", "--porcelain", "--untracked-files=no", check=False).stdout.strip():
                wt.run("cherry-pick", "--skip")  # empty: the change is already on the branch
                recorder.note({"skipped_empty": commit.sha})
                return
            raise Internal(f"cherry-pick of {commit.sha[:10]} failed: {(res.stderr or res.stdout).strip()[-500:]}")
        self._resolve(recorder, outcome, plan, wt, commit, budget)

    def _resolve(self, recorder: Recorder, outcome: Outcome, plan: Plan, wt: Git, commit: Commit,
                 budget: Budget) -> None:
        paths = sorted(unmerged_paths(wt))
        recorder.conflicted({"commit": commit.sha, "paths": paths})
        recorder.resolving({"commit": commit.sha})
        parent = commit.parents[(plan.source.mainline or 1) - 1] if commit.parents else None
        diffs = {p: wt.run("diff", "--no-color", parent, commit.sha, "--", p, check=False).stdout
                 for p in paths} if parent else {}
        changed = wt.out("diff", "--name-only", "--no-renames", parent, commit.sha).splitlines() if parent else []
        if self.ladder.llm is not None:
            labels = list(plan.fix_labels)
            budget.context = Gatherer(wt, commit.sha, parent, plan.target_ref, plan.main_ref, self.llm_context,
                                      is_fix=lambda c: classify(c.subject, c.body, labels)[0])
        outcomes = self.ladder.resolve(wt, commit.message, diffs, budget,
                                       leave_out_tests=any(not testfiles.is_test(p) for p in changed))
        first = len(outcome.hunks)
        outcome.hunks += [HunkRecord(o.path, i, h.resolved_by, {"kind": o.kind, **h.detail()})
                          for o in outcomes for i, h in enumerate(o.hunks)]
        outcome.regions += [(first + n, h) for n, h in enumerate(h for o in outcomes for h in o.hunks)
                            if h.hunk is not None and h.resolution is not None]
        if all(o.resolved for o in outcomes):
            for o in outcomes:
                for h in o.hunks:
                    if h.resolved_by == RELOCATED:
                        self._flag(recorder, outcome, f"{h.note}: relocated, a maintainer must check the place")
                    elif h.resolved_by == TESTS_LEFT_OUT:
                        why = "cannot take them as they are" if o.kind == "content" else "does not have that file"
                        self._flag(recorder, outcome, f"the fix's test changes in {o.path} are left out (the branch "
                                                      f"{why}); the fix's code is carried")
        by_llm = sum(h.resolved_by == "llm" for o in outcomes for h in o.hunks)
        if by_llm and all(o.resolved for o in outcomes):
            left_out = [line.strip() for o in outcomes for h in o.hunks for line in h.omitted]
            said = (f"; it left out {len(left_out)} line{'s' if len(left_out) > 1 else ''} of the fix: "
                    + "; ".join(f"`{line[:80]}`" for line in left_out[:5])) if left_out else ""
            self._flag(recorder, outcome, f"{by_llm} conflict hunk{'s were' if by_llm > 1 else ' was'} resolved "
                                          f"by the LLM: a maintainer must review the result{said}")
        summaries = [o.summary() for o in outcomes]
        if all(o.resolved for o in outcomes):
            outcome.conflicts += summaries
            recorder.note({"resolved": summaries})
            # Never recorded for rerere: a resolution of the bot's own (the model's above all)
            # replayed later as "recorded" would skip its review. rerere replays people's only.
            wt.run("rerere", "clear", check=False)
            if wt.ok("diff", "--cached", "--quiet", "HEAD"):  # resolved to nothing: already there
                wt.run("cherry-pick", "--skip")
                recorder.note({"skipped_empty": commit.sha})
                return
            res = wt.run("cherry-pick", "--continue", check=False)
            if res.returncode != 0:
                raise Internal(f"committing the resolution failed: {(res.stderr or res.stdout).strip()[-500:]}")
            return
        unresolved = [(o.path, h.hunk) for o in outcomes for h in o.hunks if h.resolved_by == UNRESOLVED]
        labels = list(plan.fix_labels)
        prereqs = prereq.find(plan.workspace.git, commit.sha, parent, plan.target_ref, plan.main_ref, unresolved,
                              is_fix=lambda c: classify(c.subject, c.body, labels)[0]) if parent else []
        wt.run("cherry-pick", "--abort", check=False)
        outcome.conflicts += summaries
        raise Conflict(_conflict_reason(commit, outcomes, prereqs, plan.branch), stage=Stage.RESOLVING,
                       details={"conflicts": summaries, "prerequisites": [p.as_dict() for p in prereqs]})

    def _repair(self, recorder: Recorder, outcome: Outcome, plan: Plan, wt: Git, target: str, budget: Budget,
                failed: VerifyFailed) -> bool:
        """The build or tests failed after a pick the ladder resolved: the model may change the
        regions the rungs wrote, once, each checked as a hunk answer is. True when the repair was
        committed (amending the last pick); the caller verifies again. Never without a sandbox:
        the model's code runs unread only in isolation."""
        llm = self.ladder.llm
        if llm is None or not outcome.regions:
            return False
        why_not = ("the build runs without isolation" if self.sandbox is None or not self.sandbox.isolated
                   else budget.spent_why if not budget.allows() else "")
        if why_not:
            recorder.note({"llm_repair": f"not tried: {why_not}"})
            return False
        command = failed.details.get("command") or {}
        failure = f"{failed.reason}\n{command.get('tail', '')}"
        regions, where = [], []
        for n, h in outcome.regions:
            assert h.hunk is not None and h.resolution is not None
            region = Region(outcome.hunks[n].path, "".join(h.hunk.before),
                            "".join(h.resolution), "".join(h.hunk.after), "".join(h.hunk.base), "".join(h.hunk.theirs))
            text = (wt.cwd / region.path).read_text(errors="surrogateescape")
            at = text.find(region.before + region.text + region.after)
            start = text.count("\n", 0, at) + len(h.hunk.before) if at >= 0 else 0
            regions.append(region)
            where.append((region.path, start, start + len(h.resolution)))
        diff = wt.run("diff", "--no-color", target, "HEAD", check=False).stdout
        gathered = Gatherer(wt, "HEAD", None, plan.target_ref, plan.main_ref, self.llm_context).for_repair(
            where, failure, sum(len(r.before + r.text + r.after + r.base + r.theirs) for r in regions) + len(diff))
        answer = llm.repair(RepairRequest(gathered.sections.pop("failure", failure[-2000:]), diff, tuple(regions),
                                          plan.source.commits[-1].message, gathered.sections, tuple(gathered.cut)))
        budget.used = budget.used + answer.usage
        outcome.llm = outcome.llm + answer.usage
        paths = sorted({r.path for r in regions})
        files = {p: (wt.cwd / p).read_text(errors="surrogateescape") for p in paths}
        repaired, changed, problem = check_repair(files, regions, answer)
        if repaired is None:
            said = "timed out" if answer.timed_out else f"not used: {problem}"
            recorder.note({"llm_repair": f"{said}. Model said: {answer.explanation}"})
            failed.reason += f". The LLM's repair was {said}" + (f" (it said: {answer.explanation[:300]})"
                                                                 if answer.explanation else "")
            return False
        for p, text in repaired.items():
            (wt.cwd / p).write_text(text, errors="surrogateescape")
        wt.run("add", "--", *paths)
        wt.run("commit", "--amend", "--no-edit", "--no-verify", "--allow-empty")
        for i, lines in changed.items():
            n, _ = outcome.regions[i]
            record = outcome.hunks[n]
            outcome.hunks[n] = HunkRecord(record.path, record.index, "llm-repair", {
                **record.detail, "resolution": "".join(lines)[:DETAIL_CHARS], "repaired": record.resolved_by,
                "note": f"after `{command.get('name', 'the build')}` failed, the LLM changed this {record.resolved_by} "
                        f"resolution: {answer.explanation} (confidence {answer.confidence:.2f})"})
        recorder.note({"llm_repair": [asdict(outcome.hunks[outcome.regions[i][0]]) for i in changed]})
        self._flag(recorder, outcome, f"{failed.reason}; the LLM repaired {len(changed)} resolved "
                                      f"region{'s' if len(changed) > 1 else ''} (llm-repair): a maintainer must "
                                      "review the result")
        return True

    def _verify(self, recorder: Recorder, outcome: Outcome, plan: Plan, wt: Git, again: bool = False) -> None:
        """Run the build and tests; `again`: after a repair, in the same verifying step."""
        if self.sandbox is None:
            raise Internal("build and test commands are configured but this engine has no sandbox to run them")
        if not again:
            recorder.verifying({"commands": [c.name for c in plan.commands]})
        log_dir = plan.workspace.logs_dir / plan.work_name
        outcome.verified = self.sandbox.run(wt.cwd, plan.commands, log_dir, recorder.process)
        recorder.note({"verified": [asdict(r) for r in outcome.verified]})


def check_names(git: Git, commit: str, parent: str, target: str,
                branch: str = "the branch") -> tuple[list[str], set[str]]:
    """The names check (symbols.py) of one commit: the flags for a maintainer, naming what and
    where, and the test files that use what the branch lacks, left out when the fix's code can be
    carried without them (flagged too). The engine's and eval's."""
    findings = symbols.check(git, commit, parent, target, branch)
    tests = testfiles.needing_what_the_branch_lacks(git, parent, commit, {f.path for f in findings})
    flags = []
    if found := [f.text for f in findings if f.path not in tests]:
        flags.append(symbols.warning(commit, found))
    if tests:
        first = next(f for f in findings if f.path in tests)
        flags.append(f"the fix's test changes in {', '.join(sorted(tests))} are left out (they need what {branch} "
                     f"lacks: {first.path}:{first.line} {first.text}); the fix's code is carried")
    return flags, tests


def _conflict_reason(commit: Commit, outcomes: list[FileOutcome], prereqs: list[prereq.Prerequisite],
                     branch: str = "the branch") -> str:
    parts = []
    for o in outcomes:
        bad = [h for h in o.hunks if h.resolved_by == UNRESOLVED]
        if not bad:
            continue
        if bad[0].hunk is None:
            parts.append(f"{o.path} ({bad[0].note})")
        else:
            lines = ", ".join(str(h.hunk.line) for h in bad if h.hunk)
            parts.append(f"{o.path} ({len(bad)} of {len(o.hunks)} hunks unresolved, at line {lines})")
    reason = f"{commit.sha[:10]} does not apply: conflicts in " + "; ".join(parts)
    named = [p for p in prereqs if p.named]
    if feature := next((p for p in named if p.feature), None):
        # The code the fix changes is nowhere on the branch and came with a feature it never got.
        pr = f", #{feature.pr}" if feature.pr and f"(#{feature.pr})" not in feature.subject else ""
        return (f"{reason}. It probably does not apply to {branch}: the code it changes came with "
                f"{feature.commit[:10]} ({feature.subject}{pr}), which is not a fix and is not on {branch}")
    if named:
        more = len(prereqs) - len(named)
        reason += (". Missing prerequisite: " + "; ".join(str(p) for p in named)
                   + (f" (and {more} more)" if more else "")
                   + (" — backport them first" if len(prereqs) > 1 else " — backport it first"))
    return reason
