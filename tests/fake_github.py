"""A local HTTP server that speaks the GitHub REST calls the bot makes, with payloads shaped like
GitHub's documented ones (check runs and combined statuses are completed to githubkit's models of
GitHub's schema). It records every request and can be told to fail a call once, or to answer with a
secondary rate limit as GitHub does: a 403 whose body says so, with no header naming a wait.

Lists are paged as GitHub pages them: `per_page` (default 30, at most 100) and `page`, with a
Link header whose URLs name the repository by id (`/repositories/{id}/...`), as GitHub's do."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from githubkit_schemas.latest import models as M

from tests.fake_http import serve, stop
from tests.github_payloads import payload as complete

SECONDARY_LIMIT = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                              "again. If you reach out to GitHub Support for help, please include the request ID "
                              "DBE8:3C3A:1D2B0F4:1E1A6C2:6733A1B2.",
                   "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-"
                                        "the-rest-api#about-secondary-rate-limits"}


@dataclass
class Call:
    method: str
    path: str
    query: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeGitHub:
    owner: str = "acme"
    repo: str = "server"
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    pull_commits: dict[int, list[str]] = field(default_factory=dict)  # number -> commit messages
    issues: dict[int, list[str]] = field(default_factory=dict)  # issue number -> its labels
    permissions: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, str, int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1000
    url: str = ""
    token_lifetime: int = 3600  # seconds an App installation token lives
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # head branch -> runs
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # head branch -> commit statuses
    repo_id: int = 1296269
    graphql: list[dict[str, Any]] = field(default_factory=list)
    tokens_issued: int = 0
    valid_tokens: set[str] | None = None  # None: any token; else others get 401 Bad credentials
    # What an App installation token may do (the access token's `permissions`), and whether a
    # personal token may push (the repository's `permissions.push`).
    app_permissions: dict[str, str] = field(default_factory=lambda: {
        "contents": "write", "pull_requests": "write", "issues": "read", "checks": "read", "statuses": "read",
        "metadata": "read"})
    can_push: bool = True

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._caller = ""  # the token of the request being answered
        self.server, self.url = serve(self._handle)

    def close(self) -> None:
        stop(self.server)

    def _handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        path, _, query = target.partition("?")
        body = json.loads(raw) if raw else None
        with self._lock:
            self.calls.append(Call(method, path, query, body, headers))
            token = headers.get("authorization", "").split(" ")[-1]
            if self.valid_tokens is not None and token not in self.valid_tokens:
                return 401, {}, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                                 "status": "401"}
            self._caller = token
            return self._answer(method, path, query, body)

    # --- state helpers ---------------------------------------------------------------------------

    def add_merged_pull(self, number: int, title: str, merge_sha: str, labels: list[str], author: str = "ada",
                        commits: list[str] | None = None, merged: bool = True, body: str = "") -> None:
        self.pulls[number] = self._pull(number, title, "main", f"feature-{number}", labels, author, merged=merged,
                                        merge_commit_sha=merge_sha, commits=len(commits or [title]), body=body)
        self.pull_commits[number] = commits or [title]

    def fail_once(self, method: str, path_prefix: str, status: int, headers: dict[str, str],
                  body: dict[str, Any]) -> None:
        self.failures.append((method, path_prefix, status, headers, body))

    def set_checks(self, head: str, *runs: tuple[str, str, str | None]) -> None:
        """Check runs on a branch's head: (name, status, conclusion)."""
        sha = self._sha(head)
        api = f"{self.url}/repos/{self.owner}/{self.repo}"
        self.check_runs[head] = [
            complete(M.CheckRun, {
                "id": i, "name": name, "status": status, "conclusion": conclusion, "head_sha": sha,
                "node_id": f"CR_{i}", "external_id": "", "url": f"{api}/check-runs/{i}",
                "html_url": f"https://github.com/{self.owner}/{self.repo}/runs/{i}",
                "details_url": f"https://ci.example.com/{self.owner}/{self.repo}/{i}",
                "started_at": "2026-11-01T10:01:00Z", "completed_at": "2026-11-01T10:05:00Z" if conclusion else None,
                "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                           "annotations_url": f"{api}/check-runs/{i}/annotations"},
                "check_suite": {"id": 5000 + i},
                "app": {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"},
                "pull_requests": []})
            for i, (name, status, conclusion) in enumerate(runs, start=1)]

    def set_statuses(self, head: str, *statuses: tuple[str, str, str | None]) -> None:
        """Commit statuses on a branch's head, the latest per context: (context, state, target_url);
        state is one of error, failure, pending, success."""
        self.statuses[head] = [
            complete(M.SimpleCommitStatus, {
                "id": 70000 + i, "node_id": f"SC_{i}", "state": state, "context": context, "target_url": target,
                "description": {"success": "Build finished.", "pending": "Build started."}.get(state, "Build failed."),
                "avatar_url": None, "url": f"{self.url}/repos/{self.owner}/{self.repo}/statuses/{self._sha(head)}",
                "created_at": "2026-11-01T10:02:00Z", "updated_at": "2026-11-01T10:09:00Z"})
            for i, (context, state, target) in enumerate(statuses, start=1)]

    def secondary_rate_limit(self, method: str, path_prefix: str, times: int = 1) -> None:
        """The next `times` such calls get GitHub's secondary rate limit: 403, its message, no headers."""
        for _ in range(times):
            self.fail_once(method, path_prefix, 403, {}, SECONDARY_LIMIT)

    @staticmethod
    def _sha(head: str) -> str:
        return "sha-" + head.replace("/", "~")

    def _page(self, path: str, query: str, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """One page of `items` as GitHub pages a list, and its Link header."""
        q = parse_qs(query)
        per_page = min(int(q.get("per_page", ["30"])[0]), 100)
        page = max(int(q.get("page", ["1"])[0]), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        base = f"/repos/{self.owner}/{self.repo}"
        where = f"{self.url}/repositories/{self.repo_id}{path.removeprefix(base)}"

        def link(n: int) -> str:
            return f"<{where}?{urlencode({**{k: v[0] for k, v in q.items()}, 'page': n})}>"

        rels = []
        if page > 1:
            rels += [f'{link(page - 1)}; rel="prev"']
        if page < last:
            rels += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            rels += [f'{link(1)}; rel="first"']
        return items[(page - 1) * per_page:page * per_page], ({"Link": ", ".join(rels)} if rels else {})

    def _combined(self, path: str, query: str, head: str) -> tuple[dict[str, str], dict[str, Any]]:
        """GitHub's combined status: `failure` if any status failed or errored, `pending` when there
        is none at all or one is pending, else `success`; the statuses are paged."""
        statuses = self.statuses.get(head, [])
        states = {s["state"] for s in statuses}
        state = ("failure" if states & {"failure", "error"} else "pending" if not statuses or "pending" in states
                 else "success")
        page, headers = self._page(path, query, statuses)
        sha = self._sha(head)
        return headers, complete(M.CombinedCommitStatus, {
            "state": state, "statuses": page, "sha": sha, "total_count": len(statuses),
            "repository": {"id": self.repo_id, "name": self.repo, "full_name": f"{self.owner}/{self.repo}",
                           "owner": {"login": self.owner}},
            "commit_url": f"{self.url}/repos/{self.owner}/{self.repo}/commits/{sha}",
            "url": f"{self.url}/repos/{self.owner}/{self.repo}/commits/{sha}/status"})

    def created_pulls(self) -> list[dict[str, Any]]:
        return [p for n, p in sorted(self.pulls.items()) if n >= 1000]

    def _pull(self, number: int, title: str, base: str, head: str, labels: list[str], author: str, **extra: Any,
              ) -> dict[str, Any]:
        repo_url = f"https://github.com/{self.owner}/{self.repo}"
        return {
            "url": f"{self.url}/repos/{self.owner}/{self.repo}/pulls/{number}", "id": 100000 + number,
            "node_id": f"PR_{number}", "html_url": f"{repo_url}/pull/{number}", "number": number,
            "state": "closed" if extra.get("merged") else "open", "locked": False, "title": title,
            "user": {"login": author, "id": 1, "type": "User"}, "body": extra.pop("body", ""),
            "labels": [{"id": i, "name": name, "color": "ededed", "default": False} for i, name in enumerate(labels)],
            "draft": extra.pop("draft", False), "merged": extra.pop("merged", False),
            "head": {"ref": head, "sha": self._sha(head), "label": f"{self.owner}:{head}"},
            "base": {"ref": base, "sha": "0" * 40, "label": f"{self.owner}:{base}"},
            "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z", **extra,
        }

    # --- routing ---------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, query: str, body: Any) -> tuple[int, dict[str, str], Any]:
        base = f"/repos/{self.owner}/{self.repo}"
        path = re.sub(rf"^/repositories/{self.repo_id}(?=/|$)", base, path)  # how Link headers name it
        for i, (m, prefix, status, headers, payload) in enumerate(self.failures):
            if m == method and path.startswith(prefix):
                del self.failures[i]
                return status, headers, payload
        if m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
            self.tokens_issued += 1
            expires = datetime.now(UTC) + timedelta(seconds=self.token_lifetime)
            return 201, {}, {"token": f"ghs_installation_{self.tokens_issued}",
                             "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "permissions": dict(self.app_permissions),
                             "repository_selection": "all"}
        if path == "/graphql" and method == "POST":
            self.graphql.append(body)
            node = body["variables"]["id"]
            for pr in self.pulls.values():
                if pr["node_id"] == node:
                    pr["draft"] = False
            return 200, {}, {"data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": False}}}}
        if not path.startswith(base):
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        rest = path[len(base):]
        if rest == "" and method == "GET":  # the repository; `permissions` as a token's user has them
            data = {"id": self.repo_id, "name": self.repo, "full_name": f"{self.owner}/{self.repo}", "private": True,
                    "default_branch": "main", "owner": {"login": self.owner}}
            if not self._caller.startswith("ghs_installation"):  # an App's token sees no user permissions
                data["permissions"] = {"admin": False, "maintain": False, "push": self.can_push, "triage": True,
                                       "pull": True}
            return 200, {}, data
        if m := re.fullmatch(r"/pulls/(\d+)", rest):
            pr = self.pulls.get(int(m.group(1)))
            return (200, {}, pr) if pr else (404, {}, {"message": "Not Found"})
        if m := re.fullmatch(r"/pulls/(\d+)/commits", rest):
            return 200, {}, [{"sha": "0" * 40, "commit": {"message": msg}} for msg in
                             self.pull_commits.get(int(m.group(1)), [])]
        if rest == "/pulls" and method == "GET":
            heads = parse_qs(query).get("head")
            wanted = heads[0].split(":")[-1] if heads else None
            return 200, {}, [p for p in self.pulls.values() if p["state"] == "open"
                             and (wanted is None or p["head"]["ref"] == wanted)]
        if rest == "/pulls" and method == "POST":
            head = body["head"].split(":")[-1]
            if any(p["state"] == "open" and p["head"]["ref"] == head for p in self.pulls.values()):
                return 422, {}, {"message": "Validation Failed", "status": "422",
                                 "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
                                 "errors": [{"resource": "PullRequest", "code": "custom",
                                             "message": f"A pull request already exists for {self.owner}:{head}."}]}
            number = self.next_number
            self.next_number += 1
            self.pulls[number] = self._pull(number, body["title"], body["base"], body["head"].split(":")[-1], [],
                                            "backportbot[bot]", body=body["body"], draft=body.get("draft", False))
            return 201, {}, self.pulls[number]
        if m := re.fullmatch(r"/commits/([^/]+)/check-runs", rest):
            runs = self.check_runs.get(m.group(1).removeprefix("sha-").replace("~", "/"), [])
            page, headers = self._page(path, query, runs)
            return 200, headers, {"total_count": len(runs), "check_runs": page}
        if m := re.fullmatch(r"/commits/([^/]+)/status", rest):
            headers, combined = self._combined(path, query, m.group(1).removeprefix("sha-").replace("~", "/"))
            return 200, headers, combined
        if (m := re.fullmatch(r"/issues/(\d+)", rest)) and method == "GET":
            number = int(m.group(1))
            if number in self.pulls:  # GitHub answers a PR's number on /issues too
                return 200, {}, {**self.pulls[number], "pull_request": {"url": self.pulls[number]["url"]}}
            if number not in self.issues:
                return 404, {}, {"message": "Not Found"}
            return 200, {}, {"number": number, "title": f"issue {number}", "state": "closed", "body": "",
                             "labels": [{"id": i, "name": n, "color": "ededed", "default": False}
                                        for i, n in enumerate(self.issues[number])]}
        if m := re.fullmatch(r"/issues/(\d+)/labels", rest):
            pr = self.pulls[int(m.group(1))]
            pr["labels"] += [{"id": 9, "name": n, "color": "ededed", "default": False} for n in body["labels"]]
            return 200, {}, pr["labels"]
        if m := re.fullmatch(r"/pulls/(\d+)/requested_reviewers", rest):
            pr = self.pulls[int(m.group(1))]
            pr["requested_reviewers"] = [{"login": r} for r in body["reviewers"]]
            return 201, {}, pr
        if m := re.fullmatch(r"/issues/(\d+)/comments", rest):
            comment_id = 5000 + len(self.comments)
            self.comments[comment_id] = {"id": comment_id, "issue": int(m.group(1)), "body": body["body"],
                                         "html_url": f"https://github.com/{self.owner}/{self.repo}/pull/1#c{comment_id}"}
            return 201, {}, self.comments[comment_id]
        if m := re.fullmatch(r"/issues/comments/(\d+)", rest):
            self.comments[int(m.group(1))]["body"] = body["body"]
            return 200, {}, self.comments[int(m.group(1))]
        if m := re.fullmatch(r"/collaborators/([^/]+)/permission", rest):
            permission = self.permissions.get(m.group(1), "none")
            return 200, {}, {"permission": permission, "role_name": permission, "user": {"login": m.group(1)}}
        return 404, {}, {"message": "Not Found"}


def app_key() -> tuple[Any, str]:
    """A GitHub App's private key, as the key object (to check the JWTs it signs) and its PEM text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
