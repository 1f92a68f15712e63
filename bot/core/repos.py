"""A repository as the bot works with it: its workspace, main branch, release branches and
commands (the composition root builds one from a configured entry; `from_path` from a local
path with no config at all)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bot.engine.candidates import PROPOSED, Candidate, Evidence
from bot.engine.candidates import find as find_candidates
from bot.engine.errors import BadInput
from bot.engine.git import excerpt
from bot.engine.ports import Command
from bot.engine.workspace import Workspace

DEFAULT_FIX_LABELS = ("bug", "security", "critical")
NO_BRANCHES = ("(none): this repository has no release branch yet; create one, fetch them (`git fetch origin`), "
               "or name them in a config's [[repos.branches]]")


@dataclass(frozen=True)
class Repo:
    key: str  # how the store names it: the configured name, or the absolute path
    workspace: Workspace
    main_branch: str
    branches: dict[str, str]  # what people type (names and aliases) -> git branch
    display: dict[str, str]  # git branch -> the name people use
    commands: tuple[Command, ...] = ()
    fix_labels: tuple[str, ...] = DEFAULT_FIX_LABELS
    channels: tuple[str, ...] = ()  # chat channels whose commands are about this repository
    github: str | None = None  # owner/name on GitHub
    push_repo: str | None = None  # owner/name of a fork to push backport branches to
    push_url: str | None = None  # git URL to push to (default: the clone's origin)
    verify: str = "local"  # local: run `commands` here; ci: a draft PR whose checks decide
    ci_timeout_minutes: float = 60  # with verify = "ci": how long the bot waits for any CI to report
    digest_include: tuple[str, ...] = PROPOSED  # the categories the digest proposes

    @property
    def main_ref(self) -> str:
        ref = self.workspace.branch_ref(self.main_branch)
        if ref is None:
            raise BadInput(f"the main branch {self.main_branch!r} does not exist in {self.key}")
        return ref

    @property
    def local_commands(self) -> tuple[Command, ...]:
        """The commands the engine runs itself: none when the forge's CI verifies."""
        return self.commands if self.verify == "local" else ()

    def source_key(self, ref: str) -> str:
        """How the store names a fix someone typed: `#N`, or a full SHA when the commit exists."""
        if m := re.fullmatch(r"#?(\d{1,6})", ref.strip()):
            return f"#{m.group(1)}"
        return self.workspace.git.rev(ref) or ref

    def release_branches(self) -> list[str]:
        return list(dict.fromkeys(self.display.values()))

    def release_refs(self) -> dict[str, str]:
        """The name people use -> its full ref, for every release branch (BadInput when one is missing)."""
        return {name: self.branch(name)[1] for name in self.release_branches()}

    def candidates(self, since: str | None, dismissed: set[str] | None = None, evidence: Evidence | None = None,
                   timezone: str = "UTC") -> list[Candidate]:
        """The digest's candidates merged on the main branch since `since` (a commit, or a date: its
        00:00 in `timezone`); `evidence`: what the forge says of their pull requests."""
        return find_candidates(self.workspace.git, self.main_ref, self.release_refs(), self.fix_labels, since,
                               dismissed, include=self.digest_include, evidence=evidence, timezone=timezone)

    def branch(self, name: str) -> tuple[str, str]:
        """(display name, full ref) of a release branch; BadInput lists the valid ones."""
        git_branch = self.branches.get(name)
        ref = self.workspace.branch_ref(git_branch) if git_branch else None
        if git_branch is None or ref is None:
            valid = ", ".join(self.release_branches()) or NO_BRANCHES
            what = "unknown branch" if git_branch is None else "branch missing from the repository:"
            raise BadInput(f"{what} {excerpt(name)!r}; valid branches: {valid}")
        return self.display[git_branch], ref

    def expand(self, names: list[str]) -> list[str]:
        """`all` means every release branch; duplicates and aliases collapse."""
        if any(n.lower() == "all" for n in names):
            self.require_branches()
            return self.release_branches()
        return list(dict.fromkeys(self.branch(n)[0] for n in names))

    def require_branches(self) -> None:
        """BadInput, with how to get one, when this repository has no release branch at all."""
        if not self.release_branches():
            raise BadInput(f"nothing to work on in {self.key}; valid branches: {NO_BRANCHES}")


def from_path(path: Path, data_dir: Path, main_branch: str | None = None) -> Repo:
    """A local repository with no config: every branch but the main one (and the bot's own
    backport/...) is a release branch, local or origin/... (a fresh clone has only its main branch
    locally; picking onto origin/X reads that ref, and the result is still a local branch)."""
    try:
        ws = Workspace.in_place(path, data_dir)
    except FileNotFoundError as e:
        raise BadInput(str(e)) from None
    # A fresh clone has its main branch locally and the release branches only as origin/...: both count.
    names = list(dict.fromkeys([*ws.branches(), *ws.branches("refs/remotes/origin/")]))
    main = main_branch or _guess_main(ws, names)
    if main is None:
        raise BadInput(f"cannot tell the main branch of {ws.git_dir}; name it with --main")
    release = [b for b in names if b != main and not b.startswith("backport/")]
    return Repo(ws.key, ws, main, {b: b for b in release}, {b: b for b in release})


def _guess_main(ws: Workspace, names: list[str]) -> str | None:
    head = ws.git.run("symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False).stdout.strip()
    if head.startswith("refs/remotes/origin/"):
        return head.removeprefix("refs/remotes/origin/")  # a main branch may have a slash in its name
    for candidate in ("main", "master", "unstable", "trunk", "develop"):
        if candidate in names:
            return candidate
    return None
