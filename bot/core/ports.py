"""Every port of the core in one file: what the core needs from the outside world (Chat, Forge,
LLM, Store) and what the outside world may call on the core (Bot), with the plain values that
cross them. Adapters implement these; values are small frozen dataclasses, never SDK objects.

Chat calls are async (adapters talk to networks); Forge, LLM and Store calls are blocking and
run in worker threads, like git.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.engine.ports import HunkRecord, HunkResolver, Usage
from bot.engine.source import Source

if TYPE_CHECKING:
    from bot.core.repos import Repo
    from bot.core.workflow import Op, State


# --- the model ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classification:
    is_fix: bool
    is_security: bool
    reason: str
    usage: Usage = Usage()


class LLM(HunkResolver, Protocol):
    """A model behind any OpenAI-compatible endpoint. Everything passed in is data."""

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
    # Set by an adapter that checked the user's rights itself (write access on GitHub, a Discord
    # role, a Slack user group); None: the configured maintainers list decides.
    maintainer: bool | None = None


@dataclass(frozen=True)
class Reaction:
    user: str
    emoji: str  # as the chat names it: "✅", "white_check_mark", ...
    message: MessageRef
    maintainer: bool | None = None  # as Incoming.maintainer


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
    def resolve(self, repo: Repo, key: str) -> Source | None:
        """The fix `#N` as the forge knows it; None: find it in git."""
        ...

    def comment_on_source(self, repo: Repo, source_key: str, body: str) -> None: ...

    def checks(self, repo: Repo, number: int) -> Checks: ...

    def mark_ready(self, repo: Repo, number: int) -> None: ...

    def source_info(self, repo: Repo, source: Source) -> SourceInfo: ...

    def find_open(self, repo: Repo, head: str) -> PullRequest | None: ...

    def open_pull_request(self, repo: Repo, draft: PullRequestDraft) -> PullRequest: ...


# --- stored rows --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """Someone asked for backports of one fix; its attempts (one per branch) answer in `thread`."""

    id: int
    repo: str
    source: str
    branches: list[str]
    requested_by: str
    origin: str  # chat | cli | batch | eval
    channel: str | None
    thread: str | None
    summary: str | None
    created_at: float


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
    owner: str | None  # the process working on it right now
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
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Event:
    attempt_id: int
    at: float
    op: Op
    state: State  # the state after the event
    detail: dict[str, Any]


@dataclass(frozen=True)
class DigestRecord:
    id: int
    repo: str
    at: float
    head: str  # the main branch's head when it was posted: the next digest starts there
    channel: str
    message: str
    candidates: int


@dataclass(frozen=True)
class CandidateRecord:
    """A digest candidate as posted: reactions on `message` act on it."""

    message: str
    repo: str
    key: str
    commit: str
    branches: list[str]
    security: bool
    channel: str
    thread: str | None


@dataclass(frozen=True)
class BatchItem:
    id: int
    repo: str
    branch: str
    key: str
    state: str  # pending | applied | skipped | dropped
    reason: str | None
    added_by: str


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


class Store(Protocol):
    """Everything the core keeps. Only `move` changes an attempt's state, and it refuses a move
    the workflow's table does not allow (IllegalMove)."""

    # requests and attempts
    def add_request(self, repo: str, source: str, branches: list[str], requested_by: str, origin: str,
                    channel: str | None = None, thread: str | None = None) -> int: ...

    def request(self, request_id: int) -> Request: ...

    def set_summary(self, request_id: int, summary: str) -> None: ...

    def add_attempt(self, request_id: int, repo: str, source: str, branch: str) -> int: ...

    def move(self, attempt_id: int, move: Move) -> Attempt: ...

    def note(self, attempt_id: int, op: Op, detail: dict[str, Any], **columns: Any) -> None:
        """An event that changes no state; `columns` are facts written with it."""
        ...

    def set_message(self, attempt_id: int, *, message: str | None = None,
                    approval_message: str | None = None) -> None:
        """Where the attempt's progress (or approval) message is, in the request's thread."""
        ...

    def attempt(self, attempt_id: int) -> Attempt: ...

    def attempts(self, repo: str, source: str | None = None, branch: str | None = None) -> list[Attempt]: ...

    def latest(self, repo: str, source: str, branch: str) -> Attempt | None: ...

    def in_state(self, *states: State) -> list[Attempt]: ...

    def by_message(self, message_id: str) -> Attempt | None: ...

    def all_attempts(self) -> list[Attempt]: ...

    def events(self, attempt_id: int) -> list[Event]: ...

    def record_hunks(self, attempt_id: int, hunks: list[HunkRecord]) -> None: ...

    def hunks(self, attempt_id: int) -> list[HunkRecord]: ...

    def all_hunks(self) -> list[HunkRecord]: ...

    def orphaned(self) -> list[Attempt]:
        """Attempts some process was working on and that process is gone (killed, crashed)."""
        ...

    # the digest
    def last_digest(self, repo: str) -> DigestRecord | None: ...

    def add_digest(self, repo: str, head: str, channel: str, message: str, candidates: int) -> None: ...

    def add_candidate(self, candidate: CandidateRecord) -> None: ...

    def candidate(self, message: str) -> CandidateRecord | None: ...

    def dismiss(self, repo: str, key: str, by: str) -> None: ...

    def dismissed(self, repo: str) -> set[str]: ...

    # batches
    def add_to_batch(self, repo: str, branch: str, key: str, by: str) -> bool: ...

    def batch(self, repo: str, branch: str | None = None, state: str = "pending") -> list[BatchItem]: ...

    def set_batch_item(self, item_id: int, state: str, reason: str | None = None) -> None: ...


# --- what adapters may call on the core ---------------------------------------------------------


class Bot(Protocol):
    """The core as chat, forge and schedule adapters see it: things that happened, in."""

    async def handle(self, msg: Incoming) -> None:
        """A message someone typed (a command or a question)."""
        ...

    async def react(self, reaction: Reaction) -> None: ...

    async def merged(self, repo: str, number: int, title: str, labels: list[str]) -> None:
        """A pull request was merged on the forge (a security fix is proposed at once)."""
        ...

    async def pr_closed(self, repo: str, head_branch: str, merged: bool) -> None:
        """A backport pull request was merged or closed on the forge."""
        ...

    async def checks_changed(self, repo: str, head_branch: str) -> None:
        """The forge's CI checks changed on a branch."""
        ...

    async def post_digest(self, repo: str, channel: str, thread: str | None = None) -> int: ...

    async def idle(self) -> None:
        """Wait until every queued job is done and every message is up to date."""
        ...
