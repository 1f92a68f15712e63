"""`POST /github/webhook`: signed deliveries from GitHub, handled once each.

- `pull_request` closed and merged with labels matching the pattern (default `backport/<branch>`),
  or labelled so after the merge: backport to those branches;
- `issue_comment` with `/backport ...` on a pull request: the full grammar, for people with write
  access; anyone else gets a polite refusal. Answers are comments on that pull request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Protocol

from aiohttp import web
from githubkit.webhooks import sign, verify

from adapters.background import Background
from adapters.forge.github import GitHubForge
from bot.core.ports import Bot, Incoming, MessageRef
from bot.core.repos import Repo

log = logging.getLogger(__name__)


class Deliveries(Protocol):
    def first_delivery(self, source: str, delivery_id: str) -> bool: ...


def signature(secret: str, body: bytes) -> str:
    """GitHub's X-Hub-Signature-256 of a body (githubkit's implementation)."""
    return str(sign(secret, body, method="sha256"))


def valid(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time comparison of GitHub's X-Hub-Signature-256 with ours (githubkit's)."""
    return bool(header) and bool(verify(secret, body, header or ""))


def label_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(re.escape("{branch}"), "(?P<branch>.+)") + "$")


class GitHubCommentChat:
    """The Chat port on a pull request's comments: post = comment, update = edit the comment."""

    def __init__(self, forge: GitHubForge, repos: dict[str, Repo]) -> None:
        self.forge = forge
        self.repos = repos  # github slug -> Repo

    def _target(self, channel: str) -> tuple[Repo, int]:
        slug, _, number = channel.removeprefix("github:").partition("#")
        return self.repos[slug], int(number)

    async def post(self, channel: str, text: str, thread: str | None = None,
                   buttons: tuple[str, ...] = ()) -> MessageRef:
        repo, number = self._target(channel)
        comment_id = await asyncio.to_thread(self.forge.comment, repo, number, text)
        return MessageRef(channel, str(comment_id), thread)

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None) -> None:
        await self.post(channel, f"@{user} {text}", thread)

    async def update(self, message: MessageRef, text: str) -> None:
        repo, _ = self._target(message.channel)
        await asyncio.to_thread(self.forge.edit_comment, repo, int(message.id), text)


class GitHubWebhook:
    def __init__(self, bot: Bot, forge: GitHubForge, deliveries: Deliveries, secret: str,
                 repos: dict[str, str], label_pattern: str = "backport/{branch}",
                 comments: GitHubCommentChat | None = None) -> None:
        self.bot, self.forge, self.deliveries, self.secret = bot, forge, deliveries, secret
        self.repos = repos  # github slug -> the bot's repository key
        self.labels = label_regex(label_pattern)
        self.comments = comments
        self.background = Background()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/github/webhook", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not valid(self.secret, body, request.headers.get("X-Hub-Signature-256")):
            return web.Response(status=401, text="bad signature")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        if delivery and not self.deliveries.first_delivery("github", delivery):
            return web.Response(status=200, text="already handled")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="the body is not JSON")
        self.background.later(self._dispatch(event, payload))  # answer GitHub at once
        return web.Response(status=202, text="accepted")

    async def drain(self) -> None:
        await self.background.drain()

    def _repo(self, payload: dict[str, Any]) -> str | None:
        return self.repos.get((payload.get("repository") or {}).get("full_name", ""))

    async def _dispatch(self, event: str, payload: dict[str, Any]) -> None:
        try:
            if event == "pull_request":
                await self._pull_request(payload)
            elif event == "issue_comment":
                await self._comment(payload)
            elif event in ("check_run", "check_suite") and payload.get("action") == "completed":
                suite = payload.get("check_suite") or (payload.get("check_run") or {}).get("check_suite") or {}
                repo = self._repo(payload)
                if repo is not None and suite.get("head_branch"):
                    await self.bot.checks_changed(repo, suite["head_branch"])
        except Exception:
            log.exception("webhook %s failed", event)

    async def _pull_request(self, payload: dict[str, Any]) -> None:
        pr = payload.get("pull_request") or {}
        repo = self._repo(payload)
        if repo is None:
            return
        action = payload.get("action")
        if action == "closed" and (pr.get("head") or {}).get("ref", "").startswith("backport/"):
            await self.bot.pr_closed(repo, pr["head"]["ref"], bool(pr.get("merged")))
            return
        if not pr.get("merged"):
            return
        if action == "closed":
            names = [label["name"] for label in pr.get("labels", [])]
        elif action == "labeled":
            names = [(payload.get("label") or {}).get("name", "")]
        else:
            return
        number = pr["number"]
        if action == "closed":
            await self.bot.merged(repo, number, pr.get("title") or "", names)  # a security fix: not next week
        branches = [m.group("branch") for n in names if (m := self.labels.match(n))]
        if not branches:
            return
        sender = (payload.get("sender") or {}).get("login", "github")
        slug = (payload.get("repository") or {}).get("full_name", "")
        await self.bot.handle(Incoming(sender, f"/backport {number} to {' '.join(branches)}",
                                       f"github:{slug}#{number}", maintainer=True))

    async def _comment(self, payload: dict[str, Any]) -> None:
        issue = payload.get("issue") or {}
        comment = payload.get("comment") or {}
        text = (comment.get("body") or "").strip()
        slug = (payload.get("repository") or {}).get("full_name", "")
        if (payload.get("action") != "created" or slug not in self.repos or "pull_request" not in issue
                or not text.lower().startswith("/backport")):
            return
        user = (comment.get("user") or {}).get("login", "")
        if (comment.get("user") or {}).get("type") == "Bot":
            return  # never answer bots (ourselves included)
        channel = f"github:{slug}#{issue['number']}"
        # `/backport 1234 to 8.1` on PR #1234 and `/backport to 8.1` both mean this PR.
        if re.match(r"^/backport\s+to\s", text, re.I):
            text = re.sub(r"^/backport\s+", f"/backport {issue['number']} ", text, flags=re.I)
        allowed = await asyncio.to_thread(self.forge.can_write, slug, user)
        if not allowed:
            if self.comments is not None:
                await self.comments.post(channel, f"Sorry @{user}, only people with write access to "
                                                  f"{slug} can use /backport.")
            return
        await self.bot.handle(Incoming(user, text, channel, maintainer=True))
