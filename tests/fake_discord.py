"""A local server for the Discord HTTP API calls the bot makes; records each with its body."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = self.headers.get("Content-Type", "")
                body: Any = json.loads(raw) if raw and kind.startswith("application/json") else raw.decode()
                if isinstance(body, str) and "payload_json" in body:  # multipart: pick the JSON part
                    start = body.index("{")
                    body = json.loads(body[start:body.rindex("}") + 1])
                path = self.path.split("?")[0].removeprefix("/api/v10")
                with fake._lock:
                    fake.calls.append((self.command, path, body))
                    status, payload = fake._answer(self.command, path, body)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _handle  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v10"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

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
