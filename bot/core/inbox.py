"""The inbox: every command, reaction, button and webhook delivery an adapter receives is stored
(with its de-duplication key, in one transaction) before the adapter acknowledges it, handled in
the background, and marked handled once answered. Entries left unhandled by a killed process are
handled again at the next start, so nothing acknowledged is lost; a redelivery of something
already stored is a no-op, so nothing is done twice."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.core.ports import ChecksChanged, Delivery, Incoming, Merged, MessageRef, PullRequestClosed, Reaction, Store

log = logging.getLogger(__name__)

KINDS: dict[str, type] = {"message": Incoming, "reaction": Reaction, "merged": Merged,
                          "pr_closed": PullRequestClosed, "checks": ChecksChanged}
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}

Handler = Callable[[Delivery], Awaitable[None]]


def encode(delivery: Delivery) -> tuple[str, dict[str, Any], str | None]:
    """(kind, payload, reply handle): the reply handle is kept apart, to be dropped once used."""
    payload = dataclasses.asdict(delivery)
    reply = payload.pop("reply", None)
    payload.pop("inbox", None)
    return _KIND_OF[type(delivery)], payload, reply


def decode(entry_id: int, kind: str, payload: dict[str, Any], reply: str | None) -> Delivery:
    cls = KINDS[kind]
    if cls is Reaction:
        return Reaction(**{**payload, "message": MessageRef(**payload["message"])})
    if cls is Merged:
        return Merged(**{**payload, "labels": tuple(payload["labels"])})
    if cls is Incoming:
        return Incoming(**payload, reply=reply, inbox=entry_id)
    delivery: Delivery = cls(**payload)
    return delivery


class Inbox:
    """Deliveries are handled by a few tasks in the order they came: a burst of them never starts
    a burst of git work that would slow the acknowledgement of the next ones."""

    def __init__(self, store: Store, handler: Handler, workers: int = 6) -> None:
        self.store, self.handler, self.workers = store, handler, workers
        self.queue: asyncio.Queue[tuple[int, Delivery]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._queued: set[int] = set()  # entries in the queue or being handled: a replay skips them

    def open(self) -> None:
        """Start handling, once the bot has recovered (adapters may store entries before)."""
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def deliver(self, source: str, key: str | None, delivery: Delivery) -> bool:
        kind, payload, reply = encode(delivery)
        entry = await asyncio.to_thread(self.store.accept, source, key, kind, payload, reply)
        if entry is None:
            return False
        self._put(entry, decode(entry, kind, payload, reply))
        return True

    def _put(self, entry: int, delivery: Delivery) -> None:
        if entry not in self._queued:
            self._queued.add(entry)
            self.queue.put_nowait((entry, delivery))

    def replay(self) -> int:
        """Handle again what a previous process stored and did not finish."""
        pending = [p for p in self.store.pending() if p[0] not in self._queued]  # not those stored since we started
        for entry, _source, kind, payload, reply in pending:
            self._put(entry, decode(entry, kind, payload, reply))
        return len(pending)

    async def _work(self) -> None:
        while True:
            entry, delivery = await self.queue.get()
            try:
                await self._handle(entry, delivery)
            finally:
                self._queued.discard(entry)
                self.queue.task_done()

    async def _handle(self, entry: int, delivery: Delivery) -> None:
        try:
            await self.handler(delivery)  # answers its own failures; see Dispatcher
        except Exception:
            log.exception("inbox entry %s", entry)
        try:
            await asyncio.to_thread(self.store.handled, entry)
        except Exception:
            log.exception("could not mark inbox entry %s handled", entry)

    async def stop(self) -> None:
        """Stop handling; what was not finished stays pending for the next start."""
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def idle(self) -> None:
        if self._workers:
            await self.queue.join()
