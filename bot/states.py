"""The life of one backport (source x branch): DESIGN §3."""

from __future__ import annotations

from enum import StrEnum


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


# States in which a process is doing work on the attempt right now (and may own a worktree).
WORKING = frozenset({State.PICKING, State.CONFLICTED, State.RESOLVING, State.VERIFYING, State.OPENING_PR})
# States after which nothing more happens unless someone asks for a retry.
FINISHED = frozenset({State.MERGED, State.CLOSED, State.FAILED, State.CANCELLED, State.INTERRUPTED})
# Success from the engine's point of view.
SUCCEEDED = frozenset({State.READY, State.AWAITING_APPROVAL, State.OPENING_PR, State.PR_OPEN, State.MERGED})
