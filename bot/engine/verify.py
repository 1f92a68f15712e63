"""Verification: the repository's build and test commands, run in the backport's work tree."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.config import SECRET_ENV_VARS, CommandSpec
from bot.errors import VerifyFailed

TAIL_LINES = 40


@dataclass(frozen=True)
class CommandResult:
    name: str
    run: str
    exit_code: int | None  # None when it timed out
    seconds: float
    log: str  # path of the full output
    tail: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 16384))
        lines = fh.read().decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-TAIL_LINES:])


def run_commands(worktree: Path, commands: Sequence[CommandSpec], log_dir: Path) -> list[CommandResult]:
    """Run commands in order; raise VerifyFailed at the first that fails or times out."""
    log_dir.mkdir(parents=True, exist_ok=True)
    # The code under test comes from a pull request: it must not see the bot's secrets.
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV_VARS}
    results: list[CommandResult] = []
    for n, cmd in enumerate(commands):
        log = log_dir / f"{n + 1}-{''.join(ch if ch.isalnum() else '_' for ch in cmd.name)}.log"
        start = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(["bash", "-c", cmd.run], cwd=worktree, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            try:
                code: int | None = proc.wait(timeout=cmd.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                code = None
        result = CommandResult(cmd.name, cmd.run, code, round(time.monotonic() - start, 3), str(log), _tail(log))
        results.append(result)
        if not result.ok:
            why = (f"timed out after {cmd.timeout}s" if code is None else f"exited with status {code}")
            raise VerifyFailed(f"`{cmd.name}` ({cmd.run}) {why}",
                               details={"command": asdict(result), "results": [asdict(r) for r in results]})
    return results
