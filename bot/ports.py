"""What the core needs from the outside world, as Protocols; adapters implement them.

Values crossing a port are small frozen dataclasses, never SDK objects. Chat and Forge ports
arrive with the bot service; the engine needs only the LLM's conflict-hunk slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class HunkRequest:
    """Everything the model may see about one conflict hunk. All of it is data, not instructions."""

    path: str
    ours: str  # the target branch's version of the region
    base: str  # the fix's parent
    theirs: str  # the fix
    before: str  # target text just above the region
    after: str  # and just below
    fix_diff: str  # the fix's diff for this file
    commit_message: str


@dataclass(frozen=True)
class HunkAnswer:
    resolution: str | None  # replacement text for the region, or None when the model declines
    explanation: str
    confidence: float


class LLM(Protocol):
    def resolve_hunk(self, request: HunkRequest) -> HunkAnswer: ...
