"""GitHub as the forge: resolve PRs (merge, squash or rebase), push the backport branch, open the
PR with labels and reviewers, read a PR's CI (every page of check runs and the combined commit
status), and report on the source PR. githubkit does the HTTP, the auth and the retries (5xx with
backoff; rate limits by `RateLimitRetry`: Retry-After, x-ratelimit-reset, else at least a minute,
bounded); mutating calls go one at a time, as GitHub asks of integrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncGenerator, Generator
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from githubkit import AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.auth.base import BaseAuthStrategy
from githubkit.exception import (
    AuthCredentialError,
    AuthExpiredError,
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
)
from githubkit.response import Response
from githubkit.retry import RetryChainDecision, RetryOption, RetryServerError
from githubkit.throttling import BaseThrottler

from adapters.forge.github_git import GitAuth
from bot.core import people
from bot.core.ports import Checks, MessageRef, PullRequest, PullRequestDraft, SourceInfo, Unavailable
from bot.core.reports import outside_code
from bot.core.repos import Repo
from bot.engine.candidates import PullInfo
from bot.engine.errors import BadInput, NotFound, NotMerged, PushFailed
from bot.engine.git import GitError, brief
from bot.engine.source import Source, read_commits

log = logging.getLogger(__name__)

WRITE_PERMISSIONS = {"admin", "maintain", "write"}
PASSING = {"success", "neutral", "skipped"}  # check run conclusions that pass
STATUS_FAILED = {"failure", "error"}  # commit status states that fail (the others: pending, success)
TOKEN_MARGIN = 300  # refresh an App installation token five minutes before it expires
PER_PAGE = 100  # GitHub's largest page
PULL_INFO_MAX = 200  # pull requests a digest asks about, at most (one call each)
CLOSES = re.compile(r"\b(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?)\b:?\s+#(\d+)", re.I)  # GitHub's closing keywords
MAX_PAGES = 30  # at most 3,000 check runs (and as many statuses) per commit: a bound, never reached in practice

# Rate limits (https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api): wait
# `retry-after` when given; else until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0; else
# (a secondary limit often names no time) at least RATE_LIMIT_WAIT seconds, doubled at each retry.
# A wait longer than RATE_LIMIT_MAX_WAIT is not waited out: the request fails with the time named.
# Read when a GitHubForge is built; tests shorten RATE_LIMIT_WAIT.
RATE_LIMIT_WAIT = 60.0
RATE_LIMIT_RETRIES = 2
RATE_LIMIT_MAX_WAIT = 300.0


# What a GitHub App installation needs (README lists each permission's use).
APP_PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "read", "checks": "read",
                   "statuses": "read", "metadata": "read"}


class SerialWrites(BaseThrottler):
    """Reads run concurrently; writes (POST, PATCH, PUT, DELETE) one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        if request.method == "GET":
            yield
            return
        with self._lock:
            yield

    @contextlib.asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        yield


class Credentials:
    """A token (GITHUB_TOKEN), or a GitHub App installation: githubkit's AppInstallationAuthStrategy
    authenticates API calls (it refreshes the installation token itself); git pushes get an
    installation token of their own through githubkit's API, renewed five minutes before it expires."""

    def __init__(self, api_url: str, token: str | None = None, app_id: str | None = None,
                 private_key: str | None = None, installation_id: str | None = None) -> None:
        self.api_url = api_url
        self._token = token
        self._expires = float("inf")
        self._lock = threading.Lock()
        self.strategy: BaseAuthStrategy
        self.permissions: dict[str, str] = {}  # what the App's installation token may do, once one was made
        if token:
            self.strategy = TokenAuthStrategy(token)
        elif app_id and private_key and installation_id:
            try:
                serialization.load_pem_private_key(private_key.encode(), password=None)
            except (ValueError, TypeError):
                raise BadInput("GITHUB_APP_PRIVATE_KEY is not a private key in PEM form: set it to the text of the "
                               "App's .pem file (one line with \\n escapes is read too)") from None
            self.app = AppInstallationAuthStrategy(app_id, private_key, int(installation_id))
            self.strategy = self.app
            self._expires = 0.0
        else:
            raise BadInput("GitHub needs GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and "
                           "GITHUB_APP_INSTALLATION_ID, in the environment")

    @property
    def app_based(self) -> bool:
        return self._token is None or self._expires != float("inf")

    def token(self) -> str:
        """A token git can push with; Unavailable, in words, when GitHub will not give one."""
        with self._lock:
            if time.time() > self._expires - TOKEN_MARGIN:
                url = f"/app/installations/{self.app.installation_id}/access_tokens"
                try:
                    app = GitHub(self.app.as_app(), base_url=self.api_url, http_cache=False)
                    response = app.rest.apps.create_installation_access_token(self.app.installation_id)
                    data = response.parsed_data
                except RequestFailed as e:
                    raise Unavailable(_failure(e.response.status_code, _message(e), url)
                                      + " (GITHUB_APP_ID and GITHUB_APP_INSTALLATION_ID must name the App and its "
                                        "installation on the repositories' owner)") from None
                except RequestError as e:
                    raise Unavailable(f"GitHub could not be reached ({type(e).__name__}).") from None
                self._token = data.token
                self._expires = datetime.fromisoformat(data.expires_at.replace("Z", "+00:00")).timestamp()
                self.permissions = {k: str(v) for k, v in (response.json().get("permissions") or {}).items()}
            assert self._token
            return self._token


