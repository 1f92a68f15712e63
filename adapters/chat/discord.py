"""Discord through discord.py: a `/backport` app command (deferred at once, answered with
follow-ups), a thread per request, progress messages edited in place, approval with ✅ / ❌ / 🔁
through raw reaction events (which arrive for uncached messages too), mentions and DMs."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.http import handle_message_parameters

from bot.core.ports import Bot, Incoming, MessageRef, Reaction

log = logging.getLogger(__name__)

DISCORD_LIMIT = 2000  # characters per message
VERBS = {"status", "why", "retry", "cancel", "digest", "stats", "help", "landed", "batch"}


class DiscordChat:
    """The Chat port on Discord's HTTP API. A request's thread is started from its first message
    (Discord gives the thread that message's id)."""

    def __init__(self, http: discord.http.HTTPClient) -> None:
        self.http = http
        self._threads: set[str] = set()
        self._lock = asyncio.Lock()

    async def _thread(self, channel: str, root: str) -> str:
        async with self._lock:
            if root not in self._threads:
                try:
                    await self.http.start_thread_with_message(int(channel), int(root), name="backport",
                                                              auto_archive_duration=1440)
                except discord.HTTPException as e:  # a DM has no threads: answer in place
                    log.info("no thread under %s: %s", root, e)
                    return channel
                self._threads.add(root)
        return root

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        target = await self._thread(channel, thread) if thread else channel
        with handle_message_parameters(content=text[:DISCORD_LIMIT]) as params:
            data = await self.http.send_message(int(target), params=params)
        return MessageRef(channel, str(data["id"]), thread)

    async def update(self, message: MessageRef, text: str) -> None:
        where = message.thread if message.thread in self._threads else message.channel
        with handle_message_parameters(content=text[:DISCORD_LIMIT]) as params:
            await self.http.edit_message(int(where or message.channel), int(message.id), params=params)

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        await self.post(channel, f"<@{user}> {text}", thread)  # no ephemeral messages outside interactions


def make_client() -> discord.Client:
    # Guild reactions, mentions and DMs: no privileged intent (message content) is needed.
    return discord.Client(intents=discord.Intents.default())


class DiscordBot:
    """The client and its handlers; `maintainer_roles` are role ids whose members count."""

    def __init__(self, bot: Bot, client: discord.Client, maintainer_roles: set[int] | None = None) -> None:
        self.bot = bot
        self.roles = maintainer_roles or set()
        self.client = client
        self.tree = app_commands.CommandTree(self.client)
        self._register()

    def is_maintainer(self, member: Any) -> bool | None:
        """True when a maintainer role says so; None lets the service's list of user ids decide."""
        if not self.roles or member is None:
            return None
        # Member.roles drops roles the client has not cached (no gateway guild data yet); the ids
        # Discord sent are kept in _roles.
        ids = {r.id for r in getattr(member, "roles", [])} | {int(r) for r in getattr(member, "_roles", [])}
        return True if ids & self.roles else None

    def _register(self) -> None:
        bot = self.bot

        @self.tree.command(name="backport", description="Backport a fix, or ask about one (/backport help)")
        @app_commands.describe(source="PR number, commit or URL — or status, why, retry, cancel, digest, stats, help",
                               branches="release branches (8.0 8.1, or all); for why/retry/cancel: the branch")
        async def backport(interaction: discord.Interaction, source: str, branches: str | None = None) -> None:
            await interaction.response.defer(thinking=True)  # within Discord's 3 seconds
            words = source.split()
            verb = words[0].lower() if words else "help"
            text = f"{source} {branches or ''}".strip() if verb in VERBS or not branches else \
                f"{source} to {branches}"
            await interaction.followup.send(f"On it: `/backport {text}`")
            await bot.deliver("discord", f"interaction:{interaction.id}",
                              Incoming(str(interaction.user.id), f"/backport {text}", str(interaction.channel_id),
                                       maintainer=self.is_maintainer(interaction.user)))

        @self.client.event
        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            if self.client.user is not None and payload.user_id == self.client.user.id:
                return
            await bot.deliver("discord", f"reaction:{payload.message_id}:{payload.user_id}:{payload.emoji.name}",
                              Reaction(str(payload.user_id), payload.emoji.name or "",
                                       MessageRef(str(payload.channel_id), str(payload.message_id)),
                                       maintainer=self.is_maintainer(payload.member)))

        @self.client.event
        async def on_message(message: discord.Message) -> None:
            me = self.client.user
            if message.author.bot or me is None:
                return
            direct = isinstance(message.channel, discord.DMChannel)
            if not direct and me not in message.mentions:
                return
            text = re.sub(rf"<@!?{me.id}>", "", message.content).strip()
            await bot.deliver("discord", f"message:{message.id}",
                              Incoming(str(message.author.id), text, str(message.channel.id)))

        @self.client.event
        async def on_ready() -> None:
            await self.tree.sync()
            log.info("Discord: logged in as %s", self.client.user)
