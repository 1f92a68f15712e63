"""The candidate digest: fixes merged on the main branch that release branches lack, posted on a
schedule or on `/backport digest`, one thread reply per candidate to react on (✅ backport, ❌
dismiss for good, 🔁 check again); the security fast path; `/backport landed <branch>`."""

from __future__ import annotations

import asyncio

from bot.core import grammar, reports
from bot.core.context import CHAT_LIMIT, Context
from bot.core.features import Feature
from bot.core.features.backports import Backports
from bot.core.features.batches import Batches
from bot.core.people import mention
from bot.core.ports import CandidateRecord, Incoming, MessageRef, Reaction
from bot.core.repos import Repo
from bot.engine import candidates as candidates_mod
from bot.engine.source import raw_message

FIRST_WINDOW_DAYS = 7  # the first digest of a repository looks back to 00:00 this many days ago


class Digest(Feature):
    commands = (grammar.Digest, grammar.Landed)

    def __init__(self, ctx: Context, backports: Backports, batches: Batches) -> None:
        self.ctx, self.backports, self.batches = ctx, backports, batches

    async def command(self, command: grammar.Command, msg: Incoming) -> None:
        repo = self.ctx.repo_for(msg.channel)
        if isinstance(command, grammar.Digest):
            self.ctx.require_maintainer(msg, "post a digest")
            # Only the digest channel's digests move the window; one asked elsewhere is a preview.
            await self.post(repo, msg.channel, msg.thread, record=msg.channel == self.ctx.settings.alert_channel)
        else:
            assert isinstance(command, grammar.Landed)
            text = await asyncio.to_thread(self._landed, repo, repo.branch(command.branch)[0])
            await self.ctx.chat.post(msg.channel, text, msg.thread)

    async def post(self, repo: Repo, channel: str, thread: str | None = None, record: bool = True) -> int:
        """Post the digest: a first message, then one reply per candidate to react on. `record`:
        the next digest starts where this one ended."""
        last = self.ctx.store.last_digest(repo.key)
        await asyncio.to_thread(repo.workspace.fetch)
        git, tz = repo.workspace.git, self.ctx.settings.timezone
        since = last.head if last and git.rev(f"{last.head}^{{commit}}") else \
            candidates_mod.days_back(FIRST_WINDOW_DAYS, tz)
        window = candidates_mod.window(git, repo.main_ref, since, tz)
        found = await asyncio.to_thread(repo.candidates, since, self.ctx.store.dismissed(repo.key),
                                        self._evidence(repo), tz)
        if self.ctx.llm is not None:  # the model only re-ranks; the rules decided what is a candidate
            found = await asyncio.to_thread(self._rank_with_llm, repo, found)
        missing = await asyncio.to_thread(lambda: sum(len(self._missing(repo, b)) for b in repo.release_branches()))
        head = window.head
        header = reports.digest_header(found, repo.key, missing, window.describe(git, tz))
        root = None
        for part in reports.split(header, CHAT_LIMIT):
            posted = await self.ctx.chat.post(channel, part, thread)
            root = root or posted
        assert root is not None
        replies_in = thread or root.id
        for cand in found:
            note = await self.ctx.chat.post(channel, cand.line()[:CHAT_LIMIT], replies_in)
            self.ctx.store.add_candidate(CandidateRecord(note.id, repo.key, cand.key, cand.commit, cand.suggested,
                                                         cand.security, channel, replies_in))
        if record:
            self.ctx.store.add_digest(repo.key, head, channel, root.id, len(found))
        return len(found)

    def _evidence(self, repo: Repo) -> candidates_mod.Evidence:
        """What the forge says of the window's pull requests (labels, body, linked issues)."""
        return lambda numbers: self.ctx.forge.pull_info(repo, numbers)

    def _rank_with_llm(self, repo: Repo, found: list[candidates_mod.Candidate]) -> list[candidates_mod.Candidate]:
        """The model explains each candidate and may move the ones it finds security-relevant up
        within their category; it never adds or drops one."""
        assert self.ctx.llm is not None
        flagged: set[str] = set()
        for cand in found:
            message = raw_message(repo.workspace.git, cand.commit)
            verdict = self.ctx.llm.classify(cand.title, message)
            cand.reasons.append(f"LLM: {verdict.reason}")
            if verdict.is_security:
                flagged.add(cand.key)
        severity = list(candidates_mod.CATEGORIES)
        return sorted(found, key=lambda c: (severity.index(c.category), c.key not in flagged, c.risk))

    async def merged(self, repo_key: str, number: int, title: str, labels: list[str]) -> None:
        """The security fast path: a merged security fix is proposed at once, not at the next digest."""
        channel = self.ctx.settings.alert_channel
        repo = self.ctx.repos.get(repo_key)
        if channel is None or repo is None:
            return
        if "security" not in {n.lower() for n in labels} and not candidates_mod.SECURITY.search(title):
            return
        git = repo.workspace.git
        await asyncio.to_thread(repo.workspace.fetch)
        source = await asyncio.to_thread(self.ctx.resolve, repo, f"#{number}")
        commit = source.commits[-1].sha
        found = await asyncio.to_thread(repo.candidates, f"{commit}~1" if git.rev(f"{commit}~1") else None, None,
                                        self._evidence(repo))
        cand = next((c for c in found if c.commit == commit), None)
        if cand is None:
            return
        note = await self.ctx.chat.post(channel, "🔒 A security fix was just merged: " + cand.line().removeprefix(
            "🔒 security: ")
                                        + ". React ✅ to backport it, ❌ to dismiss it.")
        self.ctx.store.add_candidate(CandidateRecord(note.id, repo.key, cand.key, cand.commit, cand.suggested, True,
                                                     channel, None))

    async def reaction(self, kind: str, reaction: Reaction) -> bool:
        cand = self.ctx.store.candidate(reaction.message.id)
        if cand is None:
            return False
        if not self.ctx.is_maintainer(reaction.user, reaction.maintainer):
            await self.ctx.chat.notify(cand.channel, reaction.user, self.ctx.only_maintainers_note(), cand.thread)
            return True
        repo = self.ctx.repos[cand.repo]
        if kind == "approve" and self.ctx.settings.batching and not cand.security:
            await self.batches.add(repo, cand, reaction.user)
        elif kind == "approve":
            await self.backports.request(grammar.Backport(cand.key, tuple(cand.branches)),
                                         Incoming(reaction.user, "", cand.channel, cand.thread, maintainer=True))
        elif kind == "reject":
            self.ctx.store.dismiss(repo.key, cand.key, reaction.user)
            await self.ctx.chat.post(cand.channel, f"{cand.key} dismissed by {mention(reaction.user)}; it will not be "
                                                   "proposed again.", cand.thread)
        else:
            found = await asyncio.to_thread(repo.candidates, f"{cand.commit}~1", None, self._evidence(repo))
            fresh = next((c for c in found if c.commit == cand.commit), None)
            text = fresh.line() if fresh else f"{cand.key}: every release branch has it now."
            await self.ctx.chat.update(MessageRef(cand.channel, reaction.message.id, cand.thread), text)
            if fresh:
                self.ctx.store.add_candidate(CandidateRecord(reaction.message.id, repo.key, fresh.key, cand.commit,
                                                             fresh.suggested, fresh.security, cand.channel,
                                                             cand.thread))
        return True

    def _missing(self, repo: Repo, branch: str) -> list[tuple[str, str]]:
        requested = {a.source: reports.state_words(a.state) for a in self.ctx.store.attempts(repo.key, branch=branch)}
        return candidates_mod.not_landed(repo.workspace.git, repo.main_ref, branch, repo.branch(branch)[1], requested)

    def _landed(self, repo: Repo, branch: str) -> str:
        missing = self._missing(repo, branch)
        if not missing:
            return f"Every fix requested or labelled for {branch} is on {branch}."
        lines = [f"Not on {branch} yet ({len(missing)}):"]
        lines += [f"  {what} — {how}" for what, how in missing]
        return "\n".join(lines)
