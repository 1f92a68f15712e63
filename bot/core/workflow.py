"""The life of one backport (a fix x a branch): its states, the table of allowed moves, and one
named operation per move. Every operation writes one typed event; the store refuses any move the
table does not allow, so no other module changes an attempt's state.

docs/workflow.md shows the table as a diagram; `python -m bot.core.workflow` prints it, and a
test checks that the two agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from bot.core.lease import Lease, kill_group, process_group
from bot.core.lease import alive as lease_alive
from bot.engine.backport import Outcome
from bot.engine.errors import BackportFailure, Stage
from bot.engine.ports import HunkRecord
from bot.engine.workspace import remove_worktree


class State(StrEnum):
    REQUESTED = "requested"
    QUEUED = "queued"
    PICKING = "picking"
    CONFLICTED = "conflicted"
    RESOLVING = "resolving"
    VERIFYING = "verifying"
    READY = "ready"  # the result commit is on backport/<ref>-to-<branch>
    AWAITING_APPROVAL = "awaiting_approval"
    OPENING_PR = "opening_pr"
    PR_OPEN = "pr_open"
    MERGED = "merged"
    CLOSED = "closed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    KEPT = "kept"  # picked by the one-shot command line: kept on its branch, never published


class Op(StrEnum):
    """What an event says happened. Moves change the state; the rest only record facts."""

    REQUEST = "request"
    QUEUE = "queue"
    RETRY = "retry"
    START = "start"
    CONFLICT = "conflict"
    RESOLVE = "resolve"
    VERIFY = "verify"
    PICKED = "picked"
    AWAIT_APPROVAL = "await_approval"
    APPROVE = "approve"
    OPEN_PR = "open_pr"
    PR_OPENED = "pr_opened"
    MERGED = "merged"
    CLOSED = "closed"
    FAIL = "fail"
    CANCEL = "cancel"
    INTERRUPT = "interrupt"
    KEEP = "keep"
    # facts, no move
    NOTE = "note"
    CANCEL_REQUESTED = "cancel_requested"
    CI = "ci"


S = State
# States in which a process is doing work on the attempt right now (and may own a worktree).
WORKING = frozenset({S.PICKING, S.CONFLICTED, S.RESOLVING, S.VERIFYING, S.OPENING_PR})
# States after which nothing more happens unless someone asks for a retry.
FINISHED = frozenset({S.MERGED, S.CLOSED, S.FAILED, S.CANCELLED, S.INTERRUPTED, S.KEPT})
# Success from the engine's point of view.
SUCCEEDED = frozenset({S.READY, S.AWAITING_APPROVAL, S.OPENING_PR, S.PR_OPEN, S.MERGED, S.KEPT})
# Still alive: a new request for the same fix and branch joins it instead of starting another. The
# store holds at most one open attempt per (repository, fix, branch).
OPEN = frozenset(State) - FINISHED

# The table: each move, the states it may start from, and where it leads.
MOVES: dict[Op, tuple[frozenset[State], State]] = {
    Op.QUEUE: (frozenset({S.REQUESTED}), S.QUEUED),
    Op.RETRY: (frozenset({S.REQUESTED}), S.QUEUED),  # a new attempt that retries an earlier one
    Op.START: (frozenset({S.QUEUED}), S.PICKING),
    Op.CONFLICT: (frozenset({S.PICKING, S.RESOLVING}), S.CONFLICTED),  # a later commit conflicts too
    Op.RESOLVE: (frozenset({S.CONFLICTED}), S.RESOLVING),
    Op.VERIFY: (frozenset({S.PICKING, S.RESOLVING, S.READY}), S.VERIFYING),  # from ready: after the ✅
    Op.PICKED: (frozenset({S.PICKING, S.RESOLVING, S.VERIFYING}), S.READY),
    Op.AWAIT_APPROVAL: (frozenset({S.READY}), S.AWAITING_APPROVAL),
    Op.APPROVE: (frozenset({S.AWAITING_APPROVAL}), S.READY),
    Op.OPEN_PR: (frozenset({S.READY}), S.OPENING_PR),
    Op.PR_OPENED: (frozenset({S.OPENING_PR}), S.PR_OPEN),
    Op.MERGED: (frozenset({S.PR_OPEN}), S.MERGED),
    Op.CLOSED: (frozenset({S.PR_OPEN}), S.CLOSED),
    # From ready: the build and tests that waited for the ✅ could not start.
    Op.FAIL: (frozenset({S.REQUESTED, S.QUEUED, S.READY, S.OPENING_PR, S.PR_OPEN}) | WORKING, S.FAILED),
    Op.CANCEL: (frozenset({S.REQUESTED, S.QUEUED, S.READY, S.AWAITING_APPROVAL}), S.CANCELLED),
    Op.INTERRUPT: (WORKING, S.INTERRUPTED),
    Op.KEEP: (frozenset({S.READY}), S.KEPT),
}

TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    (source, target) for sources, target in MOVES.values() for source in sources)


# --- the attempt's record, and what the workflow needs of the store ---------------------------


@dataclass(frozen=True)
class Attempt:
    """One backport of one fix to one branch; its state moves as bot.core.workflow allows."""

    id: int
    request_id: int
    repo: str
    source: str
    branch: str
    state: State
    stage: str | None  # where it failed or was interrupted (a Stage); None otherwise
    failure_kind: str | None
    reason: str | None
    source_commits: list[str]
    pr_number: int | None
    result_branch: str | None
    result_commit: str | None
    base_commit: str | None
    worktree: str | None
    owner: str | None  # the lease of the process working on it (bot.core.lease)
    process: str | None  # the process group its verify command runs in, while one runs
    conflicts: list[dict[str, Any]]
    prerequisites: list[dict[str, Any]]
    warnings: list[str]
    needs_approval: bool
    approved_by: str | None
    cancel_requested_by: str | None
    message: str | None  # the progress message in the request's thread
    approval_message: str | None
    pr_url: str | None
    backport_pr: int | None
    ci: str | None  # waiting | passed | failed, when the forge's CI verifies
    llm_usage: dict[str, Any]
    retry_of: int | None
    verify_after_approval: bool  # its build and tests run after the ✅ (unisolated, they wait for a reader)
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Event:
    attempt_id: int
    at: float
    op: Op
    state: State  # the state after the event
    detail: dict[str, Any]


class IllegalMove(Exception):
    """The workflow does not allow this move from the attempt's current state."""


