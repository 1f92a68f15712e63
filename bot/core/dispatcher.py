"""The small dispatcher: messages, reactions and forge events in (through the inbox), each routed
to the feature that owns it, and every failure answered to whoever asked. It implements the Bot
port that every adapter talks to, and knows no adapter."""

from __future__ import annotations

import logging
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
from bot.core.inbox import Inbox
from bot.core.ports import (
    ChecksChanged,
    Delivery,
    Incoming,
    Merged,
    PullRequestClosed,
    Reaction,
    Unavailable,
    Unreachable,
)
from bot.engine.errors import BackportFailure, BadInput

log = logging.getLogger(__name__)
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
        self.inbox = Inbox(ctx.store, self._dispatch)

    # --- life cycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        for feature in self.features:
            await feature.start()
        replayed = self.inbox.replay()
        if replayed:
            log.info("handling %d deliveries a previous run had not finished", replayed)
        self.inbox.open()

    async def stop(self, grace: float = 0) -> None:
        """Take no more work; running steps get `grace` seconds, then are marked interrupted.
        Deliveries not handled yet stay in the inbox for the next start."""
        await self.inbox.stop()
        for feature in reversed(self.features):
            await feature.stop(grace)

    async def idle(self) -> None:
        await self.inbox.idle()
        for feature in [f for f in self.features if f is not self.progress] + [self.progress]:
            await feature.idle()

    # --- the Bot port ----------------------------------------------------------------------------------

    async def deliver(self, source: str, key: str | None, delivery: Delivery) -> bool:
        return await self.inbox.deliver(source, key, delivery)

    async def post_digest(self, repo: str, channel: str, thread: str | None = None) -> int:
        return await self.digest.post(self.ctx.repos[repo], channel, thread)

    # --- what came in ----------------------------------------------------------------------------------

    async def _dispatch(self, delivery: Delivery) -> None:
        if isinstance(delivery, Incoming):
            await self.handle(delivery)
        elif isinstance(delivery, Reaction):
            await self.react(delivery)
        elif isinstance(delivery, Merged):
            await self.digest.merged(delivery.repo, delivery.number, delivery.title, list(delivery.labels))
        elif isinstance(delivery, PullRequestClosed):
            await self.ci.pr_closed(delivery.repo, delivery.head_branch, delivery.merged, delivery.head_sha)
        elif isinstance(delivery, ChecksChanged):
            await self.ci.checks_changed(delivery.repo, delivery.head_branch)

    async def handle(self, msg: Incoming) -> None:
        try:
            command = grammar.parse(msg.text)
        except grammar.ParseError as e:
            # A near-miss of a command gets "did you mean"; anything else may be a question in words.
            if e.suggestion is not None or await self._answering(msg, self.questions.in_words(msg)) is False:
                await self.answer(msg, str(e))
            return
        if self.ctx.llm is not None and isinstance(command, grammar.Why) and "?" in msg.text:
            # A question in words is answered in words (None: it failed, and that was answered).
            if await self._answering(msg, self.questions.in_words(msg)) is not False:
                return
        await self._answering(msg, self.routes[type(command)].command(command, msg))

    async def react(self, reaction: Reaction) -> None:
        kind = emoji_kind(reaction.emoji)
        if kind is None:
            return  # not a reaction the bot acts on
        where = Incoming(reaction.user, "", reaction.message.channel, reaction.message.thread)
        for feature in self.features:
            handled = await self._answering(where, feature.reaction(kind, reaction))
            if handled is not False:  # True, or None when the feature's refusal was answered
                return

    # --- answers ---------------------------------------------------------------------------------------

    async def _answering(self, msg: Incoming, work: Coroutine[Any, Any, T]) -> T | None:
        """Run a feature's work; whatever goes wrong is answered where it was asked."""
        try:
            return await work
        except BadInput as e:
            text = str(e)
        except BackportFailure as e:
            text = e.reason
        except Unreachable as e:
            await self._privately(msg, str(e))
            return None
        except Unavailable as e:
            text = str(e)
        except Exception as e:
            log.exception("handling %r from %s", msg.text, msg.user)
            text = (f"Something went wrong on my side ({type(e).__name__}); it is a bug, so trying again will "
                    "likely fail the same way. The bot's log has the details.")
        await self.answer(msg, text)
        return None

    async def answer(self, msg: Incoming, text: str) -> None:
        """Answer the person who asked, where they asked; privately when that place is closed to the bot."""
        try:
            await self.ctx.chat.post(msg.channel, text, msg.thread)
        except Unreachable as e:
            await self._privately(msg, f"{e} {text}")
        except Exception:
            log.exception("could not answer %s in %s", msg.user, msg.channel)
            await self._privately(msg, text)

    async def _privately(self, msg: Incoming, text: str) -> None:
        try:
            await self.ctx.chat.notify(msg.channel, msg.user, text, msg.thread, reply=msg.reply)
        except Exception:
            log.exception("could not reach %s at all", msg.user)
