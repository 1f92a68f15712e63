"""One Chat for the service, several underneath: messages go to the adapter that owns their
channel (GitHub PR threads are `github:owner/name#N`), and what happens on GitHub is mirrored to
the configured chat channel so the team sees it there too."""

from __future__ import annotations

from collections.abc import Callable

from bot.core import people
from bot.core.ports import Chat, MessageRef


class ChatRouter:
    def __init__(self, default: Chat | None, by_prefix: dict[str, Chat], mirror: str | None = None,
                 redact: Callable[[str], str] | None = None) -> None:
        self.redact = redact or (lambda text: text)  # known secret values are never posted
        self.default = default
        self.by_prefix = by_prefix
        self.mirror = mirror  # a channel of the default chat that sees everything
        self._mirrored: dict[str, MessageRef] = {}

    def _owner(self, channel: str) -> Chat | None:
        for prefix, chat in self.by_prefix.items():
            if channel.startswith(prefix):
                return chat
        return self.default

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        owner = self._owner(channel)
        if owner is None:
            raise LookupError(f"no chat adapter serves channel {channel!r}")
        text = self.redact(text)
        ref = await owner.post(channel, text, thread, buttons)
        if owner is not self.default and self.default is not None and self.mirror:
            self._mirrored[ref.id] = await self.default.post(self.mirror, _mirrored(channel, text))
        return ref

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        owner = self._owner(channel)
        if owner is not None:
            await owner.notify(channel, user, self.redact(text), thread, reply)

    async def update(self, message: MessageRef, text: str) -> None:
        owner = self._owner(message.channel)
        if owner is None:
            return
        text = self.redact(text)
        await owner.update(message, text)
        if message.id in self._mirrored and self.default is not None:
            await self.default.update(self._mirrored[message.id], _mirrored(message.channel, text))


def _mirrored(channel: str, text: str) -> str:
    """A message of another chat (a GitHub thread) in the team's channel. The people it names are
    that chat's (GitHub logins), not this one's: shown as names, so that a login shaped like a
    Slack or Discord user id cannot mention someone."""
    return f"[{channel}] {people.plain(text)}"
