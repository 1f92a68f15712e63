"""Progress messages: one per branch in the request's thread, edited as the attempt moves through
its states (one edit in flight per message, then the newest text), and a summary when every
branch is done, also reported on the source pull request."""

from __future__ import annotations

import asyncio
import logging

from bot.core import reports
from bot.core.context import Context
from bot.core.features import Feature
from bot.core.ports import MessageRef, Request
from bot.core.workflow import FINISHED, Attempt, State

log = logging.getLogger(__name__)


class Progress(Feature):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._refreshing: dict[int, asyncio.Task[None]] = {}
        self._dirty: set[int] = set()
        self._shown: dict[int, str] = {}  # last text of each progress message: skip edits that change nothing
        self._loop: asyncio.AbstractEventLoop | None = None
        ctx.workflow.subscribe(self._on_move)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def idle(self) -> None:
        while self._refreshing:
            await asyncio.gather(*list(self._refreshing.values()), return_exceptions=True)

    async def add(self, attempt_id: int, request: Request) -> None:
        """Post the attempt's progress message in its request's thread."""
        text = reports.progress(self.ctx.store.attempt(attempt_id))
        note = await self.ctx.chat.post(request.channel or "", text, request.thread)
        self._shown[attempt_id] = text
        self.ctx.store.set_message(attempt_id, message=note.id)

    def _on_move(self, attempt: Attempt) -> None:
        if self._loop is not None:  # moves happen in worker threads too
            self._loop.call_soon_threadsafe(self.refresh, attempt.id)

    def refresh(self, attempt_id: int) -> None:
        if attempt_id in self._refreshing:
            self._dirty.add(attempt_id)  # coalesce: one more edit after the one in flight
            return
        self._refreshing[attempt_id] = asyncio.create_task(self._refresh(attempt_id))

    async def _refresh(self, attempt_id: int) -> None:
        try:
            while True:
                self._dirty.discard(attempt_id)
                a = self.ctx.store.attempt(attempt_id)
                request = self.ctx.store.request(a.request_id)
                text = reports.progress(a)
                if a.message and self._shown.get(attempt_id) != text:
                    self._shown[attempt_id] = text
                    await self.ctx.chat.update(MessageRef(request.channel or "", a.message, request.thread), text)
                if attempt_id not in self._dirty:
                    break
            await self._summarize(request)
        except Exception:
            log.exception("could not update the message of attempt %s", attempt_id)
        finally:
            self._refreshing.pop(attempt_id, None)

    async def _summarize(self, request: Request) -> None:
        if request.channel is None:
            return  # a command-line request: its run printed the results
        latest: dict[str, Attempt] = {}
        for a in self.ctx.store.attempts(request.repo, request.source):
            if a.request_id == request.id:
                latest[a.branch] = a
        if not latest or any(a.state not in FINISHED | {State.PR_OPEN, State.AWAITING_APPROVAL}
                             for a in latest.values()):
            return
        text = reports.summary(list(latest.values()))
        if text != self.ctx.store.request(request.id).summary:
            self.ctx.store.set_summary(request.id, text)
            await self.ctx.chat.post(request.channel or "", text, request.thread)
            await self._report_on_source(request, list(latest.values()), text)

    async def _report_on_source(self, request: Request, attempts: list[Attempt], summary: str) -> None:
        """Never silent on the forge either: the source PR hears how its backports went."""
        repo = self.ctx.repos.get(request.repo)
        if repo is None or (request.channel or "").startswith(f"github:{repo.github}#"):
            return  # asked on the PR itself: the answer is already there
        body = "\n".join(["Backports requested by " + request.requested_by + ":",
                          *(f"- {reports.progress(a)}" for a in attempts), "", summary])
        try:
            await asyncio.to_thread(self.ctx.forge.comment_on_source, repo, request.source, body)
        except Exception:
            log.exception("could not report on the source of request %s", request.id)
