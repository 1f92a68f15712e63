"""One attempt, end to end: policy, pick, resolve, verify, record. Every step is a stored event
and every failure a typed exception stored with the attempt, so "why" can always answer."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.config import CommandSpec
from bot.engine import policy, prereq, symbols
from bot.engine.git import Git, GitError, brief
from bot.engine.ladder import UNRESOLVED, Budget, FileOutcome, Ladder, unmerged_paths
from bot.engine.predict import Predictor
from bot.engine.source import Commit, Source, raw_message
from bot.engine.verify import run_commands
from bot.engine.workspace import Workspace, remove_worktree
from bot.errors import AlreadyPresent, BackportFailure, Conflict, Internal, PushFailed
from bot.ports import LLM
from bot.states import SUCCEEDED, State
from bot.store import HunkRecord, Store

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
    commands: Sequence[CommandSpec] = ()
    fix_labels: Sequence[str] = ()

    @property
    def result_branch(self) -> str:
        return f"backport/{self.source.slug}-to-{self.branch}"


@dataclass(frozen=True)
class Outcome:
    attempt_id: int
    branch: str
    state: str
    stage: str | None
    reason: str | None
    failure_kind: str | None
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    prerequisites: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    result_branch: str | None = None
    result_commit: str | None = None
    needs_approval: bool = False

    @property
    def succeeded(self) -> bool:
        return State(self.state) in SUCCEEDED

    def as_json(self) -> dict[str, Any]:
        return {"branch": self.branch, "status": "succeeded" if self.succeeded else "failed",
                "stage": self.stage, "reason": self.reason, "kind": self.failure_kind,
                "conflicts": self.conflicts, "prerequisites": self.prerequisites, "warnings": self.warnings,
                "result_branch": self.result_branch, "result_commit": self.result_commit,
                "needs_approval": self.needs_approval, "attempt": self.attempt_id}


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
    def __init__(self, store: Store, llm: LLM | None = None, llm_calls: int = 8, llm_tokens: int = 40_000) -> None:
        self.store = store
        self.ladder = Ladder(llm)
        self.llm_calls, self.llm_tokens = llm_calls, llm_tokens

    # --- crash recovery ------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Mark attempts whose process died as interrupted and remove their worktrees."""
        recovered = []
        for attempt in self.store.orphaned():
            if attempt.worktree:
                remove_worktree(Path(attempt.worktree))
            self.store.transition(attempt.id, State.INTERRUPTED,
                                  {"reason": f"the process working on it stopped during {attempt.state}",
                                   "stage": attempt.state},
                                  stage=attempt.state, failure_kind="interrupted", worktree=None,
                                  reason=f"interrupted during {attempt.state}: the bot stopped before it finished")
            recovered.append(attempt.id)
        return recovered

    # --- one attempt ---------------------------------------------------------------------------

    def run(self, attempt_id: int, plan: Plan) -> Outcome:
        store = self.store
        try:
            self._run(attempt_id, plan)
        except BackportFailure as failure:
            self.fail(attempt_id, failure)
        except KeyboardInterrupt:
            store.transition(attempt_id, State.INTERRUPTED, {"reason": "stopped by the user"},
                             failure_kind="interrupted", reason="stopped by the user", worktree=None)
            raise
        except Exception as exc:  # a bug or an environment problem: still recorded, never silent
            log.exception("attempt %s failed unexpectedly", attempt_id)
            self.fail(attempt_id, Internal(f"{type(exc).__name__}: {exc}",
                                            details={"traceback": traceback.format_exc()[-4000:]}))
        return self.outcome(attempt_id)

    def outcome(self, attempt_id: int) -> Outcome:
        a = self.store.attempt(attempt_id)
        return Outcome(a.id, a.branch, a.state, a.stage, a.reason, a.failure_kind, a.conflicts, a.prerequisites,
                       a.warnings, a.result_branch, a.result_commit, a.needs_approval)

    def fail(self, attempt_id: int, f: BackportFailure) -> Outcome:
        """Record a failure on an attempt (also used when the source cannot even be found)."""
        columns: dict[str, Any] = {"stage": f.stage, "failure_kind": f.kind, "reason": f.reason}
        for key in ("conflicts", "prerequisites"):
            if key in f.details:
                columns[key] = f.details[key]
        detail = {"stage": f.stage, "kind": f.kind, "reason": f.reason,
                  **{k: v for k, v in f.details.items() if k not in ("conflicts", "prerequisites")}}
        self.store.transition(attempt_id, State.FAILED, detail, **columns)
        return self.outcome(attempt_id)

    def _run(self, attempt_id: int, plan: Plan) -> None:
        store, ws, source = self.store, plan.workspace, plan.source
        git = ws.git
        store.transition(attempt_id, State.PICKING, {"target": plan.target_ref},
                         source_commits=[c.sha for c in source.commits], pr_number=source.pr_number, stage="policy")
        ws.fetch()
        policy.refuse_circular(source)
        present = policy.find_present(git, source, plan.target_ref, plan.main_ref)
        if present:
            store.note(attempt_id, {"already_present": [asdict(p) for p in present]})
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
            self._flag(attempt_id, why)

        target = git.out("rev-parse", f"{plan.target_ref}^{{commit}}")
        store.update(attempt_id, stage="picking")
        result = self._pick_in_memory(git, commits, source.mainline, target)
        self._check_names(attempt_id, git, commits, source.mainline, target)
        if result is not None:
            store.note(attempt_id, {"picked": "in memory", "commits": [c.sha for c in commits]})
            if plan.commands:
                with self._worktree(attempt_id, ws, result) as wt:
                    self._verify(attempt_id, plan, wt)
        else:
            budget = Budget(self.llm_calls, self.llm_tokens)
            with self._worktree(attempt_id, ws, target) as wt:
                for commit in commits:
                    self._pick_in_worktree(attempt_id, plan, wt, commit, budget)
                result = wt.out("rev-parse", "HEAD")
                if result == target:
                    raise AlreadyPresent(f"already on {plan.branch}: every change of the fix is already there")
                if plan.commands:
                    self._verify(attempt_id, plan, wt)
        try:
            ws.update_branch(plan.result_branch, result)
        except GitError as e:
            raise PushFailed(f"could not write the branch {plan.result_branch}: {brief(e.stderr)}") from None
        store.transition(attempt_id, State.READY, {"result_branch": plan.result_branch, "result_commit": result,
                                                   "base_commit": target},
                         stage="ready", result_branch=plan.result_branch, result_commit=result)

    def _flag(self, attempt_id: int, why: str) -> None:
        """Something a maintainer must look at before this backport is published."""
        warnings = [*self.store.attempt(attempt_id).warnings, why]
        self.store.update(attempt_id, needs_approval=1, warnings=warnings)
        self.store.note(attempt_id, {"needs_approval": why})

    def _check_names(self, attempt_id: int, git: Git, commits: list[Commit], mainline: int | None,
                     target: str) -> None:
        for c in commits:
            if not c.parents:
                continue
            missing = symbols.missing_names(git, c.sha, c.parents[(mainline or 1) - 1], target)
            if missing:
                self._flag(attempt_id, f"{c.sha[:10]} uses names found nowhere on the branch: "
                                       f"{', '.join(missing[:10])} (an API the branch may not have)")

    @contextmanager
    def _worktree(self, attempt_id: int, ws: Workspace, commit: str) -> Iterator[Git]:
        path = ws.worktree_path(f"attempt-{attempt_id}")
        self.store.update(attempt_id, worktree=str(path))  # first, so that recovery can find it
        try:
            yield ws.add_worktree(path, commit)
        finally:
            remove_worktree(path)
            self.store.update(attempt_id, worktree=None)

    def _pick_in_memory(self, git: Git, commits: list[Commit], mainline: int | None, target: str) -> str | None:
        """Commit the picks without a work tree when every one applies cleanly; else None."""
        chain = [(c.sha, c.parents[(mainline or 1) - 1] if c.parents else None) for c in commits]
        with Predictor(git, keep_objects=True) as predictor:
            preds = predictor.predict_chain(chain, target)
            head_tree = predictor.trees([target])[0]
        if len(preds) != len(commits) or not all(p.clean for p in preds):
            return None
        head = target
        for commit, pred in zip(commits, preds, strict=True):
            if pred.tree == head_tree:
                continue  # empty pick: this change is already there
            raw = raw_message(git, commit.sha).rstrip("\n") + "\n"
            author = {"GIT_AUTHOR_NAME": commit.author_name, "GIT_AUTHOR_EMAIL": commit.author_email,
                      "GIT_AUTHOR_DATE": commit.author_date}
            assert pred.tree is not None
            head = git.with_env(**author).out("commit-tree", pred.tree, "-p", head,
                                              input=cherry_pick_message(raw, commit.sha))
            head_tree = pred.tree
        return head if head != target else None

    def _pick_in_worktree(self, attempt_id: int, plan: Plan, wt: Git, commit: Commit, budget: Budget) -> None:
        mainline = ["-m", str(plan.source.mainline)] if plan.source.mainline else []
        res = wt.run("cherry-pick", "-x", *mainline, commit.sha, check=False)
        if res.returncode == 0:
            self.store.note(attempt_id, {"picked": commit.sha})
            return
        if not unmerged_paths(wt):
            if not wt.run("status", "--porcelain", "--untracked-files=no", check=False).stdout.strip():
                wt.run("cherry-pick", "--skip")  # empty: the change is already on the branch
                self.store.note(attempt_id, {"skipped_empty": commit.sha})
                return
            raise Internal(f"cherry-pick of {commit.sha[:10]} failed: {(res.stderr or res.stdout).strip()[-500:]}")
        self._resolve(attempt_id, plan, wt, commit, budget)

    def _resolve(self, attempt_id: int, plan: Plan, wt: Git, commit: Commit, budget: Budget) -> None:
        store = self.store
        paths = sorted(unmerged_paths(wt))
        store.transition(attempt_id, State.CONFLICTED, {"commit": commit.sha, "paths": paths}, stage="conflicted")
        store.transition(attempt_id, State.RESOLVING, {"commit": commit.sha}, stage="resolving")
        parent = commit.parents[(plan.source.mainline or 1) - 1] if commit.parents else None
        diffs = {p: wt.run("diff", "--no-color", parent, commit.sha, "--", p, check=False).stdout
                 for p in paths} if parent else {}
        outcomes = self.ladder.resolve(wt, commit.message, diffs, budget)
        if budget.used.calls:
            store.update(attempt_id, llm=asdict(budget.used))
        self._record(attempt_id, outcomes)
        by_llm = sum(h.resolved_by == "llm" for o in outcomes for h in o.hunks)
        if by_llm and all(o.resolved for o in outcomes):
            self._flag(attempt_id, f"{by_llm} conflict hunk{'s were' if by_llm > 1 else ' was'} resolved by the LLM: "
                                   "a maintainer must review the result")
        summaries = [o.summary() for o in outcomes]
        if all(o.resolved for o in outcomes):
            store.transition(attempt_id, State.PICKING, {"resolved": summaries}, conflicts=summaries, stage="picking")
            if wt.ok("diff", "--cached", "--quiet", "HEAD"):  # resolved to nothing: already there
                wt.run("cherry-pick", "--skip")
                store.note(attempt_id, {"skipped_empty": commit.sha})
                return
            res = wt.run("cherry-pick", "--continue", check=False)
            if res.returncode != 0:
                raise Internal(f"committing the resolution failed: {(res.stderr or res.stdout).strip()[-500:]}")
            return
        unresolved = [(o.path, h.hunk) for o in outcomes for h in o.hunks if h.resolved_by == UNRESOLVED]
        prereqs = prereq.find(plan.workspace.git, commit.sha, parent, plan.target_ref, plan.main_ref,
                              unresolved) if parent else []
        wt.run("cherry-pick", "--abort", check=False)
        raise Conflict(_conflict_reason(commit, outcomes, prereqs), stage="resolving",
                       details={"conflicts": summaries, "prerequisites": [p.as_dict() for p in prereqs]})

    def _record(self, attempt_id: int, outcomes: list[FileOutcome]) -> None:
        existing = self.store.hunks(attempt_id)
        records = existing + [HunkRecord(o.path, i, h.resolved_by, {"kind": o.kind, **h.detail()})
                              for o in outcomes for i, h in enumerate(o.hunks)]
        self.store.record_hunks(attempt_id, records)

    def _verify(self, attempt_id: int, plan: Plan, wt: Git) -> None:
        self.store.transition(attempt_id, State.VERIFYING, {"commands": [c.name for c in plan.commands]},
                              stage="verifying")
        results = run_commands(wt.cwd, plan.commands, plan.workspace.logs_dir / f"attempt-{attempt_id}")
        self.store.note(attempt_id, {"verified": [asdict(r) for r in results]})


def _conflict_reason(commit: Commit, outcomes: list[FileOutcome], prereqs: list[prereq.Prerequisite]) -> str:
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
    if prereqs:
        reason += (". Missing prerequisite: " + "; ".join(str(p) for p in prereqs)
                   + (" — backport them first" if len(prereqs) > 1 else " — backport it first"))
    return reason
