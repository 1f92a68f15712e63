"""Batches (a weekly sweep): candidates approved from the digest wait per release branch;
`/backport batch 8.1` picks them onto one branch and opens one PR (an item that fails is skipped
and reported, never blocking the others); `/backport batch drop 1234 8.1` takes one out."""

from __future__ import annotations

import asyncio
import time

from bot.core import grammar, reports
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.features.backports import discard, run_attempt
from bot.core.people import mention
from bot.core.ports import AlreadyOpen, BatchItem, CandidateRecord, Incoming, PullRequestDraft
from bot.core.repos import Repo
from bot.core.workflow import Attempt, State
from bot.engine.errors import BackportFailure


class Batches(Feature):
    commands = (grammar.Batch,)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def add(self, repo: Repo, cand: CandidateRecord, user: str) -> None:
        added = [b for b in cand.branches if self.ctx.store.add_to_batch(repo.key, b, cand.key, user)]
        where = ", ".join(added) or "nothing new"
        await self.ctx.chat.post(cand.channel, f"{cand.key} joins the next batch for {where} "
                                               f"(approved by {mention(user)}).", cand.thread)

    async def command(self, command: grammar.Command, msg: Incoming) -> None:
        assert isinstance(command, grammar.Batch)
        repo = self.ctx.repo_for(msg.channel)
        say = self.ctx.chat.post
        if command.branch is None:
            pending = self.ctx.store.batch(repo.key)
            lines = [f"  {i.branch}: {i.key} (added by {i.added_by})" for i in pending]
            await say(msg.channel, "Pending batch items:\n" + "\n".join(lines) if lines
                      else "No batch items are pending.", msg.thread)
            return
        self.ctx.require_maintainer(msg, "change batches")
        branch = repo.branch(command.branch)[0]
        if command.drop is not None:
            key = await asyncio.to_thread(repo.source_key, command.drop)
            items = [i for i in self.ctx.store.batch(repo.key, branch) if i.key == key]
            for item in items:
                self.ctx.store.set_batch_item(item.id, "dropped", f"dropped by {msg.user}")
            await say(msg.channel, f"{key} is out of the {branch} batch." if items
                      else f"{key} is not in the pending {branch} batch.", msg.thread)
            return
        await self.build(repo, branch, msg.channel, msg.thread, msg.user)

    async def build(self, repo: Repo, branch: str, channel: str, thread: str | None, user: str) -> None:
        """Pick every pending item onto one branch, in order, then one PR with Applied / Needs
        attention / Skipped."""
        items = self.ctx.store.batch(repo.key, branch)
        say = self.ctx.chat.post
        if not items:
            await say(channel, f"No batch items are pending for {branch}.", thread)
            return
        root = await say(channel, f"Building the {branch} batch: {len(items)} items.", thread)
        await asyncio.to_thread(repo.workspace.fetch)
        replies = thread or root.id
        _, ref = repo.branch(branch)
        head = await asyncio.to_thread(repo.workspace.git.out, "rev-parse", ref)
        request = self.ctx.store.add_request(repo.key, "batch", [branch], user, "batch", channel, replies)
        applied: list[tuple[BatchItem, Attempt]] = []
        skipped: list[tuple[BatchItem, str]] = []
        for item in items:
            try:
                attempt_id = self.ctx.store.add_attempt(request, repo.key, item.key, branch)
            except AlreadyOpen as e:
                reason = f"a backport of it to {branch} is already {reports.state_words(e.attempt.state)}"
                skipped.append((item, reason))
                await say(channel, f"❌ {item.key} skipped: {reason}", replies)
                continue
            self.ctx.workflow.queue(attempt_id)
            try:
                source = await asyncio.to_thread(self.ctx.resolve, repo, item.key)
                a = await asyncio.to_thread(run_attempt, self.ctx.engine, self.ctx.workflow, self.ctx.store,
                                            attempt_id, repo, source, branch, head)
            except BackportFailure as f:
                a = self.ctx.workflow.fail(attempt_id, f)
            if a.verify_after_approval:  # unisolated, code nobody read yet never runs: not in a batch
                await asyncio.to_thread(discard, repo, a)
                a = self.ctx.workflow.cancel(a.id, "backportbot", "its build and tests wait for a maintainer's ✅; "
                                                                 "backport it alone")
            if a.state == State.READY and a.result_commit:
                head = a.result_commit
                applied.append((item, a))
                self.ctx.store.set_batch_item(item.id, "applied")
                await asyncio.to_thread(discard, repo, a)  # the batch branch carries it
            else:
                skipped.append((item, a.reason or a.state))
                self.ctx.store.set_batch_item(item.id, "skipped", a.reason)
                await say(channel, f"❌ {item.key} skipped: {a.reason}", replies)
        if not applied:
            await say(channel, f"Nothing in the {branch} batch applied; no PR.", replies)
            return
        batch_branch = f"backport/batch-{branch}-{time.strftime('%Y%m%d-%H%M%S')}"
        await asyncio.to_thread(repo.workspace.update_branch, batch_branch, head)
        draft = PullRequestDraft(
            title=f"[Backport {branch}] Batch of {len(applied)} fixes", body=reports.batch_body(applied, skipped),
            head=batch_branch, base=repo.branches[branch], labels=("backport",), source="batch",
            draft=repo.verify == "ci")
        for _, a in applied:
            self.ctx.workflow.open_pr(a.id)
        try:
            pr = await asyncio.to_thread(self.ctx.forge.open_pull_request, repo, draft)
        except BackportFailure as f:
            for _, a in applied:
                self.ctx.workflow.fail(a.id, f)
            await say(channel, f"❌ the {branch} batch PR could not be opened: {f.reason}", replies)
            return
        for _, a in applied:
            self.ctx.workflow.pr_opened(a.id, pr.number, pr.url, batch=batch_branch)
        await say(channel, f"✅ {branch} batch PR opened: {pr.url} ({len(applied)} applied, "
                           f"{len(skipped)} skipped)", replies)
