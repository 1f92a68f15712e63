"""Whole conversations through the console chat's input and output, on real repositories with a
bare remote (the local forge pushes PR branches there)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.store.sqlite import SQLiteStore as Store
from bot import config
from bot.app import build_app
from tests import scenarios
from tests.gitrepo import GitRepo, published

ROOT = Path(__file__).parent.parent


def setup(tmp_path: Path, scenario, branches: str = '{ name = "rel" }', extra: str = "",
          maintainers: str = '["ada"]') -> tuple[GitRepo, Path, str]:
    work, remote, ref = published(tmp_path, scenario)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = {maintainers}\n\n[chat.console]\nuser = "ada"\n\n[[repos]]\nname = "demo"\n'
                   f'url = "{remote.as_uri()}"\nbranches = [{branches}]\n{extra}')
    return work, cfg, ref


def converse(cfg: Path, data_dir: Path, lines: list[str]) -> str:
    async def run() -> str:
        out = io.StringIO()
        console = build_app(config.load(cfg), data_dir, out)
        await console.start()
        try:
            for line in lines:
                await console.line(line)
        finally:
            await console.stop()
        return out.getvalue()

    return asyncio.run(run())


def prs(data_dir: Path) -> list[dict]:
    return list(Store(data_dir / "backportbot.db").db["local_prs"].rows)


def test_multi_branch_backport_opens_one_pr_per_branch(tmp_path, data_dir):
    work, cfg, ref = setup(tmp_path, scenarios.context_moved, '{ name = "rel" }, { name = "rel2" }')
    work.branch("rel2", "main~1")
    work.git("push", "-q", str(tmp_path / "remote.git"), "rel2")
    out = converse(cfg, data_dir, ["/backport 14 to rel, rel2"])
    assert re.search(r"\[1\] ada: /backport 14 to rel, rel2\n\[2\] bot: Backport of #14 Tighten the limit to rel, rel2",
                     out)
    assert "    [3] bot: ⏳ rel: queued…" in out and "    [4] bot: ⏳ rel2: queued…" in out
    assert re.search(r"    \[3\] \(edited\) bot: ✅ rel: PR opened: local://demo/pull/\d; conflicts: src/server.c "
                     r"\(context-moved\)", out)
    assert re.search(r"    \[4\] \(edited\) bot: ✅ rel2: PR opened: local://demo/pull/\d\n", out)
    assert "Summary: 2 PRs opened." in out
    by_base = {p["base"]: p for p in prs(data_dir)}
    assert by_base["rel"]["title"] == "[Backport rel] Tighten the limit"
    assert by_base["rel"]["labels"] == '["backport"]'
    body = by_base["rel"]["body"]
    assert "`src/server.c`, hunk at line" in body and "context-moved" in body
    assert "Difference from the original patch:" in body and "+     int y = x * 3;" in body
    assert "The backport's patch is identical to the original." in by_base["rel2"]["body"]
    remote = GitRepo(tmp_path / "remote.git")
    assert "if (y > 8)" in remote.show("backport/14-to-rel", "src/server.c")


def non_fix(repo: GitRepo) -> str:
    scenarios.base(repo)
    repo.commit("Add a banner (#50)\n\nLabels: enhancement", {"README": "server\nbanner\n"})
    return "#50"


def test_approval_counts_only_maintainers(tmp_path, data_dir):
    _, cfg, _ = setup(tmp_path, non_fix)
    out = converse(cfg, data_dir, ["/backport 50 to rel"])
    number = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval: the source is not labelled", out)
    assert number and prs(data_dir) == []
    out = converse(cfg, data_dir, [f"as bob: react {number.group(1)} ✅", f"as bob: react {number.group(1)} ❌"])
    assert out.count("(only bob sees this) only maintainers' reactions count (ada); yours was ignored.") == 2
    first = int(re.search(r"\[(\d+)\] bot", out).group(1))
    assert first > int(number.group(1))  # a restarted console never reuses a message number
    assert prs(data_dir) == []
    out = converse(cfg, data_dir, [f"react {number.group(1)} ✅"])
    assert "✅ rel: PR opened: local://demo/pull/1" in out
    assert len(prs(data_dir)) == 1


def test_a_maintainer_can_reject_and_retry(tmp_path, data_dir):
    _, cfg, _ = setup(tmp_path, non_fix)
    out = converse(cfg, data_dir, ["/backport 50 to rel"])
    number = re.search(r"\[(\d+)\] bot: ✋ rel", out).group(1)
    out = converse(cfg, data_dir, [f"react {number} ❌", "/backport status 50"])
    assert "Cancelled the backport of #50 to rel." in out
    remote = GitRepo(tmp_path / "remote.git")
    cache = GitRepo(data_dir / "repos" / "demo.git")
    assert cache.git("branch", "--list", "backport/*") == ""  # nothing left half-done
    assert remote.git("branch", "--list", "backport/*") == ""
    out = converse(cfg, data_dir, ["/backport retry 50 rel", "/backport cancel 50 rel", "/backport cancel 50 rel"])
    assert "Retrying the backport of #50 to rel" in out and "✋ rel: waiting for a maintainer's approval" in out
    assert "Cancelled the backport of #50 to rel." in out
    assert "Nothing to cancel for #50 on rel (cancelled)." in out


def test_the_same_request_twice_makes_no_second_attempt_or_pr(tmp_path, data_dir):
    _, cfg, _ = setup(tmp_path, scenarios.clean)
    out = converse(cfg, data_dir, ["/backport 12 to rel", "/backport #12 to rel"])
    assert "rel: already PR open, requested by ada: local://demo/pull/1; this request joins it." in out
    assert len(prs(data_dir)) == 1
    assert len(Store(data_dir / "backportbot.db").attempts("demo")) == 1


def test_bad_input_gets_specific_answers(tmp_path, data_dir):
    _, cfg, _ = setup(tmp_path, scenarios.clean)
    out = converse(cfg, data_dir, ["/backport 12 to 9.9", "/backport 12 8.1", "as bob: /backport 12 to rel",
                                   "/backport digest", "/backport help"])
    assert "unknown branch '9.9'; valid branches: rel" in out
    assert "Did you mean `/backport 12 to 8.1`?" in out
    assert "Sorry bob, only maintainers can request backports (ada)." in out
    assert "Backport digest for demo: " in out
    assert "/backport why 1234 8.1" in out
    assert Store(data_dir / "backportbot.db").attempts("demo") == []


def _why_after(tmp_path: Path, data_dir: Path, scenario, extra: str = "") -> str:
    _, cfg, ref = setup(tmp_path, scenario, extra=extra)
    ref = ref if ref.startswith("#") else ref[:12]
    return converse(cfg, data_dir, [f"/backport {ref} to rel", f"/backport why {ref} rel"])


def _missing(repo: GitRepo) -> str:
    scenarios.clean(repo)
    return "#999"


def _unmerged(repo: GitRepo) -> str:
    scenarios.clean(repo)
    repo.git("checkout", "-q", "-b", "wip")
    sha = repo.commit("Work in progress", {"README": "wip\n"})
    repo.checkout("main")
    return sha


def _circular(repo: GitRepo) -> str:
    scenarios.clean(repo)
    return repo.commit("Forward-port\n\n(cherry picked from commit 0123456789abcdef0123456789abcdef01234567)",
                       {"NEWS": "x\n"})


def _present(repo: GitRepo) -> str:
    scenarios.clean(repo)
    fix = repo.head("main")
    repo.checkout("rel")
    repo.git("cherry-pick", "-x", fix)
    repo.checkout("main")
    return "#12"


@pytest.mark.parametrize("case,expected", [
    ("already_present", r"failed at checking the fix \(already present\)\.\n\s+Reason: already on rel as \w+: "
                        r"its message says"),
    ("circular", r"failed at checking the fix \(circular\)\.\n\s+Reason: commit \w+ \(Forward-port\) is itself "
                 r"a backport"),
    ("conflict", r"failed at resolving conflicts \(conflict\)\.[\s\S]*Add a limit parameter to handle \(#10\)"),
    ("verify", r"failed at building and testing \(verify\)\.[\s\S]*FAIL: overflow"),
    ("push", r"failed at pushing the branch \(push\)\.\n\s+Reason: could not push backport/12-to-rel: remote: "
             r"pushes are closed"),
])
def test_why_after_each_failure_kind(tmp_path, data_dir, case, expected):
    scenario = {"already_present": _present, "circular": _circular, "conflict": scenarios.prerequisite,
                "verify": scenarios.clean, "push": scenarios.clean}[case]
    if case == "push":
        _, cfg, _ = setup(tmp_path, scenario)
        hook = tmp_path / "remote.git" / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'pushes are closed for the release freeze' >&2\nexit 1\n")
        hook.chmod(0o755)
        out = converse(cfg, data_dir, ["/backport 12 to rel", "/backport why 12 rel"])
    else:
        failing = '[[repos.commands]]\nname = "test"\nrun = "echo \'FAIL: overflow\'; exit 1"\n'
        extra = failing if case == "verify" else ""
        out = _why_after(tmp_path, data_dir, scenario, extra)
    assert re.search(expected, out), out
    assert "❌ rel: failed at" in out
    assert "file://" not in out  # no remote URL (which could carry credentials) in chat


@pytest.mark.parametrize("scenario,answer", [
    (_missing, "no commit on main whose subject ends with (#999)"),
    (_unmerged, "is not on the main branch (main); merge it first"),
])
def test_an_unknown_or_unmerged_fix_is_answered_at_once_leaving_nothing(tmp_path, data_dir, scenario, answer):
    out = _why_after(tmp_path, data_dir, scenario)
    assert re.search(r"\[2\] bot: .*" + re.escape(answer), out), out  # the next line, no thread
    assert "Backport of" not in out.split("[3]")[0] and "❌" not in out
    store = Store(data_dir / "backportbot.db")
    assert store.attempts("demo") == [] and store.db.execute("select count(*) from requests").fetchone()[0] == 0
    assert "has been attempted" in out  # `why` afterwards: nothing was recorded


def running(pid: int) -> bool:
    """A live process (a zombie nobody reaped yet counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_queued_request_survives_a_restart(tmp_path, data_dir):
    marker = tmp_path / "running"
    slow = f'if [ ! -e {marker} ]; then echo $$ > {marker}; sleep 60; fi'
    work, cfg, _ = setup(tmp_path, scenarios.clean, '{ name = "rel" }, { name = "rel2" }',
                         f'[[repos.commands]]\nname = "slow once"\nrun = "{slow}"\n')
    work.branch("rel2", "rel")
    work.git("push", "-q", str(tmp_path / "remote.git"), "rel2")
    # Unisolated: the slow command writes its pid outside its work tree, for the test to watch it.
    cfg.write_text(cfg.read_text().replace("[bot]\n", "[bot]\nworkers = 1\nisolation = \"none\"\n"))
    env = {**os.environ, "BACKPORTBOT_HOME": str(data_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(cfg), "console"], env=env, cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None
    proc.stdin.write("/backport 12 to rel rel2\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    verify = int(marker.read_text())
    assert running(verify)  # the verify command outlives the bot...
    states = {a.branch: a.state for a in Store(data_dir / "backportbot.db").attempts("demo")}
    assert states == {"rel": "verifying", "rel2": "queued"}
    out = converse(cfg, data_dir, ["wait", "/backport status 12"])
    assert not running(verify)  # ...until the next start kills its process group
    assert "⚠️ The backport to rel was interrupted (the bot stopped before it finished)" in out
    assert re.search(r"rel2: PR open: local://demo/pull/1", out)
    assert re.search(r"\n\s+rel: failed|\n\s+rel: interrupted", out)


def test_near_misses_get_did_you_mean_and_start_nothing(tmp_path, data_dir):
    _, cfg, _ = setup(tmp_path, scenarios.context_moved)
    out = converse(cfg, data_dir, ["/backprot 14 to rel", "/backport 14 rel", "can you backport 14 to rel?"])
    assert out.count("Did you mean `/backport 14 to rel`?") == 3
    assert "Backport of" not in out and prs(data_dir) == []


def test_stats_count_time_saved_on_merged_backports_only_and_per_week_as_json(tmp_path, data_dir, capsys):
    from adapters.store.sqlite import SQLiteStore
    from bot.cli import main
    from bot.core.workflow import Workflow

    work, cfg, _ = setup(tmp_path, scenarios.context_moved, '{ name = "rel" }, { name = "rel2" }')
    work.branch("rel2", "main~1")
    work.git("push", "-q", str(tmp_path / "remote.git"), "rel2")
    converse(cfg, data_dir, ["/backport 14 to rel, rel2"])
    store = SQLiteStore(data_dir / "backportbot.db")
    first, second = store.all_attempts()
    assert first.state == second.state == "pr_open" and first.conflicts  # one hunk resolved on rel
    out = converse(cfg, data_dir, ["/backport stats"])
    assert "Time saved: about 0.0 hours on 0 merged backports (15 min each, 10 min per resolved hunk: 0); " \
           "2 not merged yet are not counted." in out
    Workflow(store, "test").merged(first.id)  # as the forge's webhook says
    out = converse(cfg, data_dir, ["/backport stats"])
    assert "Time saved: about 0.4 hours on 1 merged backport (15 min each, 10 min per resolved hunk: 1); " \
           "1 not merged yet are not counted." in out
    assert main(["--data-dir", str(data_dir), "stats", "--json"]) == 0
    (week,) = json.loads(capsys.readouterr().out)["weeks"]
    assert week["attempts"] == 2 and week["succeeded"] == 2 and week["success_rate"] == 1.0
    assert week["merged"] == 1 and week["hours_saved"] == 0.42 and week["model_share"] == 0.0
    assert week["week"] == datetime.fromtimestamp(first.created_at, UTC).strftime("%G-W%V")
