"""What the engine needs from whoever uses it, as Protocols, and the plain values that cross them.

The engine is a library: it knows no store, no config and no chat. It is given a Plan, reports its
progress to a Recorder, asks a HunkResolver (a model) for the hunks its rules leave, runs build and
test commands through a Sandbox, and returns an Outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# --- conflict hunks and the model ---------------------------------------------------------------


@dataclass(frozen=True)
class HunkRequest:
    """Everything the model may see about one conflict hunk. All of it is data, not instructions."""

    path: str
    ours: str  # the target branch's version of the region
    base: str  # the fix's parent
    theirs: str  # the fix
    before: str  # target text just above the region (kept unchanged in the answer)
    after: str  # and just below
    fix_diff: str  # the fix's diff for this file
    commit_message: str
    # What the engine gathered beside the hunk (bot/engine/context.py), by name, within a token
    # budget, and what that budget cut.
    context: Mapping[str, str] = field(default_factory=dict)
    cut: tuple[str, ...] = ()


@dataclass(frozen=True)
class Region:
    """A resolved region a repair may change: `text` between `before` and `after` in `path` now."""

    path: str
    before: str
    text: str
    after: str
    base: str  # the fix's parent and the fix, for the same check as a hunk answer
    theirs: str


@dataclass(frozen=True)
class RepairRequest:
    """The build or tests failed after a pick the ladder resolved: one try to repair its regions."""

    failure: str  # the failing command and the end of its output
    diff: str  # the backport's diff against the branch, as it stands
    regions: tuple[Region, ...]
    commit_message: str
    context: Mapping[str, str] = field(default_factory=dict)
    cut: tuple[str, ...] = ()


@dataclass(frozen=True)
class Usage:
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.calls + other.calls, self.tokens + other.tokens, round(self.seconds + other.seconds, 3))


@dataclass(frozen=True)
class HunkAnswer:
    """`window` replaces before + region + after; None when the model declines or failed."""

    window: str | None
    explanation: str
    confidence: float
    omitted: tuple[str, ...] = ()  # lines of the fix deliberately left out (the explanation says why)
    usage: Usage = Usage()
    timed_out: bool = False  # no answer within the time allowed (the explanation says so)


@dataclass(frozen=True)
class RepairAnswer:
    """`windows[i]` replaces before + text + after of region i; regions not named stay as they are.
    Empty when the model declines or failed."""

    windows: Mapping[int, str]
    explanation: str
    confidence: float
    omitted: tuple[str, ...] = ()
    usage: Usage = Usage()
    timed_out: bool = False


class HunkResolver(Protocol):
    """A model that proposes a resolution for one hunk, or a repair of resolved regions after a
    failed build; the engine checks every answer."""

    def resolve_hunk(self, request: HunkRequest) -> HunkAnswer: ...

    def repair(self, request: RepairRequest) -> RepairAnswer: ...


@dataclass(frozen=True)
class HunkRecord:
    """How one conflict hunk was resolved, as stored with the attempt."""

    path: str
    index: int
    resolved_by: str  # rerere | whitespace | same-change | context-moved | placement | llm | llm-repair | unresolved
    detail: dict[str, Any] = field(default_factory=dict)


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A build or test command run in the backport's work tree."""

    name: str
    run: str
    timeout: int = 1800  # seconds


@dataclass(frozen=True)
class CommandResult:
    name: str
    run: str
    exit_code: int | None  # None when it timed out
    seconds: float
    log: str  # path of the full output
    tail: str
    isolated: bool = True  # False: it ran without a sandbox, able to see the bot

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Sandbox(Protocol):
    """Where a fix's own build and test code runs."""

    # False when the commands run as the bot's children (isolation turned off): code nobody has
    # read yet, the model's or one policy flagged, must then wait for a maintainer's ✅.
    isolated: bool

    def run(self, worktree: Path, commands: Sequence[Command], log_dir: Path,
            started: Callable[[int | None], None] | None = None) -> list[CommandResult]:
        """Run in order; raise VerifyFailed at the first that fails or times out. `started` hears
        the pid leading each command's process group as it starts, and None when it is over."""
        ...


# --- progress -----------------------------------------------------------------------------------


class Recorder(Protocol):
    """Told of each step of one attempt as it happens, so that a crash or a question finds the
    attempt where it really is. Each call is one move of the attempt's workflow."""

    def started(self, detail: dict[str, Any]) -> None: ...

    def conflicted(self, detail: dict[str, Any]) -> None: ...

    def resolving(self, detail: dict[str, Any]) -> None: ...

    def verifying(self, detail: dict[str, Any]) -> None: ...

    def note(self, detail: dict[str, Any]) -> None:
        """A fact worth keeping that changes no state."""
        ...

    def worktree(self, path: Path | None) -> None:
        """The work tree in use (None: removed), so that recovery can clean up after a crash."""
        ...

    def process(self, pid: int | None) -> None:
        """The process group a verify command runs in (None: it ended), for the same reason."""
        ...


class Silent:
    """A Recorder for callers that only want the Outcome (the evaluation harness)."""

    def started(self, detail: dict[str, Any]) -> None: ...

    def conflicted(self, detail: dict[str, Any]) -> None: ...

    def resolving(self, detail: dict[str, Any]) -> None: ...

    def verifying(self, detail: dict[str, Any]) -> None: ...

    def note(self, detail: dict[str, Any]) -> None: ...

    def worktree(self, path: Path | None) -> None: ...

    def process(self, pid: int | None) -> None: ...
