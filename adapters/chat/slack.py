"""Slack through slack-bolt (async): `/backport` slash commands, @-mentions and DMs with the same
grammar, progress in a thread edited with chat.update (Block Kit), approval by reaction or
button, Socket Mode (default) or HTTP mode on `/slack/events`."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.web import body_of
from bot.core import people
from bot.core.ports import Bot, Incoming, MessageRef, Reaction, Unavailable, Unreachable

log = logging.getLogger(__name__)


DEFAULT_API = "https://slack.com/api/"
BUTTONS = {"approve": ("✅ Approve", "primary", "white_check_mark"), "reject": ("❌ Reject", "danger", "x"),
           "retry": ("🔁 Retry", None, "repeat")}
ACK = "On it: watch the thread I am starting in this channel."
INVITE = "I can't post in this channel: invite me with `/invite @backportbot`."
# Slack's errors that mean "not here" (ask to be invited) and "not with these credentials".
UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action", "not_allowed"}
REFUSED = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "missing_scope",
           "no_permission", "ekm_access_denied"}
MAX_BODY = 1024 * 1024  # Slack's requests are small
MIN_EDIT_INTERVAL = 1.0  # seconds between two edits of one message: Slack's chat.update tier


def client(token: str, api_url: str | None = None) -> AsyncWebClient:
    """A Web API client that waits out 429 answers (Retry-After) instead of failing."""
    web = AsyncWebClient(token=token, base_url=api_url or DEFAULT_API)
    web.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    return web


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, so that text from a PR title, a commit or a person
    (`<!channel>`, `<@U1>`, `<http://x|y>`) is shown, not acted on; only the people the bot
    itself names (bot.core.people) become mentions."""
    return people.show(_literal(text), _person)


def _literal(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _person(user: str) -> str:
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]{2,20}", user) else _literal(user)


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


async def call(web: AsyncWebClient, method: str, **kwargs: Any) -> Any:
    """A Web API call; Slack's failures become the core's Unreachable / Unavailable, in words."""
    try:
        return await getattr(web, method)(**kwargs)
    except SlackApiError as e:
        error = str(e.response.get("error", "error"))
        if error in UNREACHABLE:
            raise Unreachable(INVITE) from None
        if error in REFUSED:
            raise Unavailable(f"Slack refused the bot's credentials ({error}): a maintainer must fix its token "
                              "or scopes.", retry=False) from None
        raise Unavailable(f"Slack answered `{error}` to {method.replace('_', '.')}.") from None
    except (TimeoutError, aiohttp.ClientError, OSError) as e:
        raise Unavailable(f"Slack could not be reached ({type(e).__name__}).") from None


class SlackChat:
    """The Chat port on Slack's Web API."""

    def __init__(self, web: AsyncWebClient, min_edit_interval: float = MIN_EDIT_INTERVAL) -> None:
        self.web = web
        self.min_edit_interval = min_edit_interval
        self._last_edit: dict[str, float] = {}

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        text = escape(text)
        response = await call(self.web, "chat_postMessage", channel=channel, text=text, thread_ts=thread,
                              blocks=blocks(text, buttons))
        return MessageRef(channel, str(response["ts"]), thread)

    async def update(self, message: MessageRef, text: str) -> None:
        """Edits of one message are spaced out. The bot sends one edit at a time per message
        and then the newest text, so a burst of changes becomes one edit a second."""
        key = f"{message.channel}:{message.id}"
        delay = self._last_edit.get(key, 0) + self.min_edit_interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        text = escape(text)
        await call(self.web, "chat_update", channel=message.channel, ts=message.id, text=text, blocks=blocks(text))
        self._last_edit[key] = time.monotonic()

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        """The slash command's response_url first (it works where the bot is not invited), then an
        ephemeral message, then a direct message."""
        text = escape(text)
        if reply:
            try:
                answer = await AsyncWebhookClient(reply).send(text=text, response_type="ephemeral")
                if answer.status_code == 200:
                    return
                log.warning("Slack's response_url answered %s", answer.status_code)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                log.warning("Slack's response_url could not be reached: %s", e)
        try:
            await call(self.web, "chat_postEphemeral", channel=channel, user=user, text=text, thread_ts=thread)
        except Unreachable:
            await call(self.web, "chat_postMessage", channel=user, text=text, blocks=blocks(text))


