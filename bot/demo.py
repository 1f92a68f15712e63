"""`backportbot demo`: a small repository with two release branches and three fixes, backported
on the spot, so a new user sees a clean pick, a resolved conflict and an explained failure."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

APP = """\
def parse(text):
    items = text.split(",")
    return [item.strip() for item in items]


def limit(values, n):
    if len(values) > n:
        return values[:n]
    return values
"""


class _Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env_args = ["-c", "user.name=Demo Maintainer", "-c", "user.email=demo@example.org"]
        return subprocess.run(["git", *env_args, *args], cwd=self.path, check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, message: str, text: str, on: str = "main") -> None:
        self.git("checkout", "-q", on)
        (self.path / "app.py").write_text(text)
        self.git("commit", "-q", "-am" if (self.path / ".git" / "index").exists() else "-m", message)


def build(path: Path) -> Path:
    repo = _Repo(path)
    (path / "app.py").write_text(APP)
    repo.git("add", "app.py")
    repo.git("commit", "-q", "-m", "Initial release")
    repo.git("branch", "1.0")
    # 1.0 drifted: a maintainer changed the line next to where a fix will land.
    repo.commit("Split on semicolons in 1.0", APP.replace('split(",")', 'split(";")'), on="1.0")
    repo.git("checkout", "-q", "main")
    v1 = APP.replace("    if len(values) > n:", "    if n < 0:\n        raise ValueError(n)\n    if len(values) > n:")
    repo.commit("Reject negative limits (#1)", v1)
    repo.git("branch", "1.1")
    v2 = v1.replace("def limit(values, n):", "def limit(values, n, *, strict=False):")
    repo.commit("Add strict mode to limit (#2)", v2)
    v3 = v2.replace("return [item.strip() for item in items]", "return [item.strip() for item in items if item]")
    repo.commit("Drop empty items when parsing (#3)", v3)
    v4 = v3.replace("def limit(values, n, *, strict=False):\n    if n < 0:",
                    "def limit(values, n, *, strict=False):\n    if n < 0 or (strict and n == 0):")
    repo.commit("Refuse a zero limit in strict mode (#4)", v4)
    return path


def main(directory: Path | None = None) -> int:
    from bot.cli import main as cli

    where = directory or Path(tempfile.mkdtemp(prefix="backportbot-demo-")) / "demo"
    repo = build(where)
    print(f"Demo repository: {repo} (main, release branches 1.0 and 1.1)\n")
    steps = [
        ("A clean fix", ["backport", "#1", "--to", "1.0"]),
        ("A fix whose context drifted on 1.0 (resolved by a rule)", ["backport", "#3", "--to", "all"]),
        ("A fix that needs an earlier PR first", ["backport", "#4", "--to", "1.1"]),
        ("Why did it fail?", ["why", "#4", "1.1"]),
        ("Where is #3 now?", ["status", "#3"]),
    ]
    for title, args in steps:
        print(f"== {title}: backportbot {' '.join(args)} --repo {repo}")
        cli([*args, "--repo", str(repo)])
        print()
    return 0
