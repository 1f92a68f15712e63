"""Isolation for a fix's build and test commands in a container runtime (podman or docker), for
projects that build in their own image. The same promises as bubblewrap.py: the command sees
neither the bot's process (a new PID namespace), nor its environment (only what the sandbox
passes, without PATH so that the image's own applies), nor its data directory or other work trees
(nothing of the host is mounted but this work tree, read-write, and its repository's git metadata,
read-only); the image's file system is read-only but for a private /tmp; no network unless
allowed; no capabilities, no new privileges, a limit on processes. It runs as an unprivileged
user: when the bot is root, as nobody, with the work tree lent to nobody and taken back as
bubblewrap does; rootless podman maps the bot's own user in (`--userns=keep-id`: the command
writes the work tree as its owner, and is no one on the host); docker's daemon runs the command as
the bot's uid and gid.

Killing the runtime's client does not stop a container (podman's conmon and docker's daemon keep
it), so each command is started by a small launcher that leaves a watcher outside the process
group the bot records: when the client ends (the command ended, timed out, or its group was
killed by the sandbox or by a restarted bot abandoning the attempt) or the bot itself dies, the
watcher removes the container; `take_back` also removes it before the work tree is given back."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from adapters.sandbox.bubblewrap import NOBODY, _chown_tree, _git_common_dir, trusted
from bot.engine.errors import VerifyFailed

RUNTIMES = ("podman", "docker")
PIDS_LIMIT = 4096
PREFIX = "backportbot-"  # every container the bot starts is named so; those of commands are labelled backportbot=verify

# The launcher: `python -c LAUNCH <bot pid> <remove argv...> -- <run argv...>`. It leaves a watcher
# in a session of its own (out of reach of the group kill) that waits for the bot or the launcher
# (after the exec: the runtime's client) to end, then removes the container; then it becomes the
# client. The watcher ignores SIGTERM (a service manager stopping the bot's unit sends it to all its
# processes): it outlives the bot by the time `rm -f` takes, and SIGKILL still ends it.
LAUNCH = """\
import os, select, signal, subprocess, sys
bot = int(sys.argv[1])
cut = sys.argv.index("--")
remove, run = sys.argv[2:cut], sys.argv[cut + 1:]
if os.getppid() != bot:
    sys.exit("the bot is gone")
