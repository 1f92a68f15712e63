"""Backport requests: `/backport 1234 to 8.1`, retry and cancel. Work is queued in the store (so
it survives a restart) and run by a few asyncio workers; git work runs in threads. A finished pick
waits for a maintainer's approval when policy asks for one, then becomes a pull request."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from typing import Any

from bot.core import grammar, reports
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.features.progress import Progress
from bot.core.lease import TTL as LEASE_TTL
from bot.core.lease import alive as lease_alive
from bot.core.people import mention
from bot.core.ports import APPROVAL_BUTTONS, AlreadyOpen, Incoming, Store, Unavailable
from bot.core.repos import Repo
from bot.core.workflow import FINISHED, WORKING, Attempt, AttemptRecorder, IllegalMove, State, Workflow
from bot.engine.backport import Engine, Plan
from bot.engine.errors import BackportFailure, BadInput, Internal, ServiceFailed, Stage
from bot.engine.ports import Command
from bot.engine.source import Source

log = logging.getLogger(__name__)


def _plan(repo: Repo, source: Source, branch: str, attempt_id: int, target_ref: str | None = None,
          commands: tuple[Command, ...] | None = None, with_deps: bool = False) -> Plan:
    display, ref = repo.branch(branch)
    return Plan(repo.workspace, source, display, target_ref or ref, repo.main_ref,
                repo.local_commands if commands is None else commands, repo.fix_labels, label=f"attempt-{attempt_id}",
                with_deps=with_deps)


def run_attempt(engine: Engine, workflow: Workflow, store: Store, attempt_id: int, repo: Repo, source: Source,
                branch: str, target_ref: str | None = None, commands: tuple[Command, ...] | None = None) -> Attempt:
    """One queued attempt through the engine, every step recorded; blocking (run it in a thread).
    It picks the prerequisites too when its request asked for them."""
    with_deps = store.request(store.attempt(attempt_id).request_id).with_deps
    plan = _plan(repo, source, branch, attempt_id, target_ref, commands, with_deps)
    plan = dataclasses.replace(plan, result_name=free_branch(repo, store, plan.result_branch),
                               llm_tokens_today=tokens_today(store, repo.key))
    outcome = engine.run(plan, AttemptRecorder(workflow, attempt_id))
    return workflow.finish(attempt_id, outcome)


def tokens_today(store: Store, repo_key: str, now: float | None = None) -> int:
    """Model tokens the repository's attempts requested today (UTC) spent: its day budget's use."""
    day = (time.time() if now is None else now) // 86400 * 86400
    return store.llm_tokens_since(repo_key, day)


def verify_approved(engine: Engine, workflow: Workflow, attempt: Attempt, repo: Repo, source: Source) -> Attempt:
    """The build and tests that waited for the ✅, on the approved result; blocking."""
    plan = _plan(repo, source, attempt.branch, attempt.id)
    outcome = engine.verify_approved(plan, AttemptRecorder(workflow, attempt.id), attempt.result_commit or "")
    return workflow.verified(attempt.id, outcome)


# An attempt in one of these states still needs its result branch as it is.
_HOLDS_BRANCH = frozenset({State.READY, State.AWAITING_APPROVAL, State.OPENING_PR, State.PR_OPEN})


def free_branch(repo: Repo, store: Store, name: str) -> str:
    """`name`, or `name-2`, `name-3`...: the first branch the bot may write. It never moves a branch
    it did not create (one with commits someone else wrote, here or on the remote) nor one that an
    open pull request or a pending result of the bot still uses."""
    git = repo.workspace.git
    for n in itertools.count(1):
        candidate = name if n == 1 else f"{name}-{n}"
        tips = {tip for ref in (f"refs/heads/{candidate}", f"refs/remotes/origin/{candidate}")
                if (tip := git.rev(ref)) is not None}
        mine = store.on_branch(repo.key, candidate)
        if not tips or (tips <= {a.result_commit for a in mine} and not any(a.state in _HOLDS_BRANCH for a in mine)):
            return candidate
    raise AssertionError("unreachable")


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
        self._busy: set[asyncio.Task[Any]] = set()  # workers in the middle of an attempt
        self._reaper: asyncio.Task[None] | None = None
        self._closing = False

    # --- life cycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from a previous run, resume queued work, start the workers."""
        for repo in self.ctx.repos.values():
            try:
                await asyncio.to_thread(repo.workspace.fetch)
            except BackportFailure as f:  # a remote that is down must not keep the bot from starting
                log.warning("%s", f.reason)
            except Exception:
                log.exception("could not fetch %s", repo.key)
        await self._recover()
        for a in self.ctx.store.in_state(State.REQUESTED, State.QUEUED, State.READY):
            if a.repo not in self.ctx.repos:
                continue
            request = self.ctx.store.request(a.request_id)
            if request.origin in ("cli", "batch"):
                if not lease_alive(self.ctx.store.lease(a.owner or ""), time.time()):
                    self._settle_stopped(a, request.origin)
                continue
            if a.state == State.REQUESTED:  # stopped between claiming it and queueing it
                if request.inbox is not None:
                    self.ctx.store.forget(request.id, [a.id])  # its inbox entry makes the request again
                    continue
                self.ctx.workflow.queue(a.id)
            self.queue.put_nowait(a.id)
        self._workers = [asyncio.create_task(self._worker()) for _ in range(self.ctx.settings.workers)]
        self._reaper = asyncio.create_task(self._reap())

    def _settle_stopped(self, a: Attempt, origin: str) -> None:
        """An attempt of a command-line run or a batch whose process stopped: never published alone."""
        if origin == "cli" and a.state == State.READY:
            self.ctx.workflow.keep(a.id)  # the run was killed before it said so
        elif origin == "cli":
            self.ctx.workflow.cancel(a.id, "backportbot", "the command-line run stopped before it started")
        elif origin == "batch":
            self.ctx.workflow.cancel(a.id, "backportbot", "its batch was interrupted; the item stays in the batch")

    async def _recover(self) -> None:
        for a in await asyncio.to_thread(self.ctx.workflow.recover):
            await self._tell_interrupted(a)

    async def _tell_interrupted(self, a: Attempt) -> None:
        try:
            await self.ctx.reply_in_thread(a, f"⚠️ The backport to {a.branch} was interrupted ({a.reason}). React 🔁 "
                                              f"on its message or type `/backport retry {a.source} {a.branch}`.")
        except Exception:
            log.exception("could not tell the thread of attempt %s that it was interrupted", a.id)

    async def _reap(self) -> None:
        """Attempts of a process on another machine are recovered once its lease expires."""
        while True:
            await asyncio.sleep(LEASE_TTL / 2)
            try:
                await self._recover()
            except Exception:
                log.exception("recovering interrupted attempts")

    async def stop(self, grace: float = 0) -> None:
        """Take no more work; let running steps finish for `grace` seconds, then interrupt them."""
        self._closing = True
        if self._reaper is not None:
            self._reaper.cancel()
        for t in self._workers:
            if t not in self._busy:
                t.cancel()
        if self._busy:
            await asyncio.wait(list(self._busy), timeout=grace)
        for a in await asyncio.to_thread(self.ctx.workflow.owned):
            try:
                a = self.ctx.workflow.abandon(a, "the bot was stopped while it worked on it")
            except IllegalMove:
                continue  # it moved on meanwhile
            await self._tell_interrupted(a)
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
        """Claim the fix on each branch in the store first (a second request for an open one joins
        it), then fetch and look the fix up; an unknown fix is answered at once and leaves nothing."""
        self.ctx.require_maintainer(msg, "request backports")
        store = self.ctx.store
        if msg.inbox is not None and store.request_of(msg.inbox) is not None:
            return  # handled again after a restart: the request was stored, its attempts resume by themselves
        repo = self.ctx.repo_for(msg.channel)
        # Local git and the store only (no network), in a thread: the event loop keeps acknowledging.
        try:
            key, request_id, claimed, joined = await asyncio.to_thread(self._claim, repo, command, msg)
        except BadInput:
            await asyncio.to_thread(repo.workspace.fetch)  # a branch created since the last fetch
            key, request_id, claimed, joined = await asyncio.to_thread(self._claim, repo, command, msg)
        try:
            if claimed:
                await asyncio.to_thread(repo.workspace.fetch)
                source = await asyncio.to_thread(self.ctx.resolve, repo, key)
                canonical = f"#{source.pr_number}" if source.pr_number else source.key
                if canonical != key:  # a commit of a pull request: the fix is named by its number
                    for branch, attempt in list(claimed.items()):
                        try:
                            store.rekey(attempt, canonical)
                        except AlreadyOpen as e:
                            store.forget(request_id, [attempt])
                            del claimed[branch]
                            joined.append(e.attempt)
            if not claimed:
                store.forget(request_id)
                await self.ctx.chat.post(msg.channel, " ".join(self._joined(a) for a in joined), msg.thread)
                return
            title = f"{source.key if source.key.startswith('#') else source.key[:10]} {source.title}"
            root = await self.ctx.chat.post(msg.channel, f"Backport of {title} to {', '.join(claimed)}, "
                                                         f"requested by {mention(msg.user)}.", msg.thread)
        except BaseException:
            store.forget(request_id)  # nothing started: nothing stays on record
            raise
        thread = root.thread or root.id
        store.set_thread(request_id, thread)
        request = store.request(request_id)
        for attempt in claimed.values():  # all queued at once: a restart finds them all or none
            self.ctx.workflow.queue(attempt)
        for a in joined:
            await self.ctx.chat.post(msg.channel, self._joined(a), thread)
        for attempt in claimed.values():
            self.enqueue(attempt)
            try:
                await self.progress.add(attempt, request)
            except Exception:  # the work goes on; its summary and `why` still tell
                log.exception("could not post the progress message of attempt %s", attempt)

    def _claim(self, repo: Repo, command: grammar.Backport,
               msg: Incoming) -> tuple[str, int, dict[str, int], list[Attempt]]:
        """Record the request and claim one attempt per branch; a branch whose fix has an open
        attempt joins it. Returns (the fix's key, the request, claimed attempts, joined ones)."""
        branches = repo.expand(list(command.branches))  # unknown branch: BadInput listing the valid ones
        key = repo.source_key(command.ref)
        request_id = self.ctx.store.add_request(repo.key, key, branches, msg.user, "chat", msg.channel,
                                                inbox=msg.inbox, with_deps=command.with_deps)
        claimed: dict[str, int] = {}
        joined: list[Attempt] = []
        for branch in branches:
            try:
                claimed[branch] = self.ctx.store.add_attempt(request_id, repo.key, key, branch)
            except AlreadyOpen as e:
                joined.append(e.attempt)
        return key, request_id, claimed, joined

    def _joined(self, a: Attempt) -> str:
        request = self.ctx.store.request(a.request_id)
        if request.origin == "cli":
            return (f"{a.branch}: a command-line backport of {a.source} is running there right now; "
                    "ask again when it is done.")
        where = f": {a.pr_url}" if a.pr_url else " (see its thread)"
        return (f"{a.branch}: already {reports.state_words(a.state)}, requested by "
                f"{mention(request.requested_by)}{where}; this request joins it.")

    def _settled(self, a: Attempt) -> Attempt:
        """The attempt, interrupted first when the process working on it is gone."""
        if a.state in WORKING and a.owner != self.ctx.workflow.owner and \
                not lease_alive(self.ctx.store.lease(a.owner or ""), time.time()):
            return self.ctx.workflow.abandon(a, "the process working on it is gone")
        return a

    async def retry(self, repo: Repo, key: str, branch: str, user: str) -> str:
        current = self.ctx.store.latest(repo.key, key, branch)
        if current is None:
            return f"Nothing to retry: {key} was never backported to {branch}. Try `/backport {key} to {branch}`."
        current = await asyncio.to_thread(self._settled, current)
        if current.state not in FINISHED and current.state != State.AWAITING_APPROVAL:
            return f"The backport of {key} to {branch} is still {reports.state_words(current.state)}."
        if current.state == State.AWAITING_APPROVAL:
            self.ctx.workflow.cancel(current.id, user, "retried")
        request = self.ctx.store.request(current.request_id)
        try:
            attempt = self.ctx.store.add_attempt(current.request_id, repo.key, current.source, branch)
        except AlreadyOpen as e:
            return self._joined(e.attempt)
        self.ctx.workflow.retry(attempt, current.id, user)
        self.enqueue(attempt)
        await self.progress.add(attempt, request)
        return f"Retrying the backport of {key} to {branch} (see the request's thread)."

    async def cancel(self, repo: Repo, key: str, branch: str, user: str) -> str:
        current = self.ctx.store.latest(repo.key, key, branch)
        if current is not None:
            current = await asyncio.to_thread(self._settled, current)
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
        me = asyncio.current_task()
        assert me is not None
        while not self._closing:
            attempt_id = await self.queue.get()
            if self._closing:  # stopping: it stays queued in the store for the next start
                self.queue.task_done()
                break
            self._busy.add(me)
            try:
                await self._process(attempt_id)
            except Exception as exc:  # never silent: the attempt records what happened
                log.exception("attempt %s", attempt_id)
                try:
                    self.ctx.workflow.fail(attempt_id, Internal(f"{type(exc).__name__}: {exc}"))
                except IllegalMove:
                    pass  # it had already ended
            finally:
                self._busy.discard(me)
                self.queue.task_done()

    async def _process(self, attempt_id: int) -> None:
        a = self.ctx.store.attempt(attempt_id)
        repo = self.ctx.repos[a.repo]
        if a.state == State.QUEUED:
            source = await self._source(a, repo, Stage.RESOLVE_SOURCE)
            if source is None:
                return
            a = await asyncio.to_thread(run_attempt, self.ctx.engine, self.ctx.workflow, self.ctx.store, attempt_id,
                                        repo, source, a.branch)
        if a.state != State.READY:
            return
        if a.cancel_requested_by:
            await asyncio.to_thread(discard, repo, a)
            self.ctx.workflow.cancel(attempt_id, a.cancel_requested_by, "cancelled while running")
            return
        if a.needs_approval and not a.approved_by:
            self.ctx.workflow.await_approval(attempt_id, a.warnings)
            reasons = "; ".join(a.warnings) or "policy"
            then = ("its build and tests run (unisolated: isolation is off) and then the PR opens"
                    if a.verify_after_approval else "to open the PR")
            note = await self.ctx.reply_in_thread(
                a, f"✋ {a.branch}: waiting for a maintainer's approval: {reasons}. "
                   f"React ✅ {then}, ❌ to cancel, 🔁 to retry.", buttons=APPROVAL_BUTTONS)
            if note:
                self.ctx.store.set_message(attempt_id, approval_message=note.id)
            return
        if a.verify_after_approval:
            source = await self._source(a, repo, Stage.VERIFYING)
            if source is None:
                return
            a = await asyncio.to_thread(verify_approved, self.ctx.engine, self.ctx.workflow, a, repo, source)
            if a.state != State.READY:
                return
        await asyncio.to_thread(self._open_pr, repo, a)

    async def _source(self, a: Attempt, repo: Repo, stage: Stage) -> Source | None:
        """The attempt's fix, looked up; None when that failed (the attempt is then failed, saying why)."""
        try:
            return await asyncio.to_thread(self.ctx.resolve, repo, a.source)
        except BackportFailure as f:
            self.ctx.workflow.fail(a.id, f)
        except Unavailable as e:
            self.ctx.workflow.fail(a.id, ServiceFailed(str(e), stage=stage))
        return None

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
        except Unavailable as e:
            self.ctx.workflow.fail(a.id, ServiceFailed(str(e)))
            return
        self.ctx.workflow.pr_opened(a.id, pr.number, pr.url, "waiting" if repo.verify == "ci" else None,
                                    reused=existing is not None)
