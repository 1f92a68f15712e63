"""`backportbot doctor`, also run by `serve` before it starts: one real call per configured
integration, one line per check, and for each failure the exact fix. A wrong token is found at
start, in words, not by the first person whose backport fails.

It sits beside the composition root (bot/app.py), whose builders it uses: what it checks is what
`serve` would run with."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import discord

from adapters.chat import discord as discord_chat
from adapters.chat import slack as slack_chat
from adapters.forge.github import GitHubForge
from adapters.store.sqlite import SQLiteStore
from bot import app as app_mod
from bot import config as config_mod
from bot.core.lease import HEARTBEAT
from bot.core.lease import alive as lease_alive
from bot.core.ports import Unavailable
from bot.engine.errors import BadInput
from bot.engine.git import Git, GitError, brief
from bot.engine.workspace import CREDENTIALS_HINT, refused, remote_branches
from bot.secrets import Secrets, value


@dataclass(frozen=True)
class Check:
    name: str  # what was checked: "slack", "github acme/server", "git server", ...
    ok: bool
    detail: str  # what was found, or what failed
    fix: str = ""  # on failure: exactly what to do
    required: bool = True  # False: the bot runs without it (the model: conflicts go to people)

    def line(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        return f"{mark} {self.name}: {self.detail}" + (f"\n     fix: {self.fix}" if self.fix and not self.ok else "")


Probe = Callable[[], Awaitable[list[Check]]]


async def run(cfg: config_mod.Config, secrets: Secrets) -> list[Check]:
    """Every check the config calls for, in a fixed order; network calls run concurrently."""
    probes: list[Probe] = []
    if "slack" in cfg.chat.adapters:
        probes.append(lambda: _slack(cfg, secrets))
    if "discord" in cfg.chat.adapters:
        probes.append(lambda: _discord(secrets))
    if cfg.forge.adapter == "github":
        probes.append(lambda: asyncio.to_thread(_github, cfg, secrets))
    probes.append(lambda: asyncio.to_thread(remotes, cfg, secrets))
    if cfg.llm.enabled:
        probes.append(lambda: asyncio.to_thread(_model, cfg, secrets))
    probes.append(lambda: asyncio.to_thread(_sandbox, cfg))
    found = await asyncio.gather(*(p() for p in probes))
    return [c for checks in found for c in checks]


def report(checks: list[Check]) -> str:
    failed = [c for c in checks if not c.ok and c.required]
    tail = (f"{len(failed)} required check{'s' if len(failed) > 1 else ''} failed: the bot cannot start."
            if failed else "Every required check passed.")
    return "\n".join([*(c.line() for c in checks), tail])


def passed(checks: list[Check]) -> bool:
    return all(c.ok or not c.required for c in checks)


# --- one function per integration ------------------------------------------------------------------


async def _slack(cfg: config_mod.Config, secrets: Secrets) -> list[Check]:
    token = value(secrets.slack_bot_token)
    if not token:
        return [Check("slack", False, "SLACK_BOT_TOKEN is not set",
                      "set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions)")]
    web = slack_chat.client(token, secrets.slack_api_url)
    checks: list[Check] = []
    try:
        me = await slack_chat.call(web, "auth_test")
        checks.append(Check("slack", True, f"bot token works: {me.get('user')} ({me.get('user_id')}) in "
                                           f"{me.get('team')}"))
    except Unavailable as e:
        checks.append(Check("slack", False, f"auth.test failed: {e}",
                            "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into "
                            "SLACK_BOT_TOKEN, and reinstall the app if its scopes changed"))
    if cfg.chat.slack.mode == "socket":
        app_token = value(secrets.slack_app_token)
        if not app_token:
            checks.append(Check("slack socket mode", False, "SLACK_APP_TOKEN is not set",
                                "create an app-level token with connections:write (Basic Information → App-Level "
                                "Tokens) and set SLACK_APP_TOKEN, or use [chat.slack] mode = \"http\""))
        else:
            try:
                opened = await slack_chat.call(web, "apps_connections_open", app_token=app_token)
                greeting = await _socket_hello(str(opened.get("url") or ""))
                checks.append(Check("slack socket mode", greeting is None,
                                    greeting or "app token opens a Socket Mode connection; Slack said hello",
                                    "check this machine's network access to wss-primary.slack.com"))
            except Unavailable as e:
                checks.append(Check("slack socket mode", False, f"apps.connections.open failed: {e}",
                                    "SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write, "
                                    "and Socket Mode must be on (Settings → Socket Mode)"))
    elif not value(secrets.slack_signing_secret):
        checks.append(Check("slack http mode", False, "SLACK_SIGNING_SECRET is not set",
                            "copy the Signing Secret (Basic Information → App Credentials) into SLACK_SIGNING_SECRET"))
    else:
        checks.append(Check("slack http mode", True, "signing secret set; requests are verified with it"))
    return checks


async def _socket_hello(url: str) -> str | None:
    """Connect to the Socket Mode URL as the bot will and wait for Slack's `hello`; None when it
    came, else what went wrong. The connection is closed at once (Slack allows several)."""
    try:
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.ws_connect(url) as ws:
            msg = await ws.receive(timeout=10)
            said = json.loads(msg.data).get("type") if msg.type == aiohttp.WSMsgType.TEXT else None
            return None if said == "hello" else f"the Socket Mode connection opened but said {said!r}, not hello"
    except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as e:
        return f"the Socket Mode connection to {url.split('?')[0] or '(no URL)'} failed ({type(e).__name__})"


async def _discord(secrets: Secrets) -> list[Check]:
    token = value(secrets.discord_token)
    if not token:
        return [Check("discord", False, "DISCORD_TOKEN is not set",
                      "set DISCORD_TOKEN to the bot's token (Developer Portal → your app → Bot → Reset Token)")]
    client = discord_chat.make_client()
    try:
        await client.login(token)  # GET /users/@me, as at start
        user = client.user
        return [Check("discord", True, f"logged in as {user} ({user.id if user else '?'})")]
    except discord.LoginFailure:
        return [Check("discord", False, "Discord refused the token (401)",
                      "reset the bot's token (Developer Portal → your app → Bot → Reset Token) and set DISCORD_TOKEN")]
    except (discord.HTTPException, OSError, TimeoutError) as e:
        return [Check("discord", False, f"Discord could not be reached ({type(e).__name__}: {e})",
                      "check the machine's network access to discord.com")]
    finally:
        await client.close()


def _github(cfg: config_mod.Config, secrets: Secrets) -> list[Check]:
    try:
        credentials = app_mod.github_credentials(cfg, secrets)
    except BadInput as e:
        return [Check("github", False, str(e), "set GITHUB_TOKEN (a token with contents and pull request write "
                                               "access), or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and "
                                               "GITHUB_APP_INSTALLATION_ID")]
    assert credentials is not None
    forge = GitHubForge(credentials)
    checks: list[Check] = []
    try:
        kind = "GitHub App installation token" if credentials.app_based else "token"
        credentials.token()
        checks.append(Check("github", True, f"{kind} accepted by {credentials.api_url}"))
    except Unavailable as e:
        return [Check("github", False, str(e), _GITHUB_FIX)]
    for spec in cfg.repos:
        if not spec.github:
            continue
        try:
            missing = forge.missing_permissions(spec.github)
        except Unavailable as e:
            checks.append(Check(f"github {spec.github}", False, str(e), _GITHUB_FIX))
            continue
        checks.append(Check(f"github {spec.github}", not missing,
                            f"missing permissions: {', '.join(missing)}" if missing
                            else "the repository is reachable with every permission the bot needs",
                            "give the token (or the App) these permissions on the repository"))
    return checks


_GITHUB_FIX = ("check GITHUB_TOKEN (or the App's id, key and installation id) and that it can see the repository; "
               "GITHUB_API_URL must be https://HOST/api/v3 on GitHub Enterprise Server")


def remotes(cfg: config_mod.Config, secrets: Secrets) -> list[Check]:
    """Each remote answers `git ls-remote` with the bot's credentials, and has the configured
    branches (a local repository's own branches were checked with the config)."""
    try:
        auth = app_mod.git_auth(app_mod.github_credentials(cfg, secrets))
    except (BadInput, Unavailable):
        auth = None  # reported by the GitHub check; a public remote still answers
    checks = []
    for spec in cfg.repos:
        name = f"git {spec.name}"
        url = spec.url or (Git(spec.path).run("remote", "get-url", "origin", check=False).stdout.strip()
                           if spec.path else None)
        if not url:
            checks.append(Check(name, True, f"local repository {spec.path}, no remote"))
            continue
        try:
            branches = set(remote_branches(url, auth))
        except GitError as e:  # refused: fatal; unreachable: maybe only for now (fetches are retried)
            fix = CREDENTIALS_HINT if refused(e.stderr) else "check the URL and this machine's network access to it"
            checks.append(Check(name, False, f"git ls-remote {url} failed: {brief(e.stderr)}", fix,
                                required=refused(e.stderr)))
            continue
        wanted = [spec.main_branch, *(b.git_branch for b in spec.branches)]
        absent = [b for b in wanted if b not in branches] if spec.url else []
        checks.append(Check(name, not absent,
                            f"{url}: missing branch{'es' if len(absent) > 1 else ''} {', '.join(absent)}" if absent
                            else f"{url} answers" + (f" with every configured branch ({len(wanted)})" if spec.url
                                                     else " (its origin)"),
                            "fix the branch names in [[repos.branches]] (git_branch when it differs from the name)"))
    return checks


def _model(cfg: config_mod.Config, secrets: Secrets) -> list[Check]:
    model = app_mod.openai_model(cfg.llm.model, min(cfg.llm.timeout, 30), secrets)
    problem = model.check()
    where = secrets.openai_base_url or "OpenAI"
    if problem is None:
        return [Check("model", True, f"{cfg.llm.model} at {where} answers", required=False)]
    return [Check("model", False, f"{cfg.llm.model} at {where}: {problem}",
                  "check OPENAI_BASE_URL, OPENAI_API_KEY and [llm] model; until then conflicts the rules cannot "
                  "settle go to people", required=False)]


def _sandbox(cfg: config_mod.Config) -> list[Check]:
    line = app_mod.isolation_line(cfg).removeprefix("isolation: ")
    runs = any(r.commands and r.verify == "local" for r in cfg.repos)
    if "NOT WORKING" not in line:
        return [Check("sandbox", True, line)]
    return [Check("sandbox", False, line, "install bubblewrap (apt install bubblewrap) or allow user namespaces; "
                                          "or set [bot] isolation = \"none\" to run build and tests unisolated",
                  required=runs)]


def health(data_dir: Path) -> tuple[bool, str]:
    """For a container's health check: whether a bot on this machine is running and renewing its
    lease (a stuck or crashed process stops doing so)."""
    path = data_dir / "backportbot.db"
    if not path.exists():
        return False, f"unhealthy: no database at {path}: the bot has not started here"
    now = time.time()
    for lease in SQLiteStore(path).leases_on(socket.gethostname()):
        if lease_alive(lease, now, ttl=2 * HEARTBEAT + 5):
            return True, f"healthy: pid {lease.pid}, heartbeat {now - lease.heartbeat_at:.0f} s ago"
    return False, "unhealthy: no running bot renewed its lease in the last 25 s"
