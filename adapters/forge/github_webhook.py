"""`POST /github/webhook`: signed deliveries from GitHub, handled once each.

- `pull_request` closed and merged with labels matching the pattern (default `backport/<branch>`),
  or labelled so after the merge: backport to those branches;
- `issue_comment` with `/backport ...` on a pull request: the full grammar, for people with write
  access; anyone else gets a polite refusal. Answers are comments on that pull request.

Those events are parsed into githubkit's typed models before anything else: a body that does not
validate is refused (400) and its delivery id stays unused, so a redelivery can still succeed.
Other events (ping, push, ...) are answered "ignored".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

from aiohttp import web
from githubkit.typing import Missing
from githubkit.webhooks import parse, sign, verify
from githubkit_schemas.latest.models import (
    WebhookCheckRunCompleted,
    WebhookCheckSuiteCompleted,
    WebhookIssueCommentCreated,
    WebhookPullRequestClosed,
    WebhookPullRequestLabeled,
    WebhookStatus,
)
from githubkit_schemas.latest.webhooks import WebhookEvent
from pydantic import ValidationError

from adapters.forge.github import GitHubCommentChat, GitHubForge
from adapters.web import body_of
from bot.core.ports import Bot, ChecksChanged, Delivery, Incoming, Merged, PullRequestClosed

log = logging.getLogger(__name__)

# The events the bot acts on: only these are parsed (and their delivery ids recorded).
HANDLED = ("pull_request", "issue_comment", "check_run", "check_suite", "status")


def signature(secret: str, body: bytes) -> str:
    """GitHub's X-Hub-Signature-256 of a body (githubkit's implementation)."""
    return str(sign(secret, body, method="sha256"))


def valid(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time comparison of GitHub's X-Hub-Signature-256 with ours (githubkit's). Only
    SHA-256: githubkit would check any other header as SHA-1, a downgrade GitHub never sends here."""
    return bool(header) and (header or "").startswith("sha256=") and bool(verify(secret, body, header or ""))


def label_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(re.escape("{branch}"), "(?P<branch>.+)") + "$")


