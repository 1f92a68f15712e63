"""`POST /github/webhook`: signed deliveries from GitHub, handled once each.

- `pull_request` closed and merged with labels matching the pattern (default `backport/<branch>`),
  or labelled so after the merge: backport to those branches;
- `issue_comment` with `/backport ...` on a pull request: the full grammar, for people with write
  access; anyone else gets a polite refusal. Answers are comments on that pull request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from typing import Any

from aiohttp import web

from adapters.forge.github import GitHubForge
from bot.digest import SECURITY
from bot.ports import Incoming, MessageRef
from bot.service import Service
from bot.store import Store

log = logging.getLogger(__name__)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time comparison of GitHub's X-Hub-Signature-256 with ours."""
    return bool(header) and hmac.compare_digest(signature(secret, body), header or "")


def label_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(re.escape("{branch}"), "(?P<branch>.+)") + "$")


class GitHubCommentChat:
    """The Chat port on a pull request's comments: post = comment, update = edit the comment."""

    def __init__(self, forge: GitHubForge, service_repos: dict[str, Any]) -> None:
        self.forge = forge
        self.repos = service_repos  # github slug -> Repo

    def _target(self, channel: str) -> tuple[Any, int]:
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
    def __init__(self, service: Service, forge: GitHubForge, store: Store, secret: str,
                 label_pattern: str = "backport/{branch}") -> None:
        self.service, self.forge, self.store, self.secret = service, forge, store, secret
        self.labels = label_regex(label_pattern)
        self.repos = {r.github: r for r in service.repos.values() if r.github}
        with store.lock:
            store.db["deliveries"].create({"id": str, "event": str, "at": float}, pk="id", if_not_exists=True)
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/github/webhook", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(self.secret, body, request.headers.get("X-Hub-Signature-256")):
            return web.Response(status=401, text="bad signature")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        if not self._first_time(delivery, event):
            return web.Response(status=200, text="already handled")
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="the body is not JSON")
        task = asyncio.create_task(self._dispatch(event, payload))  # answer GitHub at once
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=202, text="accepted")

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _first_time(self, delivery: str, event: str) -> bool:
        if not delivery:
            return True
        with self.store.lock:
            table = self.store.db["deliveries"]
            if table.count_where("id = ?", [delivery]):
                return False
            table.insert({"id": delivery, "event": event, "at": time.time()})
            return True

    async def _dispatch(self, event: str, payload: dict[str, Any]) -> None:
        try:
            if event == "pull_request":
                await self._pull_request(payload)
            elif event == "issue_comment":
                await self._comment(payload)
            elif event in ("check_run", "check_suite") and payload.get("action") == "completed":
                suite = payload.get("check_suite") or (payload.get("check_run") or {}).get("check_suite") or {}
                repo = self.repos.get((payload.get("repository") or {}).get("full_name", ""))
                if repo is not None and suite.get("head_branch"):
                    await self.service.on_ci_event(repo.key, suite["head_branch"])
        except Exception:
            log.exception("webhook %s failed", event)

    async def _pull_request(self, payload: dict[str, Any]) -> None:
        pr = payload.get("pull_request") or {}
        repo = self.repos.get((payload.get("repository") or {}).get("full_name", ""))
        if repo is None:
            return
        action = payload.get("action")
        if action == "closed" and (pr.get("head") or {}).get("ref", "").startswith("backport/"):
            await self.service.on_pr_closed(repo.key, pr["head"]["ref"], bool(pr.get("merged")))
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
        if (action == "closed" and self.service.alert_channel
                and ("security" in {n.lower() for n in names} or SECURITY.search(pr.get("title") or ""))):
            await self.service.propose(repo, f"#{number}", self.service.alert_channel)  # not next week
        branches = [m.group("branch") for n in names if (m := self.labels.match(n))]
        if not branches:
            return
        sender = (payload.get("sender") or {}).get("login", "github")
        await self.service.handle(Incoming(sender, f"/backport {number} to {' '.join(branches)}",
                                           f"github:{repo.github}#{number}", maintainer=True))

    async def _comment(self, payload: dict[str, Any]) -> None:
        issue = payload.get("issue") or {}
        comment = payload.get("comment") or {}
        text = (comment.get("body") or "").strip()
        repo = self.repos.get((payload.get("repository") or {}).get("full_name", ""))
        if (payload.get("action") != "created" or repo is None or "pull_request" not in issue
                or not text.lower().startswith("/backport")):
            return
        user = (comment.get("user") or {}).get("login", "")
        if (comment.get("user") or {}).get("type") == "Bot":
            return  # never answer bots (ourselves included)
        channel = f"github:{repo.github}#{issue['number']}"
        # `/backport 1234 to 8.1` on PR #1234 and `/backport to 8.1` both mean this PR.
        if re.match(r"^/backport\s+to\s", text, re.I):
            text = re.sub(r"^/backport\s+", f"/backport {issue['number']} ", text, flags=re.I)
        allowed = await asyncio.to_thread(self.forge.can_write, repo, user)
        if not allowed:
            await self.service.chat.post(channel, f"Sorry @{user}, only people with write access to "
                                                  f"{repo.github} can use /backport.")
            return
        await self.service.handle(Incoming(user, text, channel, maintainer=True))
