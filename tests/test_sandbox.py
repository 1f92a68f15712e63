"""A fix's build and test code against the bot: a test script that looks for the bot's secrets
(its parent's environment, every process's environment, the data directory, the git config),
run by a real `backportbot backport` process that holds six secrets. Without isolation it finds
them (so the test can fail); in bubblewrap it finds none."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import scenarios
from tests.gitrepo import GitRepo

ROOT = Path(__file__).parent.parent
SECRETS = {"SLACK_BOT_TOKEN": "xoxb-secret-slack-1", "SLACK_SIGNING_SECRET": "secret-signing-2",
           "GITHUB_TOKEN": "ghp_secret_github_3", "GITHUB_WEBHOOK_SECRET": "secret-webhook-4",
           "OPENAI_API_KEY": "sk-secret-openai-5", "DISCORD_TOKEN": "secret-discord-6"}
SNOOP = ("echo uid=$(id -u); cat /proc/$PPID/environ; for f in /proc/[0-9]*/environ; do cat $f; echo; done; "
         "ls -la {data}; cat {data}/backportbot.db; git config --list; "
         "echo escaped > {data}/escaped; echo escaped > {outside}; exit 0")


def bubblewrap_works() -> str | None:
    """Why bubblewrap cannot run here, or None when it can."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt install bubblewrap; .ci/run installs it when it can)"
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "--dev", "/dev",
                            *([] if os.geteuid() == 0 else ["--unshare-user"]), "true"],
                           capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"bubblewrap cannot create a sandbox here: {probe.stderr.strip()}"


def snoop(repo: GitRepo, tmp_path: Path, isolation: str) -> str:
    ref = scenarios.clean(repo)
    data = tmp_path / "data"
    outside = tmp_path / "outside.txt"
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nisolation = "{isolation}"\n\n[[repos]]\nname = "demo"\npath = "{repo.path}"\n'
                   f'main_branch = "main"\nbranches = [{{ name = "rel" }}]\n[[repos.commands]]\nname = "snoop"\n'
                   f'run = "{SNOOP.format(data=data, outside=outside)}"\n')
    env = {**os.environ, **SECRETS, "BACKPORTBOT_HOME": str(data)}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(cfg), "backport", ref, "--to", "rel"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (log,) = (data / "logs").rglob("1-snoop.log")
    found = log.read_text(errors="replace")
    escaped = [str(p) for p in (data / "escaped", outside) if p.exists()]
    return found + "".join(f"\nESCAPED {p}" for p in escaped)


def leaked(found: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in found]


def test_unisolated_commands_can_read_the_bots_secrets(repo, tmp_path):
    """The control: with `isolation = "none"` the same script reads them (so the next test can fail)."""
    found = snoop(repo, tmp_path, "none")
    assert len(leaked(found)) == 6
    assert "ESCAPED" in found and "SQLite format 3" in found


def test_in_bubblewrap_a_test_script_finds_no_secret_and_touches_nothing_outside(repo, tmp_path):
    reason = bubblewrap_works()
    if reason:
        pytest.skip(reason)
    found = snoop(repo, tmp_path, "bubblewrap")
    assert leaked(found) == [], found
    assert "ESCAPED" not in found  # neither the data directory nor the rest of the file system took a write
    assert "SQLite format 3" not in found and "backportbot.db " not in found  # an empty data directory in there
    pids = re.findall(r"/proc/(\d+)/environ", found)
    assert not any(pid == str(os.getpid()) for pid in pids)
    if os.geteuid() == 0:
        assert "uid=65534" in found  # root's bot runs the fix's code as nobody


def test_known_secret_values_are_never_posted_stored_or_logged(repo, tmp_path):
    """Someone pastes a token into chat: the answer that echoes it, the inbox and the log show a mask."""
    scenarios.clean(repo)
    data = tmp_path / "data"
    env = {**os.environ, **SECRETS, "BACKPORTBOT_HOME": str(data)}
    said = f"/backport {SECRETS['GITHUB_TOKEN']} to rel\nwhy did {SECRETS['OPENAI_API_KEY']} fail?\n"
    done = subprocess.run([sys.executable, "-m", "bot.cli", "console", "--repo", str(repo.path), "--user", "ada"],
                          cwd=ROOT, env=env, input=said, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    bot_lines = [line for line in done.stdout.splitlines() if "bot:" in line]  # not the user's own lines
    assert "[redacted]" in bot_lines[0], done.stdout
    stored = b"".join(p.read_bytes() for p in data.glob("backportbot.db*"))
    assert leaked("\n".join(bot_lines) + done.stderr + stored.decode("latin-1")) == []


def test_a_build_that_asks_git_works_in_bubblewrap(repo, tmp_path):
    """numpy's and many C projects' builds ask git (a version from `git describe`, the files a change
    touched). As root, the bot runs them as nobody, and git refuses a repository another user owns
    unless told to trust that work tree (found by a real `eval --verify` run: every pair failed)."""
    reason = bubblewrap_works()
    if reason:
        pytest.skip(reason)
    ref = scenarios.clean(repo)
    data = tmp_path / "data"
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nisolation = "bubblewrap"\n\n[[repos]]\nname = "demo"\npath = "{repo.path}"\n'
                   f'main_branch = "main"\nbranches = [{{ name = "rel" }}]\n[[repos.commands]]\nname = "ask git"\n'
                   'run = "git log -1 --format=picked:%s && git diff --name-only HEAD~1"\n')
    done = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(cfg), "backport", ref, "--to", "rel"],
                          cwd=ROOT, env={**os.environ, "BACKPORTBOT_HOME": str(data)}, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (log,) = (data / "logs").rglob("1-ask_git.log")
    assert "picked:Fix overflow in handle (#12)" in log.read_text() and "src/server.c" in log.read_text(), \
        log.read_text()
