"""Backport requests: `/backport 1234 to 8.1`, retry and cancel. Work is queued in the store (so
it survives a restart) and run by a few asyncio workers; git work runs in threads. A finished pick
waits for a maintainer's approval when policy asks for one, then becomes a pull request."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from bot.core import grammar, reports
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.features.progress import Progress
from bot.core.ports import APPROVAL_BUTTONS, Incoming
from bot.core.repos import Repo
from bot.core.workflow import FINISHED, OPEN, WORKING, Attempt, AttemptRecorder, IllegalMove, State, Workflow
from bot.engine.backport import Engine, Plan
from bot.engine.errors import BackportFailure, Internal
from bot.engine.ports import Command
from bot.engine.source import Source

log = logging.getLogger(__name__)


def run_attempt(engine: Engine, workflow: Workflow, attempt_id: int, repo: Repo, source: Source, branch: str,
                target_ref: str | None = None, commands: tuple[Command, ...] | None = None) -> Attempt:
    """One queued attempt through the engine, every step recorded; blocking (run it in a thread)."""
    display, ref = repo.branch(branch)
    plan = Plan(repo.workspace, source, display, target_ref or ref, repo.main_ref,
                repo.local_commands if commands is None else commands, repo.fix_labels, label=f"attempt-{attempt_id}")
    outcome = engine.run(plan, AttemptRecorder(workflow, attempt_id))
    return workflow.finish(attempt_id, outcome)


def discard(repo: Repo, a: Attempt) -> None:
    """Delete a result branch nobody will use (cancelled): nothing is left half-done."""
    if a.result_branch and a.result_commit:
        repo.workspace.git.run("update-ref", "-d", f"refs/heads/{a.result_branch}", a.result_commit, check=False)


class Backports(Feature):
    commands = (grammar.Backport, grammar.Retry, grammar.Cancel)

    def __init__(self, ctx: Context, progress: Progress) -> None:
        self.ctx, self.progress = ctx, progress
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    # --- life cycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from a previous run, resume queued work, start the workers."""
        for repo in self.ctx.repos.values():
            try:
                await asyncio.to_thread(repo.workspace.fetch)
            except Exception:  # a remote that is down must not keep the bot from starting
                log.exception("could not fetch %s", repo.key)
        for a in await asyncio.to_thread(self.ctx.workflow.recover):
            await self.ctx.reply_in_thread(a, f"⚠️ The backport to {a.branch} was interrupted ({a.reason}). React 🔁 "
                                              f"on its message or type `/backport retry {a.source} {a.branch}`.")
        for a in self.ctx.store.in_state(State.REQUESTED, State.QUEUED, State.READY):
            if a.repo in self.ctx.repos:
                if a.state == State.REQUESTED:  # stopped between recording and queueing it
                    self.ctx.workflow.queue(a.id)
                self.queue.put_nowait(a.id)
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.ctx.settings.workers)]

    async def stop(self) -> None:
        for t in self._workers:
            t.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def idle(self) -> None:
        await self.queue.join()

    def enqueue(self, attempt_id: int) -> None:
        self.queue.put_nowait(attempt_id)

    # --- commands ------------------------------------------------------------------------------------

    async def command(self, command: grammar.Command, msg: Incoming) -> None:
        repo = self.ctx.repo_for(msg.channel)
        if isinstance(command, grammar.Backport):
            await self.request(command, msg)
            return
        assert isinstance(command, grammar.Retry | grammar.Cancel)
        key = await asyncio.to_thread(repo.source_key, command.ref)
        branch = repo.branch(command.branch)[0]
        if isinstance(command, grammar.Retry):
            self.ctx.require_maintainer(msg, "retry backports")
            text = await self.retry(repo, key, branch, msg.user)
        else:
            self.ctx.require_maintainer(msg, "cancel backports")
            text = await self.cancel(repo, key, branch, msg.user)
        await self.ctx.chat.post(msg.channel, text, msg.thread)

    async def request(self, command: grammar.Backport, msg: Incoming) -> None:
        self.ctx.require_maintainer(msg, "request backports")
        repo = self.ctx.repo_for(msg.channel)
        await asyncio.to_thread(repo.workspace.fetch)
        branches = repo.expand(list(command.branches))  # unknown branch: BadInput listing the valid ones
        key = await asyncio.to_thread(repo.source_key, command.ref)
        failure: BackportFailure | None = None
        try:
            source: Source | None = await asyncio.to_thread(self.ctx.resolve, repo, key)
            assert source is not None
            title = f"{source.key if source.key.startswith('#') else source.key[:10]} {source.title}"
        except BackportFailure as f:
            source, failure, title = None, f, command.ref
        key = source.key if source else key
        fresh, notes = [], []
        for branch in branches:
            current = self.ctx.store.latest(repo.key, key, branch)
            if current and current.state in OPEN:
                where = f" ({current.pr_url})" if current.pr_url else ""
                notes.append(f"{branch}: already {reports.state_words(current.state)}{where}; "
                             "not starting a second one.")
            else:
                fresh.append(branch)
        if not fresh:
            await self.ctx.chat.post(msg.channel, f"Backport of {title}: " + " ".join(notes), msg.thread)
            return
        root = await self.ctx.chat.post(msg.channel, f"Backport of {title} to {', '.join(fresh)}, "
                                                     f"requested by {msg.user}.", msg.thread)
        thread = root.thread or root.id
        request_id = self.ctx.store.add_request(repo.key, key, fresh, msg.user, "chat", msg.channel, thread)
        request = self.ctx.store.request(request_id)
        for text in notes:
            await self.ctx.chat.post(msg.channel, text, thread)
        for branch in fresh:
            attempt = self.ctx.store.add_attempt(request_id, repo.key, key, branch)
            await self.progress.add(attempt, request)
            if failure is not None:
                self.ctx.workflow.fail(attempt, failure)
                continue
            self.ctx.workflow.queue(attempt)
            self.enqueue(attempt)

    async def retry(self, repo: Repo, key: str, branch: str, user: str) -> str:
        current = self.ctx.store.latest(repo.key, key, branch)
        if current is None:
            return f"Nothing to retry: {key} was never backported to {branch}. Try `/backport {key} to {branch}`."
        if current.state not in FINISHED and current.state != State.AWAITING_APPROVAL:
            return f"The backport of {key} to {branch} is still {reports.state_words(current.state)}."
        if current.state == State.AWAITING_APPROVAL:
            self.ctx.workflow.cancel(current.id, user, "retried")
        request = self.ctx.store.request(current.request_id)
        attempt = self.ctx.store.add_attempt(current.request_id, repo.key, key, branch)
        await self.progress.add(attempt, request)
        self.ctx.workflow.retry(attempt, current.id, user)
        self.enqueue(attempt)
        return f"Retrying the backport of {key} to {branch} (see the request's thread)."

    async def cancel(self, repo: Repo, key: str, branch: str, user: str) -> str:
        current = self.ctx.store.latest(repo.key, key, branch)
        if current is None or current.state in FINISHED or current.state == State.PR_OPEN:
            state = reports.state_words(current.state) if current else "never requested"
            return f"Nothing to cancel for {key} on {branch} ({state})."
        if current.state in WORKING or current.state == State.READY:
            self.ctx.workflow.request_cancel(current.id, user)
            return f"The backport of {key} to {branch} will stop after its current step."
        await asyncio.to_thread(discard, repo, current)
        self.ctx.workflow.cancel(current.id, user)
        return f"Cancelled the backport of {key} to {branch}."

    # --- the work ------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            attempt_id = await self.queue.get()
            try:
                await self._process(attempt_id)
            except Exception as exc:  # never silent: the attempt records what happened
                log.exception("attempt %s", attempt_id)
                try:
                    self.ctx.workflow.fail(attempt_id, Internal(f"{type(exc).__name__}: {exc}"))
                except IllegalMove:
                    pass  # it had already ended
            finally:
                self.queue.task_done()

    async def _process(self, attempt_id: int) -> None:
        a = self.ctx.store.attempt(attempt_id)
        repo = self.ctx.repos[a.repo]
        if a.state == State.QUEUED:
            try:
                source = await asyncio.to_thread(self.ctx.resolve, repo, a.source)
            except BackportFailure as f:
                self.ctx.workflow.fail(attempt_id, f)
                return
            a = await asyncio.to_thread(run_attempt, self.ctx.engine, self.ctx.workflow, attempt_id, repo, source,
                                    a.branch)
        if a.state != State.READY:
            return
        if a.cancel_requested_by:
            await asyncio.to_thread(discard, repo, a)
            self.ctx.workflow.cancel(attempt_id, a.cancel_requested_by, "cancelled while running")
            return
        if a.needs_approval and not a.approved_by:
            self.ctx.workflow.await_approval(attempt_id, a.warnings)
            reasons = "; ".join(a.warnings) or "policy"
            note = await self.ctx.reply_in_thread(
                a, f"✋ {a.branch}: waiting for a maintainer's approval: {reasons}. "
                   f"React ✅ to open the PR, ❌ to cancel, 🔁 to retry.", buttons=APPROVAL_BUTTONS)
            if note:
                self.ctx.store.set_message(attempt_id, approval_message=note.id)
            return
        await asyncio.to_thread(self._open_pr, repo, a)

    def _open_pr(self, repo: Repo, a: Attempt) -> None:
        self.ctx.workflow.open_pr(a.id)
        try:
            existing = self.ctx.forge.find_open(repo, a.result_branch or "")
            if existing is None:
                source = self.ctx.resolve(repo, a.source)
                request = self.ctx.store.request(a.request_id)
                draft = reports.pull_request(repo.workspace.git, self.ctx.store, self.ctx.store.attempt(a.id),
                                             source, repo.branches[a.branch], request.requested_by)
                if repo.verify == "ci":
                    draft = dataclasses.replace(draft, draft=True)
                pr = self.ctx.forge.open_pull_request(repo, draft)
            else:
                pr = existing
        except BackportFailure as f:
            self.ctx.workflow.fail(a.id, f)
            return
        self.ctx.workflow.pr_opened(a.id, pr.number, pr.url, "waiting" if repo.verify == "ci" else None,
                                    reused=existing is not None)