@dataclass(frozen=True)
class Move:
    """One change of an attempt's state, as the workflow's table allows it."""

    op: Op
    sources: frozenset[State]  # the states it may start from
    target: State
    detail: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)  # other attempt columns written with it


class AttemptStore(Protocol):
    """The part of the Store port the workflow uses. Only `move` changes an attempt's state, and it
    refuses a move the table does not allow (IllegalMove)."""

    def move(self, attempt_id: int, move: Move) -> Attempt: ...

    def note(self, attempt_id: int, op: Op, detail: dict[str, Any], **columns: Any) -> None:
        """An event that changes no state; `columns` are facts written with it."""
        ...

    def attempt(self, attempt_id: int) -> Attempt: ...

    def record_hunks(self, attempt_id: int, hunks: list[HunkRecord]) -> None: ...

    def in_state(self, *states: State) -> list[Attempt]: ...

    def lease(self, lease_id: str) -> Lease | None: ...


def mermaid() -> str:
    """The table as a Mermaid state diagram (docs/workflow.md holds a copy)."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.REQUESTED}: {Op.REQUEST}"]
    for op, (sources, target) in MOVES.items():
        for source in sorted(sources):
            lines.append(f"    {source} --> {target}: {op}")
    lines += [f"    {s} --> [*]" for s in sorted(FINISHED)]
    return "\n".join(lines) + "\n"


Listener = Callable[[Attempt], None]


class Workflow:
    """The named operations. Listeners hear every move (from any thread)."""

    def __init__(self, store: AttemptStore, owner: str) -> None:
        self.store = store
        self.owner = owner  # this process's lease: written on the attempts it works on
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _move(self, attempt_id: int, op: Op, detail: dict[str, Any] | None = None, **columns: Any) -> Attempt:
        sources, target = MOVES[op]
        return self._told(self.store.move(attempt_id, Move(op, sources, target, detail or {}, columns)))

    def _told(self, attempt: Attempt) -> Attempt:
        for listener in self._listeners:
            listener(attempt)
        return attempt

    # --- a request and its attempts ------------------------------------------------------------------

    def queue(self, attempt_id: int) -> Attempt:
        return self._move(attempt_id, Op.QUEUE, owner=self.owner)

    def retry(self, attempt_id: int, retry_of: int, by: str) -> Attempt:
        return self._move(attempt_id, Op.RETRY, {"retry_of": retry_of, "by": by}, retry_of=retry_of)

    def start(self, attempt_id: int, detail: dict[str, Any]) -> Attempt:
        return self._move(attempt_id, Op.START, detail, owner=self.owner,
                          source_commits=detail.get("source_commits", []), pr_number=detail.get("pr_number"))

    def conflict(self, attempt_id: int, detail: dict[str, Any]) -> Attempt:
        return self._move(attempt_id, Op.CONFLICT, detail)

    def resolve(self, attempt_id: int, detail: dict[str, Any]) -> Attempt:
        return self._move(attempt_id, Op.RESOLVE, detail)

    def verify(self, attempt_id: int, detail: dict[str, Any]) -> Attempt:
        return self._move(attempt_id, Op.VERIFY, detail, owner=self.owner)  # after a ✅, maybe another process

    def finish(self, attempt_id: int, outcome: Outcome) -> Attempt:
        """The engine is done: the result is ready, or the attempt failed."""
        self.store.record_hunks(attempt_id, outcome.hunks)
        facts: dict[str, Any] = {"conflicts": outcome.conflicts, "warnings": outcome.warnings,
                                 "needs_approval": outcome.needs_approval,
                                 "verify_after_approval": outcome.verify_after_approval}
        if outcome.with_deps:  # the prerequisites picked with it, each marked "picked"
            facts["prerequisites"] = outcome.with_deps
        if outcome.llm.calls:
            facts["llm"] = {"calls": outcome.llm.calls, "tokens": outcome.llm.tokens, "seconds": outcome.llm.seconds}
        if outcome.failure is not None:
            return self.fail(attempt_id, outcome.failure, **facts)
        return self._move(attempt_id, Op.PICKED,
                          {"result_branch": outcome.result_branch, "result_commit": outcome.result_commit,
                           "base_commit": outcome.base_commit},
                          result_branch=outcome.result_branch, result_commit=outcome.result_commit,
                          base_commit=outcome.base_commit, **facts)

    def verified(self, attempt_id: int, outcome: Outcome) -> Attempt:
        """The build and tests that waited for the ✅ ran: the result is ready to publish, or failed."""
        if outcome.failure is not None:
            return self.fail(attempt_id, outcome.failure)
        return self._move(attempt_id, Op.PICKED, {"verified_after_approval": True}, verify_after_approval=False)

    def fail(self, attempt_id: int, f: BackportFailure, **facts: Any) -> Attempt:
        columns: dict[str, Any] = {"stage": f.stage, "failure_kind": f.kind, "reason": f.reason, **facts}
        for key in ("conflicts", "prerequisites"):
            if key in f.details:
                columns[key] = f.details[key]
        detail = {"stage": f.stage, "kind": f.kind, "reason": f.reason,
                  **{k: v for k, v in f.details.items() if k not in ("conflicts", "prerequisites")}}
        return self._move(attempt_id, Op.FAIL, detail, **columns)

    def interrupt(self, attempt: Attempt, reason: str) -> Attempt:
        return self._move(attempt.id, Op.INTERRUPT, {"reason": reason, "stage": attempt.state},
                          stage=attempt.state.value, failure_kind="interrupted", worktree=None, process=None,
                          reason=reason)

    # --- approval and publication --------------------------------------------------------------------

    def await_approval(self, attempt_id: int, warnings: list[str]) -> Attempt:
        return self._move(attempt_id, Op.AWAIT_APPROVAL, {"why": warnings})

    def approve(self, attempt_id: int, by: str) -> Attempt:
        return self._move(attempt_id, Op.APPROVE, {"approved_by": by}, approved_by=by)

    def open_pr(self, attempt_id: int) -> Attempt:
        return self._move(attempt_id, Op.OPEN_PR, owner=self.owner)

    def pr_opened(self, attempt_id: int, number: int, url: str, ci: str | None = None,
                  **detail: Any) -> Attempt:
        return self._move(attempt_id, Op.PR_OPENED, {"pr": number, "url": url, **detail},
                          pr_url=url, backport_pr=number, ci=ci)

    def ci(self, attempt_id: int, status: str, detail: dict[str, Any]) -> None:
        """The forge's CI passed on the attempt's pull request (a failing check is `fail`)."""
        self.store.note(attempt_id, Op.CI, {"ci": status, **detail}, ci=status)
        self._told(self.store.attempt(attempt_id))

    def merged(self, attempt_id: int, head_sha: str = "") -> Attempt:
        """`head_sha`: what was merged, when the forge says (people may have pushed to the PR)."""
        return self._move(attempt_id, Op.MERGED, {"on_forge": True, **({"head": head_sha} if head_sha else {})})

    def closed(self, attempt_id: int) -> Attempt:
        return self._move(attempt_id, Op.CLOSED, {"on_forge": True})

    # --- stopping ---------------------------------------------------------------------------------------

    def cancel(self, attempt_id: int, by: str, reason: str | None = None) -> Attempt:
        detail = {"by": by, **({"reason": reason} if reason else {})}
        return self._move(attempt_id, Op.CANCEL, detail, stage=Stage.CANCELLED.value,
                          reason=f"cancelled by {by}" + (f" ({reason})" if reason else ""))

    def request_cancel(self, attempt_id: int, by: str) -> None:
        """Cancel a running attempt after its current step (persisted: a restart still cancels)."""
        self.store.note(attempt_id, Op.CANCEL_REQUESTED, {"by": by}, cancel_requested_by=by)

    def note(self, attempt_id: int, detail: dict[str, Any]) -> None:
        self.store.note(attempt_id, Op.NOTE, detail)

    def recover(self, now: float | None = None) -> list[Attempt]:
        """Attempts whose process died (its lease is dead): interrupted, with their worktree
        removed and what is left of their verify command killed."""
        now = time.time() if now is None else now
        return [self.abandon(a, "the bot stopped before it finished") for a in self.store.in_state(*WORKING)
                if a.owner != self.owner and not lease_alive(self.store.lease(a.owner or ""), now)]

    def abandon(self, attempt: Attempt, reason: str) -> Attempt:
        """Stop an attempt nobody will finish; nothing of it is left running or on disk. It is
        marked first: the work, seeing its command killed, can then no longer record a failure."""
        interrupted = self.interrupt(attempt, reason)
        kill_group(attempt.process)
        if attempt.worktree:
            remove_worktree(Path(attempt.worktree))
        return interrupted

    def owned(self) -> list[Attempt]:
        """The attempts this process is working on."""
        return [a for a in self.store.in_state(*WORKING) if a.owner == self.owner]

    def worktree(self, attempt_id: int, path: Path | None) -> None:
        """The work tree the attempt uses (None: removed), for recovery after a crash."""
        where = str(path) if path else None
        self.store.note(attempt_id, Op.NOTE, {"worktree": where}, worktree=where)

    def process(self, attempt_id: int, pid: int | None) -> None:
        """The process group the attempt's verify command runs in (None: it ended)."""
        self.store.note(attempt_id, Op.NOTE, {"process": pid}, process=process_group(pid) if pid else None)

    def keep(self, attempt_id: int) -> Attempt:
        """A command-line result: kept on its branch; the service never publishes it."""
        return self._move(attempt_id, Op.KEEP)

    def add_llm_usage(self, attempt_id: int, total: dict[str, Any]) -> None:
        """The model's use on this attempt so far (answers to questions included)."""
        self.store.note(attempt_id, Op.NOTE, {"llm": total}, llm=total)


class AttemptRecorder:
    """The engine's Recorder for one stored attempt: each engine step is a workflow move."""

    def __init__(self, workflow: Workflow, attempt_id: int) -> None:
        self.workflow, self.attempt_id = workflow, attempt_id

    def started(self, detail: dict[str, Any]) -> None:
        self.workflow.start(self.attempt_id, detail)

    def conflicted(self, detail: dict[str, Any]) -> None:
        self.workflow.conflict(self.attempt_id, detail)

    def resolving(self, detail: dict[str, Any]) -> None:
        self.workflow.resolve(self.attempt_id, detail)

    def verifying(self, detail: dict[str, Any]) -> None:
        self.workflow.verify(self.attempt_id, detail)

    def note(self, detail: dict[str, Any]) -> None:
        self.workflow.note(self.attempt_id, detail)

    def worktree(self, path: Path | None) -> None:
        self.workflow.worktree(self.attempt_id, path)

    def process(self, pid: int | None) -> None:
        self.workflow.process(self.attempt_id, pid)


if __name__ == "__main__":  # pragma: no cover
    print(mermaid(), end="")
