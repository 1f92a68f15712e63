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
    def __init__(self, store: Store, handler: Handler) -> None:
        """Made inside the event loop that will handle the entries."""
        self.store, self.handler = store, handler
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = asyncio.Event()  # set once the bot has recovered: entries wait for it

    def open(self) -> None:
        self._open.set()

    async def deliver(self, source: str, key: str | None, delivery: Delivery) -> bool:
        kind, payload, reply = encode(delivery)
        entry = await asyncio.to_thread(self.store.accept, source, key, kind, payload, reply)
        if entry is None:
            return False
        self._start(entry, decode(entry, kind, payload, reply))
        return True

    def replay(self) -> int:
        """Handle again what a previous process stored and did not finish."""
        pending = self.store.pending()
        for entry, _source, kind, payload, reply in pending:
            self._start(entry, decode(entry, kind, payload, reply))
        return len(pending)

    def _start(self, entry: int, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(entry, delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, entry: int, delivery: Delivery) -> None:
        await self._open.wait()  # adapters may store before the bot finished starting
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
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
