"""Slack through slack-bolt (async): `/backport` slash commands, @-mentions and DMs with the same
grammar, progress in a thread edited with chat.update (Block Kit), approval by reaction or
button, Socket Mode (default) or HTTP mode on `/slack/events`."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any, Protocol

from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from adapters.background import Background
from bot.core.ports import Bot, Incoming, MessageRef, Reaction

log = logging.getLogger(__name__)


class Deliveries(Protocol):
    def first_delivery(self, source: str, delivery_id: str) -> bool: ...

DEFAULT_API = "https://slack.com/api/"
BUTTONS = {"approve": ("✅ Approve", "primary", "white_check_mark"), "reject": ("❌ Reject", "danger", "x"),
           "retry": ("🔁 Retry", None, "repeat")}
ACK = "On it: watch the thread I am starting in this channel."
MIN_EDIT_INTERVAL = 1.0  # seconds between two edits of one message: Slack's chat.update tier


def client(token: str, api_url: str | None = None) -> AsyncWebClient:
    """A Web API client that waits out 429 answers (Retry-After) instead of failing."""
    web = AsyncWebClient(token=token, base_url=api_url or DEFAULT_API)
    web.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return web


def blocks(text: str, buttons: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]
    if buttons:
        elements = []
        for name in buttons:
            label, style, _ = BUTTONS[name]
            button: dict[str, Any] = {"type": "button", "action_id": f"backport_{name}", "value": name,
                                      "text": {"type": "plain_text", "text": label}}
            if style:
                button["style"] = style
            elements.append(button)
        out.append({"type": "actions", "elements": elements})
    return out


class SlackChat:
    """The Chat port on Slack's Web API."""

    def __init__(self, web: AsyncWebClient, min_edit_interval: float = MIN_EDIT_INTERVAL) -> None:
        self.web = web
        self.min_edit_interval = min_edit_interval
        self._last_edit: dict[str, float] = {}

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        response = await self.web.chat_postMessage(channel=channel, text=text, thread_ts=thread,
                                                   blocks=blocks(text, buttons))
        return MessageRef(channel, str(response["ts"]), thread)

    async def update(self, message: MessageRef, text: str) -> None:
        """Edits of one message are spaced out. The bot sends one edit at a time per message
        and then the newest text, so a burst of changes becomes one edit a second."""
        key = f"{message.channel}:{message.id}"
        delay = self._last_edit.get(key, 0) + self.min_edit_interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await self.web.chat_update(channel=message.channel, ts=message.id, text=text, blocks=blocks(text))
        self._last_edit[key] = time.monotonic()

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None) -> None:
        await self.web.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread)


class GroupMaintainers:
    """Members of a Slack user group count as maintainers; the list is read again after a while,
    so that someone added to the group does not wait for a restart."""

    def __init__(self, web: AsyncWebClient, group: str | None, ttl: float = 300) -> None:
        self.web, self.group, self.ttl = web, group, ttl
        self._members: set[str] = set()
        self._read_at = float("-inf")

    async def check(self, user: str) -> bool | None:
        """True for a member; None lets the configured list decide."""
        if self.group is None:
            return None
        if time.monotonic() - self._read_at > self.ttl:
            try:
                answer = await self.web.usergroups_users_list(usergroup=self.group)
                self._members = set(answer.get("users", []))
                self._read_at = time.monotonic()
            except Exception:
                log.exception("could not read the members of the Slack user group %s", self.group)
        return True if user in self._members else None


class SlackEvents:
    """slack-bolt's app with our handlers: commands, mentions, DMs, reactions and buttons, each
    acknowledged at once and handed to the bot in the background."""

    def __init__(self, bot: Bot, deliveries: Deliveries, web: AsyncWebClient, signing_secret: str | None,
                 maintainer_group: str | None = None) -> None:
        self.app = AsyncApp(client=web, signing_secret=signing_secret,
                            request_verification_enabled=signing_secret is not None)
        self.background = Background()
        self.maintainers = GroupMaintainers(web, maintainer_group)
        self._register(bot, deliveries)

    def _register(self, bot: Bot, deliveries: Deliveries) -> None:
        app, later, maintainers = self.app, self.background.later, self.maintainers

        @app.middleware
        async def handle_once(body: dict[str, Any], next: Any) -> BoltResponse | None:
            """Slack redelivers events it thinks were lost (X-Slack-Retry-Num): act on each once."""
            event_id = body.get("event_id")
            if event_id and not deliveries.first_delivery("slack", event_id):
                return BoltResponse(status=200, body="")
            answer: BoltResponse | None = await next()
            return answer

        async def incoming(user: str, text: str, channel: str, thread: str | None = None) -> None:
            await bot.handle(Incoming(user, text, channel, thread, maintainer=await maintainers.check(user)))

        async def reacted(user: str, emoji: str, message: MessageRef) -> None:
            await bot.react(Reaction(user, emoji, message, maintainer=await maintainers.check(user)))

        @app.command("/backport")
        async def slash(ack: Any, command: dict[str, Any]) -> None:
            await ack(ACK)  # within Slack's 3 seconds; the work goes on after
            later(incoming(command["user_id"], "/backport " + command.get("text", ""), command["channel_id"]))

        @app.event("app_mention")
        async def mention(event: dict[str, Any]) -> None:
            text = re.sub(r"^\s*<@[\w]+>\s*", "", event.get("text", ""))
            later(incoming(event["user"], text, event["channel"], event.get("thread_ts")))

        @app.event("message")
        async def direct(event: dict[str, Any]) -> None:
            if event.get("channel_type") == "im" and not event.get("bot_id") and not event.get("subtype"):
                later(incoming(event["user"], event.get("text", ""), event["channel"]))

        @app.event("reaction_added")
        async def reaction(event: dict[str, Any]) -> None:
            item = event.get("item") or {}
            if item.get("type") == "message":
                later(reacted(event["user"], event["reaction"], MessageRef(item["channel"], item["ts"])))

        @app.event("reaction_removed")
        async def ignore(event: dict[str, Any]) -> None:
            pass

        @app.action(re.compile(r"^backport_(approve|reject|retry)$"))
        async def button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            message = body.get("message") or {}
            channel = (body.get("channel") or {}).get("id", "")
            later(reacted(body["user"]["id"], BUTTONS[action["value"]][2],
                          MessageRef(channel, message.get("ts", ""), message.get("thread_ts"))))
