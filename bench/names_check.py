"""The names check on a repository's own clean backports: mine the pairs (original on main, human
backport on a branch), keep those a plain pick applies cleanly, run the check of each original
against the human backport's parent, and report how many it flags (apart: those where the human
committed something else than the pick), with the time per check. Flags go to --json for reading.

    python bench/names_check.py --repo /tmp/sd.git --main main --branches v255-stable --limit 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine import symbols  # noqa: E402
from bot.engine.evaluate import mine  # noqa: E402
from bot.engine.git import Git  # noqa: E402
from bot.engine.predict import Pick, Predictor  # noqa: E402
from bot.engine.source import read_commits  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--main", default="main")
    ap.add_argument("--branches", nargs="+", required=True)
    ap.add_argument("--since")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    git = Git(args.repo)
    pairs, _ = mine(git, args.main, args.branches, args.since)
    if len(pairs) > args.limit:
        step = len(pairs) / args.limit
        pairs = [pairs[int(i * step)] for i in range(args.limit)]
    commits = {c.sha: c for c in read_commits(git, *dict.fromkeys(p.original for p in pairs))}
    pairs = [p for p in pairs if commits[p.original].parents]
    with Predictor(git) as predictor:
        preds = predictor.predict([Pick(p.original, commits[p.original].parents[0], p.target) for p in pairs])
        humans = predictor.trees([p.human for p in pairs])
    clean = [(p, pred.tree == human) for p, pred, human in zip(pairs, preds, humans, strict=True) if pred.clean]
    times, flags = [], []
    for pair, same in clean:
        start = time.perf_counter()
        found = symbols.missing_names(git, pair.original, commits[pair.original].parents[0], pair.target, pair.branch)
        times.append(time.perf_counter() - start)
        if found:
            flags.append({"original": pair.original, "human": pair.human, "branch": pair.branch,
                          "same_as_human": same, "findings": found})
    different = sum(not same for _, same in clean)
    flagged_different = sum(not f["same_as_human"] for f in flags)
    print(f"pairs {len(pairs)}, clean picks {len(clean)} ({different} differ from the human's)")
    print(f"flagged {len(flags)} of {len(clean)} clean picks; of those differing from the human: "
          f"{flagged_different} of {different}")
    if times:
        times.sort()
        print(f"check time: median {statistics.median(times) * 1000:.0f} ms, "
              f"p90 {times[int(len(times) * 0.9)] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(flags, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
