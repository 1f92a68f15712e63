"""Discord through discord.py: a `/backport` app command (stored in the inbox, then deferred at
once; private answers are ephemeral follow-ups), a thread per request (remembered in the store,
so a restarted bot finds it), progress messages edited in place, approval with ✅ / ❌ / 🔁
through raw reaction events (which arrive for uncached messages too), mentions and DMs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import aiohttp
import discord
from discord import app_commands
from discord.http import Route, handle_message_parameters

from bot.core import people
from bot.core.ports import Bot, Incoming, MessageRef, Reaction, Unavailable, Unreachable
from bot.core.reports import outside_code

log = logging.getLogger(__name__)
T = TypeVar("T")

CHAT = "discord"  # this chat's name in the store's chat_threads
DISCORD_LIMIT = 2000  # characters per message
EPHEMERAL = 64  # message flag: only the person who used the command sees it
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
ACK_WAIT = 5.0  # seconds a follow-up waits for its interaction's acknowledgement (Discord's limit is 3)
VERBS = {"status", "why", "retry", "cancel", "digest", "stats", "help", "landed", "batch"}
# What the bot needs in a channel; the invite URL in the README carries this integer (a test checks).
PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                  create_public_threads=True, read_message_history=True)
CANNOT_POST = ("I can't post in this channel: give me the View Channel, Send Messages and Send Messages in "
               "Threads permissions there (and Create Public Threads, for a thread per request).")

# Interactions this process is acknowledging (reply handle -> set once "On it" is sent): a follow-up
# sent before the acknowledgement would fail, or take the place of the public "On it".
_acknowledging: dict[str, asyncio.Event] = {}

FAILURES = (discord.HTTPException, discord.RateLimited, TimeoutError, aiohttp.ClientError, OSError)


def escape(text: str) -> str:
    """A message's content (see `render`)."""
    return render(text)[0]


def render(text: str) -> tuple[str, list[str]]:
    """The message's content and the people it names. Discord markdown in text from commits, PRs,
    the model or people is shown, not applied: a masked link, a heading or emphasis in a PR title
    stays literal, and so does a `<@id>`, `<@&role>` or `<#channel>` (`\\<`), so that a title
    cannot show a mention. Only the people the bot names (bot.core.people) become `<@id>`; they are
    returned so that `allowed_mentions` lets exactly them be notified."""
    named: list[str] = []

    def person(user: str) -> str:
        if not user.isdigit():  # a GitHub login mirrored here, a console name: shown as text
            return _literal(user)
        if user not in named:
            named.append(user)
        return f"<@{user}>"

    content = people.show(outside_code(text, _literal), person)[:DISCORD_LIMIT]
    return content, [user for user in named if f"<@{user}>" in content]


def _literal(text: str) -> str:
    return discord.utils.escape_markdown(text).replace("<", "\\<")


def in_words(e: BaseException) -> Unavailable:
    """A Discord failure as the core's Unreachable / Unavailable, in words for the person who asked."""
    if isinstance(e, discord.Forbidden):
        return Unreachable(CANNOT_POST)
    if isinstance(e, discord.HTTPException):
        if e.status == 401:
            return Unavailable("Discord refused the bot's token (401): a maintainer must fix DISCORD_TOKEN.",
                               retry=False)
        return Unavailable(f"Discord answered {e.status} ({e.text or 'no reason given'}, code {e.code}).",
                           retry=e.status >= 500 or e.status == 429)
    if isinstance(e, discord.RateLimited):
        return Unavailable(f"Discord is rate limiting the bot for {e.retry_after:.0f} seconds.")
    return Unavailable(f"Discord could not be reached ({type(e).__name__}).")


async def call(request: Awaitable[T]) -> T:
    try:
        return await request
    except FAILURES as e:
        raise in_words(e) from None


class Threads(Protocol):
    """Where the thread of each request is (the SQLite store): a restarted bot finds them again."""

    def thread_of(self, chat: str, root: str) -> str | None: ...

    def remember_thread(self, chat: str, root: str, thread: str) -> None: ...


