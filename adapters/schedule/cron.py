"""The weekly digest on a cron, with APScheduler 3.11 in the bot's event loop. The last digest is
in the store, so a restart neither skips a digest that fell due while the bot was down nor
posts one twice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.core.ports import Bot, Store

log = logging.getLogger(__name__)


class DigestSchedule:
    def __init__(self, bot: Bot, store: Store, repos: list[str], cron: str, timezone: str, channel: str) -> None:
        self.bot, self.store, self.repos, self.channel = bot, store, repos, channel
        self.trigger = CronTrigger.from_crontab(cron, timezone=timezone)
        self.scheduler = AsyncIOScheduler(timezone=timezone)

    async def start(self, now: datetime | None = None) -> int:
        """Schedule the job and post the digests that fell due while the bot was down.
        Returns how many were caught up."""
        self.scheduler.add_job(self.run, self.trigger, id="digest", coalesce=True, misfire_grace_time=3600,
                               replace_existing=True)
        self.scheduler.start()
        return await self.catch_up(now or datetime.now(UTC))

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def due(self, repo: str, now: datetime) -> bool:
        """A fire time passed since this repository's last digest (never posted: not due)."""
        last = self.store.last_digest(repo)
        if last is None:
            return False
        after = datetime.fromtimestamp(last.at, UTC)
        nxt: Any = self.trigger.get_next_fire_time(None, after + timedelta(seconds=1))
        return nxt is not None and nxt <= now

    async def catch_up(self, now: datetime) -> int:
        caught = 0
        for repo in self.repos:
            if self.due(repo, now):
                await self._post(repo)
                caught += 1
        return caught

    async def run(self) -> None:
        for repo in self.repos:
            await self._post(repo)

    async def _post(self, repo: str) -> None:
        try:
            await self.bot.post_digest(repo, self.channel)
        except Exception:
            log.exception("the digest of %s failed", repo)
