"""Benchmark: are the prerequisites the engine names true and few?

Mines (original, human backport) pairs from a repository's own history, keeps those whose plain
cherry-pick conflicts, runs the engine (no model) on an even sample of them, and audits every
prerequisite a failure names against the branch it was replayed onto:

- already on the branch, by each way: an ancestor, a `(cherry picked from commit X)` trailer, its
  `(#N)` in a branch subject, an equal patch-id, or equal effect (its cherry-pick onto the branch
  would be empty);
- formatting-only (every hunk's old and new sides are equal once whitespace is removed);
- failures that name more than three, and the time each failure took.

    python bench/prerequisites.py --repo /tmp/proj-prereq.git --main main --branches 'maintenance/2.*' \\
        --since 2023-01-01 --limit 150

The repository is cloned (shared, throwaway) before the engine runs in it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine.backport import Engine, Plan  # noqa: E402
from bot.engine.errors import BackportFailure  # noqa: E402
from bot.engine.evaluate import Pair, mine  # noqa: E402
from bot.engine.git import Git  # noqa: E402
from bot.engine.policy import ORIGIN, patch_ids  # noqa: E402
from bot.engine.ports import Silent  # noqa: E402
from bot.engine.predict import Pick, Predictor  # noqa: E402
from bot.engine.source import PR_SUFFIX, changed_paths, log_commits, read_commits, resolve  # noqa: E402
from bot.engine.workspace import Workspace  # noqa: E402

WAYS = ("ancestor", "trailer", "subject", "patch-id", "equal-effect")


def formatting_only(git: Git, sha: str) -> bool:
    """Every hunk of the commit is equal to its old side once whitespace is removed (independent
    of the engine's own check, so the audit does not grade itself)."""
    diff = git.run("diff", "--no-color", "-U0", "--no-renames", f"{sha}^", sha, check=False).stdout
    hunks: list[tuple[list[str], list[str]]] = []
    for line in diff.splitlines():
        if line.startswith("@@"):
            hunks.append(([], []))
        elif hunks and line.startswith("-") and not line.startswith("---"):
            hunks[-1][0].append(line[1:])
        elif hunks and line.startswith("+") and not line.startswith("+++"):
            hunks[-1][1].append(line[1:])
    if not hunks:
        return False
    return all(re.sub(r"\s+", "", "".join(old)) == re.sub(r"\s+", "", "".join(new)) for old, new in hunks)


def audit(git: Git, main_ref: str, target: str, shas: list[str]) -> dict[str, set[str]]:
    """way -> the named commits the target already carries that way."""
    found: dict[str, set[str]] = {w: set() for w in WAYS}
    if not shas:
        return found
    base = git.out("merge-base", target, main_ref)
    commits = {c.sha: c for c in read_commits(git, *shas)}
    branch = log_commits(git, f"{base}..{target}")
    origins = {o.lower() for c in branch for o in ORIGIN.findall(c.body)}
    prs = {m.group(1) for c in branch if (m := PR_SUFFIX.search(c.subject))}
    for sha in shas:
        if git.is_ancestor(sha, target):
            found["ancestor"].add(sha)
        if any(sha.startswith(o) for o in origins):
            found["trailer"].add(sha)
        if (m := PR_SUFFIX.search(commits[sha].subject)) and m.group(1) in prs:
            found["subject"].add(sha)
    files = sorted({f for paths in changed_paths(git, shas).values() for f in paths})
    theirs = set(patch_ids(git, ["--no-merges", f"{base}..{target}", "--", *files]).values()) if branch else set()
    mine_ids = patch_ids(git, ["--no-walk=unsorted", *shas])
    found["patch-id"] = {s for s in shas if mine_ids.get(s) in theirs}
    with Predictor(git) as predictor:
        preds = predictor.predict([Pick(s, (commits[s].parents or (None,))[0], target) for s in shas])
        (target_tree,) = predictor.trees([target])
    found["equal-effect"] = {s for s, p in zip(shas, preds, strict=True) if p.clean and p.tree == target_tree}
    return found


def run(repo: Path, main: str, patterns: list[str], since: str | None, limit: int, out_json: Path | None) -> int:
    src = Git(repo)
    listed = src.out("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
    branches = [b for b in listed if any(fnmatch.fnmatch(b, p) for p in patterns)]
    start = time.monotonic()
    pairs, counts = mine(src, main, branches, since)
    with Predictor(src) as predictor:
        commits = {c.sha: c for c in read_commits(src, *dict.fromkeys(p.original for p in pairs))}
        preds = predictor.predict([Pick(p.original, (commits[p.original].parents or (None,))[0], p.target)
                                   for p in pairs])
    conflicting = [p for p, pred in zip(pairs, preds, strict=True) if not pred.clean]
    total = len(conflicting)
    if len(conflicting) > limit:
        step = len(conflicting) / limit
        conflicting = [conflicting[int(i * step)] for i in range(limit)]
    print(f"{len(branches)} branches, {len(pairs)} pairs mined ({dict(counts)}), "
          f"{total} conflicting, {len(conflicting)} replayed; mining took {time.monotonic() - start:.0f} s", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="backportbot-prereq-") as tmp:
        clone = Path(tmp) / "repo"
        Git(Path(tmp)).run("clone", "--quiet", "--shared", "--no-checkout", "--mirror", str(repo), str(clone))
        git = Git(clone)
        ws = Workspace.in_place(clone, Path(tmp) / "data")
        main_ref = ws.branch_ref(main) or main
        engine = Engine()
        for n, pair in enumerate(conflicting):
            rows.append(_one(git, engine, ws, main_ref, n, pair))
            if (n + 1) % 25 == 0:
                print(f"  {n + 1}/{len(conflicting)}", flush=True)
    print(summary(rows))
    if out_json:
        out_json.write_text(json.dumps(rows, indent=1))
    return 0


def _one(git: Git, engine: Engine, ws: Workspace, main_ref: str, n: int, pair: Pair) -> dict[str, Any]:
    row: dict[str, Any] = {"original": pair.original, "human": pair.human, "branch": pair.branch}
    try:
        source = resolve(git, pair.original, main_ref)
    except BackportFailure as f:
        return {**row, "outcome": f.kind, "reason": f.reason, "seconds": 0.0}
    began = time.monotonic()
    outcome = engine.run(Plan(ws, source, f"bench-{n}", pair.target, main_ref), Silent())
    row["seconds"] = time.monotonic() - began
    if outcome.succeeded:
        git.run("update-ref", "-d", f"refs/heads/{outcome.result_branch}", check=False)
        row["outcome"] = "picked"
        return row
    failure = outcome.failure
    assert failure is not None
    row["outcome"] = failure.kind
    row["reason"] = failure.reason
    prereqs = failure.details.get("prerequisites", [])
    named = [p["commit"] for p in prereqs if p.get("named", True)]
    row["listed"], row["named"] = len(prereqs), named
    row["does_not_apply"] = "probably does not apply" in failure.reason
    present = audit(git, main_ref, pair.target, named)
    row["present"] = {w: sorted(s) for w, s in present.items()}
    row["formatting"] = [s for s in named if formatting_only(git, s)]
    return row


def summary(rows: list[dict[str, Any]]) -> str:
    failures = [r for r in rows if r["outcome"] != "picked"]
    naming = [r for r in failures if r.get("named")]
    named = [s for r in naming for s in r["named"]]
    present_any = sum(len(set().union(*map(set, r["present"].values()))) for r in naming)
    by_way = Counter({w: sum(len(r["present"][w]) for r in naming) for w in WAYS})
    formatting = sum(len(r["formatting"]) for r in naming)
    over = sum(len(r["named"]) > 3 for r in naming)
    seconds = [r["seconds"] for r in failures]
    lines = [
        f"replayed {len(rows)}: picked {len(rows) - len(failures)}, failed {len(failures)} "
        f"({dict(Counter(r['outcome'] for r in failures))})",
        f"failures naming prerequisites: {len(naming)}; commits named: {len(named)} "
        f"(listed with the counted ones: {sum(r['listed'] for r in naming)})",
        f"named but already on the branch: {present_any} (" + ", ".join(f"{w} {by_way[w]}" for w in WAYS) + ")",
        f"named but formatting-only: {formatting}",
        f"failures naming more than three: {over} "
        f"(most named by one: {max((len(r['named']) for r in naming), default=0)})",
        f"failures saying the fix probably does not apply: {sum(bool(r.get('does_not_apply')) for r in failures)}",
        f"seconds per failure: mean {sum(seconds) / max(len(seconds), 1):.2f}, max {max(seconds, default=0):.2f}; "
        f"per attempt overall: {sum(r['seconds'] for r in rows) / max(len(rows), 1):.2f}",
    ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--main", default="main")
    p.add_argument("--branches", nargs="+", required=True, help="glob patterns of release branches")
    p.add_argument("--since", help="only backports made after this date")
    p.add_argument("--limit", type=int, default=150, help="conflicting pairs replayed at most (an even sample)")
    p.add_argument("--jobs", type=int, default=1, help="accepted for symmetry with eval; pairs run one at a time")
    p.add_argument("--json", type=Path, help="per-pair rows")
    a = p.parse_args()
    return run(a.repo, a.main, a.branches, a.since, a.limit, a.json)


if __name__ == "__main__":
    sys.exit(main())
