"""Real `backportbot` processes for tests that kill them: started with their own environment,
stopped at a chosen moment by a `git` wrapper first on PATH, signed Slack requests sent to them
over HTTP, and every process they leave behind found (by a token in its command line) and killed.

The wrapper runs the real git, except for the subcommand named by BACKPORTBOT_TEST_HANG: the first
such call (per marker file) writes its pid to BACKPORTBOT_TEST_HANG_MARKER and waits, until the
marker's `.release` file appears or BACKPORTBOT_TEST_HANG_SECONDS (when set) have passed (then it
runs git), or until the process that called it is gone (then it exits without running git: a
killed bot leaves nothing running). With BACKPORTBOT_TEST_HANG_ARM set to a path, only calls made
once that file exists stop."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

ROOT = Path(__file__).parent.parent
SECRET = "slack-signing-secret"
HANG, HANG_MARKER = "BACKPORTBOT_TEST_HANG", "BACKPORTBOT_TEST_HANG_MARKER"
HANG_SECONDS, HANG_ARM = "BACKPORTBOT_TEST_HANG_SECONDS", "BACKPORTBOT_TEST_HANG_ARM"
T = TypeVar("T")

_WRAPPER = """#!/bin/bash
# git, stopped at one subcommand for tests (see tests/processes.py)
sub= skip=
for arg in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case "$arg" in
    -c|-C|--git-dir|--work-tree|--namespace|--exec-path|--config-env) skip=1 ;;
    -*) ;;
    *) sub=$arg; break ;;
  esac
done
if [ -n "$BACKPORTBOT_TEST_HANG" ] && [ "$sub" = "$BACKPORTBOT_TEST_HANG" ] \\
   && { [ -z "$BACKPORTBOT_TEST_HANG_ARM" ] || [ -e "$BACKPORTBOT_TEST_HANG_ARM" ]; } \\
   && (set -o noclobber; echo $$ > "$BACKPORTBOT_TEST_HANG_MARKER") 2>/dev/null; then
  parent=$PPID
  for _ in $(seq "$(( ${BACKPORTBOT_TEST_HANG_SECONDS:-120} * 20 ))"); do
    [ -e "$BACKPORTBOT_TEST_HANG_MARKER.release" ] && exec {git} "$@"
    read -r _pid _comm _state ppid _rest < /proc/$$/stat
    [ "$ppid" = "$parent" ] || exit 70
    sleep 0.05
  done
  [ -n "$BACKPORTBOT_TEST_HANG_SECONDS" ] && exec {git} "$@"
  exit 71
fi
exec {git} "$@"
"""


def git_wrapper(where: Path) -> Path:
    """A directory holding the `git` wrapper, to put first on PATH."""
    real = shutil.which("git")
    assert real is not None, "git is not installed"
    where.mkdir(parents=True, exist_ok=True)
    script = where / "git"
    script.write_text(_WRAPPER.replace("{git}", real))
    script.chmod(0o755)
    return where


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20, every: float = 0.05) -> T:
    """Poll until `check` returns something true; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def release(marker: Path) -> None:
    """Let the git call stopped at `marker` go on (it runs git), once it has stopped."""
    wait_for(marker.exists, f"git to stop at {marker.name}")
    Path(f"{marker}.release").touch()


# --- processes -----------------------------------------------------------------------------------

def running(pid: int) -> bool:
    """A live process (a zombie nobody reaped yet counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def with_token(token: str) -> list[int]:
    """Live processes whose command line holds `token` (this test's own, whatever started them)."""
    found = []
    needle = token.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and running(int(entry.name)):
            found.append(int(entry.name))
    return found


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def kill_all(token: str) -> None:
    for pid in with_token(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def backportbot() -> list[str]:
    """The installed console script next to this interpreter, else the module."""
    script = Path(sys.executable).parent / "backportbot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


class Bot:
    """One `backportbot` process (optionally under a prefix such as `unshare ...`). Its stdout is
    collected line by line; its stderr goes to a log file next to the data directory."""

    _count = itertools.count(1)

    def __init__(self, args: Sequence[str], env: dict[str, str], log_dir: Path, prefix: Sequence[str] = ()) -> None:
        self.lines: list[str] = []
        self.log = log_dir / f"bot-{next(self._count)}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([*prefix, *backportbot(), *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        self.prefixed = bool(prefix)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        """The bot's own process: under a prefix (`unshare --fork`), the prefix's child."""
        if not self.prefixed:
            return self.proc.pid
        return wait_for(lambda: next(iter(children(self.proc.pid)), None), "the prefixed bot process", 10)

    def url(self, timeout: float = 30) -> str:
        """Where `serve` listens, from its `Listening on http://HOST:PORT (...)` line."""

        def listening() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"the bot exited ({self.proc.returncode}): {self.stderr()}")
            found = [line.split()[2] for line in self.lines if line.startswith("Listening on http://")]
            return found[0] if found else None

        return wait_for(listening, "`Listening on ...` on the bot's stdout", timeout)

    def done(self) -> None:
        """Wait until everything the process printed has been read (after it exited)."""
        self._reader.join(10)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the bot itself only (not what it started): as an OOM killer or a power cut would."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        """Whatever is left of it and its process group."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Processes:
    """Every process a test starts; `close` (in a fixture's teardown) kills them all, with whatever
    they left running that carries one of the test's tokens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.bots: list[Bot] = []
        self.tokens: list[str] = []

    def start(self, args: Sequence[str], env: dict[str, str], prefix: Sequence[str] = ()) -> Bot:
        bot = Bot(args, env, self.log_dir, prefix)
        self.bots.append(bot)
        return bot

    def close(self) -> None:
        for bot in self.bots:
            bot.close()
        for token in self.tokens:
            kill_all(token)


# --- Slack over HTTP -----------------------------------------------------------------------------

_triggers = itertools.count(1)


def signed(body: str, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def slash(text: str, channel: str, response_url: str = "http://127.0.0.1:9/response",
          user: str = "UADA") -> tuple[str, str]:
    """A `/backport` slash command (each with its own trigger id, as Slack sends them)."""
    return urlencode({"command": "/backport", "text": text, "user_id": user, "user_name": user.lower(),
                      "channel_id": channel, "team_id": "T1", "trigger_id": f"{time.time_ns()}.{next(_triggers)}",
                      "token": "x", "response_url": response_url}), "application/x-www-form-urlencoded"


def mention(text: str, channel: str, event_id: str, user: str = "UADA") -> tuple[str, str]:
    """An app_mention event callback."""
    inner = {"type": "app_mention", "user": user, "text": f"<@UBOT> {text}", "channel": channel,
             "ts": f"{time.time():.6f}", "event_ts": f"{time.time():.6f}"}
    return json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id,
                       "event_time": int(time.time()), "event": inner}), "application/json"


def send(url: str, request: tuple[str, str], headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, str]:
    """POST a signed request to the bot's /slack/events; (status, body)."""
    body, kind = request
    req = urllib.request.Request(f"{url}/slack/events", data=body.encode(), method="POST",
                                 headers={"Content-Type": kind, **signed(body), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def texts(calls: list[dict[str, Any]]) -> list[str]:
    return [str(c.get("text", "")) for c in calls]
