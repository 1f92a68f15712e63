"""Approval by reaction (or button) on a backport's progress or approval message: ✅ publishes a
backport that waits for a maintainer, ❌ cancels it, 🔁 retries it. Only maintainers count."""

from __future__ import annotations

from bot.core import reports
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.features.backports import Backports
from bot.core.ports import Reaction
from bot.core.workflow import State


class Approvals(Feature):
    def __init__(self, ctx: Context, backports: Backports) -> None:
        self.ctx, self.backports = ctx, backports

    async def reaction(self, kind: str, reaction: Reaction) -> bool:
        attempt = self.ctx.store.by_message(reaction.message.id)
        if attempt is None:
            return False
        if not self.ctx.is_maintainer(reaction.user, reaction.maintainer):
            request = self.ctx.store.request(attempt.request_id)
            await self.ctx.chat.notify(request.channel or reaction.message.channel, reaction.user,
                                       self.ctx.only_maintainers_note(), request.thread)
            return True
        repo = self.ctx.repos.get(attempt.repo)
        if repo is None:
            return True
        if kind == "approve":
            if attempt.state != State.AWAITING_APPROVAL:
                await self.ctx.reply_in_thread(attempt, f"{attempt.branch}: nothing waits for approval "
                                                        f"(it is {reports.state_words(attempt.state)}).")
                return True
            self.ctx.workflow.approve(attempt.id, reaction.user)
            self.backports.enqueue(attempt.id)
        elif kind == "reject":
            await self.ctx.reply_in_thread(attempt, await self.backports.cancel(repo, attempt.source, attempt.branch,
                                                                                reaction.user))
        else:
            await self.ctx.reply_in_thread(attempt, await self.backports.retry(repo, attempt.source, attempt.branch,
                                                                               reaction.user))
        return True
