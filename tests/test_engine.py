"""The engine below the CLI: in-memory picks agree with git, rerere, crash recovery and
concurrent attempts on one repository."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters.store.sqlite import SQLiteStore as Store
from bot.cli import main
from bot.core.features.backports import run_attempt
from bot.core.lease import Keeper
from bot.core.repos import from_path
from bot.core.workflow import State, Workflow
from bot.engine.backport import Engine, cherry_pick_message
from bot.engine.git import Git
from bot.engine.predict import Pick, Predictor
from bot.engine.source import resolve
from tests import scenarios
from tests.gitrepo import GitRepo


def real_cherry_pick(repo: GitRepo, ref: str, onto: str, tmp: Path) -> tuple[bool, str | None]:
    """What plain git does: (clean, tree) from `git cherry-pick -x` in a throwaway worktree."""
    source = resolve(Git(repo.path), ref, "refs/heads/main")
    wt = tmp / "floor"
    repo.git("worktree", "add", "-q", "--detach", str(wt), onto)
    try:
        for c in source.commits:
            mainline = ["-m", "1"] if source.mainline else []
            res = subprocess.run(["git", "cherry-pick", "-x", *mainline, c.sha], cwd=wt, capture_output=True)
            if res.returncode != 0:
                return False, None
        return True, subprocess.run(["git", "rev-parse", "HEAD^{tree}"], cwd=wt, capture_output=True,
                                    text=True).stdout.strip()
    finally:
        repo.git("worktree", "remove", "--force", str(wt))


@pytest.mark.parametrize("name", sorted(scenarios.ALL))
def test_in_memory_prediction_agrees_with_a_real_cherry_pick(repo, tmp_path, name):
    ref = scenarios.ALL[name](repo)
    source = resolve(Git(repo.path), ref, "refs/heads/main")
    chain = [(c.sha, c.parents[0] if c.parents else None) for c in source.commits]
    with Predictor(Git(repo.path)) as predictor:
        preds = predictor.predict_chain(chain, repo.head("rel"))
    predicted_clean = len(preds) == len(chain) and all(p.clean for p in preds)
    clean, tree = real_cherry_pick(repo, ref, "rel", tmp_path)
    assert predicted_clean == clean
    if clean:
        assert preds[-1].tree == tree
    loose_before = sum(1 for _ in (repo.path / ".git" / "objects").rglob("*") if _.is_file())
    with Predictor(Git(repo.path)) as predictor:
        predictor.predict([Pick(sha, parent, repo.head("rel")) for sha, parent in chain])
    loose_after = sum(1 for _ in (repo.path / ".git" / "objects").rglob("*") if _.is_file())
    assert loose_after == loose_before  # synthetic objects never land in the repository


def test_batched_predictions_keep_their_order(repo):
    scenarios.prerequisite(repo)
    git = Git(repo.path)
    fix, prereq_ = repo.head("main"), repo.head("main~2")
    picks = [Pick(fix, fix + "~1", repo.head("rel")), Pick(prereq_, prereq_ + "~1", repo.head("rel")),
             Pick(fix, fix + "~1", repo.head("main~1"))]
    with Predictor(git) as predictor:
        preds = predictor.predict(picks)
    assert [p.clean for p in preds] == [False, True, True]
    assert preds[0].conflicts == ("src/server.c",)


@pytest.mark.parametrize("message", [
    "Fix the thing",
    "Fix the thing\n\nA longer explanation.",
    "Fix the thing\n\nBody.\n\nSigned-off-by: Ada <ada@example.org>",
    "Fix the thing\n\nCloses: #12\nReviewed-by: Bob <bob@example.org>",
    "Fix the thing\n\nBody line\nSigned-off-by: Ada <ada@example.org>",
    "Fix: the thing\n\nNot: a trailer block\nbecause this line is prose",
])
def test_origin_line_matches_git_cherry_pick_x(repo, message):
    repo.commit("base", {"a": "1\n"})
    repo.branch("rel")
    fix = repo.commit(message, {"b": "2\n"})
    repo.checkout("rel")
    repo.git("cherry-pick", "-x", fix)
    raw = repo.git("log", "-1", "--format=%B", fix) + "\n"
    assert cherry_pick_message(raw, fix) == repo.git("log", "-1", "--format=%B", "HEAD") + "\n"


def test_rerere_replays_a_maintainers_resolution_on_retry(repo, tmp_path, capsys):
    ref = scenarios.prerequisite(repo)
    args = ["backport", ref, "--to", "rel", "--repo", str(repo.path)]
    assert main(args) == 1
    capsys.readouterr()
    # A maintainer resolves the same conflict by hand once, with rerere on.
    wt = tmp_path / "by-hand"
    repo.git("worktree", "add", "-q", "--detach", str(wt), "rel")
    subprocess.run(["git", "-c", "rerere.enabled=true", "cherry-pick", "-x", repo.head("main")], cwd=wt)
    resolved = scenarios.SERVER.replace("if (y > 10)", "if (y >= 10)")
    (wt / "src/server.c").write_text(resolved)
    subprocess.run(["git", "add", "src/server.c"], cwd=wt, check=True)
    subprocess.run(["git", "-c", "rerere.enabled=true", "-c", "core.editor=true", "cherry-pick", "--continue"],
                   cwd=wt, check=True, capture_output=True)
    repo.git("worktree", "remove", "--force", str(wt))
    assert main([*args, "--json"]) == 0
    out = capsys.readouterr().out
    assert '"resolved_by": ["rerere"]' in out
    assert repo.show("backport/16-to-rel", "src/server.c") == resolved


def _kill_mid_attempt(repo: GitRepo, tmp_path: Path, data_dir: Path, where: str) -> None:
    marker = tmp_path / "started"
    if where == "picking":  # the worktree's checkout hangs: killed while picking
        hook = repo.path / ".git" / "hooks" / "post-checkout"
        hook.write_text(f"#!/bin/sh\necho $$ > {marker}\nsleep 60\n")
        hook.chmod(0o755)
        commands = ""
    else:
        commands = f'[[repos.commands]]\nname = "slow"\nrun = "echo $$ > {marker}; sleep 60"\n'
    cfg = tmp_path / "bot.toml"
    # Unisolated: the slow command writes its pid outside its work tree, for the test to watch it.
    cfg.write_text(f'[bot]\nisolation = "none"\n\n[[repos]]\nname = "demo"\npath = "{repo.path}"\n'
                   f'branches = [{{ name = "rel" }}]\n{commands}')
    env = {**os.environ, "BACKPORTBOT_HOME": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(cfg), "backport", "#14", "--to", "rel"],
                            env=env, cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 30
    while not marker.exists() or not marker.read_text().strip():
        assert proc.poll() is None and time.monotonic() < deadline, "the attempt did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        os.kill(int(marker.read_text()), signal.SIGKILL)
    except ProcessLookupError:
        pass
    if where == "picking":
        (repo.path / ".git" / "hooks" / "post-checkout").unlink()


@pytest.mark.parametrize("where", ["picking", "verifying"])
def test_killed_attempt_is_marked_interrupted_with_its_worktree_removed(repo, tmp_path, data_dir, capsys, where):
    scenarios.context_moved(repo)
    _kill_mid_attempt(repo, tmp_path, data_dir, where)
    store = Store(data_dir / "backportbot.db")
    (attempt,) = store.attempts("demo")
    assert attempt.state == where and attempt.worktree and Path(attempt.worktree).exists()
    # The next start (any command) recovers it.
    assert main(["--config", str(tmp_path / "bot.toml"), "why", "#14", "rel"]) == 0
    text = capsys.readouterr().out
    assert f"interrupted at {dict(verifying='building and testing').get(where, where)}" in text
    attempt = store.attempt(attempt.id)
    assert attempt.state == State.INTERRUPTED and attempt.worktree is None
    assert not any((data_dir / "worktrees").rglob("attempt-*"))
    assert repo.git("worktree", "list").count("\n") == 0
    # and the fix can be backported again afterwards (without the slow command)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(cfg.read_text().split("[[repos.commands]]")[0])
    assert main(["--config", str(cfg), "backport", "#14", "--to", "rel"]) == 0


def test_recovery_leaves_live_attempts_alone(repo, data_dir):
    store = Store(data_dir / "backportbot.db")
    lease = Keeper(store).start()
    workflow = Workflow(store, lease.id)
    request = store.add_request("demo", "#1", ["rel"], "t", "test")
    attempt = store.add_attempt(request, "demo", "#1", "rel")
    workflow.queue(attempt)
    workflow.start(attempt, {})  # owned by this (live) process
    assert Workflow(store, "another start").recover() == []
    assert store.attempt(attempt).state == State.PICKING
    lease.end()  # the process said it stopped: its attempt is recovered at once
    (recovered,) = Workflow(store, "another start").recover()
    assert recovered.id == attempt and recovered.state == State.INTERRUPTED


def test_concurrent_attempts_on_one_repository(repo, data_dir):
    ref = scenarios.context_moved(repo)  # conflicts on rel: needs a worktree
    for n in range(4):
        repo.branch(f"clean{n}", "main~1")
    target = from_path(repo.path, data_dir)
    source = resolve(target.workspace.git, ref, target.main_ref)
    store = Store(data_dir / "backportbot.db")
    engine, workflow = Engine(), Workflow(store, "test")
    request = store.add_request(target.key, source.key, ["rel"], "t", "test")
    branches = ["rel", "clean0", "clean1", "clean2", "clean3"]
    outcomes = {}

    def one(branch: str) -> None:
        attempt = store.add_attempt(request, target.key, source.key, branch)
        workflow.queue(attempt)
        outcomes[branch] = run_attempt(engine, workflow, store, attempt, target, source, branch)

    threads = [threading.Thread(target=one, args=(b,)) for b in branches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {b: o.state for b, o in outcomes.items()} == {b: "ready" for b in branches}
    for b in branches:
        assert "if (y > 8)" in repo.show(f"backport/14-to-{b}", "src/server.c")
    assert "x * 3" in repo.show("backport/14-to-rel", "src/server.c")
    assert repo.git("worktree", "list").count("\n") == 0
    events = [e.state for a in store.attempts(target.key) for e in store.events(a.id)]
    assert events.count("ready") == len(branches)