class DiscordChat:
    """The Chat port on Discord's HTTP API. A request's thread is started from its first message
    (Discord gives the thread that message's id); a DM has none and answers in place."""

    def __init__(self, http: discord.http.HTTPClient, threads: Threads) -> None:
        self.http = http
        self.threads = threads
        self._where: dict[str, str] = {}  # thread root -> the channel its messages go to
        self._lock = asyncio.Lock()

    async def _channel_of(self, channel: str, root: str) -> str:
        """The channel of the thread at `root`: known, stored, or started now (and stored)."""
        async with self._lock:
            where = self._where.get(root) or await asyncio.to_thread(self.threads.thread_of, CHAT, root)
            if where is None:
                where = await self._start_thread(channel, root)
                await asyncio.to_thread(self.threads.remember_thread, CHAT, root, where)
            self._where[root] = where
            return where

    async def _start_thread(self, channel: str, root: str) -> str:
        try:
            data = await self.http.start_thread_with_message(int(channel), int(root), name="backport",
                                                             auto_archive_duration=1440)
        except discord.HTTPException as e:
            if e.code == THREAD_EXISTS:  # started by a run that could not store it: same id as its root
                return root
            if e.status >= 500 or e.status in (401, 429):  # not the channel's doing: nothing to remember
                raise in_words(e) from None
            # A DM, a channel without threads, or no right to start one: answer in the channel.
            log.info("no thread under %s in %s: %s", root, channel, e)
            return channel
        except FAILURES as e:
            raise in_words(e) from None
        return str(data["id"])

    async def _send(self, channel: str, text: str) -> str:
        """Post `text` in `channel`; the new message's id. Only the people the bot names are
        notified: an `@everyone`, a role or an id in a PR title is shown, not sent."""
        content, named = render(text)
        with handle_message_parameters(content=content, allowed_mentions=_mentions(named)) as params:
            data = await call(self.http.send_message(int(channel), params=params))
        return str(data["id"])

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        target = await self._channel_of(channel, thread) if thread else channel
        return MessageRef(channel, await self._send(target, text), thread)

    async def update(self, message: MessageRef, text: str) -> None:
        where = await self._channel_of(message.channel, message.thread) if message.thread else message.channel
        # An edit notifies nobody (Discord pings on a new message only); none are allowed anyway.
        with handle_message_parameters(content=escape(text), allowed_mentions=_mentions([])) as params:
            await call(self.http.edit_message(int(where), int(message.id), params=params))

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        """An ephemeral follow-up to the person's command (it works where the bot may not post),
        else a mention where they asked, else a direct message."""
        if reply:
            try:
                await self._follow_up(reply, text)
                return
            except Unavailable as e:  # expired (15 minutes), or never acknowledged
                log.warning("Discord's interaction follow-up failed: %s", e)
        try:
            target = await self._channel_of(channel, thread) if thread else channel
            await self._send(target, f"{people.mention(user)} {text}")
        except Unreachable:
            dm = await call(self.http.start_private_message(int(user)))
            await self._send(str(dm["id"]), text)

    async def _follow_up(self, reply: str, text: str) -> None:
        acknowledged = _acknowledging.get(reply)
        if acknowledged is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(acknowledged.wait(), ACK_WAIT)
        application, token = reply.split(":", 1)
        route = Route("POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=application, webhook_token=token)
        await call(self.http.request(route, json={"content": escape(text), "flags": EPHEMERAL,
                                                  "allowed_mentions": {"parse": []}}))


def _mentions(users: list[str]) -> discord.AllowedMentions:
    """Never `parse`: only the listed users may be notified, never everyone, a role or a reply."""
    return discord.AllowedMentions(everyone=False, roles=False, replied_user=False,
                                   users=[discord.Object(id=int(user)) for user in users] or False)


@asynccontextmanager
async def acknowledging(reply: str) -> AsyncIterator[None]:
    """While an interaction is being acknowledged, follow-ups to it wait."""
    _acknowledging[reply] = event = asyncio.Event()
    try:
        yield
    finally:
        event.set()
        del _acknowledging[reply]


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
                               branches="release branches (8.0 8.1, or all; then `with deps` to pick the fix's "
                                        "prerequisites too); for why/retry/cancel: the branch")
        async def backport(interaction: discord.Interaction, source: str, branches: str | None = None) -> None:
            words = source.split()
            verb = words[0].lower() if words else "help"
            text = f"{source} {branches or ''}".strip() if verb in VERBS or not branches else \
                f"{source} to {branches}"
            reply = f"{interaction.application_id}:{interaction.token}"
            async with acknowledging(reply):
                # Stored first (a SQLite insert), then acknowledged within Discord's 3 seconds.
                await bot.deliver("discord", f"interaction:{interaction.id}",
                                  Incoming(str(interaction.user.id), f"/backport {text}", str(interaction.channel_id),
                                           maintainer=self.is_maintainer(interaction.user), reply=reply))
                await interaction.response.defer(thinking=True)
                await interaction.followup.send(f"On it: `/backport {text}`")

        @self.client.event
        async def on_raw_reaction_add(payload: discord.RawReactionActionEvent) -> None:
            if self.client.user is not None and payload.user_id == self.client.user.id:
                return
            # No key: Discord gives a reaction no id and its gateway does not send one twice, while
            # message, user and emoji would drop a reaction taken back and given again (a second 🔁).
            await bot.deliver("discord", None,
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
                              Incoming(str(message.author.id), text, str(message.channel.id),
                                       maintainer=self.is_maintainer(message.author)))

        @self.client.event
        async def on_ready() -> None:
            await self.tree.sync()
            log.info("Discord: logged in as %s", self.client.user)
