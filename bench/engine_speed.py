"""Benchmark: a clean backport through the engine vs the raw git floor, and batched clean-apply
prediction (speed, and agreement with real cherry-picks on the same pairs).

    python bench/engine_speed.py --repo /path/to/large/repo --main main --branches 'maintenance/*'

The repository should be a clone you do not mind the benchmark writing branches into
(it writes refs/heads/bench/* and backport/* and deletes them afterwards).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.sandbox.process import ProcessSandbox  # noqa: E402
from adapters.store.sqlite import SQLiteStore  # noqa: E402
from bench.common import branches, git  # noqa: E402
from bot.core.workflow import AttemptRecorder, Workflow  # noqa: E402
from bot.engine.backport import Engine, Outcome, Plan  # noqa: E402
from bot.engine.evaluate import Pair, mine  # noqa: E402
from bot.engine.git import Git  # noqa: E402
from bot.engine.ports import Command  # noqa: E402
from bot.engine.predict import Pick, Predictor  # noqa: E402
from bot.engine.source import resolve  # noqa: E402
from bot.engine.workspace import Workspace  # noqa: E402


def real_pick(repo: Path, wt: Path, pair: Pair) -> tuple[bool, str | None]:
    """A real cherry-pick in a reused worktree: (clean, tree)."""
    subprocess.run(["git", "checkout", "-q", "-f", "--detach", pair.target], cwd=wt, check=True, capture_output=True)
    parents = git(repo, "rev-list", "--parents", "-n1", pair.original).split()
    mainline = ["-m", "1"] if len(parents) > 2 else []
    res = subprocess.run(["git", "cherry-pick", "--no-commit", *mainline, pair.original], cwd=wt, capture_output=True)
    clean = res.returncode == 0
    tree = git(wt, "write-tree").strip() if clean else None
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=wt, capture_output=True)
    subprocess.run(["git", "cherry-pick", "--abort"], cwd=wt, capture_output=True)
    return clean, tree


def floor(repo: Path, pair: Pair, n: int, tmp: Path) -> float:
    """The raw git floor: worktree add + cherry-pick -x + branch update, by hand."""
    wt = tmp / f"floor-{n}"
    start = time.perf_counter()
    git(repo, "worktree", "add", "-q", "--detach", str(wt), pair.target)
    git(wt, "cherry-pick", "-x", pair.original)
    git(wt, "update-ref", f"refs/heads/bench/floor-{n}", "HEAD")
    took = time.perf_counter() - start
    git(repo, "worktree", "remove", "--force", str(wt))
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--main", default="main")
    ap.add_argument("--branches", default="maintenance/*", help="release branch pattern under refs/heads")
    ap.add_argument("--clean-pairs", type=int, default=20, help="pairs for the engine vs floor comparison")
    ap.add_argument("--predict-pairs", type=int, default=300, help="pairs for prediction speed and agreement")
    args = ap.parse_args()
    os.environ.setdefault("GIT_CONFIG_GLOBAL", "/dev/null")
    os.environ.setdefault("GIT_COMMITTER_NAME", "bench")
    os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@localhost")
    repo = args.repo.resolve()
    commits = git(repo, "rev-list", "--count", "--all").strip()
    # Pairs named by the human (trailer, "Backport of", "(#N)"): patch-id pairs include changes
    # the branch already had under another commit, which the engine rightly refuses.
    mined, _ = mine(Git(repo), args.main, branches(repo, args.branches))
    pairs = [p for p in mined if p.method != "patch-id"]
    print(f"repository: {repo} ({commits} commits); {len(pairs)} backport pairs mined")

    # --- prediction: speed (batched) and agreement with real cherry-picks ------------------------
    sample = pairs[: args.predict_pairs]
    git_ = Git(repo)
    picks = []
    for p in sample:
        parent = git(repo, "rev-parse", f"{p.original}^1").strip()
        picks.append(Pick(p.original, parent, p.target))
    with Predictor(git_) as predictor:
        # Resolve the trees first: a real batch (eval, digest) has them from its own `git log` pass.
        predictor.trees([r for pk in picks for r in (pk.commit, pk.parent or "", pk.onto)])
        start = time.perf_counter()
        preds = predictor.predict(picks)
        took = time.perf_counter() - start
    print(f"prediction: {len(picks)} pairs in {took * 1000:.0f} ms batched = {took * 1000 / len(picks):.2f} ms/pair")
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "real"
        git(repo, "worktree", "add", "-q", "--detach", str(wt), sample[0].target)
        agree = trees_equal = clean_both = 0
        for pred, pair in zip(preds, sample, strict=True):
            clean, tree = real_pick(repo, wt, pair)
            agree += pred.clean == clean
            if clean and pred.clean:
                clean_both += 1
                trees_equal += pred.tree == tree
        git(repo, "worktree", "remove", "--force", str(wt))
    print(f"agreement with real cherry-picks: {agree}/{len(sample)} = {agree / len(sample):.1%} "
          f"(clean in both: {clean_both}, same tree: {trees_equal})")

    # --- a clean backport through the engine vs the raw git floor ---------------------------------
    clean_pairs = [p for p, pred in zip(sample, preds, strict=True) if pred.clean][: args.clean_pairs]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        store = SQLiteStore(tmp_path / "bench.db")
        workflow = Workflow(store, "bench")
        engine = Engine(sandbox=ProcessSandbox(os.environ))
        ws = Workspace.in_place(repo, tmp_path)
        engine_times, floor_times, worktree_times = [], [], []
        # Verification needs a work tree: a no-op command measures the engine on that path.
        noop = (Command(name="noop", run="true"),)

        def attempt(request: int, key: str, plan: Plan) -> Outcome:
            """One recorded attempt, as the bot runs it: every step is a move in the store."""
            attempt_id = store.add_attempt(request, ws.key, key, plan.branch)
            workflow.queue(attempt_id)
            outcome = engine.run(plan, AttemptRecorder(workflow, attempt_id))
            workflow.finish(attempt_id, outcome)
            return outcome

        for n, pair in enumerate(clean_pairs):
            target_ref = f"refs/heads/bench/target-{n}"
            git(repo, "update-ref", target_ref, pair.target)
            floor_times.append(floor(repo, pair, n, tmp_path))
            start = time.perf_counter()
            source = resolve(ws.git, pair.original, f"refs/heads/{args.main}")
            request = store.add_request(ws.key, source.key, [f"bench-{n}"], "bench", "bench")
            outcome = attempt(request, source.key,
                              Plan(ws, source, f"bench-{n}", target_ref, f"refs/heads/{args.main}"))
            engine_times.append(time.perf_counter() - start)
            assert outcome.succeeded, outcome
            same = git(repo, "rev-parse", f"{outcome.result_commit}^{{tree}}") == git(
                repo, "rev-parse", f"refs/heads/bench/floor-{n}^{{tree}}")
            assert same, f"engine and git disagree on {pair}"
            start = time.perf_counter()
            outcome = attempt(request, source.key, Plan(ws, source, f"bench-wt-{n}", target_ref,
                                                        f"refs/heads/{args.main}", commands=noop))
            worktree_times.append(time.perf_counter() - start)
            assert outcome.succeeded, outcome
        refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/bench/", "refs/heads/backport/").split()
        git(repo, "update-ref", "--stdin", input="".join(f"delete {r}\n" for r in refs))
    e, f, w = (statistics.median(t) for t in (engine_times, floor_times, worktree_times))
    print(f"clean backport, median of {len(clean_pairs)}: engine {e * 1000:.0f} ms, raw git floor "
          f"{f * 1000:.0f} ms: engine/floor = {e / f:.2f}x (goal <= 1.5x); same trees in all")
    print(f"  with a work tree for verification (no-op command): {w * 1000:.0f} ms = {w / f:.2f}x the floor")


if __name__ == "__main__":
    main()