class GroupMaintainers:
    """Members of a Slack user group count as maintainers. Slack's `subteam_members_changed` events
    keep the list current; it is also read again (usergroups.users.list) once `ttl` seconds have
    passed, the fallback for events missed while the bot was down."""

    def __init__(self, web: AsyncWebClient, group: str | None, ttl: float = 300) -> None:
        self.web, self.group, self.ttl = web, group, ttl
        self._members: set[str] = set()
        self._read_at = float("-inf")
        self._reading: asyncio.Future[None] | None = None
        self._changes: list[tuple[set[str], set[str]]] = []  # events heard while a read was under way

    async def check(self, user: str) -> bool | None:
        """True for a member; None lets the configured list decide. It runs before Slack gets its
        answer, so only the first read is waited for; later ones happen in the background."""
        if self.group is None:
            return None
        if time.monotonic() - self._read_at > self.ttl and (self._reading is None or self._reading.done()):
            self._reading = asyncio.ensure_future(self._read())
        if self._read_at == float("-inf") and self._reading is not None:
            await asyncio.shield(self._reading)  # one first read, however many ask at once
        return True if user in self._members else None

    def changed(self, event: dict[str, Any]) -> None:
        """Slack's `subteam_members_changed` (a delta: added_users, removed_users): applied at once;
        the periodic read is the fallback for an event missed while the bot was down."""
        if self.group is None or event.get("subteam_id") != self.group:
            return
        added = {u for u in event.get("added_users") or [] if isinstance(u, str)}
        removed = {u for u in event.get("removed_users") or [] if isinstance(u, str)}
        self._members = (self._members | added) - removed
        if self._reading is not None and not self._reading.done():
            self._changes.append((added, removed))  # the read under way may answer from before it

    async def _read(self) -> None:
        assert self.group is not None
        self._changes = []
        try:
            answer = await asyncio.wait_for(self.web.usergroups_users_list(usergroup=self.group), 2)
        except SlackApiError as e:  # no_such_subteam, missing_scope (usergroups:read)...
            log.warning("could not read the members of the Slack user group %s: %s", self.group,
                        e.response.get("error", "error"))
            return
        except Exception:
            log.exception("could not read the members of the Slack user group %s", self.group)
            return
        users: list[Any] = answer.get("users") or []
        members = {u for u in users if isinstance(u, str)}
        for added, removed in self._changes:  # in the order Slack sent them: the newest wins
            members = (members | added) - removed
        self._members, self._changes = members, []
        self._read_at = time.monotonic()


def well_formed(body: dict[str, Any]) -> bool:
    """Whether a signed request has the fields our listeners read, of the types Slack sends: Slack
    never sends less, so anything else is answered 400 here instead of failing in a listener."""
    def text(d: Any, *keys: str) -> bool:
        return isinstance(d, dict) and all(isinstance(d.get(k), str) for k in keys)

    if "command" in body:
        return text(body, "user_id", "channel_id") and isinstance(body.get("text", ""), str)
    if body.get("type") == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return False
        if event["type"] in ("app_mention", "message"):
            return (event.get("subtype") is not None or text(event, "user", "channel")) \
                and isinstance(event.get("text", ""), str)
        if event["type"] in ("reaction_added", "reaction_removed"):
            item = event.get("item")
            return text(event, "user", "reaction") and isinstance(item, dict) \
                and (item.get("type") != "message" or text(item, "channel", "ts"))
        return True
    if body.get("type") == "block_actions":
        actions = body.get("actions")
        return text(body.get("user"), "id") and isinstance(actions, list) and bool(actions) \
            and all(isinstance(a, dict) and (not str(a.get("action_id", "")).startswith("backport_")
                                             or a.get("value") in BUTTONS) for a in actions)
    return True  # url_verification, ssl_check...: Bolt answers those itself


