"""What the core needs from the outside world, as Protocols; adapters implement them.

Values crossing a port are small frozen dataclasses, never SDK objects. Chat calls are async
(adapters talk to networks); Forge calls are blocking and run in worker threads, like git.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


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


@dataclass(frozen=True)
class Classification:
    is_fix: bool
    is_security: bool
    reason: str
    usage: Usage = Usage()


class LLM(Protocol):
    """A model behind any OpenAI-compatible endpoint. Everything passed in is data."""

    def resolve_hunk(self, request: HunkRequest) -> HunkAnswer: ...

    def answer(self, question: str, facts: str) -> tuple[str, Usage]:
        """Answer from `facts` only (the stored record), citing them."""
        ...

    def classify(self, title: str, message: str) -> Classification: ...


# --- chat ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageRef:
    """A message the bot posted, as the chat identifies it."""

    channel: str
    id: str
    thread: str | None = None  # the id of the thread's first message; None at top level


@dataclass(frozen=True)
class Incoming:
    """Something a person typed to the bot."""

    user: str
    text: str
    channel: str
    thread: str | None = None
    # Set by an adapter that checked the user's rights itself (e.g. write access on GitHub);
    # None: the configured maintainers list decides.
    maintainer: bool | None = None


@dataclass(frozen=True)
class Reaction:
    user: str
    emoji: str  # as the chat names it: "✅", "white_check_mark", ...
    message: MessageRef
    maintainer: bool | None = None  # as Incoming.maintainer (e.g. decided by a Discord role)


APPROVAL_BUTTONS = ("approve", "reject", "retry")


class Chat(Protocol):
    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        """`buttons` (from APPROVAL_BUTTONS) are offered where the chat has them."""
        ...

    async def update(self, message: MessageRef, text: str) -> None: ...

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None) -> None:
        """A note for one person only where the chat can (ephemeral), else a normal reply."""
        ...


# --- forge --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestDraft:
    title: str
    body: str
    head: str  # branch holding the backport
    base: str  # the release branch (git name)
    labels: tuple[str, ...]
    source: str  # "#1234" or a SHA
    reviewers: tuple[str, ...] = ()
    draft: bool = False


@dataclass(frozen=True)
class PullRequest:
    number: int
    url: str
    title: str
    head: str
    base: str
    state: str  # open | merged | closed
    labels: tuple[str, ...]


@dataclass(frozen=True)
class SourceInfo:
    """What the forge knows about a fix beyond git: labels (None: unknown) and author."""

    labels: tuple[str, ...] | None
    author: str | None


@dataclass(frozen=True)
class Checks:
    """The CI checks on a pull request's head commit."""

    pending: tuple[str, ...]
    passed: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]  # (name, link)


class Forge(Protocol):
    """`repo` is a bot.repos.Repo: the forge pushes from its workspace."""

    def resolve(self, repo: Any, key: str) -> Any | None:
        """The bot.engine.source.Source for `#N` as the forge knows it; None: find it in git."""
        ...

    def comment_on_source(self, repo: Any, source_key: str, body: str) -> None: ...

    def checks(self, repo: Any, number: int) -> Checks: ...

    def mark_ready(self, repo: Any, number: int) -> None: ...

    def source_info(self, repo: Any, source: Any) -> SourceInfo: ...

    def find_open(self, repo: Any, head: str) -> PullRequest | None: ...

    def open_pull_request(self, repo: Any, draft: PullRequestDraft) -> PullRequest: ...