def _message(e: RequestFailed) -> str:
    """GitHub's own words for a failure: its `message` and the first error's."""
    try:
        data = e.response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    errors = [x.get("message", "") for x in data.get("errors", []) if isinstance(x, dict)]
    return "; ".join(m for m in [str(data.get("message", "")), *errors] if m)


def rate_limited(e: RequestFailed) -> bool:
    """A primary or secondary rate limit: githubkit's own finding (it needs `retry-after` or
    `x-ratelimit-remaining: 0`), a 429, or a 403 whose message says so (secondary limits may come
    with neither header)."""
    status = e.response.status_code
    return (isinstance(e, RateLimitExceeded) or status == 429
            or (status == 403 and "rate limit" in _message(e).lower()))


def limit_wait(headers: httpx.Headers, fallback: float) -> float:
    """How long GitHub asks to wait before the next request, in seconds."""
    try:
        if "retry-after" in headers:
            return max(float(headers["retry-after"]), 0.0)
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            return max(float(headers["x-ratelimit-reset"]) - time.time(), 0.0) + 1
    except ValueError:
        pass
    return fallback


class RateLimitRetry:
    """githubkit's retry decision for rate limits, bounded in count and in wait, and logged."""

    def __init__(self, retries: int, wait: float, max_wait: float) -> None:
        self.retries, self.wait, self.max_wait = retries, wait, max_wait

    def __call__(self, exc: GitHubException, count: int) -> RetryOption:
        if not isinstance(exc, RequestFailed) or not rate_limited(exc) or count >= self.retries:
            return RetryOption(False)
        request = exc.request
        wait = limit_wait(exc.response.headers, self.wait * 2 ** count)
        if wait > self.max_wait:
            log.warning("GitHub rate limit on %s %s (%s): it asks for %.0f s, more than %.0f s; not waiting",
                        request.method, request.url.path, _message(exc), wait, self.max_wait)
            return RetryOption(False)
        log.warning("GitHub rate limit on %s %s (%s: %s): waiting %.3g s, then retry %d of %d",
                    request.method, request.url.path, exc.response.status_code, _message(exc), wait,
                    count + 1, self.retries)
        # githubkit sleeps 60 s for a zero timedelta (it is falsy): never hand it one
        return RetryOption(True, timedelta(seconds=max(wait, 0.001)))


def _limit_failure(e: RequestFailed, retries: int, max_wait: float) -> str:
    said = _message(e) or "rate limit exceeded"
    wait = limit_wait(e.response.headers, 0.0)
    if wait > max_wait:
        until = time.strftime("%H:%M UTC", time.gmtime(time.time() + wait))
        return f"GitHub is rate-limiting the bot ({e.response.status_code}: {said}) until about {until}."
    return (f"GitHub is still rate-limiting the bot ({e.response.status_code}: {said}) after {retries} "
            "retries, each after the wait GitHub asks for.")


def _failure(status: int, message: str, url: str) -> str:
    said = f": {message}" if message else ""
    if status == 401:
        return (f"GitHub refused the bot's credentials ({status}{said}); a maintainer must fix GITHUB_TOKEN or the "
                "GitHub App's key.")
    if status in (403, 404):
        return (f"GitHub answered {status}{said} to {url}; the bot may lack access or a permission there, or the "
                "repository is named wrong in the config.")
    if status == 429 or status >= 500:
        return f"GitHub is unavailable right now ({status}{said})."
    return f"GitHub refused the request ({status}{said})."