class SlackEvents:
    """slack-bolt's app with our handlers: commands, mentions, DMs, reactions and buttons. Each is
    stored in the bot's inbox before Slack gets its answer (Bolt answers after the listener,
    `process_before_response`), and handled in the background."""

    def __init__(self, bot: Bot, web: AsyncWebClient, signing_secret: str | None,
                 maintainer_group: str | None = None) -> None:
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.app = AsyncApp(client=web, signing_secret=signing_secret, process_before_response=True,
                            request_verification_enabled=signing_secret is not None)
        self.maintainers = GroupMaintainers(web, maintainer_group)
        self._register(bot)

    async def http(self, request: web.Request) -> web.Response:
        """`POST /slack/events` (HTTP mode): the signature is checked before Bolt parses anything,
        and a signed body Bolt cannot read is a 400, never a 500 with a traceback."""
        if (request.content_length or 0) > MAX_BODY:
            return web.Response(status=413, text="too large for a Slack request")
        body = await body_of(request)
        if body is None:
            return web.Response(status=400, text="unreadable body")
        try:
            signed = self.verifier is not None and self.verifier.is_valid_request(body, dict(request.headers))
        except (ValueError, TypeError, OverflowError):  # a timestamp that is no integer, a body that is no UTF-8
            signed = False
        if not signed:
            return web.Response(status=401, text="invalid signature")
        try:
            bolt_request = await to_bolt_request(request)
            readable = well_formed(bolt_request.body)
        except (ValueError, TypeError, AttributeError, KeyError):
            readable = False
        if not readable:
            return web.Response(status=400, text="not a Slack request")
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    def _register(self, bot: Bot) -> None:
        app, maintainers = self.app, self.maintainers

        async def incoming(key: str | None, user: str, text: str, channel: str, thread: str | None = None,
                           reply: str | None = None) -> None:
            await bot.deliver("slack", key, Incoming(user, text, channel, thread, await maintainers.check(user),
                                                     reply=reply))

        async def reacted(key: str | None, user: str, emoji: str, message: MessageRef) -> None:
            await bot.deliver("slack", key, Reaction(user, emoji, message, await maintainers.check(user)))

        @app.command("/backport")
        async def slash(ack: Any, command: dict[str, Any]) -> None:
            # Slack does not redeliver commands; the trigger id still names this one.
            await incoming(command.get("trigger_id"), command["user_id"], "/backport " + command.get("text", ""),
                           command["channel_id"], reply=command.get("response_url"))
            await ack(ACK)  # within Slack's 3 seconds, once stored

        @app.event("app_mention")
        async def mention(body: dict[str, Any], event: dict[str, Any]) -> None:
            text = re.sub(r"^\s*<@[\w]+>\s*", "", event.get("text", ""))
            await incoming(body.get("event_id"), event["user"], text, event["channel"], event.get("thread_ts"))

        @app.event("message")
        async def direct(body: dict[str, Any], event: dict[str, Any]) -> None:
            if event.get("channel_type") == "im" and not event.get("bot_id") and not event.get("subtype"):
                await incoming(body.get("event_id"), event["user"], event.get("text", ""), event["channel"])

        @app.event("reaction_added")
        async def reaction(body: dict[str, Any], event: dict[str, Any]) -> None:
            item = event.get("item") or {}
            if item.get("type") == "message":
                await reacted(body.get("event_id"), event["user"], event["reaction"],
                              MessageRef(item["channel"], item["ts"]))

        @app.event("reaction_removed")
        async def ignore(event: dict[str, Any]) -> None:
            pass

        @app.event("subteam_members_changed")
        async def group_changed(event: dict[str, Any]) -> None:
            maintainers.changed(event)

        @app.action(re.compile(r"^backport_(approve|reject|retry)$"))
        async def button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            message = body.get("message") or {}
            channel = (body.get("channel") or {}).get("id", "")
            await reacted(f"action:{body.get('trigger_id') or action.get('action_ts')}", body["user"]["id"],
                          BUTTONS[action["value"]][2],
                          MessageRef(channel, message.get("ts", ""), message.get("thread_ts")))
            await ack()
