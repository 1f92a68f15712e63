"""A tiny builder for real git repositories with realistic drift between branches."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, main: str = "main") -> GitRepo:
        path.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", main, str(path)], check=True)
        return cls(path)

    def git(self, *args: str, check: bool = True) -> str:
        res = subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True)
        if check and res.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {res.stderr}")
        return res.stdout.strip()

    def write(self, files: dict[str, str | None]) -> None:
        for name, text in files.items():
            p = self.path / name
            if text is None:
                self.git("rm", "-q", name)
                continue
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            self.git("add", name)

    def commit(self, message: str, files: dict[str, str | None] | None = None, on: str | None = None) -> str:
        if on is not None:
            self.checkout(on)
        if files:
            self.write(files)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def rename(self, old: str, new: str, message: str) -> str:
        (self.path / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)
        self.git("commit", "-q", "-m", message)
        return self.head()

    def branch(self, name: str, at: str = "HEAD") -> None:
        self.git("branch", name, at)

    def checkout(self, name: str) -> None:
        self.git("checkout", "-q", name)

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)

    def show(self, ref: str, path: str) -> str:
        return self.git("show", f"{ref}:{path}") + "\n"

    def merge(self, branch: str, message: str) -> str:
        self.git("merge", "-q", "--no-ff", "-m", message, branch)
        return self.head()


def lines(n: int, prefix: str = "line") -> str:
    """A file body of n distinct lines, so hunks have unambiguous context."""
    return "".join(f"{prefix} {i}\n" for i in range(1, n + 1))


def published(tmp_path: Path, scenario: Callable[[GitRepo], str]) -> tuple[GitRepo, Path, str]:
    """A work repository built by `scenario`, and its bare clone: the remote the bot works from."""
    work = GitRepo.create(tmp_path / "work")
    ref = scenario(work)
    remote = tmp_path / "remote.git"
    work.git("clone", "-q", "--bare", str(work.path), str(remote))
    return work, remote, ref
