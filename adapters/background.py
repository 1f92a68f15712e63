"""Work an adapter starts after it has already answered its caller (Slack's 3 seconds, Discord's
deferral, GitHub's webhook time-out), kept until done and waited for on `drain`."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Background:
    """Work started by handlers that answered at once; `drain` waits for all of it."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()

    def later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
