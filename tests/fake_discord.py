"""A local server for the Discord HTTP API calls the bot makes; records each with its body and the
status it answered. It answers as Discord does where the bot can get it wrong: an edit of a
message in a channel it is not in (404 Unknown Message), a post in a channel the bot may not use
(403 Missing Access), a second thread from one message, a thread in a DM, an interaction
follow-up before the interaction was acknowledged (404 Unknown Webhook), and `allowed_mentions`
that both parse users and list some (400 Invalid Form Body). It works out who each new message
notifies as Discord does (`pinged`): the `<@id>` and `@everyone` in its content that its
`allowed_mentions` allows, all of them when it has none; an edit notifies nobody."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fake_http import serve, stop

BOT = {"id": "999", "username": "backportbot", "discriminator": "0", "avatar": None, "global_name": None,
       "bot": True}


def message(mid: str, channel: str, content: str) -> dict[str, Any]:
    return {"id": mid, "channel_id": channel, "type": 0, "content": content, "author": BOT,
            "timestamp": "2026-11-21T10:00:00+00:00", "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": [], "embeds": [],
            "pinned": False, "flags": 0, "components": []}


UNKNOWN_MESSAGE = {"message": "Unknown Message", "code": 10008}
MISSING_ACCESS = {"message": "Missing Access", "code": 50001}
ON_DM = {"message": "Cannot execute action on a DM channel", "code": 50003}
UNKNOWN_WEBHOOK = {"message": "Unknown Webhook", "code": 10015}
THREAD_EXISTS = {"message": "A thread has already been created for this message", "code": 160004}
PARSE_EXCLUSIVE = {"message": "Invalid Form Body", "code": 50035, "errors": {"allowed_mentions": {"_errors": [
    {"code": "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
     "message": "parse:[\"users\"] and users: [ids...] are mutually exclusive."}]}}}
TOO_MANY_USERS = {"message": "Invalid Form Body", "code": 50035, "errors": {"allowed_mentions": {"users": {"_errors": [
    {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 100 or fewer in length."}]}}}}


def notified(content: str, allowed: dict[str, Any] | None) -> set[str]:
    """Who a new message notifies: user ids, and "@everyone" for @everyone / @here. A mention
    escaped with a backslash or inside a code span is text."""
    shown = re.sub(r"```.*?```|`[^`]*`", "", content, flags=re.S)
    users = set(re.findall(r"(?<!\\)<@!?(\d+)>", shown))
    everyone = {"@everyone"} if re.search(r"(?<!\\)@(everyone|here)\b", shown) else set()
    if allowed is None:  # no allowed_mentions: Discord parses every kind
        return users | everyone
    parse = allowed.get("parse") or []
    listed = {str(u) for u in allowed.get("users") or []}
    return {u for u in users if "users" in parse or u in listed} | (everyone if "everyone" in parse else set())


@dataclass
class FakeDiscord:
    calls: list[tuple[str, str, Any, int]] = field(default_factory=list)  # (verb, path, body, status answered)
    created: list[tuple[str, str]] = field(default_factory=list)  # (message id, content) in order
    forbidden: set[str] = field(default_factory=set)  # channels the bot may not post in
    dm_channels: set[str] = field(default_factory=set)  # channels that are DMs (opened ones are added)
    # Called with (verb, path) before each answer, in the server's thread: a test looks at the bot's
    # state at the moment Discord hears from it.
    on_call: Callable[[str, str], None] | None = None
    interaction_channel: str = "500"  # where the tests' commands are used: follow-ups appear there
    ack_latency: float = 0.0  # seconds Discord takes to answer an interaction's acknowledgement
    valid_token: str | None = None  # None: any token; else a request with another gets 401, as Discord answers
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(10_000)
        self._lock = threading.Lock()
        self.channel_of: dict[str, str] = {}  # message id -> the channel it was posted in
        self.threads: set[str] = set()
        self.acknowledged: set[str] = set()  # interaction tokens
        self.pinged: dict[str, set[str]] = {}  # message id -> who it notified
        self.server, base = serve(self._handle)
        self.url = f"{base}/api/v10"

    def close(self) -> None:
        stop(self.server)

    def _handle(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        json_body = raw and headers.get("content-type", "").startswith("application/json")
        body: Any = json.loads(raw) if json_body else raw.decode()
        if isinstance(body, str) and "payload_json" in body:  # multipart: pick the JSON part
            body = json.loads(body[body.index("{"):body.rindex("}") + 1])
        path = target.split("?")[0].removeprefix("/api/v10")
        if self.on_call is not None:
            self.on_call(verb, path)
        if path.startswith("/interactions/"):
            time.sleep(self.ack_latency)  # in this request's own thread: other calls go on meanwhile
        with self._lock:
            if self.valid_token is not None and headers.get("authorization") != f"Bot {self.valid_token}" \
                    and not path.startswith(("/interactions/", "/webhooks/")):
                status, payload = 401, {"message": "401: Unauthorized", "code": 0}  # as Discord answers
            else:
                status, payload = self._answer(verb, path, body)
            self.calls.append((verb, path, body, status))
        return status, {}, payload

    def _new(self, channel: str, content: str) -> dict[str, Any]:
        mid = str(next(self._ids))
        self.created.append((mid, content))
        self.channel_of[mid] = channel
        return message(mid, channel, content)

    def of(self, method: str, fragment: str, status: int | None = None) -> list[tuple[str, Any]]:
        return [(path, body) for m, path, body, answered in self.calls
                if m == method and fragment in path and status in (None, answered)]

    def follow_ups(self) -> list[dict[str, Any]]:
        """What was posted to interactions' webhooks and accepted (flags 64: ephemeral)."""
        return [body for _, body in self.of("POST", "/webhooks/", status=200)]

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return 200, BOT
        if path == "/oauth2/applications/@me":
            return 200, {"id": "999", "name": "backportbot", "icon": None, "description": "", "bot_public": True,
                         "bot_require_code_grant": False, "owner": BOT, "verify_key": "00", "flags": 0,
                         "team": None, "rpc_origins": [], "summary": ""}
        if path == "/users/@me/channels":  # open a DM
            dm = str(next(self._ids))
            self.dm_channels.add(dm)
            return 200, {"id": dm, "type": 1, "last_message_id": None,
                         "recipients": [{**BOT, "id": body["recipient_id"], "bot": False}]}
        if parts[0] == "interactions":
            self.acknowledged.add(parts[2])
            return 200, {"interaction": {"id": parts[1], "type": 2, "activity_instance_id": None,
                                         "response_message_id": None, "response_message_loading": True,
                                         "response_message_ephemeral": False}}
        if parts[0] == "webhooks":
            if parts[2] not in self.acknowledged:
                return 404, UNKNOWN_WEBHOOK
            return 200, self._new(self.interaction_channel, (body or {}).get("content", ""))
        if parts[0] != "channels":
            return 404, {"message": "404: Not Found", "code": 0}
        channel = parts[1]
        if channel in self.forbidden:
            return 403, MISSING_ACCESS
        if parts[-1] == "threads":
            if channel in self.dm_channels:
                return 403, ON_DM
            if self.channel_of.get(parts[3]) != channel:
                return 404, UNKNOWN_MESSAGE
            if parts[3] in self.threads:
                return 400, THREAD_EXISTS
            self.threads.add(parts[3])
            return 201, {"id": parts[3], "type": 11, "guild_id": "400", "name": body.get("name", ""),
                         "parent_id": channel, "owner_id": "999", "message_count": 0, "member_count": 1,
                         "rate_limit_per_user": 0, "thread_metadata": {"archived": False,
                                                                       "auto_archive_duration": 1440,
                                                                       "archive_timestamp": "2026-11-21T10:00:00+00:00",
                                                                       "locked": False}}
        if parts[-1] == "messages" and method == "POST":
            allowed = body.get("allowed_mentions")
            if allowed is not None and "users" in (allowed.get("parse") or []) and allowed.get("users"):
                return 400, PARSE_EXCLUSIVE
            if allowed is not None and len(allowed.get("users") or []) > 100:
                return 400, TOO_MANY_USERS
            created = self._new(channel, body.get("content", ""))
            self.pinged[created["id"]] = notified(created["content"], allowed)
            return 200, created
        if len(parts) == 4 and parts[2] == "messages" and method == "PATCH":
            if self.channel_of.get(parts[3]) != channel:
                return 404, UNKNOWN_MESSAGE
            return 200, message(parts[3], channel, body.get("content", ""))
        return 404, {"message": "404: Not Found", "code": 0}
