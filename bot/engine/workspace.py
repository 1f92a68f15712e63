"""Where the engine works: a repository (the user's own, or a cached clone in the data dir),
its worktrees, and the locks that keep concurrent attempts from stepping on each other."""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from bot.engine.errors import FetchFailed
from bot.engine.git import Git, GitError, brief

CREDENTIALS_HINT = ("A maintainer must give the bot read access: GITHUB_TOKEN with access to the repository, or "
                    "the GitHub App installed on it (a remote elsewhere than GitHub needs credentials of its own).")


def refused(stderr: str) -> bool:
    """Whether git failed because the remote wants credentials it did not get or did not accept."""
    return any(s in stderr for s in ("could not read Username", "Authentication failed", "401", "403",
                                     "Permission denied (publickey)"))


# The environment git needs to reach some URLs (credentials in GIT_CONFIG_* headers), from the forge.
Auth = Callable[..., Mapping[str, str]]

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _thread_lock(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "repo"


class Workspace:
    """A repository the engine can pick in.

    In place (`--repo PATH`): branches are the repository's own, results are written there.
    Cached clone (a configured URL): a bare clone under the data dir, fetched before work; the
    remote's branches live under refs/remotes/origin/.
    """

    def __init__(self, git_dir: Path, data_dir: Path, key: str, remote_url: str | None = None,
                 auth: Auth | None = None) -> None:
        self.git_dir = git_dir
        self.key = key
        self.remote_url = remote_url
        self.auth = auth
        self.git = Git(git_dir)
        self.worktrees_dir = data_dir / "worktrees" / safe_name(key)
        self.logs_dir = data_dir / "logs" / safe_name(key)
        self._lock_file = data_dir / "locks" / f"{safe_name(key)}.lock"

    @classmethod
    def in_place(cls, path: Path, data_dir: Path, key: str | None = None) -> Workspace:
        git = Git(path)
        res = git.run("rev-parse", "--show-toplevel", check=False)
        if res.returncode != 0:
            bare = git.run("rev-parse", "--is-bare-repository", check=False)
            if bare.returncode != 0:
                raise FileNotFoundError(f"{path} is not a git repository")
            top = Path(path).resolve()
        else:
            top = Path(res.stdout.strip())
        ws = cls(top, data_dir, key or str(top))
        ws.ensure_commit_graph()
        return ws

    @classmethod
    def cached_clone(cls, name: str, url: str, data_dir: Path, auth: Auth | None = None) -> Workspace:
        git_dir = data_dir / "repos" / f"{safe_name(name)}.git"
        ws = cls(git_dir, data_dir, name, remote_url=url, auth=auth)
        with ws.lock():
            if not (git_dir / "HEAD").exists():
                git_dir.mkdir(parents=True, exist_ok=True)
                Git(git_dir).run("init", "--bare", "--quiet")
                ws.git.run("remote", "add", "origin", url)
                ws.git.run("config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
                ws.git.run("config", "fetch.writeCommitGraph", "true")
        return ws

    def ensure_commit_graph(self) -> None:
        """Ancestry questions (merge-base, --is-ancestor) cost ~250 ms each on a large history
        without a commit-graph and ~10 ms with one; git's own maintenance writes the same file."""
        common = self.git_dir / self.git.out("rev-parse", "--git-common-dir")
        info = common / "objects" / "info"
        if (info / "commit-graph").exists() or (info / "commit-graphs" / "commit-graph-chain").exists():
            return
        with self.lock():
            self.git.run("commit-graph", "write", "--reachable", "--split", check=False)

    # --- refs ----------------------------------------------------------------------------------

    def branch_ref(self, branch: str) -> str | None:
        """The full ref of a branch as this workspace sees it, or None when it does not exist."""
        candidates = [f"refs/remotes/origin/{branch}"] if self.remote_url else [
            f"refs/heads/{branch}", f"refs/remotes/origin/{branch}"]
        for ref in candidates:
            if self.git.ok("show-ref", "--verify", "--quiet", ref):
                return ref
        return None

    def branches(self, prefix: str | None = None) -> list[str]:
        """Branch names (short) under `prefix` (default: where this workspace keeps its branches)."""
        prefix = prefix or ("refs/remotes/origin/" if self.remote_url else "refs/heads/")
        out = self.git.out("for-each-ref", "--format=%(refname)", prefix)
        return [r[len(prefix):] for r in out.splitlines() if r and not r.endswith("/HEAD")]

    def update_branch(self, branch: str, commit: str) -> None:
        with self.lock():
            self.git.run("update-ref", "-m", "backportbot", f"refs/heads/{branch}", commit)

    def fetch(self) -> None:
        if self.remote_url:
            with self.lock():
                try:
                    self.networked(self.remote_url).run("fetch", "--quiet", "--prune", "origin")
                except GitError as e:
                    if refused(e.stderr):
                        raise FetchFailed(f"I could not fetch {self.key} from its remote: it refused the bot's "
                                          f"credentials ({brief(e.stderr)}). {CREDENTIALS_HINT}") from None
                    raise FetchFailed(f"I could not fetch {self.key} from its remote ({brief(e.stderr)}). "
                                      "Nothing was started; trying again later may work.") from None
                # The commit graph with changed-path filters: blame, log -- PATH and merge-base walk
                # it instead of unpacking commits (a digest week on FRRouting: 7.0 s -> 4.3 s). After
                # the first write each fetch adds only a small layer.
                self.git.run("commit-graph", "write", "--reachable", "--changed-paths", "--split", check=False)

    # --- the network ---------------------------------------------------------------------------

    def networked(self, *urls: str) -> Git:
        """Git for a command that reaches `urls`, with the credentials the forge gives for them."""
        return self.git.with_env(**self.auth(*urls)) if self.auth else self.git

    def url_of(self, remote: str) -> str | None:
        """The URL of a remote (or `remote` itself when it is a URL already)."""
        if "/" in remote or ":" in remote:
            return remote
        res = self.git.run("remote", "get-url", remote, check=False)
        return res.stdout.strip() or None

    # --- worktrees -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One writer at a time for this repository: threads of this process and other processes."""
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        with _thread_lock(self.key), open(self._lock_file, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def worktree_path(self, name: str) -> Path:
        return self.worktrees_dir / name

    def add_worktree(self, path: Path, commit: str) -> Git:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            remove_worktree(path)
        common = (self.git_dir / self.git.out("rev-parse", "--git-common-dir")).resolve()
        with self.lock(), _worktrees_locked(common):
            self.git.run("worktree", "add", "--detach", "--force", str(path), commit)
        return Git(path)


def remote_branches(url: str, auth: Auth | None = None) -> list[str]:
    """The branches on a remote, asked over the network (`git ls-remote`, no repository needed);
    GitError when it cannot be reached or refuses the credentials."""
    out = Git(Path("/"), auth(url) if auth else None).out("ls-remote", "--heads", "--", url)
    return [line.split("refs/heads/", 1)[1] for line in out.splitlines() if "refs/heads/" in line]


def remove_worktree(path: Path) -> None:
    """Remove a worktree and its registration; safe to call on a half-made or missing one."""
    path = Path(path)
    common: str | None = None
    if (path / ".git").exists():
        res = Git(path).run("rev-parse", "--git-common-dir", check=False)
        if res.returncode == 0:
            common = str((path / res.stdout.strip()).resolve())
    if not common:
        shutil.rmtree(path, ignore_errors=True)
        return
    with _worktrees_locked(Path(common)):
        try:
            Git(Path(common)).run("worktree", "remove", "--force", "--force", str(path))
        except GitError:
            pass
        shutil.rmtree(path, ignore_errors=True)
        Git(Path(common)).run("worktree", "prune", check=False)


@contextlib.contextmanager
def _worktrees_locked(common: Path) -> Iterator[None]:
    """One change at a time to a repository's worktree registrations, across threads and
    processes: a `worktree prune` running while another `worktree add` has made its admin
    directory but not yet marked it deletes it ("could not open .../locked")."""
    with open(common / "backportbot-worktrees.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
