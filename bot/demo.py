"""`backportbot demo`: builds a realistic repository (main plus two release branches that drifted,
a bare remote for the local forge) and drives a scripted conversation through the console chat.
It prints what a user would see and exits 0 only when every step behaved as expected."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot import config as config_mod
from bot.app import build_app

APP = """\
def parse(text):
    items = text.split(",")
    return [item.strip() for item in items]


def limit(values, n):
    if len(values) > n:
        return values[:n]
    return values


def show(values):
    print(values)
"""


class _Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        ident = ["-c", "user.name=Demo Maintainer", "-c", "user.email=demo@example.org", "-c", "commit.gpgSign=false"]
        return subprocess.run(["git", *ident, *args], cwd=self.path, check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, message: str, text: str, on: str | None = None) -> None:
        if on:
            self.git("checkout", "-q", on)
        (self.path / "app.py").write_text(text)
        self.git("add", "app.py")
        self.git("commit", "-q", "-m", message)


def build(path: Path) -> Path:
    """The work repository and its bare remote; returns the remote."""
    repo = _Repo(path / "work")
    repo.commit("Initial release", APP)
    repo.git("branch", "1.0")
    repo.git("branch", "1.1")
    # Both release branches drifted, each its own way.
    repo.commit("Split on semicolons in 1.0", APP.replace('split(",")', 'split(";")'), on="1.0")
    repo.commit("Show values with a prefix in 1.1", APP.replace("print(values)", 'print("values:", values)'), on="1.1")
    repo.git("checkout", "-q", "main")
    v1 = APP.replace("    if len(values) > n:", "    if n < 0:\n        raise ValueError(n)\n    if len(values) > n:")
    repo.commit("Reject negative limits (#1)\n\nLabels: bug", v1)
    v2 = v1.replace("def limit(values, n):", "def limit(values, n, *, strict=False):")
    repo.commit("Add strict mode to limit (#2)\n\nLabels: enhancement", v2)
    v3 = v2.replace("return [item.strip() for item in items]", "return [item.strip() for item in items if item]")
    repo.commit("Drop empty items when parsing (#3)\n\nLabels: bug", v3)
    v4 = v3.replace("def limit(values, n, *, strict=False):\n    if n < 0:",
                    "def limit(values, n, *, strict=False):\n    if n < 0 or (strict and n == 0):")
    repo.commit("Refuse a zero limit in strict mode (#4)\n\nLabels: bug", v4)
    v5 = "def count(values):\n    return len(values)\n\n\n" + v4
    repo.commit("Add a count helper (#5)\n\nLabels: enhancement", v5)
    remote = path / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(remote)], check=True)
    return remote


@dataclass
class Step:
    say: str | Callable[[str], str]  # a line, or a function of the transcript so far
    expect: list[str]  # regular expressions the bot's answer must match
    title: str


def _approval_message(transcript: str) -> str:
    found = re.findall(r"\[(\d+)\] bot: ✋ 1\.1: waiting for a maintainer's approval", transcript)
    return found[-1] if found else "0"


STEPS = [
    Step("/backport 1 to 1.0 1.1", [r"✅ 1\.0: PR opened: local://demo/pull/\d+", r"✅ 1\.1: PR opened",
                                    r"Summary: 2 PRs opened\."], "a clean fix to two branches at once"),
    Step("/backport 3 to 1.0", [r"✅ 1\.0: PR opened: \S+; conflicts: app\.py \(context-moved\)"],
         "a conflict resolved by a deterministic rule"),
    Step("/backport 4 to 1.1",
         [r"❌ 1\.1: failed at resolving conflicts \(conflict\)", r"Add strict mode to limit \(#2\)"],
         "a conflict that cannot be resolved"),
    Step("/backport why 4 1.1", [r"Missing prerequisites \(backport these first\):", r"Add strict mode to limit \(#2\)",
                                 r"app\.py: 1 hunk: line \d+: unresolved"], "why it failed"),
    Step("/backport 5 to 1.1", [r"✋ 1\.1: waiting for a maintainer's approval: the source is not labelled as a fix"],
         "a non-fix waits for approval"),
    Step(lambda t: f"as bob: react {_approval_message(t)} ✅",
         [r"\(only bob sees this\) only maintainers' reactions count"],
         "a passer-by's ✅ is ignored"),
    Step(lambda t: f"react {_approval_message(t)} ✅", [r"✅ 1\.1: PR opened"], "a maintainer's ✅ opens the PR"),
    Step("/backport 3 to 1.0",
         [r"1\.0: already PR open, requested by \w+: local://demo/pull/\d+; this request joins it"],
         "the same request twice"),
    Step("/backport status 3", [r"1\.0: PR open: local://demo/pull/\d+", r"1\.1: missing"], "status"),
    Step("/backport stats", [r"Backports: \d+ attempts, 4 succeeded", r"context-moved 1"], "stats"),
    Step("/backport 1 to 2.0", [r"unknown branch '2\.0'.*valid branches: 1\.0, 1\.1"], "bad input"),
]


async def _converse(config: config_mod.Config, data_dir: Path) -> bool:
    out = io.StringIO()
    console = build_app(config, data_dir, out)
    await console.start()
    ok = True
    try:
        for step in STEPS:
            start = len(out.getvalue())
            line = step.say(out.getvalue()) if callable(step.say) else step.say
            await console.line(line)
            answer = out.getvalue()[start:]
            passed = all(re.search(pattern, answer) for pattern in step.expect)
            ok &= passed
            print(f"── {step.title} {'✔' if passed else '✘ (unexpected answer)'}")
            print(answer, end="")
    finally:
        await console.stop()
    return ok


def main(directory: Path | None = None) -> int:
    where = directory or Path(tempfile.mkdtemp(prefix="backportbot-demo-"))
    where.mkdir(parents=True, exist_ok=True)
    remote = build(where)
    config_file = where / "backportbot.toml"
    config_file.write_text(f"""\
[bot]
maintainers = ["ada"]

[chat.console]
user = "ada"

[[repos]]
name = "demo"
url = "{remote.as_uri()}"
main_branch = "main"
branches = [{{ name = "1.0" }}, {{ name = "1.1" }}]
""")
    print(f"Demo repository: {remote} (main, release branches 1.0 and 1.1); config: {config_file}\n")
    ok = asyncio.run(_converse(config_mod.load(config_file), where / "data"))
    print("\nEvery step behaved as expected." if ok else "\nSome steps did not behave as expected.")
    return 0 if ok else 1
