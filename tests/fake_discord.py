"""A local server for the Discord HTTP API calls the bot makes; records each with its body."""

from __future__ import annotations

import itertools
import json
import threading
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


@dataclass
class FakeDiscord:
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)  # (message id, content) in order
    url: str = ""

    def __post_init__(self) -> None:
        self._ids = itertools.count(10_000)
        self._lock = threading.Lock()
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
        with self._lock:
            self.calls.append((verb, path, body))
            status, payload = self._answer(verb, path, body)
        return status, {}, payload

    def _new(self, channel: str, content: str) -> dict[str, Any]:
        mid = str(next(self._ids))
        self.created.append((mid, content))
        return message(mid, channel, content)

    def of(self, method: str, fragment: str) -> list[tuple[str, Any]]:
        return [(path, body) for m, path, body in self.calls if m == method and fragment in path]

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return 200, BOT
        if path == "/oauth2/applications/@me":
            return 200, {"id": "999", "name": "backportbot", "icon": None, "description": "", "bot_public": True,
                         "bot_require_code_grant": False, "owner": BOT, "verify_key": "00", "flags": 0,
                         "team": None, "rpc_origins": [], "summary": ""}
        if parts[0] == "interactions":
            return 200, {"interaction": {"id": parts[1], "type": 2, "activity_instance_id": None,
                                         "response_message_id": None, "response_message_loading": True,
                                         "response_message_ephemeral": False}}
        if parts[0] == "webhooks":
            return 200, self._new("500", (body or {}).get("content", ""))
        if parts[0] == "channels" and parts[-1] == "threads":
            return 201, {"id": parts[3], "type": 11, "guild_id": "400", "name": body.get("name", ""),
                         "parent_id": parts[1], "owner_id": "999", "message_count": 0, "member_count": 1,
                         "rate_limit_per_user": 0, "thread_metadata": {"archived": False,
                                                                       "auto_archive_duration": 1440,
                                                                       "archive_timestamp": "2026-11-21T10:00:00+00:00",
                                                                       "locked": False}}
        if parts[0] == "channels" and parts[-1] == "messages" and method == "POST":
            return 200, self._new(parts[1], body.get("content", ""))
        if parts[0] == "channels" and method == "PATCH":
            return 200, message(parts[3], parts[1], body.get("content", ""))
        return 404, {"message": "Unknown", "code": 0}
