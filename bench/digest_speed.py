"""Benchmark: one week's digest as of the week's end (the main branch and every release branch
as they were then), classification, presence, outlook and prerequisites included. Goal: <= 5 s
a week on 2 cores. Time the whole process from outside (e.g. /usr/bin/time -v):

    python bench/digest_speed.py --repo /tmp/frr.git --main master \\
        --branches stable/10.3 stable/10.4 stable/10.5 --week-end 2026-06-29
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine.candidates import day_start, find  # noqa: E402
from bot.engine.digest_eval import _at  # noqa: E402
from bot.engine.git import Git  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--main", default="main")
    ap.add_argument("--branches", nargs="+", required=True)
    ap.add_argument("--week-end", required=True, help="the week ends at 00:00 UTC of this date")
    args = ap.parse_args()
    os.environ.setdefault("GIT_CONFIG_GLOBAL", "/dev/null")
    git = Git(args.repo)
    end = datetime.strptime(day_start(args.week_end), "%Y-%m-%d %H:%M:%S %z")
    head, first = _at(git, args.main, end), _at(git, args.main, end - timedelta(weeks=1))
    assert head and first, "the main branch has no commit then"
    refs = {b: r for b in args.branches if (r := _at(git, b, end)) and not git.is_ancestor(r, head)}
    start = time.perf_counter()
    found = find(git, head, refs, ("bug", "security", "critical"), first)
    took = time.perf_counter() - start
    commits = len(git.out("rev-list", "--first-parent", f"{first}..{head}").split())
    print(f"week to {args.week_end}: {commits} merges, {len(refs)} branches, {len(found)} candidates in "
          f"{took:.2f} s (goal <= 5 s)")


if __name__ == "__main__":
    main()
