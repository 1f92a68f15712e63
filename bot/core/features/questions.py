"""Questions: help, `why` an attempt ended as it did, `status` of a fix across branches, `stats`,
and questions in words ("what did the bot change in the 8.0 backport of 1234?"), answered from
the stored record (by the model when one is configured, citing it; else the template answer)."""

from __future__ import annotations

import asyncio
import logging
import re

from bot.core import grammar, reports
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.ports import Incoming
from bot.engine.errors import BadInput

log = logging.getLogger(__name__)


class Questions(Feature):
    commands = (grammar.Help, grammar.Why, grammar.Status, grammar.Stats)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def command(self, command: grammar.Command, msg: Incoming) -> None:
        say = self.ctx.chat.post
        if isinstance(command, grammar.Help):
            await say(msg.channel, grammar.HELP, msg.thread)
            return
        if isinstance(command, grammar.Stats):
            await say(msg.channel, reports.stats(self.ctx.store), msg.thread)
            return
        repo = self.ctx.repo_for(msg.channel)
        assert isinstance(command, grammar.Why | grammar.Status)
        key = await asyncio.to_thread(repo.source_key, command.ref)
        if isinstance(command, grammar.Why):
            await say(msg.channel, reports.why(self.ctx.store, repo.key, key, repo.branch(command.branch)[0]),
                      msg.thread)
            return
        await asyncio.to_thread(repo.workspace.fetch)
        source = await asyncio.to_thread(self.ctx.resolve, repo, key)
        await say(msg.channel, await asyncio.to_thread(reports.status, self.ctx.store, repo, source), msg.thread)

    async def in_words(self, msg: Incoming) -> bool:
        """Answer a question about one backport; False when it names no fix and branch."""
        try:
            repo = self.ctx.repo_for(msg.channel)
        except BadInput:
            return False
        names = sorted(repo.branches, key=len, reverse=True)
        found = next((m for b in names if (m := re.search(rf"(?<![\w.]){re.escape(b)}(?![\w])", msg.text))), None)
        if found is None:
            return False
        branch = found.group(0)
        # The fix is named outside the branch's name: "8" in "8.0" is no pull request.
        rest = msg.text[:found.start()] + " " + msg.text[found.end():]
        ref = re.search(r"(?<![\w/.])#?(\d{1,6})(?![\w.])|\b([0-9a-f]{7,40})\b", rest)
        if ref is None:
            return False
        key = await asyncio.to_thread(repo.source_key, ref.group(1) or ref.group(2))
        display = repo.branch(branch)[0]
        facts = reports.why(self.ctx.store, repo.key, key, display)
        attempt = self.ctx.store.latest(repo.key, key, display)
        if self.ctx.llm is None or attempt is None:
            await self.ctx.chat.post(msg.channel, facts, msg.thread)
            return True
        facts += "\n" + "\n".join(f"Hunk {h.path}:{h.detail.get('line', '?')} resolved by {h.resolved_by}: "
                                   f"{h.detail.get('resolution', '')[:800]}" for h in self.ctx.store.hunks(attempt.id))
        try:
            text, usage = await asyncio.to_thread(self.ctx.llm.answer, msg.text, facts)
        except Exception:
            log.exception("the LLM could not answer")
            text = ""
        if not text:
            await self.ctx.chat.post(msg.channel, facts, msg.thread)
            return True
        used = dict(attempt.llm_usage)
        self.ctx.workflow.add_llm_usage(attempt.id, {"calls": usage.calls + used.get("calls", 0),
                                                     "tokens": usage.tokens + used.get("tokens", 0),
                                                     "seconds": usage.seconds + used.get("seconds", 0)})
        await self.ctx.chat.post(msg.channel, f"{text}\n_(answered by the LLM from the stored record of attempt "
                                              f"{attempt.id})_", msg.thread)
        return True
