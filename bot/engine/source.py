"""What to pick: a fix named by a commit, a `#N` pull request number, or a commit range."""

from __future__ import annotations

import re
from dataclasses import dataclass

import git as gitpython
from git.objects.util import altz_to_utctz_str

from bot.engine.errors import BadInput, NotFound, NotMerged
from bot.engine.git import Git, GitError, excerpt

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


_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_UNDECODED = "\ufffd"
_SPACE = " \t\r\n"  # git's isspace(): not \v, \f or Unicode spaces as Python's strip() would


def split_message(message: str) -> tuple[str, str]:
    """(subject, body) as git's %s and %b give them: the first paragraph with its lines joined by
    spaces; the rest after the blank lines that follow it, without its outer newlines."""
    lines = message.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip(_SPACE):
        i += 1
    start = i
    while i < len(lines) and lines[i].strip(_SPACE):
        i += 1
    subject = " ".join(line.rstrip(_SPACE) for line in lines[start:i])
    while i < len(lines) and not lines[i].strip(_SPACE):
        i += 1
    return subject, "\n".join(lines[i:]).strip("\n")


def _text(message: str | bytes) -> str:
    """GitPython leaves a message it could not decode as bytes: mark it for a second read."""
    return message if isinstance(message, str) else _UNDECODED


def _record(c: gitpython.Commit) -> Commit:
    subject, body = split_message(_text(c.message))
    # GitPython keeps the offset in seconds west of UTC; git wants "+HHMM" east back.
    date = f"{c.authored_date} {altz_to_utctz_str(c.author_tz_offset)}"
    return Commit(c.hexsha, tuple(p.hexsha for p in c.parents), subject, body, c.author.name or "",
                  c.author.email or "", date)


def _load(git: Git, shas: list[str]) -> list[Commit]:
    """Commit records through GitPython's running `cat-file --batch`: no process per call."""
    with git.objects() as repo:
        try:
            commits = [_record(gitpython.Commit(repo, bytes.fromhex(sha))) for sha in shas]
        except ValueError as e:  # cat-file answered "missing"
            raise GitError(["cat-file", "--batch", *shas[:3]], 128, str(e)) from None
    # GitPython decodes as UTF-8 whatever a commit's `encoding` header says; git re-encodes.
    # Text that did not decode (rare) is read again the way git shows it.
    return [log_commits(git, "--no-walk", c.sha)[0] if _UNDECODED in c.subject + c.body + c.author_name else c
            for c in commits]


def read_commits(git: Git, *revs: str) -> list[Commit]:
    """Commits in the order of `git log --reverse --no-walk=unsorted` (of a range when given one:
    oldest first). Full SHAs need no listing; anything else is listed by rev-list."""
    if all(_FULL_SHA.fullmatch(r) for r in revs):
        shas = list(reversed(dict.fromkeys(revs)))
    else:
        walk = [] if any(".." in r for r in revs) else ["--no-walk=unsorted"]
        shas = git.out("rev-list", "--reverse", *walk, "--end-of-options", *revs, "--").split()
    return _load(git, shas)


def raw_message(git: Git, sha: str) -> str:
    """The message as written (git's %B)."""
    with git.objects() as repo:
        message = _text(repo.commit(sha).message)
    if _UNDECODED in message:  # see _load
        return git.run("log", "-1", "--format=%B", sha).stdout[:-1]
    return message


# NUL cannot occur in a commit's text: records are 7 NUL-separated fields, NUL-terminated (-z).
_LOG_FORMAT = "%H%x00%P%x00%an%x00%ae%x00%ad%x00%s%x00%b"


def log_commits(git: Git, *spec: str) -> list[Commit]:
    """Every commit `git log <spec>` shows, in its order, from one `git log` stream: for bulk scans
    of a range, where reading each commit through GitPython costs 3-4x more (~90 us a commit)."""
    fields = git.run("log", "-z", f"--format={_LOG_FORMAT}", "--date=raw", *spec).stdout.split("\0")
    return [Commit(sha, tuple(parents.split()), subject, body.strip("\n"), an, ae, ad)
            for sha, parents, an, ae, ad, subject, body in zip(*[iter(fields)] * 7, strict=False)]


def changed_paths(git: Git, shas: list[str]) -> dict[str, list[str]]:
    """The paths each commit touches (merges: against their first parent), in one git call."""
    out = git.out("log", "--no-walk=unsorted", "--first-parent", "-m", "--name-only", "--format=%x1e%H", *shas)
    found: dict[str, list[str]] = {}
    for rec in out.split("\x1e"):
        lines = [line for line in rec.splitlines() if line]
        if lines:
            found.setdefault(lines[0], []).extend(lines[1:])
    return found


def resolve(git: Git, ref: str, main_ref: str) -> Source:
    """Find the fix in the repository. `main_ref` is the full ref of the main branch."""
    ref = ref.strip()
    if any(part.startswith("-") for part in ref.split("..")):
        raise BadInput(f"{excerpt(ref)!r} is not a commit: a commit or a range never starts with '-'")
    if m := re.fullmatch(r"#?(\d{1,6})", ref):
        return _by_pr_number(git, int(m.group(1)), main_ref)
    if ".." in ref:
        commits = read_commits(git, ref)
        if not commits:
            raise NotFound(f"the range {ref} holds no commits")
        return Source(ref, tuple(commits), None, commits[-1].subject)
    if not re.fullmatch(r"[0-9a-fA-F]{4,40}", ref) and not git.rev(ref):
        raise BadInput(f"{excerpt(ref)!r} is neither a commit, a range nor a pull request number (#1234)")
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
    shas = git.out("rev-list", "--first-parent", "-E",
                   f"--grep=(\\(#{number}\\)\\s*$)|(^Merge pull request #{number} )", main_ref).split()
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
