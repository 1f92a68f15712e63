"""Running git: one place that fixes the environment, captures output and maps errors."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

# Config the engine always wants, whatever the user's own git config says.
BASE_CONFIG: tuple[str, ...] = (
    "-c", "core.quotePath=false",
    "-c", "merge.conflictStyle=zdiff3",
    "-c", "merge.renames=true",
    "-c", "diff.renames=true",
    "-c", "rerere.enabled=true",
    "-c", "rerere.autoUpdate=false",
    "-c", "gc.auto=0",
    "-c", "advice.detachedHead=false",
    "-c", "commit.gpgSign=false",
)

DEFAULT_IDENTITY = {"name": "backportbot", "email": "backportbot@localhost"}


_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
_URL = re.compile(r"\w+://[^\s'\"]+")


def redact(text: str) -> str:
    """Hide credentials embedded in URLs (https://x-access-token:...@github.com/...)."""
    return _CREDENTIALS.sub(r"\1***@", text)


def excerpt(text: str, limit: int = 60) -> str:
    """What someone typed, cut short for echoing back."""
    return text if len(text) <= limit else text[:limit] + "…"


def brief(text: str, limit: int = 300) -> str:
    """git's stderr on one line, without hints or URLs (they may carry credentials), for chat."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith(("hint:", "To "))]  # "To <remote URL>" says nothing new
    return _URL.sub("<remote>", " | ".join(lines))[:limit]


class GitError(Exception):
    """A git command failed in a way the caller did not expect."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.args_ = [redact(a) for a in args]
        self.returncode = returncode
        self.stderr = redact(stderr.strip())
        super().__init__(f"git {' '.join(self.args_[:3])} failed ({returncode}): {self.stderr[-500:]}")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


class _Objects:
    """GitPython's Repo for one directory. Its `cat-file --batch` process stays running between
    reads and answers one request at a time, so readers take the lock. It stops when the last Git
    bound to the directory goes."""

    def __init__(self, path: Path) -> None:
        self.repo = gitpython.Repo(path)
        self.lock = threading.RLock()

    def __del__(self) -> None:
        # Not left to the Repo's own __del__: the Repo sits in reference cycles, so only the cyclic
        # garbage collector would stop the process, whenever it runs.
        with contextlib.suppress(Exception):  # at interpreter exit
            self.repo.close()


_objects: weakref.WeakValueDictionary[Path, _Objects] = weakref.WeakValueDictionary()
_objects_guard = threading.Lock()


class Git:
    """git bound to one directory (a work tree or a git dir)."""

    def __init__(self, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        self.cwd = Path(cwd)
        self.env = dict(env or {})
        self._objects: _Objects | None = None

    def with_env(self, **extra: str) -> Git:
        git = Git(self.cwd, {**self.env, **extra})
        git._objects = self._objects  # object reads ignore the environment
        return git

    @contextmanager
    def objects(self) -> Iterator[gitpython.Repo]:
        """GitPython's Repo for reading objects (commits, messages, parents), shared by every Git
        bound to this directory. Read inside the block only: it holds the Repo for this thread."""
        if self._objects is None:
            key = self.cwd.resolve()
            with _objects_guard:
                found = _objects.get(key)
                if found is None:
                    try:
                        found = _objects[key] = _Objects(key)
                    except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError) as e:
                        raise GitError(["cat-file", "--batch"], 128, f"not a git repository: {e}") from None
            self._objects = found
        with self._objects.lock:
            try:
                yield self._objects.repo
            except BaseException:
                # A read cut short can leave an answer in the pipe: start cat-file afresh next time.
                self._objects.repo.git.clear_cache()
                raise

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_EDITOR": "true"})
        # The committer is the bot unless the environment names someone.
        env.setdefault("GIT_COMMITTER_NAME", DEFAULT_IDENTITY["name"])
        env.setdefault("GIT_COMMITTER_EMAIL", DEFAULT_IDENTITY["email"])
        env.update(self.env)
        return env

    def run(
        self,
        *args: str,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> Result:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(
            ["git", *BASE_CONFIG, *args],
            cwd=self.cwd,
            input=data,
            capture_output=True,
            env=self._env(),
            timeout=timeout,
        )
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        if check and proc.returncode != 0:
            raise GitError(args, proc.returncode, err or out)
        return Result(proc.returncode, out, err)

    def out(self, *args: str, input: str | bytes | None = None) -> str:
        """stdout of a command that must succeed, without the final newline."""
        return self.run(*args, input=input).stdout.rstrip("\n")

    def raw(self, *args: str, input: bytes | None = None) -> bytes:
        """stdout as bytes (file contents, -z output)."""
        proc = subprocess.run(
            ["git", *BASE_CONFIG, *args], cwd=self.cwd, input=input, capture_output=True, env=self._env()
        )
        if proc.returncode != 0:
            raise GitError(args, proc.returncode, proc.stderr.decode("utf-8", "replace"))
        return proc.stdout

    def ok(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def rev(self, ref: str) -> str | None:
        """Full SHA of a commit-ish, or None when it does not name a commit."""
        if ref.startswith("-"):
            return None  # an option, not a revision
        res = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
        return res.stdout.strip() or None if res.returncode == 0 else None

    def is_ancestor(self, a: str, b: str) -> bool:
        return self.ok("merge-base", "--is-ancestor", a, b)
