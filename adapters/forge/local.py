"""The embedded forge: a pull request is a branch pushed to the repository's remote (or left in
the local repository) and a row in the bot's store. Labels of a fix come from a `Labels:` line."""

from __future__ import annotations

from adapters.store.sqlite import LocalPullRequest, SQLiteStore
from bot.core.ports import Checks, PullRequest, PullRequestDraft, SourceInfo
from bot.core.repos import Repo
from bot.engine.candidates import PullInfo
from bot.engine.errors import PushFailed
from bot.engine.git import GitError, brief
from bot.engine.source import Source, message_labels


def _pr(row: LocalPullRequest) -> PullRequest:
    return PullRequest(row.number, f"local://{row.repo}/pull/{row.number}", row.title, row.head, row.base,
                       row.state, tuple(row.labels))


class LocalForge:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def resolve(self, repo: Repo, key: str) -> Source | None:
        return None  # the local forge knows PRs by their "(#N)" subjects, as git does

    def comment_on_source(self, repo: Repo, source_key: str, body: str) -> None:
        pass  # a PR found in git history has no comment thread here

    def source_info(self, repo: Repo, source: Source) -> SourceInfo:
        found = [label for c in source.commits for label in message_labels(c.body)]
        author = source.commits[-1].author_name if source.commits else None
        return SourceInfo(tuple(dict.fromkeys(found)) if found else None, author)

    def pull_info(self, repo: Repo, numbers: list[int]) -> dict[int, PullInfo]:
        return {}  # labels come from `Labels:` lines, which the digest reads in git

    def checks(self, repo: Repo, number: int) -> Checks:
        return Checks((), (), ())  # no CI here (config refuses verify = "ci" with this forge)

    def mark_ready(self, repo: Repo, number: int) -> None:
        pass

    def find_open(self, repo: Repo, head: str) -> PullRequest | None:
        rows = self.store.local_prs(repo.key, head)
        return _pr(rows[0]) if rows else None

    def open_pull_request(self, repo: Repo, draft: PullRequestDraft) -> PullRequest:
        ws = repo.workspace
        if ws.remote_url:
            try:
                ws.git.run("push", "--quiet", "--force", "origin", f"refs/heads/{draft.head}:refs/heads/{draft.head}")
            except GitError as e:
                raise PushFailed(f"could not push {draft.head}: {brief(e.stderr)}") from None
        return _pr(self.store.add_local_pr(repo.key, draft.title, draft.body, list(draft.labels), draft.head,
                                           draft.base, draft.source, list(draft.reviewers)))

    def pull_request(self, number: int) -> LocalPullRequest:
        """The stored pull request, body included (for tests and the console)."""
        return self.store.local_pr(number)
