"""The small dispatcher: messages, reactions and forge events in, each routed to the feature that
owns it. It implements the Bot port that every adapter talks to, and knows no adapter."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from bot.core import grammar
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.features.approvals import Approvals
from bot.core.features.backports import Backports
from bot.core.features.batches import Batches
from bot.core.features.ci import CiFollowUp
from bot.core.features.digest import Digest
from bot.core.features.progress import Progress
from bot.core.features.questions import Questions
from bot.core.ports import Incoming, Reaction
from bot.engine.errors import BackportFailure, BadInput

T = TypeVar("T")

APPROVE = {"✅", "✔️", "☑️", "white_check_mark", "heavy_check_mark", "ballot_box_with_check"}
REJECT = {"❌", "✖️", "x", "heavy_multiplication_x", "negative_squared_cross_mark"}
RETRY = {"🔁", "🔄", "repeat", "arrows_counterclockwise"}


def emoji_kind(emoji: str) -> str | None:
    name = emoji.strip().strip(":")
    if name in APPROVE:
        return "approve"
    if name in REJECT:
        return "reject"
    if name in RETRY:
        return "retry"
    return None


class Dispatcher:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.progress = Progress(ctx)
        self.backports = Backports(ctx, self.progress)
        self.batches = Batches(ctx)
        self.digest = Digest(ctx, self.backports, self.batches)
        self.ci = CiFollowUp(ctx)
        self.questions = Questions(ctx)
        # Progress messages start first (every later move is shown) and settle last; reactions are
        # offered in this order: a digest candidate's message, then a backport's.
        self.features: list[Feature] = [self.progress, self.backports, self.digest, Approvals(ctx, self.backports),
                                        self.batches, self.ci, self.questions]
        self.routes: dict[type, Feature] = {c: f for f in self.features for c in f.commands}

    # --- life cycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        for feature in self.features:
            await feature.start()

    async def stop(self) -> None:
        for feature in reversed(self.features):
            await feature.stop()

    async def idle(self) -> None:
        for feature in [f for f in self.features if f is not self.progress] + [self.progress]:
            await feature.idle()

    # --- the Bot port ----------------------------------------------------------------------------------

    async def handle(self, msg: Incoming) -> None:
        try:
            command = grammar.parse(msg.text)
        except grammar.ParseError as e:
            # A near-miss of a command gets "did you mean"; anything else may be a question in words.
            if e.suggestion is not None or not await self.questions.in_words(msg):
                await self.ctx.chat.post(msg.channel, str(e), msg.thread)
            return
        if self.ctx.llm is not None and isinstance(command, grammar.Why) and "?" in msg.text:
            if await self.questions.in_words(msg):  # a question in words: answered in words
                return
        await self._answering(msg.channel, msg.thread, self.routes[type(command)].command(command, msg))

    async def react(self, reaction: Reaction) -> None:
        kind = emoji_kind(reaction.emoji)
        if kind is None:
            return  # not a reaction the bot acts on
        for feature in self.features:
            handled = await self._answering(reaction.message.channel, reaction.message.thread,
                                            feature.reaction(kind, reaction))
            if handled is not False:  # True, or None when the feature's refusal was answered
                return

    async def merged(self, repo: str, number: int, title: str, labels: list[str]) -> None:
        await self.digest.merged(repo, number, title, labels)

    async def pr_closed(self, repo: str, head_branch: str, merged: bool) -> None:
        await self.ci.pr_closed(repo, head_branch, merged)

    async def checks_changed(self, repo: str, head_branch: str) -> None:
        await self.ci.checks_changed(repo, head_branch)

    async def post_digest(self, repo: str, channel: str, thread: str | None = None) -> int:
        return await self.digest.post(self.ctx.repos[repo], channel, thread)

    async def _answering(self, channel: str, thread: str | None, work: Coroutine[Any, Any, T]) -> T | None:
        """Run a feature's work; a bad request or a failure is answered where it was asked."""
        try:
            return await work
        except BadInput as e:
            await self.ctx.chat.post(channel, str(e), thread)
        except BackportFailure as e:
            await self.ctx.chat.post(channel, e.reason, thread)
        return None
