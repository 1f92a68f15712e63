"""The Sandbox port: each command runs in the backport's work tree with a timeout, in its own
process group (killed whole when it ends or times out), with an environment that holds none of
the bot's secrets, inside bubblewrap (adapters/sandbox/bubblewrap.py) or a container
(adapters/sandbox/container.py) unless the config turned isolation off."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from adapters.sandbox import bubblewrap
from adapters.sandbox.bubblewrap import Bubblewrap
from adapters.sandbox.container import Container
from bot.engine.errors import VerifyFailed
from bot.engine.ports import Command, CommandResult

TAIL_LINES = 40


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 16384))
        lines = fh.read().decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-TAIL_LINES:])


class ProcessSandbox:
    """`isolation` None runs the commands as plain children of the bot (an explicit choice in the
    config: they can then see the bot's process and files); each result says which it was."""

    def __init__(self, env: Mapping[str, str], isolation: Bubblewrap | Container | None = None) -> None:
        self.env = dict(env)  # given by the composition root, without the secrets
        self.isolation = isolation
        self.isolated = isolation is not None

    def unusable(self) -> str | None:
        """Why the isolation cannot work here, or None (asked once per process)."""
        if isinstance(self.isolation, Container):
            return self.isolation.unusable()
        return bubblewrap.unusable() if self.isolation is not None else None

    def run(self, worktree: Path, commands: Sequence[Command], log_dir: Path,
            started: Callable[[int | None], None] | None = None) -> list[CommandResult]:
        if self.isolation is not None and (problem := self.unusable()):
            raise VerifyFailed(f"build and test commands run in a sandbox, and {problem}: fix that, or set "
                               "[bot] isolation = \"none\" to run them unisolated")
        log_dir.mkdir(parents=True, exist_ok=True)
        results: list[CommandResult] = []
        for n, cmd in enumerate(commands):
            log = log_dir / f"{n + 1}-{''.join(ch if ch.isalnum() else '_' for ch in cmd.name)}.log"
            start = time.monotonic()
            argv = self.isolation.argv(worktree, cmd.run, self.env) if self.isolation else ["bash", "-c", cmd.run]
            if self.isolation:
                self.isolation.lend(worktree)
            with open(log, "wb") as out:
                # The sandbox's own process gets the same clean environment: its /proc/N/environ is readable.
                proc = subprocess.Popen(argv, cwd=worktree, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
                if started is not None:
                    started(proc.pid)  # recorded: a restart after a crash kills what is left of it
                try:
                    code: int | None = proc.wait(timeout=cmd.timeout)
                except subprocess.TimeoutExpired:
                    code = None
                finally:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)  # what the command left running dies with it
                    proc.wait()
                    if self.isolation:
                        self.isolation.take_back(worktree)
                    if started is not None:
                        started(None)
            result = CommandResult(cmd.name, cmd.run, code, round(time.monotonic() - start, 3), str(log), _tail(log),
                                   isolated=self.isolation is not None)
            results.append(result)
            if not result.ok:
                why = (f"timed out after {cmd.timeout}s" if code is None else f"exited with status {code}")
                raise VerifyFailed(f"`{cmd.name}` ({cmd.run}) {why}",
                                   details={"command": asdict(result), "results": [asdict(r) for r in results]})
        return results
