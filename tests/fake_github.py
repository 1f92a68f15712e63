"""A local HTTP server that speaks the GitHub REST calls the bot makes, with payloads shaped like
GitHub's documented ones. It records every request and can be told to fail a call once."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from tests.fake_http import serve, stop


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
    permissions: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failures: list[tuple[str, str, int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_number: int = 1000
    url: str = ""
    token_lifetime: int = 3600  # seconds an App installation token lives
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # head branch -> runs
    graphql: list[dict[str, Any]] = field(default_factory=list)
    tokens_issued: int = 0
    valid_tokens: set[str] | None = None  # None: any token; else others get 401 Bad credentials

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
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
            return self._answer(method, path, query, body)

    # --- state helpers ---------------------------------------------------------------------------

    def add_merged_pull(self, number: int, title: str, merge_sha: str, labels: list[str], author: str = "ada",
                        commits: list[str] | None = None, merged: bool = True) -> None:
        self.pulls[number] = self._pull(number, title, "main", f"feature-{number}", labels, author, merged=merged,
                                        merge_commit_sha=merge_sha, commits=len(commits or [title]))
        self.pull_commits[number] = commits or [title]

    def fail_once(self, method: str, path_prefix: str, status: int, headers: dict[str, str],
                  body: dict[str, Any]) -> None:
        self.failures.append((method, path_prefix, status, headers, body))

    def set_checks(self, head: str, *runs: tuple[str, str, str | None]) -> None:
        """Check runs on a branch's head: (name, status, conclusion)."""
        self.check_runs[head] = [
            {"id": i, "name": name, "status": status, "conclusion": conclusion,
             "html_url": f"https://github.com/{self.owner}/{self.repo}/runs/{i}"}
            for i, (name, status, conclusion) in enumerate(runs, start=1)]

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
            "head": {"ref": head, "sha": "sha-" + head.replace("/", "~"), "label": f"{self.owner}:{head}"},
            "base": {"ref": base, "sha": "0" * 40, "label": f"{self.owner}:{base}"},
            "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z", **extra,
        }

    # --- routing ---------------------------------------------------------------------------------

    def _answer(self, method: str, path: str, query: str, body: Any) -> tuple[int, dict[str, str], Any]:
        for i, (m, prefix, status, headers, payload) in enumerate(self.failures):
            if m == method and path.startswith(prefix):
                del self.failures[i]
                return status, headers, payload
        if m := re.fullmatch(r"/app/installations/(\d+)/access_tokens", path):
            self.tokens_issued += 1
            expires = datetime.now(UTC) + timedelta(seconds=self.token_lifetime)
            return 201, {}, {"token": f"ghs_installation_{self.tokens_issued}",
                             "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "permissions": {},
                             "repository_selection": "all"}
        if path == "/graphql" and method == "POST":
            self.graphql.append(body)
            node = body["variables"]["id"]
            for pr in self.pulls.values():
                if pr["node_id"] == node:
                    pr["draft"] = False
            return 200, {}, {"data": {"markPullRequestReadyForReview": {"pullRequest": {"isDraft": False}}}}
        base = f"/repos/{self.owner}/{self.repo}"
        if not path.startswith(base):
            return 404, {}, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}
        rest = path[len(base):]
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
            return 200, {}, {"total_count": len(runs), "check_runs": runs}
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