class GitHubWebhook:
    def __init__(self, bot: Bot, forge: GitHubForge, secret: str,
                 repos: dict[str, str], label_pattern: str = "backport/{branch}",
                 comments: GitHubCommentChat | None = None) -> None:
        self.bot, self.forge, self.secret = bot, forge, secret
        self.repos = repos  # github slug -> the bot's repository key
        self.labels = label_regex(label_pattern)
        self.comments = comments

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/github/webhook", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        body = await body_of(request)
        if body is None:
            return web.Response(status=400, text="unreadable body")
        if not valid(self.secret, body, request.headers.get("X-Hub-Signature-256")):
            return web.Response(status=401, text="bad signature")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        event = request.headers.get("X-GitHub-Event", "")
        if not delivery:
            return web.Response(status=400, text="missing X-GitHub-Delivery")
        if event not in HANDLED:
            return web.Response(status=202, text="ignored")  # ping, push, ...: nothing to do
        try:
            payload = parse(event, body)
        except ValidationError as error:
            kinds = {e["type"] for e in error.errors()}
            if kinds == {"union_tag_invalid"}:
                # An action newer than githubkit's schemas: never one the bot acts on.
                return web.Response(status=202, text="ignored")
            if "json_invalid" in kinds:
                return web.Response(status=400, text="the body is not JSON")
            return web.Response(status=400, text=f"not a valid {event} payload")
        # Each delivery is turned into what the bot acts on and stored in its inbox before GitHub
        # gets its answer; a body that did not parse never uses up its delivery id.
        try:
            deliveries = await self._deliveries(payload)
        except Exception:
            log.exception("webhook %s %s", event, delivery)
            return web.Response(status=500, text="could not take this delivery; please redeliver")
        # The signature covers the body, not the delivery id: a captured body replayed under a new
        # id must still be a redelivery, so the body's hash is the key.
        digest = hashlib.sha256(body).hexdigest()
        stored = [await self.bot.deliver("github", f"{digest}:{n}", d) for n, d in enumerate(deliveries)]
        if deliveries and not any(stored):
            return web.Response(status=200, text="already handled")
        return web.Response(status=202, text="accepted")

    async def _deliveries(self, payload: WebhookEvent) -> list[Delivery]:
        # The models are discriminated by `action`: the class says which action it was.
        if isinstance(payload, WebhookPullRequestClosed | WebhookPullRequestLabeled):
            return await self._pull_request(payload)
        if isinstance(payload, WebhookIssueCommentCreated):
            return await self._comment(payload)
        if isinstance(payload, WebhookCheckRunCompleted | WebhookCheckSuiteCompleted):
            return self._checks(payload)
        if isinstance(payload, WebhookStatus):  # Jenkins, Buildkite...: a commit status on backport branches
            repo = self.repos.get(payload.repository.full_name)
            if repo is None or payload.state == "pending":
                return []
            return [ChecksChanged(repo, b.name) for b in payload.branches if b.name.startswith("backport/")]
        return []

    def _checks(self, payload: WebhookCheckRunCompleted | WebhookCheckSuiteCompleted) -> list[Delivery]:
        # check_suite.head_branch is `str | None`; a check run's suite may also leave it UNSET.
        branch: Missing[str]
        if isinstance(payload, WebhookCheckSuiteCompleted):
            branch = payload.check_suite.head_branch
        else:
            branch = payload.check_run.check_suite.head_branch
        repo = self.repos.get(payload.repository.full_name)
        if repo is not None and isinstance(branch, str) and branch:
            return [ChecksChanged(repo, branch)]
        return []

    async def _pull_request(self, payload: WebhookPullRequestClosed | WebhookPullRequestLabeled) -> list[Delivery]:
        pr = payload.pull_request
        slug = payload.repository.full_name
        repo = self.repos.get(slug)
        if repo is None:
            return []
        merged = pr.merged is True  # a bool when closed; UNSET or None are possible when labeled
        closed = isinstance(payload, WebhookPullRequestClosed)
        if closed and pr.head.ref.startswith("backport/"):
            return [PullRequestClosed(repo, pr.head.ref, merged, pr.head.sha)]
        if not merged:
            return []
        out: list[Delivery] = []
        if isinstance(payload, WebhookPullRequestClosed):
            names = [label.name for label in pr.labels]
        else:
            # `label` is optional in the schema (UNSET or None): then no label to match.
            names = [payload.label.name] if payload.label else []
        number = pr.number
        if closed:
            out.append(Merged(repo, number, pr.title or "", tuple(names)))  # a security fix: not next week
        branches = [m.group("branch") for n in names if (m := self.labels.match(n))]
        if branches:
            # A label is a request from whoever set it: triage rights can label, only writers may ask.
            who = payload.sender.login
            channel = f"github:{slug}#{number}"
            if await asyncio.to_thread(self.forge.can_write, slug, who):
                out.append(Incoming(who, f"/backport {number} to {' '.join(branches)}", channel, maintainer=True))
            else:
                await self._refuse(channel, who, slug, "labels")
        return out

    async def _refuse(self, channel: str, user: str, slug: str, what: str) -> None:
        if self.comments is None:
            return
        try:
            await self.comments.notify(channel, user, f"sorry, only people with write access to {slug} can request "
                                                      f"backports (by {what}).")
        except Exception:
            log.exception("could not answer %s on %s", user, channel)

    async def _comment(self, payload: WebhookIssueCommentCreated) -> list[Delivery]:
        issue, comment = payload.issue, payload.comment
        text = comment.body.strip()
        slug = payload.repository.full_name
        # `issue.pull_request` is UNSET on a plain issue (None is treated the same): PRs only.
        if slug not in self.repos or not issue.pull_request or not text.lower().startswith("/backport"):
            return []
        user = comment.user.login if comment.user is not None else ""
        if comment.user is not None and comment.user.type == "Bot":  # type may be UNSET or None
            return []  # never answer bots (ourselves included)
        channel = f"github:{slug}#{issue.number}"
        # `/backport 1234 to 8.1` on PR #1234 and `/backport to 8.1` both mean this PR.
        if re.match(r"^/backport\s+to\s", text, re.I):
            text = re.sub(r"^/backport\s+", f"/backport {issue.number} ", text, flags=re.I)
        allowed = await asyncio.to_thread(self.forge.can_write, slug, user)
        if not allowed:
            await self._refuse(channel, user, slug, "/backport comments")
            return []
        return [Incoming(user, text, channel, maintainer=True)]
