"""What every feature is given: the ports, the workflow, the repositories and the settings, with
the few helpers they all need (which repository a channel is about, who may do what, where an
attempt's thread is, the fix as the forge knows it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bot.core.ports import LLM, Chat, Forge, Incoming, MessageRef, Store
from bot.core.repos import Repo
from bot.core.workflow import Attempt, Workflow
from bot.engine.backport import Engine
from bot.engine.errors import BadInput
from bot.engine.source import Source, resolve

CHAT_LIMIT = 3000  # characters per message, under every chat's limit


@dataclass(frozen=True)
class Settings:
    """Plain values from the configuration that features act on."""

    maintainers: frozenset[str]
    workers: int = 2
    ci_poll_seconds: float = 60
    alert_channel: str | None = None  # where security fixes are proposed at once
    batching: bool = False  # ✅ on a non-security candidate adds it to its branches' batch
    timezone: str = "UTC"  # the digest's: `--since DATE` and a first digest's window start at 00:00 there


@dataclass
class Context:
    repos: dict[str, Repo]
    store: Store
    workflow: Workflow
    engine: Engine
    chat: Chat
    forge: Forge
    settings: Settings
    llm: LLM | None = None

    def repo_for(self, channel: str) -> Repo:
        if len(self.repos) == 1 and not channel.startswith("github:"):
            return next(iter(self.repos.values()))
        for repo in self.repos.values():
            if channel == repo.key or channel in repo.channels or (
                    repo.github and channel.startswith(f"github:{repo.github}#")):
                return repo
        raise BadInput(f"this channel is not linked to a repository; configured: {', '.join(self.repos)}")

    def is_maintainer(self, user: str, decided: bool | None) -> bool:
        """`decided`: what the adapter found out itself (a role, write access); None: the list decides."""
        return decided if decided is not None else user in self.settings.maintainers

    def require_maintainer(self, msg: Incoming, what: str) -> None:
        if not self.is_maintainer(msg.user, msg.maintainer):
            who = (", ".join(sorted(self.settings.maintainers)) if msg.maintainer is None
                   else "people with write access")
            raise BadInput(f"Sorry {msg.user}, only maintainers can {what} ({who}).")

    def only_maintainers_note(self) -> str:
        return f"only maintainers' reactions count ({', '.join(sorted(self.settings.maintainers))}); yours was ignored."

    def resolve(self, repo: Repo, key: str) -> Source:
        """The fix as the forge knows it. No fetch here: callers fetch once per request."""
        source = self.forge.resolve(repo, key) or resolve(repo.workspace.git, key, repo.main_ref)
        info = self.forge.source_info(repo, source)
        return dataclasses.replace(source, labels=info.labels, author=info.author)

    async def reply_in_thread(self, a: Attempt, text: str, buttons: tuple[str, ...] = ()) -> MessageRef | None:
        request = self.store.request(a.request_id)
        if request.channel is None:
            return None  # a request from the command line: no chat thread to answer in
        return await self.chat.post(request.channel, text, request.thread, buttons)
