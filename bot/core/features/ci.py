"""Following a backport pull request on the forge: its CI checks (webhooks first, polling as the
fallback) mark a draft ready for review or fail the attempt with the failing check's link; a merge
or a close ends the attempt's life."""

from __future__ import annotations

import asyncio
import logging

from bot.core.context import Context
from bot.core.features import Feature
from bot.core.workflow import State
from bot.engine.errors import Stage, VerifyFailed

log = logging.getLogger(__name__)


class CiFollowUp(Feature):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if any(r.verify == "ci" for r in self.ctx.repos.values()):
            self._poller = asyncio.create_task(self._poll(self.ctx.settings.ci_poll_seconds))

    async def stop(self, grace: float = 0) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)

    async def check(self, attempt_id: int) -> None:
        """Look at the checks of a draft backport PR: report them, and mark the PR ready for review
        when all pass or fail the attempt with the failing check's link."""
        a = self.ctx.store.attempt(attempt_id)
        repo = self.ctx.repos.get(a.repo)
        if repo is None or a.ci != "waiting" or a.state != State.PR_OPEN or a.backport_pr is None:
            return
        checks = await asyncio.to_thread(self.ctx.forge.checks, repo, a.backport_pr)
        if checks.failed:
            name, link = checks.failed[0]
            self.ctx.workflow.fail(attempt_id, VerifyFailed(f"the CI check `{name}` failed on {a.pr_url}: {link}",
                                                            stage=Stage.CI, details={"checks": checks.failed}),
                                   ci="failed")
            await self.ctx.reply_in_thread(a, f"❌ {a.branch}: CI check `{name}` failed: {link}")
        elif checks.passed and not checks.pending:
            await asyncio.to_thread(self.ctx.forge.mark_ready, repo, a.backport_pr)
            self.ctx.workflow.ci(attempt_id, "passed", {"checks": list(checks.passed)})
            await self.ctx.reply_in_thread(a, f"✅ {a.branch}: all {len(checks.passed)} CI checks passed; "
                                              f"{a.pr_url} is ready for review.")

    async def pr_closed(self, repo_key: str, head_branch: str, merged: bool) -> None:
        for a in self.ctx.store.in_state(State.PR_OPEN):
            if a.repo == repo_key and a.result_branch == head_branch:
                if merged:
                    self.ctx.workflow.merged(a.id)
                else:
                    self.ctx.workflow.closed(a.id)

    async def checks_changed(self, repo_key: str, head_branch: str) -> None:
        for a in self.ctx.store.in_state(State.PR_OPEN):
            if a.repo == repo_key and a.result_branch == head_branch and a.ci == "waiting":
                await self.check(a.id)

    async def _poll(self, every: float) -> None:
        """The fallback when webhooks do not arrive."""
        while True:
            await asyncio.sleep(every)
            for a in self.ctx.store.in_state(State.PR_OPEN):
                if a.ci == "waiting":
                    try:
                        await self.check(a.id)
                    except Exception:
                        log.exception("could not read the CI checks of attempt %s", a.id)