class GitHubForge:
    def __init__(self, credentials: Credentials, comment_on_source_prs: bool = True, *,
                 rate_limit_wait: float | None = None, rate_limit_retries: int | None = None) -> None:
        self.credentials = credentials
        self.comment_on_source_prs = comment_on_source_prs
        self.limits = RateLimitRetry(RATE_LIMIT_RETRIES if rate_limit_retries is None else rate_limit_retries,
                                     RATE_LIMIT_WAIT if rate_limit_wait is None else rate_limit_wait,
                                     RATE_LIMIT_MAX_WAIT)
        retry = RetryChainDecision(self.limits, RetryServerError(max_retry=3))
        self._gh_client: GitHub[Any] = GitHub(credentials.strategy, base_url=credentials.api_url, auto_retry=retry,
                                              throttler=SerialWrites(), http_cache=False, timeout=30)

    # --- HTTP --------------------------------------------------------------------------------------

    def _gh(self) -> GitHub[Any]:
        return self._gh_client

    def _call(self, method: str, url: str, *, expect: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """One API call, its JSON. GitHub's failures become the core's Unavailable, in words; a
        status in `expect` is the caller's to handle (RequestFailed), unless it is a rate limit."""
        response = self._request(method, url, expect=expect, **kwargs)
        return response.json() if response.content else None

    def _request(self, method: str, url: str, *, expect: tuple[int, ...] = (), **kwargs: Any) -> Response[Any]:
        try:
            return self._gh().request(method, url, **kwargs)
        except RequestFailed as e:
            status = e.response.status_code
            if rate_limited(e):  # waited out and retried already (RateLimitRetry)
                raise Unavailable(_limit_failure(e, self.limits.retries, self.limits.max_wait)) from None
            if status in expect:
                raise
            raise Unavailable(_failure(status, _message(e), url), retry=status >= 500 or status == 429) from None
        except (RequestError, AuthCredentialError, AuthExpiredError) as e:
            raise Unavailable(f"GitHub could not be reached or refused the bot's credentials ({type(e).__name__}).",
                              retry=isinstance(e, RequestError)) from None

    def _pages(self, url: str, key: str) -> list[dict[str, Any]]:
        """Every item of a paged list whose pages hold them under `key` (with `total_count`), following
        GitHub's Link header (rel="next") on the API's own host only."""
        origin = httpx.URL(self.credentials.api_url)
        items: list[dict[str, Any]] = []
        target: str | None = url
        params: dict[str, Any] | None = {"per_page": PER_PAGE}
        for _ in range(MAX_PAGES):
            assert target is not None
            response = self._request("GET", target, params=params)
            page = response.json() or {}
            items += page.get(key) or []
            following = response.raw_response.links.get("next", {}).get("url")
            total = page.get("total_count")
            if not following or (isinstance(total, int) and len(items) >= total):
                return items
            nxt = httpx.URL(following)
            if (nxt.scheme, nxt.host, nxt.port) != (origin.scheme, origin.host, origin.port):
                log.warning("not following a next page on another host: %s", following)
                return items
            target, params = following, None  # the next link carries the query
        log.warning("%s: more than %d pages; read the first %d", url, MAX_PAGES, MAX_PAGES)
        return items

    @staticmethod
    def _slug(repo: Repo) -> str:
        if not repo.github:
            raise BadInput(f"repository {repo.key} has no `github = \"owner/name\"` in the config")
        return repo.github

    # --- the Forge port ----------------------------------------------------------------------------

    def resolve(self, repo: Repo, key: str) -> Source | None:
        """A `#N` pull request as GitHub knows it: merged or not, and the commits its merge made."""
        if not key.startswith("#"):
            return None
        number = int(key[1:])
        slug = self._slug(repo)
        try:
            pr = self._call("GET", f"/repos/{slug}/pulls/{number}", expect=(404,))
        except RequestFailed:
            raise NotFound(f"{slug} has no pull request #{number}") from None
        if not pr.get("merged"):
            state = "closed without merging" if pr.get("state") == "closed" else "not merged yet"
            raise NotMerged(f"pull request #{number} is {state}")
        merge_sha = pr["merge_commit_sha"]
        git = repo.workspace.git
        if not git.rev(merge_sha):
            repo.workspace.fetch()
        (merge,) = read_commits(git, merge_sha)
        labels = tuple(label["name"] for label in pr.get("labels", []))
        author = (pr.get("user") or {}).get("login")
        common = {"title": pr["title"], "pr_number": number, "labels": labels, "author": author}
        if len(merge.parents) > 1:  # a merge commit: pick it against its first parent
            return Source(key, (merge,), 1, **common)
        count = int(pr.get("commits") or 1)
        if count > 1:  # rebase-merged: the PR's commits are the last `count` on the main branch
            commits = read_commits(git, f"{merge_sha}~{count}..{merge_sha}")
            theirs = [c["commit"]["message"].split("\n", 1)[0] for c in
                      self._call("GET", f"/repos/{slug}/pulls/{number}/commits", params={"per_page": 100})]
            if [c.subject for c in commits] == theirs:
                return Source(key, tuple(commits), None, **common)
        return Source(key, (merge,), None, **common)  # squash-merged (or a single commit)

    def comment_on_source(self, repo: Repo, source_key: str, body: str) -> None:
        if self.comment_on_source_prs and source_key.startswith("#") and repo.github:
            self.comment(repo, int(source_key[1:]), body)

    def source_info(self, repo: Repo, source: Source) -> SourceInfo:
        return SourceInfo(source.labels, source.author)

    def pull_info(self, repo: Repo, numbers: list[int]) -> dict[int, PullInfo]:
        """Each pull request's labels and body, and the labels of the issues its body says it closes
        (one call a PR and one an issue; a PR or issue that cannot be read is left out)."""
        slug = self._slug(repo)
        found: dict[int, PullInfo] = {}
        issues: dict[int, tuple[str, ...]] = {}
        for number in numbers[:PULL_INFO_MAX]:
            try:
                pr = self._call("GET", f"/repos/{slug}/pulls/{number}", expect=(404,))
            except (RequestFailed, Unavailable):
                continue
            body = pr.get("body") or ""
            linked = []
            for m in CLOSES.finditer(body):
                issue = int(m.group(1))
                if issue not in issues:
                    try:
                        data = self._call("GET", f"/repos/{slug}/issues/{issue}", expect=(404, 410))
                        issues[issue] = tuple(label["name"] for label in data.get("labels", []))
                    except (RequestFailed, Unavailable):
                        issues[issue] = ()
                linked.append((issue, issues[issue]))
            found[number] = PullInfo(tuple(label["name"] for label in pr.get("labels", [])), body, tuple(linked))
        return found

    def find_open(self, repo: Repo, head: str) -> PullRequest | None:
        slug = self._slug(repo)
        owner = (repo.push_repo or slug).split("/")[0]
        found = self._call("GET", f"/repos/{slug}/pulls", params={"head": f"{owner}:{head}", "state": "open"})
        return self._pr(found[0]) if found else None

    def open_pull_request(self, repo: Repo, draft: PullRequestDraft) -> PullRequest:
        slug = self._slug(repo)
        self._push(repo, draft.head)
        owner = (repo.push_repo or slug).split("/")[0]
        head = draft.head if owner == slug.split("/")[0] else f"{owner}:{draft.head}"
        try:
            pr = self._call("POST", f"/repos/{slug}/pulls", expect=(422,),
                            json={"title": draft.title, "body": draft.body, "head": head, "base": draft.base,
                                  "draft": draft.draft})
        except RequestFailed as e:
            existing = self.find_open(repo, draft.head) if "already exists" in _message(e) else None
            if existing is None:
                raise Unavailable(_failure(422, _message(e), f"/repos/{slug}/pulls"), retry=False) from None
            return existing  # one pull request per head branch: GitHub's own says so
        number = pr["number"]
        self._call("POST", f"/repos/{slug}/issues/{number}/labels", json={"labels": list(draft.labels)})
        reviewers = [r for r in draft.reviewers if r]
        if reviewers:
            try:
                self._call("POST", f"/repos/{slug}/pulls/{number}/requested_reviewers", expect=(422,),
                           json={"reviewers": reviewers})
            except RequestFailed:
                pass  # the author may not be a collaborator any more: the PR still stands
        return self._pr({**pr, "labels": [{"name": name} for name in draft.labels]})

    def comment(self, repo: Repo, number: int, body: str) -> int:
        return int(self._call("POST", f"/repos/{self._slug(repo)}/issues/{number}/comments", json={"body": body})["id"])

    def edit_comment(self, repo: Repo, comment_id: int, body: str) -> None:
        self._call("PATCH", f"/repos/{self._slug(repo)}/issues/comments/{comment_id}", json={"body": body})

    def checks(self, repo: Repo, number: int) -> Checks:
        """The CI of a pull request's head commit, both ways CI reports to GitHub: every check run
        (GitHub Actions, Checks API apps) and every commit status (Jenkins, Buildkite, older
        CircleCI: the latest per context, from the combined status)."""
        slug = self._slug(repo)
        sha = self._call("GET", f"/repos/{slug}/pulls/{number}")["head"]["sha"]
        pending: list[str] = []
        passed: list[str] = []
        failed: list[tuple[str, str]] = []
        for run in self._pages(f"/repos/{slug}/commits/{sha}/check-runs", "check_runs"):
            name = str(run.get("name") or "check run")
            if run.get("status") != "completed":  # queued, in_progress, waiting, requested, pending
                pending.append(name)
            elif run.get("conclusion") in PASSING:
                passed.append(name)
            else:  # failure, cancelled, timed_out, action_required, stale
                failed.append((name, run.get("html_url") or run.get("details_url") or ""))
        # The combined state is "pending" when no status exists at all: only the statuses count.
        for status in self._pages(f"/repos/{slug}/commits/{sha}/status", "statuses"):
            name = str(status.get("context") or "commit status")
            if status.get("state") == "success":
                passed.append(name)
            elif status.get("state") in STATUS_FAILED:
                failed.append((name, status.get("target_url") or ""))
            else:
                pending.append(name)
        return Checks(tuple(pending), tuple(passed), tuple(failed))

    def mark_ready(self, repo: Repo, number: int) -> None:
        node = self._call("GET", f"/repos/{self._slug(repo)}/pulls/{number}")["node_id"]
        self._gh().graphql("mutation($id: ID!) { markPullRequestReadyForReview(input: {pullRequestId: $id}) "
                           "{ pullRequest { isDraft } } }", variables={"id": node})

    def missing_permissions(self, slug: str) -> list[str]:
        """What the bot's credentials lack on the repository to push branches, open pull requests,
        label and comment them, and read CI (Unavailable when it cannot even see it)."""
        data = self._call("GET", f"/repos/{slug}")
        if not self.credentials.app_based:
            return [] if (data.get("permissions") or {}).get("push") else ["push (write access to contents)"]
        self.credentials.token()
        granted = self.credentials.permissions
        levels = {"read": 1, "write": 2, "admin": 3}
        return [f"{name}: {level}" for name, level in APP_PERMISSIONS.items()
                if levels.get(granted.get(name, ""), 0) < levels[level]]

    def can_write(self, slug: str, user: str) -> bool:
        try:
            data = self._call("GET", f"/repos/{slug}/collaborators/{user}/permission", expect=(403, 404))
        except RequestFailed:
            return False
        return data.get("permission") in WRITE_PERMISSIONS

    # --- git ---------------------------------------------------------------------------------------

    def _push(self, repo: Repo, branch: str) -> None:
        """Push with the token in an HTTP header given through the environment (never in a URL,
        an argument or a log), to GitHub's host only."""
        remote = repo.push_url or "origin"
        url = repo.workspace.url_of(remote) or remote
        git = repo.workspace.git.with_env(**GitAuth(self.credentials.api_url, self.credentials.token).env(url))
        try:
            git.run("push", "--quiet", "--force", remote, f"refs/heads/{branch}:refs/heads/{branch}")
        except GitError as e:
            raise PushFailed(f"could not push {branch}: {brief(e.stderr)}") from None

    @staticmethod
    def _pr(data: dict[str, Any]) -> PullRequest:
        return PullRequest(int(data["number"]), data.get("html_url", ""), data.get("title", ""),
                           (data.get("head") or {}).get("ref", ""), (data.get("base") or {}).get("ref", ""),
                           "merged" if data.get("merged") else data.get("state", "open"),
                           tuple(label["name"] for label in data.get("labels", [])))


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
        return await self._comment(channel, quiet(text), thread)

    async def _comment(self, channel: str, body: str, thread: str | None) -> MessageRef:
        repo, number = self._target(channel)
        comment_id = await asyncio.to_thread(self.forge.comment, repo, number, body)
        return MessageRef(channel, str(comment_id), thread)

    async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                     reply: str | None = None) -> None:
        await self._comment(channel, f"@{user} {quiet(text)}", thread)  # the one mention meant

    async def update(self, message: MessageRef, text: str) -> None:
        repo, _ = self._target(message.channel)
        await asyncio.to_thread(self.forge.edit_comment, repo, int(message.id), quiet(text))


def quiet(text: str) -> str:
    """Text from a title, the model or a person shown as text in a comment: an @mention is not sent
    (a zero-width joiner after @), a link, an image or HTML is not made (`[`, `]`, `<`, `>` escaped)."""
    def plain(part: str) -> str:
        part = re.sub(r"@(?=[A-Za-z0-9])", "@\u200d", part)
        return part.replace("<", "&lt;").replace(">", "&gt;").replace("[", "\\[").replace("]", "\\]")
    return people.show(outside_code(text, plain), plain)  # a login, shown: a comment pings nobody
