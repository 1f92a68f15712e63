"""Following a backport pull request on the forge: its CI (check runs and commit statuses; webhooks
first, polling as the fallback) marks a draft ready for review or fails the attempt with the
failing check's link; a merge or a close ends the attempt's life.

When no CI reports at all within the repository's `ci_timeout_minutes` of the PR opening, the
thread is told once and the bot stops waiting: the attempt stays `pr_open` with `ci` = "none" and
the PR stays a draft (nothing failed, nothing was verified: a person decides). CI that reports
later is still followed (webhooks at once, the poller once per timeout). CI that reported but is
still pending after the timeout is said once too, and waited for."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

from bot.core.context import Context
from bot.core.features import Feature
from bot.core.repos import Repo
from bot.core.workflow import Attempt, Op, State
from bot.engine.errors import Stage, VerifyFailed

log = logging.getLogger(__name__)

WAITING, NONE = "waiting", "none"  # Attempt.ci while the bot follows the PR's CI; when none reported in time


class CiFollowUp(Feature):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._poller: asyncio.Task[None] | None = None
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)  # one check per attempt at a time
        self._looked: dict[int, float] = {}  # attempt id -> when the poller last looked at its "none" CI

    async def start(self) -> None:
        if any(r.verify == "ci" for r in self.ctx.repos.values()):
            self._poller = asyncio.create_task(self._poll(self.ctx.settings.ci_poll_seconds))

    async def stop(self, grace: float = 0) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def check(self, attempt_id: int) -> None:
        """Look at the CI of a draft backport PR: mark the PR ready for review when all passed, fail
        the attempt with the failing check's link, or say once that no CI reported in time."""
        async with self._locks[attempt_id]:
            a = self.ctx.store.attempt(attempt_id)
            repo = self.ctx.repos.get(a.repo)
            if repo is None or a.ci not in (WAITING, NONE) or a.state != State.PR_OPEN or a.backport_pr is None:
                return
            checks = await asyncio.to_thread(self.ctx.forge.checks, repo, a.backport_pr)
            if checks.failed:
                name, link = checks.failed[0]
                link = link or a.pr_url or ""
                self.ctx.workflow.fail(attempt_id, VerifyFailed(f"the CI check `{name}` failed on {a.pr_url}: {link}",
                                                                stage=Stage.CI, details={"checks": checks.failed}),
                                       ci="failed")
                await self.ctx.reply_in_thread(a, f"❌ {a.branch}: CI check `{name}` failed: {link}")
            elif checks.passed and not checks.pending:
                await asyncio.to_thread(self.ctx.forge.mark_ready, repo, a.backport_pr)
                self.ctx.workflow.ci(attempt_id, "passed", {"checks": list(checks.passed)})
                await self.ctx.reply_in_thread(a, f"✅ {a.branch}: all {len(checks.passed)} CI checks passed; "
                                                  f"{a.pr_url} is ready for review.")
            else:
                await self._waiting(a, repo, checks.pending)

    async def _waiting(self, a: Attempt, repo: Repo, pending: tuple[str, ...]) -> None:
        """Nothing has failed and not everything passed: nothing reported, or some checks pending."""
        minutes = repo.ci_timeout_minutes
        late = time.time() - self._opened_at(a) >= minutes * 60
        shown = f"{minutes:g} min"
        if not pending:  # no check run and no commit status at all
            if a.ci == WAITING and late:
                self.ctx.workflow.ci(a.id, NONE, {"after_minutes": minutes})
                self._looked[a.id] = time.time()
                await self.ctx.reply_in_thread(
                    a, f"⚠️ {a.branch}: no CI reported on {a.pr_url} within {shown}, so the bot stopped waiting; "
                       f"the PR stays a draft. What to check: that CI runs on pull requests to {a.branch} "
                       "(branch filters, a draft-PR skip, a fork's workflows waiting for approval; GitHub Actions "
                       "does not start workflows for pushes made with a workflow's GITHUB_TOKEN), and that the "
                       "bot may read checks and commit statuses. CI that reports later is still followed.")
            return
        if a.ci == NONE:  # CI reported after all: follow it again
            self.ctx.workflow.ci(a.id, WAITING, {"reported": list(pending)})
        if late and not self._said_slow(a.id):
            self.ctx.workflow.ci(a.id, WAITING, {"slow": list(pending), "after_minutes": minutes})
            names = ", ".join(f"`{n}`" for n in pending[:10]) + (" …" if len(pending) > 10 else "")
            await self.ctx.reply_in_thread(
                a, f"⏳ {a.branch}: CI on {a.pr_url} is still pending after {shown}: {names}; still waiting "
                   "(a stuck runner or queue?).")

    def _opened_at(self, a: Attempt) -> float:
        """When the PR was opened: the attempt's pr_opened event (its last update when there is none)."""
        opened = [e.at for e in self.ctx.store.events(a.id) if e.op == Op.PR_OPENED]
        return opened[-1] if opened else a.updated_at

    def _said_slow(self, attempt_id: int) -> bool:
        return any(e.op == Op.CI and e.detail.get("slow") for e in self.ctx.store.events(attempt_id))

    async def pr_closed(self, repo_key: str, head_branch: str, merged: bool, head_sha: str = "") -> None:
        for a in self.ctx.store.in_state(State.PR_OPEN):
            if a.repo == repo_key and a.result_branch == head_branch:
                if merged:
                    self.ctx.workflow.merged(a.id, head_sha)
                else:
                    self.ctx.workflow.closed(a.id)

    async def checks_changed(self, repo_key: str, head_branch: str) -> None:
        for a in self.ctx.store.in_state(State.PR_OPEN):
            if a.repo == repo_key and a.result_branch == head_branch and a.ci in (WAITING, NONE):
                await self.check(a.id)

    async def _poll(self, every: float) -> None:
        """The fallback when webhooks do not arrive (and the only way commit statuses are seen, as
        the webhook takes check runs and suites): attempts waiting for CI at every round, those
        whose CI never reported once per timeout."""
        while True:
            await asyncio.sleep(every)
            for a in self.ctx.store.in_state(State.PR_OPEN):
                repo = self.ctx.repos.get(a.repo)
                if a.ci == NONE and repo is not None:
                    if time.time() - self._looked.get(a.id, 0.0) < repo.ci_timeout_minutes * 60:
                        continue
                    self._looked[a.id] = time.time()
                elif a.ci != WAITING:
                    continue
                try:
                    await self.check(a.id)
                except Exception:
                    log.exception("could not read the CI of attempt %s", a.id)
