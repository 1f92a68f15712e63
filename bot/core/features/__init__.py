"""One module per feature, each a small class the dispatcher routes to: the commands it answers,
the reactions it acts on, and what it runs in the background."""

from __future__ import annotations

from typing import Any

from bot.core.ports import Incoming, Reaction


class Feature:
    commands: tuple[type, ...] = ()  # grammar commands this feature answers

    async def command(self, command: Any, msg: Incoming) -> None:
        raise NotImplementedError

    async def reaction(self, kind: str, reaction: Reaction) -> bool:
        """Act on an approve / reject / retry reaction; False when it is not about this feature."""
        return False

    async def start(self) -> None:
        pass

    async def stop(self, grace: float = 0) -> None:
        """Take no more work; what runs may finish within `grace` seconds."""

    async def idle(self) -> None:
        """Return when nothing this feature started is still running."""
