"""The terminal chat: the embedded default. Messages are numbered, thread replies indented, edits
shown as such; reactions are typed (`react 7 ✅`). `as bob: ...` speaks as someone else, so one
terminal can play a maintainer and a passer-by."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import TextIO

from bot.core import people
from bot.core.ports import Bot, Incoming, MessageRef, Reaction

CONSOLE_HELP = """\
Type a command (/backport help), `react N ✅|❌|🔁` to react to message N,
`as NAME: ...` to speak as someone else, `wait` to wait for running work, `quit` to leave."""
_REACT = re.compile(r"^react\s+(\d+)\s+(\S+)\s*$", re.I)
_AS = re.compile(r"^as\s+([\w.@-]+)\s*:\s*(.+)$", re.I)


class ConsoleChat:
    """The Chat port on a text stream."""

    def __init__(self, out: TextIO, channel: str = "console", first_number: int = 1) -> None:
        self.out = out
        self.channel = channel
        self._count = first_number - 1
        self._threads: dict[str, str | None] = {}

    def _next(self) -> str:
        self._count += 1
        return str(self._count)

    def _show(self, number: str, who: str, text: str, thread: str | None, edited: bool = False) -> None:
        indent = "    " if thread else ""
        mark = " (edited)" if edited else ""
        first, *rest = people.plain(text).splitlines() or [""]
        self.out.write(f"{indent}[{number}]{mark} {who}: {first}\n")
        for line in rest:
            self.out.write(f"{indent}     {line}\n")
        self.out.flush()

    def said(self, user: str, text: str, thread: str | None = None) -> MessageRef:
        """Number and show a line a person typed."""
        number = self._next()
        self._threads[number] = thread
        self._show(number, user, text, thread)
        return MessageRef(self.channel, number, thread)

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        number = self._next()
        self._threads[number] = thread
        self._show(number, "bot", text, thread)
        return MessageRef(channel, number, thread)

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        await self.post(channel, f"(only {user} sees this) {text}", thread)

    async def update(self, message: MessageRef, text: str) -> None:
        self._show(message.id, "bot", text, message.thread or self._threads.get(message.id), edited=True)

    def thread_of(self, number: str) -> str | None:
        return self._threads.get(number)


class Console:
    """Reads lines, turns them into commands and reactions for the bot."""

    def __init__(self, bot: Bot, chat: ConsoleChat, user: str, wait_each_line: bool) -> None:
        self.bot, self.chat, self.user = bot, chat, user
        self.wait_each_line = wait_each_line

    async def line(self, text: str) -> bool:
        """Handle one line; False when the user wants to leave."""
        text = text.strip()
        if not text or text.startswith("#"):
            return True
        user = self.user
        if m := _AS.match(text):
            user, text = m.group(1), m.group(2).strip()
        if text.lower() in ("quit", "exit"):
            return False
        if text.lower() == "wait":
            await self.bot.idle()
            return True
        if text.lower() in ("help", "?"):
            self.chat.out.write(CONSOLE_HELP + "\n")
            return True
        if m := _REACT.match(text):
            number, emoji = m.group(1), m.group(2)
            self.chat.out.write(f"    {user} reacted {emoji} to [{number}]\n")
            ref = MessageRef(self.chat.channel, number, self.chat.thread_of(number))
            await self.bot.deliver("console", None, Reaction(user, emoji, ref))
        else:
            said = self.chat.said(user, text)
            await self.bot.deliver("console", None, Incoming(user, text, self.chat.channel, said.thread))
        if self.wait_each_line:
            await self.bot.idle()
        return True

    async def run(self, stream: TextIO, stopping: asyncio.Event | None = None) -> None:
        """Lines from `stream` until its end, `quit`, or `stopping` (a signal: work is not waited for)."""
        if stream.isatty():
            self.chat.out.write(CONSOLE_HELP + "\n")
        lines = _lines(stream)
        stopped = asyncio.ensure_future((stopping or asyncio.Event()).wait())
        try:
            while True:
                if stream.isatty():
                    self.chat.out.write(f"{self.user}> ")
                    self.chat.out.flush()
                text = asyncio.ensure_future(lines.get())
                await asyncio.wait([text, stopped], return_when=asyncio.FIRST_COMPLETED)
                if stopped.done():
                    text.cancel()
                    return
                if not text.result() or not await self.line(text.result()):
                    break
            await self.bot.idle()
        finally:
            stopped.cancel()


def _lines(stream: TextIO) -> asyncio.Queue[str]:
    """The stream's lines, read by a daemon thread (a blocked read never keeps the process from
    exiting); an empty string marks the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        while True:
            text = stream.readline()
            try:
                loop.call_soon_threadsafe(queue.put_nowait, text)
            except RuntimeError:  # the loop is closed: the process is exiting
                return
            if not text:
                return

    threading.Thread(target=read, name="console", daemon=True).start()
    return queue
