"""Policy before picking: refuse backports of backports, find fixes already on the branch, and
flag sources that are not labelled as fixes."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.engine.errors import Circular
from bot.engine.git import Git
from bot.engine.source import Commit, Source, changed_paths, log_commits

# How a commit says it is a backport of another one.
ORIGIN = re.compile(r"(?:cherry picked from commit|Backport of|backported from)\s+([0-9a-f]{7,40})", re.I)
PATCH_ID_ALL = 400  # branch commits on the files asked whose patch-ids are all read; past it, same authors only
PR_ANYWHERE = re.compile(r"\(#(\d+)\)")  # a backport's own PR number may follow the original's
BACKPORT_SUBJECT = re.compile(r"^\[(Backport [^\]]+|\d+(\.\d+)+(\.x)?)\]", re.I)


@dataclass(frozen=True)
class Presence:
    commit: str  # the source commit
    on_branch: str  # the commit on the target that carries it
    how: str  # ancestor | trailer | subject | patch-id


def refuse_circular(source: Source) -> None:
    for c in source.commits:
        m = ORIGIN.search(c.body)
        if m or BACKPORT_SUBJECT.match(c.subject):
            origin = f"; backport {m.group(1)[:10]} instead" if m else ""
            raise Circular(f"commit {c.sha[:10]} ({c.subject}) is itself a backport{origin}",
                           details={"commit": c.sha})


def needs_approval(source: Source, fix_labels: list[str]) -> str | None:
    """Why a maintainer must approve explicitly, or None."""
    if source.labels is None:
        return None  # no forge to ask: the person who asked is the judge
    if {label.lower() for label in source.labels} & {f.lower() for f in fix_labels}:
        return None
    shown = ", ".join(source.labels) or "no labels"
    return f"the source is not labelled as a fix ({shown}; fix labels: {', '.join(fix_labels)})"


def patch_ids(git: Git, spec: list[str]) -> dict[str, str]:
    """commit -> stable patch-id for `git log -p` over spec (add "--first-parent", "-m" to the spec
    to diff merge commits against their first parent)."""
    diff = git.raw("log", "-p", "--no-color", "--format=commit %H", *spec)
    if not diff.strip():
        return {}
    out = git.out("patch-id", "--stable", input=diff)
    ids: dict[str, str] = {}
    for line in out.splitlines():
        pid, commit = line.split()
        ids.setdefault(commit, pid)
    return ids


class BranchIndex:
    """What a target branch carries, read once per target and attempt: the origins its commits'
    trailers name and the `(#N)` of their subjects (one `git log` over merge-base..target), and
    the patch-ids of its commits that touch a given set of files (read when first asked, kept)."""

    def __init__(self, git: Git, target_ref: str, main_ref: str, base: str | None = None) -> None:
        self.git, self.target_ref, self.main_ref = git, target_ref, main_ref
        self._base = base
        self._origins: dict[str, list[tuple[str, str]]] | None = None  # origin[:7] -> (origin, branch commit)
        self._prs: dict[int, str] = {}
        self._ids: dict[str, str] = {}  # branch commit -> patch-id, for the files asked so far
        self._by_id: dict[str, str] = {}  # patch-id -> branch commit
        self._touching: dict[frozenset[str], list[tuple[str, str]]] = {}  # files -> (commit, author email)
        self._lock = threading.Lock()  # attempts on one branch may share the index

    @property
    def base(self) -> str:
        if self._base is None:
            self._base = self.git.out("merge-base", self.target_ref, self.main_ref)
        return self._base

    def _read(self) -> dict[str, list[tuple[str, str]]]:
        with self._lock:
            return self._read_locked()

    def _read_locked(self) -> dict[str, list[tuple[str, str]]]:
        if self._origins is None:
            origins: dict[str, list[tuple[str, str]]] = {}
            for theirs in log_commits(self.git, f"{self.base}..{self.target_ref}"):
                for origin in ORIGIN.findall(theirs.body):
                    origins.setdefault(origin[:7].lower(), []).append((origin.lower(), theirs.sha))
                for number in PR_ANYWHERE.findall(theirs.subject):
                    self._prs.setdefault(int(number), theirs.sha)
            self._origins = origins
        return self._origins

    def _patch_ids(self, files: set[str], authors: set[str]) -> dict[str, str]:
        """patch-id -> branch commit, over the branch commits that touch any of `files`. When more
        than PATCH_ID_ALL do (a branch far from main, a busy file), only those by one of `authors`
        (a cherry-pick or `git am` keeps the author): the patch-ids are the costly part."""
        with self._lock:
            return self._patch_ids_locked(files, authors)

    def _patch_ids_locked(self, files: set[str], authors: set[str]) -> dict[str, str]:
        key = frozenset(files)
        if key not in self._touching:
            rows = self.git.out("log", "--format=%H %ae", "--no-merges", f"{self.base}..{self.target_ref}",
                                "--", *sorted(files)).splitlines()
            self._touching[key] = [(row[:40], row[41:]) for row in rows]
        touching = self._touching[key]
        if len(touching) > PATCH_ID_ALL:
            touching = [(sha, email) for sha, email in touching if email.lower() in authors]
        shas = [sha for sha, _ in touching if sha not in self._ids]
        if shas:
            for sha, pid in patch_ids(self.git, ["--no-walk=unsorted", "--first-parent", "-m", *shas]).items():
                self._ids[sha] = pid
                self._by_id.setdefault(pid, sha)
            self._ids.update((sha, "") for sha in shas if sha not in self._ids)
        return self._by_id

    def presence(self, commits: Sequence[Commit], pr_number: int | None = None,
                 own_pr: bool = False) -> dict[str, Presence]:
        """Which of `commits` the branch carries: as an ancestor, through a trailer naming it, by the
        `(#N)` of `pr_number` (or, with `own_pr`, of each commit's own subject), or by equal patch-id."""
        found: dict[str, Presence] = {}
        pending: list[Commit] = []
        for c in commits:
            if self.git.is_ancestor(c.sha, self.target_ref):
                found[c.sha] = Presence(c.sha, c.sha, "ancestor")
            else:
                pending.append(c)
        if not pending:
            return found
        origins = self._read()
        for c in pending:
            for origin, theirs in origins.get(c.sha[:7], []):
                if c.sha.startswith(origin):
                    found.setdefault(c.sha, Presence(c.sha, theirs, "trailer"))
                    break
            pr = c.pr_number if own_pr else pr_number
            if c.sha not in found and pr is not None and pr in self._prs:
                found[c.sha] = Presence(c.sha, self._prs[pr], "subject")
        rest = [c for c in pending if c.sha not in found]
        if rest:
            files = {f for paths in changed_paths(self.git, [c.sha for c in rest]).values() for f in paths}
            by_id = self._patch_ids(files, {c.author_email.lower() for c in rest}) if files else {}
            if by_id:
                mine = patch_ids(self.git, ["--no-walk=unsorted", "--first-parent", "-m", *[c.sha for c in rest]])
                for c in rest:
                    if (pid := mine.get(c.sha)) and pid in by_id:
                        found[c.sha] = Presence(c.sha, by_id[pid], "patch-id")
        return found


_INDEXES: OrderedDict[tuple[str, str, str], BranchIndex] = OrderedDict()
_INDEXES_LOCK = threading.Lock()


def branch_index(git: Git, target_ref: str, main_ref: str) -> BranchIndex:
    """The index of what the target carries, shared by the steps of an attempt (policy first,
    prerequisites on a conflict): keyed by the repository and the commits both refs point at, so
    a moved branch gets a new one. The last few are kept."""
    target, main = git.out("rev-parse", f"{target_ref}^{{commit}}", f"{main_ref}^{{commit}}").split()
    key = (str(git.cwd.resolve()), target, main)
    with _INDEXES_LOCK:
        if key in _INDEXES:
            _INDEXES.move_to_end(key)
            return _INDEXES[key]
        index = _INDEXES[key] = BranchIndex(git, target, main)
        while len(_INDEXES) > 8:
            _INDEXES.popitem(last=False)
        return index


def find_present(git: Git, source: Source, target_ref: str, main_ref: str,
                 index: BranchIndex | None = None) -> list[Presence]:
    """Which of the source's commits the target already carries, and how we know."""
    index = index or branch_index(git, target_ref, main_ref)
    found = index.presence(source.commits, pr_number=source.pr_number)
    return [found[c.sha] for c in source.commits if c.sha in found]
