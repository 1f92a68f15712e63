"""What to pick: a fix named by a commit, a `#N` pull request number, or a commit range."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.engine.errors import BadInput, NotFound, NotMerged
from bot.engine.git import Git

PR_SUFFIX = re.compile(r"\(#(\d+)\)\s*$")
MERGE_PR = re.compile(r"^Merge pull request #(\d+) ")


_LABELS = re.compile(r"^Labels?:\s*(.+)$", re.M | re.I)


def message_labels(message: str) -> list[str]:
    """Labels written in a commit message as `Labels: bug, backport/8.1` (the local convention)."""
    return [x.strip() for m in _LABELS.finditer(message) for x in m.group(1).split(",") if x.strip()]


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    subject: str
    body: str
    author_name: str
    author_email: str
    author_date: str  # raw "<unix> <tz>" as git wants it back

    @property
    def message(self) -> str:
        return self.subject + ("\n\n" + self.body if self.body.strip() else "") + "\n"

    @property
    def pr_number(self) -> int | None:
        m = PR_SUFFIX.search(self.subject) or MERGE_PR.match(self.subject)
        return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Source:
    """A fix to carry back. `key` is how it is named in the store: `#1234` or a full SHA."""

    key: str
    commits: tuple[Commit, ...]  # in the order they are picked
    mainline: int | None  # 1 when the single commit is a merge commit
    title: str
    pr_number: int | None = None
    labels: tuple[str, ...] | None = None  # None: the forge did not say
    author: str | None = None

    @property
    def slug(self) -> str:
        """The ref as it appears in branch names: `1234` or a short SHA."""
        return self.key.lstrip("#") if self.key.startswith("#") else self.key[:10]


_FORMAT = "%H%x1f%P%x1f%an%x1f%ae%x1f%ad%x1f%s%x1f%b%x1e"


def read_commits(git: Git, *revs: str) -> list[Commit]:
    """Commits of `git log --no-walk` (or of a range when given one), oldest first."""
    args = ["log", f"--format={_FORMAT}", "--date=raw", "--reverse"]
    if not any(".." in r for r in revs):
        args.append("--no-walk=unsorted")
    out = git.out(*args, *revs, "--")
    commits = []
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec:
            continue
        sha, parents, an, ae, ad, subject, body = rec.split("\x1f")
        commits.append(Commit(sha, tuple(parents.split()), subject, body.strip("\n"), an, ae, ad))
    return commits


def resolve(git: Git, ref: str, main_ref: str) -> Source:
    """Find the fix in the repository. `main_ref` is the full ref of the main branch."""
    ref = ref.strip()
    if m := re.fullmatch(r"#?(\d{1,6})", ref):
        return _by_pr_number(git, int(m.group(1)), main_ref)
    if ".." in ref:
        commits = read_commits(git, ref)
        if not commits:
            raise NotFound(f"the range {ref} holds no commits")
        return Source(ref, tuple(commits), None, commits[-1].subject)
    if not re.fullmatch(r"[0-9a-fA-F]{4,40}", ref) and not git.rev(ref):
        raise BadInput(f"{ref!r} is neither a commit, a range nor a pull request number (#1234)")
    sha = git.rev(ref)
    if not sha:
        raise NotFound(f"no commit {ref} in this repository")
    if not git.is_ancestor(sha, main_ref):
        main = main_ref.rsplit("/", 1)[-1]
        raise NotMerged(f"commit {sha[:10]} is not on the main branch ({main}); merge it first")
    (commit,) = read_commits(git, sha)
    mainline = 1 if len(commit.parents) > 1 else None
    return Source(sha, (commit,), mainline, commit.subject, pr_number=commit.pr_number)


def _by_pr_number(git: Git, number: int, main_ref: str) -> Source:
    out = git.out("log", "--first-parent", "--format=%H%x1f%s", "-E",
                  f"--grep=(\\(#{number}\\)\\s*$)|(^Merge pull request #{number} )", main_ref)
    shas = [line.split("\x1f")[0] for line in out.splitlines() if line]
    commits = [c for c in read_commits(git, *shas) if c.pr_number == number] if shas else []
    if not commits:
        main = main_ref.rsplit("/", 1)[-1]
        raise NotFound(f"no commit on {main} whose subject ends with (#{number}) "
                       f"or that merges pull request #{number}")
    merges = [c for c in commits if len(c.parents) > 1]
    if merges:  # a merge commit brings the whole PR; pick it against its first parent
        return Source(f"#{number}", (merges[-1],), 1, _title(merges[-1]), pr_number=number)
    return Source(f"#{number}", tuple(commits), None, _title(commits[-1]), pr_number=number)


def _title(commit: Commit) -> str:
    """The PR's title: the subject of its squash commit, or the first body line of a merge."""
    if MERGE_PR.match(commit.subject) and commit.body.strip():
        return commit.body.strip().splitlines()[0]
    return PR_SUFFIX.sub("", commit.subject).strip()
