"""A local Slack Web API: records every call with its arguments, answers like Slack does, and
can be told to answer one call with 429 first, to answer every call after a delay (Slack's
latency), or to answer `not_in_channel` for channels the bot was not invited to. Given the scopes
a bot token was granted (`scopes`), a method needing another answers `missing_scope` with
`needed` and `provided`, as Slack does; an unknown user group answers `no_such_subteam`. It also
serves slash commands' response_url (`response_url(name)`), recording what is posted there."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fake_http import serve, stop

# The bot token scope each Web API method needs (Slack's method pages); None: no scope.
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None, "chat.postMessage": "chat:write", "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write", "chat.delete": "chat:write", "usergroups.users.list": "usergroups:read",
    "usergroups.list": "usergroups:read", "reactions.add": "reactions:write", "reactions.get": "reactions:read",
    "conversations.info": "channels:read", "conversations.history": "channels:history",
    "conversations.open": "im:write", "users.info": "users:read",
}


@dataclass
class FakeSlack:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rate_limit_once: set[str] = field(default_factory=set)
    groups: dict[str, list[str]] = field(default_factory=dict)
    socket_url: str = ""  # what apps.connections.open hands out (Socket Mode)
    url: str = ""
    delay: float = 0.0  # seconds every Web API call waits before its answer (concurrent calls overlap)
    not_in_channel: set[str] = field(default_factory=set)  # channels where posting answers not_in_channel
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, body) posted to a response_url
    valid_tokens: set[str] | None = None  # None: any token; else others get `invalid_auth`, as Slack answers
    scopes: set[str] | None = None  # None: every scope; else what the bot token was granted (the manifest's)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ts = 1_700_000_000.0
        self.server, self.base = serve(self._handle)
        self.url = f"{self.base}/api/"

    def response_url(self, name: str) -> str:
        """A slash command's response_url; what the bot posts there is recorded in `responses`."""
        return f"{self.base}/response/{name}"

    def close(self) -> None:
        stop(self.server)

    def _handle(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        path, _, query = target.partition("?")
        text = raw.decode()
        if headers.get("content-type", "").startswith("application/json"):
            args = json.loads(text or "{}")
        else:  # a form, or the query of a GET (slack_sdk reads some methods with GET)
            args = {k: v[0] for k, v in parse_qs(text or query).items()}
        if path.startswith("/response/"):
            with self._lock:
                self.responses.append((path.removeprefix("/response/"), args))
            return 200, {}, None  # Slack answers "ok" as text/plain
        if self.delay:
            time.sleep(self.delay)
        token = headers.get("authorization", "").removeprefix("Bearer ") or args.get("token", "")
        method = path.rsplit("/", 1)[-1]
        with self._lock:
            if self.valid_tokens is not None and token not in self.valid_tokens:
                self.calls.append((method + " (invalid_auth)", args))
                return 200, {}, {"ok": False, "error": "invalid_auth"}  # Slack says so in a 200
            if method == "apps.connections.open" and not token.startswith("xapp-"):
                self.calls.append((method + " (not_allowed_token_type)", args))
                return 200, {}, {"ok": False, "error": "not_allowed_token_type"}
            return self._answer(method, args)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [args for m, args in self.calls if m == method]

    def _answer(self, method: str, args: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if method in self.rate_limit_once:
            self.rate_limit_once.discard(method)
            self.calls.append((method + " (429)", args))
            return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
        needed = METHOD_SCOPES.get(method)
        if self.scopes is not None and needed is not None and needed not in self.scopes:
            self.calls.append((method + " (missing_scope)", args))
            provided = ",".join(sorted(self.scopes))
            return 200, {"X-OAuth-Scopes": provided, "X-Accepted-OAuth-Scopes": needed}, \
                {"ok": False, "error": "missing_scope", "needed": needed, "provided": provided}
        if method in ("chat.postMessage", "chat.postEphemeral") and args.get("channel") in self.not_in_channel:
            self.calls.append((method + " (not_in_channel)", args))
            return 200, {}, {"ok": False, "error": "not_in_channel"}
        self.calls.append((method, args))
        if method == "auth.test":
            return 200, {}, {"ok": True, "url": "https://acme.slack.com/", "team": "acme", "user": "backportbot",
                             "team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT", "is_enterprise_install": False}
        if method == "chat.postMessage":
            self._ts += 1
            ts = f"{self._ts:.6f}"
            args["__ts"] = ts  # so that a test can react to this message
            return 200, {}, {"ok": True, "channel": args["channel"], "ts": ts,
                             "message": {"text": args.get("text"), "ts": ts, "user": "UBOT"}}
        if method == "chat.update":
            return 200, {}, {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args.get("text")}
        if method == "chat.postEphemeral":
            return 200, {}, {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method == "apps.connections.open":
            return 200, {}, {"ok": True, "url": self.socket_url}
        if method == "usergroups.users.list":
            if args.get("usergroup") not in self.groups:
                return 200, {}, {"ok": False, "error": "no_such_subteam"}
            return 200, {}, {"ok": True, "users": list(self.groups[args["usergroup"]])}
        return 200, {}, {"ok": False, "error": "unknown_method"}


def socket_mode_hello() -> tuple[str, Callable[[], None]]:
    """A websocket that greets as Slack's Socket Mode does (`hello`, then nothing), served from its
    own thread: the URL to hand out from apps.connections.open, and how to stop it."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    where: list[str] = []

    async def link(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "local"},
                            "connection_info": {"app_id": "A1"}})
        async for _ in ws:
            pass
        return ws

    async def start() -> web.AppRunner:
        app = web.Application()
        app.add_routes([web.get("/link", link)])
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        where.append(f"ws://127.0.0.1:{runner.addresses[0][1]}/link")
        return runner

    def serve_forever() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve_forever, daemon=True)
    thread.start()
    ready.wait(10)

    def close() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return where[0], close
