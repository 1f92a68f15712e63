"""Every port of the core in one file: what the core needs from the outside world (Chat, Forge,
LLM, Store) and what the outside world may call on the core (Bot), with the plain values that
cross them. Adapters implement these; values are small frozen dataclasses, never SDK objects.
The attempt's own record (Attempt, Event) and the part of the Store the workflow uses
(AttemptStore) are in bot/core/workflow.py, with the states they speak of.

Chat calls are async (adapters talk to networks); Forge, LLM and Store calls are blocking and
run in worker threads, like git.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.lease import LeaseStore
from bot.core.workflow import Attempt, AttemptStore, Event
from bot.engine.candidates import PullInfo
from bot.engine.ports import HunkRecord, HunkResolver, Usage
from bot.engine.source import Source

if TYPE_CHECKING:
    from bot.core.repos import Repo


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
    # The adapter's own way to answer this person when the channel is not reachable (a Slack
    # response_url, a Discord interaction); opaque to the core, kept only until it is answered.
    reply: str | None = None
    inbox: int | None = None  # the inbox entry it came in (set by the inbox)


@dataclass(frozen=True)
class Reaction:
    user: str
    emoji: str  # as the chat names it: "✅", "white_check_mark", ...
    message: MessageRef
    maintainer: bool | None = None  # as Incoming.maintainer


@dataclass(frozen=True)
class Merged:
    """A pull request was merged on the forge (a security fix is proposed at once)."""

    repo: str
    number: int
    title: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class PullRequestClosed:
    """A backport pull request was merged or closed on the forge."""

    repo: str
    head_branch: str
    merged: bool
    head_sha: str = ""  # the PR's head when it closed: the bot's result commit unless people pushed to it


@dataclass(frozen=True)
class ChecksChanged:
    """The forge's CI checks changed on a branch."""

    repo: str
    head_branch: str


# Everything an adapter may hand to the bot; each is stored in the inbox before it is acknowledged.
Delivery = Incoming | Reaction | Merged | PullRequestClosed | ChecksChanged


class Unavailable(Exception):
    """An outside service failed while handling a request. Adapters raise it with words for the
    person who asked: what failed and whether trying again later can help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry

    def __str__(self) -> str:
        advice = "Trying again later may work." if self.retry else "Trying again will not help until this is fixed."
        return f"{self.args[0]} {advice}"


class Unreachable(Unavailable):
    """The bot cannot post where it was asked (not invited, no permission, archived)."""

    def __str__(self) -> str:
        return str(self.args[0])


APPROVAL_BUTTONS = ("approve", "reject", "retry")


class Chat(Protocol):
    """Texts are plain words from the core, with titles, commits and people's words in them: each
    chat shows them as text, never as its markup. The people the core names are
    `bot.core.people.mention(user)` marks, which each chat renders its way (a mention, a name)."""

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        """`buttons` (from APPROVAL_BUTTONS) are offered where the chat has them."""
        ...

    async def update(self, message: MessageRef, text: str) -> None: ...

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        """A note for one person only where the chat can (ephemeral), else a normal reply.
        `reply` (Incoming.reply) is tried first; when the channel is unreachable, a direct message."""
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

    def pull_info(self, repo: Repo, numbers: list[int]) -> dict[int, PullInfo]:
        """What the forge says of merged pull requests (labels, body, the issues they close and
        their labels), for the digest's classification; those it cannot read are left out."""
        ...

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
    inbox: int | None = None  # the inbox entry that asked for it (chat and forge requests)
    with_deps: bool = False  # pick the prerequisites a conflict names first (when each is a fix)


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


class AlreadyOpen(Exception):
    """The store holds an open attempt for this fix and branch already: join it."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(f"attempt {attempt.id} is open")
        self.attempt = attempt


class Store(AttemptStore, LeaseStore, Protocol):
    """Everything the core keeps; what the workflow needs of it is AttemptStore."""

    # the inbox: what adapters received, stored before they acknowledge it
    def accept(self, source: str, key: str | None, kind: str, payload: dict[str, Any],
               reply: str | None) -> int | None:
        """Store a delivery; None when `key` from `source` was stored before (a redelivery)."""
        ...

    def pending(self) -> list[tuple[int, str, str, dict[str, Any], str | None]]:
        """Entries not handled yet, oldest first: (id, source, kind, payload, reply)."""
        ...

    def handled(self, entry_id: int) -> None:
        """The entry got its answer; its reply handle is dropped."""
        ...

    # requests and attempts
    def add_request(self, repo: str, source: str, branches: list[str], requested_by: str, origin: str,
                    channel: str | None = None, thread: str | None = None, inbox: int | None = None,
                    with_deps: bool = False) -> int: ...

    def request_of(self, inbox: int) -> Request | None:
        """The request an inbox entry created, if it got that far."""
        ...

    def set_thread(self, request_id: int, thread: str) -> None: ...

    def forget(self, request_id: int, attempts: list[int] | None = None) -> None:
        """Delete attempts that never started (default: all of the request's), and the request
        when none is left: the fix was not found, the chat refused, another attempt was open."""
        ...

    def rekey(self, attempt_id: int, source: str) -> None:
        """Name the fix by its canonical key; AlreadyOpen when that fix has an open attempt there."""
        ...

    def request(self, request_id: int) -> Request: ...

    def set_summary(self, request_id: int, summary: str) -> None: ...

    def add_attempt(self, request_id: int, repo: str, source: str, branch: str) -> int:
        """AlreadyOpen when an open attempt exists for this fix and branch (the database refuses a second)."""
        ...

    def set_message(self, attempt_id: int, *, message: str | None = None,
                    approval_message: str | None = None) -> None:
        """Where the attempt's progress (or approval) message is, in the request's thread."""
        ...

    def attempts(self, repo: str, source: str | None = None, branch: str | None = None) -> list[Attempt]: ...

    def llm_tokens_since(self, repo: str, since: float) -> int:
        """Model tokens spent by the repository's attempts created at or after `since`."""
        ...

    def latest(self, repo: str, source: str, branch: str) -> Attempt | None:
        """The newest attempt for a fix named by its key or by one of its commits."""
        ...

    def on_branch(self, repo: str, result_branch: str) -> list[Attempt]:
        """Attempts that wrote `result_branch`."""
        ...

    def by_message(self, message_id: str) -> Attempt | None: ...

    def all_attempts(self) -> list[Attempt]: ...

    def events(self, attempt_id: int) -> list[Event]: ...

    def hunks(self, attempt_id: int) -> list[HunkRecord]: ...

    def all_hunks(self) -> list[HunkRecord]: ...

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

    async def deliver(self, source: str, key: str | None, delivery: Delivery) -> bool:
        """Store what `source` received (its id `key` makes a redelivery a no-op), then handle it
        in the background. Adapters acknowledge only after this returns. False: a redelivery."""
        ...

    async def post_digest(self, repo: str, channel: str, thread: str | None = None) -> int: ...

    async def idle(self) -> None:
        """Wait until every delivery is handled, every queued job done, every message up to date."""
        ...
