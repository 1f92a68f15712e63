"""The embedded forge: a pull request is a branch pushed to the repository's remote (or left in
the local repository) and a row in SQLite. Labels of a fix come from a `Labels:` trailer."""

from __future__ import annotations

import json

from bot.engine.git import GitError, brief
from bot.engine.source import Source, message_labels
from bot.errors import PushFailed
from bot.ports import Checks, PullRequest, PullRequestDraft, SourceInfo
from bot.repos import Repo
from bot.store import Store, now


class LocalForge:
    def __init__(self, store: Store) -> None:
        self.store = store
        with store.lock:
            store.db["local_prs"].create(
                {"number": int, "repo": str, "title": str, "body": str, "labels": str, "head": str, "base": str,
                 "state": str, "source": str, "reviewers": str, "created_at": float},
                pk="number", if_not_exists=True,
            )

    def resolve(self, repo: Repo, key: str) -> Source | None:
        return None  # the local forge knows PRs by their "(#N)" subjects, as git does

    def comment_on_source(self, repo: Repo, source_key: str, body: str) -> None:
        pass  # a PR found in git history has no comment thread here

    def source_info(self, repo: Repo, source: Source) -> SourceInfo:
        found = [label for c in source.commits for label in message_labels(c.body)]
        author = source.commits[-1].author_name if source.commits else None
        return SourceInfo(tuple(dict.fromkeys(found)) if found else None, author)

    def _pr(self, row: dict) -> PullRequest:
        return PullRequest(row["number"], f"local://{row['repo']}/pull/{row['number']}", row["title"], row["head"],
                           row["base"], row["state"], tuple(json.loads(row["labels"])))

    def checks(self, repo: Repo, number: int) -> Checks:
        return Checks((), (), ())  # no CI here (config refuses verify = "ci" with this forge)

    def mark_ready(self, repo: Repo, number: int) -> None:
        pass

    def find_open(self, repo: Repo, head: str) -> PullRequest | None:
        with self.store.lock:
            rows = list(self.store.db["local_prs"].rows_where("repo = ? and head = ? and state = 'open'",
                                                              [repo.key, head]))
        return self._pr(rows[0]) if rows else None

    def open_pull_request(self, repo: Repo, draft: PullRequestDraft) -> PullRequest:
        ws = repo.workspace
        if ws.remote_url:
            try:
                ws.git.run("push", "--quiet", "--force", "origin", f"refs/heads/{draft.head}:refs/heads/{draft.head}")
            except GitError as e:
                raise PushFailed(f"could not push {draft.head}: {brief(e.stderr)}") from None
        with self.store.lock:
            table = self.store.db["local_prs"].insert(
                {"repo": repo.key, "title": draft.title, "body": draft.body, "labels": json.dumps(list(draft.labels)),
                 "head": draft.head, "base": draft.base, "state": "open", "source": draft.source,
                 "reviewers": json.dumps(list(draft.reviewers)), "created_at": now()})
            return self._pr(dict(self.store.db["local_prs"].get(table.last_pk)))

    def pull_request(self, number: int) -> dict:
        """The stored row, body included (for tests and the console)."""
        with self.store.lock:
            return dict(self.store.db["local_prs"].get(number))
