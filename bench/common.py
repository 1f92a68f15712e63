"""Shared by the benchmarks: small git helpers. Pairs are mined by `bot.engine.evaluate.mine`."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git(repo: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, input=input).stdout


def branches(repo: Path, pattern: str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
    return out.split()