fds = [os.pidfd_open(bot), os.pidfd_open(os.getpid())]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # a service manager's stop: wait for the bot
            signal.signal(sig, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        select.select(fds, [], [])
        subprocess.run(remove, stdin=null, stdout=null, stderr=null, check=False)
    os._exit(0)
os.wait()
for fd in fds:
    os.close(fd)
os.execvp(run[0], run)
"""


def available(runtime: str) -> str | None:
    """The runtime's client executable, or None when it is not installed."""
    return shutil.which(runtime)


def user_flags(runtime: str) -> list[str]:
    """Who the command runs as. Root's bot: nobody (`lend` gives it the work tree). Rootless
    podman: the bot's own user mapped in, so that it owns the work tree inside as outside, while
    the container's root is only the bot's user and the rest are unmapped sub-ids. Docker without
    root (a member of the docker group, whose daemon is root): the bot's uid and gid, which own the
    work tree; no more than the bot's own rights, and in there it sees nothing else of the bot's."""
    if os.geteuid() == 0:
        return ["--user", f"{NOBODY}:{NOBODY}"]
    if runtime == "podman":
        return ["--userns=keep-id"]
    return ["--user", f"{os.getuid()}:{os.getgid()}"]


def run_flags(runtime: str, name: str, network: bool) -> list[str]:
    """`<runtime> run` and its isolation, up to the mounts (shared by the sandbox and the probe)."""
    return ["run", "--rm", "--pull", "never", "--init", "--name", name,
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", str(PIDS_LIMIT),
            "--read-only", "--tmpfs", "/tmp:rw,exec,nosuid,nodev,mode=1777", "--hostname", "sandbox",
            *([] if network else ["--network", "none"]), *user_flags(runtime)]


def remove_argv(exe: str, runtime: str, name: str) -> list[str]:
    """Remove a container at once, running or not (docker's -f kills with SIGKILL; podman's waits
    --time seconds after SIGTERM)."""
    return [exe, "rm", "-f", *(["-t", "0"] if runtime == "podman" else []), name]


@functools.cache
def unusable(runtime: str, image: str) -> str | None:
    """Why no container can be run here (the runtime missing, its daemon unreachable, the image
    absent, the runtime unable to start one), or None. Asked once per process."""
    exe = available(runtime)
    if exe is None:
        return f"{runtime} is not installed (apt install {'docker.io' if runtime == 'docker' else runtime})"

    def ask(*args: str) -> subprocess.CompletedProcess[str] | str:
        try:
            return subprocess.run([exe, *args], capture_output=True, text=True, check=False, timeout=60,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"`{runtime} {args[0]}` did not answer within 60 s"

    def said(done: subprocess.CompletedProcess[str]) -> str:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        return " / ".join(lines[-3:])[:300] or f"exit status {done.returncode}"

    info = ask("info")
    if isinstance(info, str) or info.returncode != 0:
        return f"{runtime} cannot reach its engine ({info if isinstance(info, str) else said(info)})"
    found = ask("image", "inspect", image)
    if isinstance(found, str) or found.returncode != 0:
        return (f"the image {image} is not in {runtime}'s local images ({runtime} pull {image}: the bot never pulls; "
                f"{found if isinstance(found, str) else said(found)})")
    name = f"{PREFIX}probe-{uuid.uuid4().hex[:12]}"
    trial = ask(*run_flags(runtime, name, False), image, "bash", "-c", "true")
    if isinstance(trial, str) or trial.returncode != 0:
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(remove_argv(exe, runtime, name), capture_output=True, check=False, timeout=60)
        return f"{runtime} cannot run a container of {image} here ({trial if isinstance(trial, str) else said(trial)})"
    return None


class Container:
    def __init__(self, runtime: str, image: str, network: bool = False) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown container runtime {runtime!r}; available: {', '.join(RUNTIMES)}")
        self.runtime = runtime
        self.image = image
        self.network = network
        self.exe = available(runtime) or runtime
        self.as_root = os.geteuid() == 0
        self._running: dict[Path, str] = {}  # work tree -> its container's name, until take_back

    def unusable(self) -> str | None:
        return unusable(self.runtime, self.image)

    def name(self, worktree: Path) -> str:
        """backportbot-<the work tree's hash>-<this command>: the attempt's containers share a prefix
        (its work tree is its own); each command gets its own name, so that removing a late one never
        hits the next."""
        digest = hashlib.sha256(str(worktree.resolve()).encode()).hexdigest()[:12]
        return f"{PREFIX}{digest}-{uuid.uuid4().hex[:8]}"

    def argv(self, worktree: Path, command: str, env: dict[str, str]) -> list[str]:
        worktree = worktree.resolve()
        name = self.name(worktree)
        self._running[worktree] = name
        argv = [self.exe, *run_flags(self.runtime, name, self.network),
                "--label", "backportbot=verify", "--label", f"backportbot.worktree={worktree}"]
        git_dir = _git_common_dir(worktree)
        if git_dir is not None:
            argv += ["--mount", _bind(git_dir, read_only=True)]
        argv += ["--mount", _bind(worktree, read_only=False), "--workdir", str(worktree)]
        env = {**env, "HOME": "/tmp", "TMPDIR": "/tmp", **(trusted(worktree) if self.as_root else {})}
        for key, value in env.items():
            if key != "PATH":  # the image knows where its tools are; the bot's PATH names the bot's
                argv += ["--env", f"{key}={value}"]
        argv += [self.image, "bash", "-c", command]
        return [sys.executable, "-c", LAUNCH, str(os.getpid()), *remove_argv(self.exe, self.runtime, name), "--",
                *argv]

    def lend(self, worktree: Path) -> None:
        """Give the work tree to the container's user (as root: nobody must write in it)."""
        if self.as_root:
            _chown_tree(worktree, NOBODY)

    def take_back(self, worktree: Path) -> None:
        """Remove the container (killing its client left it running), then give the work tree back
        to the bot, whose git refuses a work tree owned by someone else."""
        name = self._running.pop(worktree.resolve(), None)
        if name is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):  # the watcher tries too
                subprocess.run(remove_argv(self.exe, self.runtime, name), capture_output=True, check=False,
                               timeout=120)
        if self.as_root:
            _chown_tree(worktree, 0)


def _bind(path: Path, read_only: bool) -> str:
    """A --mount of `path` at the same place (--mount, unlike -v, takes a ':' in a path; a ',' it cannot)."""
    if "," in str(path):
        raise VerifyFailed(f"{path} holds a ',': a container cannot mount it (rename the data directory)")
    return f"type=bind,source={path},destination={path}" + (",readonly" if read_only else "")
