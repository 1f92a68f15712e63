"""Isolation for a fix's build and test commands with bubblewrap (Debian's `bubblewrap`): new
PID, IPC, UTS and (unless allowed) network namespaces, so the command sees neither the bot's
process nor its environment; the file system read-only but for the work tree and a private /tmp;
the bot's data directory (its database, logs, other work trees, cached clones) replaced by an
empty one, with only this work tree and its repository's git metadata (read-only) put back; a
user namespace, or, when the bot runs as root, the unprivileged user nobody."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

NOBODY = 65534


def available() -> str | None:
    """The bwrap executable, or None when it is not installed."""
    return shutil.which("bwrap")


@functools.cache
def unusable() -> str | None:
    """Why no sandbox can be made here (not installed, namespaces refused), or None. Asked once
    per process: the answer does not change while it runs."""
    bwrap = available()
    if bwrap is None:
        return "bubblewrap is not installed (apt install bubblewrap)"
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "--dev", "/dev",
                            *([] if os.geteuid() == 0 else ["--unshare-user"]), "true"],
                           capture_output=True, text=True, check=False, timeout=30)
    if probe.returncode != 0:
        return f"bubblewrap cannot make a sandbox here ({probe.stderr.strip()[:200]})"
    return None


class Bubblewrap:
    def __init__(self, data_dir: Path, network: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.network = network
        self.bwrap = available() or "bwrap"
        self.as_root = os.geteuid() == 0

    def argv(self, worktree: Path, command: str, env: dict[str, str]) -> list[str]:
        worktree = worktree.resolve()
        # As root, bubblewrap mounts with root's rights (it can reach paths only root may enter) and
        # the command then drops to nobody inside; otherwise a user namespace does the mounting.
        argv = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", "sandbox"]
        if not self.as_root:
            argv.append("--unshare-user")
        if not self.network:
            argv.append("--unshare-net")
        argv += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                 "--tmpfs", str(self.data_dir)]
        fresh = [Path("/tmp"), self.data_dir]  # empty in there: the way down to the work tree is made anew
        git_dir = _git_common_dir(worktree)
        if git_dir is not None:
            argv += [*_way_down(git_dir, fresh), "--ro-bind", str(git_dir), str(git_dir)]
        argv += [*_way_down(worktree, fresh), "--bind", str(worktree), str(worktree), "--chdir", str(worktree),
                 "--clearenv"]
        env = {**env, "HOME": "/tmp", "TMPDIR": "/tmp", **(trusted(worktree) if self.as_root else {})}
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv.append("--")
        if self.as_root:
            argv += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs", "--"]
        return [*argv, "bash", "-c", command]

    def lend(self, worktree: Path) -> None:
        """Give the work tree to the sandbox's user (as root: nobody must write in it)."""
        if self.as_root:
            _chown_tree(worktree, NOBODY)

    def take_back(self, worktree: Path) -> None:
        """And back to the bot, whose git refuses a work tree owned by someone else."""
        if self.as_root:
            _chown_tree(worktree, 0)


def trusted(worktree: Path) -> dict[str, str]:
    """For a command that runs as nobody in a work tree whose git metadata root owns: git refuses
    such a repository ("dubious ownership"), and builds that ask git (a version from `git
    describe`, the files a change touched) would fail. Trusted for this work tree only."""
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": str(worktree)}


def _way_down(path: Path, fresh: list[Path]) -> list[str]:
    """Directories leading to `path` inside the fresh ones, made traversable (bubblewrap would
    make them 0700, closed to nobody)."""
    out: list[str] = []
    for parent in reversed(path.parents):
        if any(parent.is_relative_to(f) and parent != f for f in fresh):
            out += ["--perms", "0755", "--dir", str(parent)]
    return out


def _git_common_dir(worktree: Path) -> Path | None:
    found = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=worktree, capture_output=True, text=True,
                           check=False)
    if found.returncode != 0:
        return None
    path = Path(found.stdout.strip())
    return (worktree / path).resolve() if not path.is_absolute() else path


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid, follow_symlinks=False)
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(here, name), uid, uid, follow_symlinks=False)
