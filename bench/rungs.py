"""Benchmark: what each deterministic rung costs per conflict hunk.

Mines (original, human backport) pairs from a repository's own history, keeps those whose plain
cherry-pick conflicts, and captures every conflicted file once (a real `git cherry-pick` in a
throwaway work tree: the zdiff3 text and the three stages). Then it times, per hunk, each
per-hunk rule and, per file, the placement by the fix's own hunks (which works on the whole file
and is divided by the file's hunks), repeating each measurement and keeping the median.

    python bench/rungs.py --repo /tmp/proj.git --main main --branches 'v25*-stable' --limit 150

Prints one row per rung: hunks tried, hunks it claims, and the time per hunk (median, 95th
percentile, max). Other work on the machine inflates the times: run it on a quiet machine.

For farm-bench (which times whole processes): `--save FILE` keeps the captured conflicts, and
`--load FILE --rung NAME` runs only that rung once over all of them (`--rung none` only loads):

    python bench/rungs.py ... --save /tmp/conflicts.json
    farm-bench -- python bench/rungs.py --load /tmp/conflicts.json --rung placement \
        --vs 'python bench/rungs.py --load /tmp/conflicts.json --rung none'

(A - B) / hunks is what the rung adds per hunk.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine import conflicts, placement, rules  # noqa: E402
from bot.engine.evaluate import mine  # noqa: E402
from bot.engine.git import Git  # noqa: E402
from bot.engine.predict import Pick, Predictor  # noqa: E402

REPEAT = 5


def capture(repo: Path, original: str, target: str, work: Path) -> list[tuple[str, str, list[str]]]:
    """(path, conflicted text, [base, ours, theirs]) of each content conflict of the pick."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=work, capture_output=True, text=True, errors="surrogateescape")

    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(work), target], cwd=repo, check=True,
                   capture_output=True)
    try:
        git("-c", "merge.conflictStyle=zdiff3", "cherry-pick", "--no-commit", original)
        stages: dict[str, set[int]] = {}
        for line in git("ls-files", "-u").stdout.splitlines():
            meta, path = line.split("\t", 1)
            stages.setdefault(path, set()).add(int(meta.split()[2]))
        out = []
        for path, st in sorted(stages.items()):
            if st == {1, 2, 3}:
                three = [git("show", f":{n}:{path}").stdout for n in (1, 2, 3)]
                out.append((path, (work / path).read_text(errors="surrogateescape"), three))
        return out
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(work)], cwd=repo, capture_output=True)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path)
    ap.add_argument("--main", default="main")
    ap.add_argument("--branches", nargs="+", default=[], help="release branches (fnmatch patterns)")
    ap.add_argument("--since")
    ap.add_argument("--limit", type=int, default=150, help="conflicting pairs to capture")
    ap.add_argument("--save", type=Path, help="write the captured conflicts here")
    ap.add_argument("--load", type=Path, help="read captured conflicts instead of mining (--repo is then unused)")
    ap.add_argument("--rung", help="with --load: run only this rung once (or none), print nothing")
    args = ap.parse_args()
    if args.load:
        files = [(path, text, three) for path, text, three in json.loads(args.load.read_text())]
        if args.rung:
            once(files, args.rung)
            return 0
    else:
        files = collect(args)
    if args.save:
        args.save.write_text(json.dumps(files))
    report(files)
    return 0


def _place(path: str, parsed: conflicts.ConflictedFile, base: str, ours: str, theirs: str) -> object:
    found = placement.place(path, base.splitlines(True), ours.splitlines(True), theirs.splitlines(True))
    return found and placement.resolutions(parsed, found[0])


def once(files: list[tuple[str, str, list[str]]], rung: str) -> None:
    rule = dict(rules.RULES).get(rung)
    for path, text, (base, ours, theirs) in files:
        parsed = conflicts.parse(text)
        if rule is not None:
            for h in parsed.hunks:
                rule(h, path)
        elif rung == "placement" and parsed.hunks:
            _place(path, parsed, base, ours, theirs)


def collect(args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    git = Git(args.repo)
    heads = git.out("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
    branches = [b for b in heads if any(fnmatch.fnmatch(b, p) for p in args.branches)]
    pairs, _ = mine(git, args.main, branches, args.since)
    with Predictor(git) as predictor:
        parents = {p.original: git.out("rev-parse", f"{p.original}^") for p in pairs}
        preds = predictor.predict([Pick(p.original, parents[p.original], p.target) for p in pairs])
    conflicting = [p for p, pred in zip(pairs, preds, strict=True) if not pred.clean]
    if len(conflicting) > args.limit:
        step = len(conflicting) / args.limit
        conflicting = [conflicting[int(i * step)] for i in range(args.limit)]
    files = []
    with tempfile.TemporaryDirectory(prefix="bench-rungs-") as tmp:
        for n, pair in enumerate(conflicting):
            files += capture(args.repo, pair.original, pair.target, Path(tmp) / f"wt{n}")
    print(f"{len(conflicting)} conflicting pairs")
    return files


def report(files: list[tuple[str, str, list[str]]]) -> None:
    per_hunk: dict[str, list[float]] = {name: [] for name, _ in rules.RULES} | {"placement": []}
    claimed: dict[str, int] = dict.fromkeys(per_hunk, 0)
    hunks = 0
    for path, text, (base, ours, theirs) in files:
        parsed = conflicts.parse(text)
        hunks += len(parsed.hunks)
        for h in parsed.hunks:
            for name, rule in rules.RULES:
                seconds, result = timed(functools.partial(rule, h, path))
                per_hunk[name].append(seconds)
                claimed[name] += result is not None
        if parsed.hunks:
            seconds, result = timed(functools.partial(_place, path, parsed, base, ours, theirs))
            per_hunk["placement"] += [seconds / len(parsed.hunks)] * len(parsed.hunks)
            claimed["placement"] += len(parsed.hunks) if result else 0
    print(f"{len(files)} conflicted files, {hunks} hunks; median of {REPEAT} runs per measurement")
    print(f"{'rung':<14}{'hunks':>7}{'claims':>8}{'median ms':>11}{'p95 ms':>9}{'max ms':>9}")
    for name, times in per_hunk.items():
        if times:
            ms = sorted(t * 1000 for t in times)
            print(f"{name:<14}{len(ms):>7}{claimed[name]:>8}{statistics.median(ms):>11.2f}"
                  f"{ms[int(0.95 * (len(ms) - 1))]:>9.2f}{ms[-1]:>9.2f}")


if __name__ == "__main__":
    sys.exit(main())
