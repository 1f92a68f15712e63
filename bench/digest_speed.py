"""Benchmark: triage of digest candidates (is it on the branch? would it apply cleanly?) for
N candidates x the given release branches. Goal: <= 3 ms per (candidate, branch) pair.

    python bench/digest_speed.py --repo /tmp/numpy.git --main main \\
        --branches maintenance/2.3.x maintenance/2.4.x maintenance/2.5.x --candidates 200
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.repos import Repo  # noqa: E402
from bot.engine.candidates import find  # noqa: E402
from bot.engine.workspace import Workspace  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--main", default="main")
    ap.add_argument("--branches", nargs="+", required=True)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--since", default="2 years ago")
    args = ap.parse_args()
    os.environ.setdefault("GIT_CONFIG_GLOBAL", "/dev/null")
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.in_place(args.repo, Path(tmp))
        repo = Repo(str(args.repo), ws, args.main, {b: b for b in args.branches}, {b: b for b in args.branches})
        start = time.perf_counter()
        found = find(ws.git, repo.main_ref, repo.release_refs(), repo.fix_labels, args.since, limit=args.candidates)
        took = time.perf_counter() - start
    # find() drops candidates every branch already has; count the pairs it triaged
    pairs = args.candidates * len(args.branches)
    print(f"{args.candidates} candidates x {len(args.branches)} branches = {pairs} pairs triaged in {took:.2f} s: "
          f"{took * 1000 / pairs:.2f} ms per pair (goal <= 3 ms); {len(found)} still missing somewhere")


if __name__ == "__main__":
    main()
