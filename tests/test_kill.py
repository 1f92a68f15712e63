"""Never lost, never twice, never silent, on real processes: `backportbot serve` (Slack in HTTP mode,
the local forge) receives signed slash commands and events over HTTP, is SIGKILLed at chosen
moments (a `git` wrapper stops it at a named subcommand; a verify command sleeps), restarted (also
as PID 1 of a fresh PID namespace), stopped with SIGTERM, and judged by its store and by every call
the local Slack recorded. The one-shot command line runs as a process too."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.store.sqlite import SQLiteStore
from bot.core.workflow import Attempt
from tests import scenarios
from tests.fake_slack import FakeSlack
from tests.gitrepo import GitRepo, published
from tests.processes import (
    HANG,
    HANG_ARM,
    HANG_MARKER,
    HANG_SECONDS,
    ROOT,
    SECRET,
    Bot,
    Processes,
    git_wrapper,
    mention,
    release,
    running,
    send,
    slash,
    texts,
    wait_for,
    with_token,
)

SLEEP = "BACKPORTBOT_TEST_VERIFY_SLEEP"  # set: the verify command sleeps (until it is killed)
T = TypeVar("T")
OPEN = {"requested", "queued", "picking", "conflicted", "resolving", "verifying", "ready", "opening_pr"}


# --- set-up ------------------------------------------------------------------------------------------

@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path / "logs")
    yield started
    started.close()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


def verify_command() -> tuple[str, str]:
    """(token, TOML): a verify command that sleeps when the bot's environment says so. The token
    (its sleep's length) is in the command line of each of its processes, to find them."""
    token = f"{random.randint(600, 900)}.{random.randint(100000, 999999)}"
    run = f'if [ -n \\"${SLEEP}\\" ]; then sleep {token} & wait; fi'
    return token, f'[[repos.commands]]\nname = "test"\nrun = "{run}"\n'


def repo_toml(name: str, url: str, branches: tuple[str, ...] = ("rel",), channels: tuple[str, ...] = (),
              extra: str = "") -> str:
    listed = ", ".join(f'{{ name = "{b}" }}' for b in branches)
    linked = f"channels = {json.dumps(list(channels))}\n" if channels else ""
    return f'[[repos]]\nname = "{name}"\nurl = "{url}"\nbranches = [{listed}]\n{linked}{extra}\n'


def write_config(path: Path, repos: str, grace: float = 8, unisolated: bool = False) -> Path:
    """Slack in HTTP mode on a free port; `unisolated`: verify commands run as the bot's children,
    outside bubblewrap, so that they outlive a killed bot (as they would in a container without it)."""
    isolation = 'isolation = "none"\n' if unisolated else ""
    path.write_text(f'[bot]\nmaintainers = ["UADA"]\nworkers = 2\nstop_grace_seconds = {grace}\n{isolation}\n'
                    f'[serve]\nport = 0\n\n[chat]\nadapters = ["slack"]\n[chat.slack]\nmode = "http"\n\n{repos}')
    return path


def environment(tmp_path: Path, data_dir: Path, slack: FakeSlack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (HANG, HANG_MARKER, HANG_SECONDS, HANG_ARM, SLEEP)}
    env.update({"PATH": f"{git_wrapper(tmp_path / 'bin')}:{os.environ['PATH']}", "BACKPORTBOT_HOME": str(data_dir),
                "SLACK_API_URL": slack.url, "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET})
    env.update(extra)
    return env


def two_branches(tmp_path: Path, scenario: Any, second_at: str) -> tuple[GitRepo, Path]:
    work, remote, _ = published(tmp_path, scenario)
    work.branch("rel2", second_at)
    work.git("push", "-q", str(remote), "rel2")
    return work, remote


# --- what the store and the local Slack say --------------------------------------------------------

def rows(db: SQLiteStore, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.db.execute(sql, list(params)).fetchall()]


def prs(db: SQLiteStore, repo: str) -> list[tuple[str, str]]:
    """(head, base) of every pull request the local forge ever opened for `repo`."""
    return [(h, b) for h, b in rows(db, "select head, base from local_prs where repo = ? order by number", repo)]


def requests(db: SQLiteStore, repo: str) -> int:
    return len(rows(db, "select id from requests where repo = ?", repo))


def posted(slack: FakeSlack, channel: str, thread: str | None = None, starts: str = "") -> list[dict[str, Any]]:
    """Messages the bot posted in `channel` (in `thread`, when given) whose text starts so."""
    return [c for c in slack.of("chat.postMessage") if c.get("channel") == channel
            and (thread is None or c.get("thread_ts") == thread) and str(c.get("text", "")).startswith(starts)]


def settled(db: SQLiteStore, repo: str) -> bool:
    """Nothing of `repo` in the middle of its work, and nothing waiting in the inbox."""
    return not rows(db, "select id from inbox where state = 'pending'") and \
        all(a.state not in OPEN for a in db.attempts(repo))


def at(db: SQLiteStore, attempt_id: int, state: str) -> Attempt | None:
    a = db.attempt(attempt_id)
    return a if a.state == state else None


def mid_verify(db: SQLiteStore, repo: str, branch: str, token: str) -> Attempt | None:
    """The attempt while its verify command runs: recorded as verifying, with its process group."""
    found = [a for a in db.attempts(repo, branch=branch) if a.state == "verifying" and a.process]
    return found[-1] if found and with_token(token) else None


def interrupted_notice(slack: FakeSlack, channel: str, thread: str, branch: str) -> list[dict[str, Any]]:
    return posted(slack, channel, thread, f"⚠️ The backport to {branch} was interrupted")


def at_least(n: int, found: Callable[[], list[T]]) -> Callable[[], list[T] | None]:
    def enough() -> list[T] | None:
        now = found()
        return now if len(now) >= n else None

    return enough


def held(procs: Processes, cfg: Path, env: dict[str, str], marker: Path) -> Bot:
    """`serve` stopped in its start-up fetch (it holds the repository's lock there): listening, not
    recovered yet, until the marker is released."""
    return procs.start(["--config", str(cfg), "serve"], {**env, HANG: "fetch", HANG_MARKER: str(marker)})


def started(bot: Bot, slack: FakeSlack) -> str:
    """The bot's URL once it has started: recovered, and its inbox replayed (it answered `help`)."""
    url = bot.url()
    before = len(posted(slack, "CREADY"))
    send(url, slash("help", "CREADY"))
    wait_for(lambda: len(posted(slack, "CREADY")) > before, "the bot to answer once started", 30)
    return url


def exited(bot: Bot, timeout: float) -> tuple[int, float]:
    """The exit status and how long it took from now."""
    begun = time.monotonic()
    code = bot.wait(timeout)
    return code, time.monotonic() - begun


# --- 1. acknowledged, then killed before the request was written; received while starting --------

def test_requests_acknowledged_before_a_kill_or_during_a_start_are_handled_once(
        tmp_path: Path, data_dir: Path, slack: FakeSlack, procs: Processes) -> None:
    _, remote = two_branches(tmp_path, scenarios.clean, "rel")
    cfg = write_config(tmp_path / "bot.toml", repo_toml("server", remote.as_uri(), ("rel", "rel2")))
    env = environment(tmp_path, data_dir, slack)
    hang, hang_again = tmp_path / "fetch.hang", tmp_path / "fetch-again.hang"
    bot = held(procs, cfg, env, hang)
    url = bot.url()
    wait_for(hang.exists, "the start-up fetch to stop")  # listening, not recovered yet: deliveries wait
    status, answer = send(url, slash("12 to rel", "CDEV", slack.response_url("rel")))
    assert (status, answer) == (200, "On it: watch the thread I am starting in this channel.")
    redelivered = mention("backport 12 to rel2", "CDEV", "EvRel2")
    assert send(url, redelivered)[0] == 200
    db = SQLiteStore(data_dir / "backportbot.db")
    bot.kill()
    assert len(rows(db, "select id from inbox where state = 'pending'")) == 2
    assert requests(db, "server") == 0 and db.attempts("server") == []  # acknowledged, not yet written

    # The next start stops in its fetch too: what it receives meanwhile waits with what it replays.
    bot = held(procs, cfg, env, hang_again)
    url = bot.url()
    wait_for(hang_again.exists, "the second start-up fetch to stop")
    assert send(url, slash("status 12", "CDEV"))[0] == 200
    release(hang_again)
    wait_for(lambda: len(posted(slack, "CDEV", starts="Summary:")) == 2, "both summaries", 30)
    attempts = db.attempts("server")
    assert sorted((a.branch, a.state) for a in attempts) == [("rel", "pr_open"), ("rel2", "pr_open")]
    assert sorted(prs(db, "server")) == [("backport/12-to-rel", "rel"), ("backport/12-to-rel2", "rel2")]
    roots = posted(slack, "CDEV", starts="Backport of #12 Fix overflow in handle to ")
    assert sorted(r["text"].split(" to ")[1].split(",")[0] for r in roots) == ["rel", "rel2"]
    for root in roots:  # each request is answered in its own thread
        assert root.get("thread_ts") is None
        assert [t for t in texts(posted(slack, "CDEV", root["__ts"])) if t.startswith("Summary")] == \
            ["Summary: 1 PR opened."]
    assert slack.responses == []  # nothing needed saying privately

    # Slack did not see the first 200 in time and sends the event again: it is not handled twice.
    status, _ = send(url, redelivered, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    assert status == 200
    assert len(rows(db, "select id from inbox")) == 3  # acknowledged without being stored again
    send(url, slash("help", "CDEV"))
    wait_for(lambda: posted(slack, "CDEV", starts="Usage:"), "the answer to help")
    assert wait_for(lambda: settled(db, "server"), "the bot to settle")
    assert len(db.attempts("server")) == 2 and len(prs(db, "server")) == 2
    answers = texts(posted(slack, "CDEV"))
    assert len([t for t in answers if t.startswith("Backport of")]) == 2
    assert [t.split("\n")[0] for t in answers if t.startswith("#12 ")] == ["#12 Fix overflow in handle"]
    assert [t for t in answers if "joins" in t] == []
    assert bot.alive()


# --- 2. killed mid-pick and mid-verify --------------------------------------------------------------

def test_attempts_killed_mid_pick_and_mid_verify_are_recovered_then_retried(
        tmp_path: Path, data_dir: Path, slack: FakeSlack, procs: Processes) -> None:
    # #14 conflicts on rel (picked in a worktree: `git cherry-pick`) and applies cleanly on rel2
    # (picked in memory, then verified in a worktree).
    _, remote = two_branches(tmp_path, scenarios.context_moved, "main~1")
    token, command = verify_command()
    procs.tokens.append(token)
    cfg = write_config(tmp_path / "bot.toml", repo_toml("server", remote.as_uri(), ("rel", "rel2"), extra=command),
                       unisolated=True)
    hang = tmp_path / "cherry-pick.hang"
    bot = procs.start(["--config", str(cfg), "serve"], environment(
        tmp_path, data_dir, slack, **{HANG: "cherry-pick", HANG_MARKER: str(hang), SLEEP: "1"}))
    status, _ = send(started(bot, slack), slash("14 to rel rel2", "CDEV"))
    assert status == 200
    db = SQLiteStore(data_dir / "backportbot.db")
    wait_for(hang.exists, "the pick onto rel to stop in `git cherry-pick`")
    verifying = wait_for(lambda: mid_verify(db, "server", "rel2", token), "the verify command of rel2")
    picking = db.attempts("server", branch="rel")[0]
    assert picking.state == "picking" and picking.worktree and Path(picking.worktree).exists()
    assert verifying.worktree and Path(verifying.worktree).exists()
    bot.kill()
    verify = with_token(token)
    group = int((verifying.process or "").split(":")[0])
    assert group in verify and len(verify) >= 2  # the command and its child outlive the killed bot...

    bot = procs.start(["--config", str(cfg), "serve"], environment(tmp_path, data_dir, slack))
    url = started(bot, slack)
    for a in (picking, verifying):
        done = wait_for(partial(at, db, a.id, "interrupted"), f"attempt {a.id} to be interrupted")
        assert done.stage == a.state and done.worktree is None and done.process is None
        assert a.worktree and not Path(a.worktree).exists()
    wait_for(lambda: not with_token(token), "the verify command and its child to be killed", 5)  # ...till now
    assert not running(group)
    (root,) = posted(slack, "CDEV", starts="Backport of #14")
    for branch in ("rel", "rel2"):
        wait_for(partial(interrupted_notice, slack, "CDEV", root["__ts"], branch), f"the notice for {branch}")
    assert prs(db, "server") == []

    for branch in ("rel", "rel2"):
        send(url, slash(f"retry 14 {branch}", "CDEV"))
    wait_for(lambda: len(prs(db, "server")) == 2 and settled(db, "server"), "both retries to open their PR", 30)
    assert sorted(prs(db, "server")) == [("backport/14-to-rel", "rel"), ("backport/14-to-rel2", "rel2")]
    retried = {a.branch: a for a in db.attempts("server") if a.retry_of}
    assert {b: (a.state, a.retry_of) for b, a in retried.items()} == \
        {"rel": ("pr_open", picking.id), "rel2": ("pr_open", verifying.id)}
    assert len(db.attempts("server")) == 4


# --- 3. as PID 1 of a fresh PID namespace -------------------------------------------------------------

def pid_namespace() -> list[str]:
    """How to start a process as PID 1 of a new PID namespace here; skips when nothing works."""
    if shutil.which("unshare") is None:
        pytest.skip("`unshare` (util-linux) is not installed: cannot run the bot as PID 1 of a PID namespace")
    tried = []
    plain = ["unshare", "--pid", "--fork", "--mount-proc"]
    for prefix in (plain, ["unshare", "-r", *plain[1:]]):
        res = subprocess.run([*prefix, "sh", "-c", "echo $$"], capture_output=True, text=True, timeout=10)
        if res.returncode == 0 and res.stdout.strip() == "1":
            return prefix
        tried.append(f"`{' '.join(prefix)}`: {res.stderr.strip() or res.returncode}")
    pytest.skip("cannot make a PID namespace (needs CAP_SYS_ADMIN, or unprivileged user namespaces for "
                "`unshare -r`): " + "; ".join(tried))


def test_as_pid_1_in_a_new_namespace_each_restart_recovers_the_attempt_killed_before(
        tmp_path: Path, data_dir: Path, slack: FakeSlack, procs: Processes) -> None:
    prefix = pid_namespace()
    _, remote, _ = published(tmp_path, scenarios.clean)
    token, command = verify_command()
    procs.tokens.append(token)
    grace = 4.0
    cfg = write_config(tmp_path / "bot.toml", repo_toml("server", remote.as_uri(), extra=command), grace=grace)
    db = SQLiteStore(data_dir / "backportbot.db")
    killed: list[Attempt] = []
    for round_ in range(3):
        sleeping = {SLEEP: "1"} if round_ < 2 else {}
        bot = procs.start(["--config", str(cfg), "serve"], environment(tmp_path, data_dir, slack, **sleeping), prefix)
        url = started(bot, slack)
        for a in killed:  # the previous PID 1 had the same pid: its lease still tells it is gone
            wait_for(partial(at, db, a.id, "interrupted"), f"attempt {a.id} to be interrupted ({round_})")
            assert a.worktree and not Path(a.worktree).exists()
        if killed:
            (root,) = posted(slack, "CDEV", starts="Backport of #12")
            notices = wait_for(at_least(round_, partial(interrupted_notice, slack, "CDEV", root["__ts"], "rel")),
                               f"the notice of round {round_}")
            assert len(notices) == round_
        send(url, slash("12 to rel" if round_ == 0 else "retry 12 rel", "CDEV"))
        if round_ == 2:
            break
        attempt = wait_for(lambda: mid_verify(db, "server", "rel", token), f"the verify command ({round_})")
        lease = db.lease(attempt.owner or "")
        assert lease is not None and lease.pid == 1, lease  # PID 1, as in a container
        assert attempt.id not in [a.id for a in killed]
        bot.kill()  # the namespace goes with its PID 1
        killed.append(attempt)
    assert not with_token(token)
    wait_for(lambda: prs(db, "server") == [("backport/12-to-rel", "rel")] and settled(db, "server"),
             "the last retry to open its PR", 30)
    assert [a.state for a in db.attempts("server")] == ["interrupted", "interrupted", "pr_open"]

    # PID 1 ignores a signal it set no handler for: SIGTERM must still stop it, cleanly.
    owner = db.attempts("server")[-1].owner or ""
    bot.signal(signal.SIGTERM)
    code, took = exited(bot, grace + 10)
    assert code == 0 and took < grace, (code, took, bot.stderr())
    lease = db.lease(owner)
    assert lease is not None and lease.pid == 1 and lease.ended_at is not None


# --- 9. SIGTERM in the middle of a verify --------------------------------------------------------------

def test_sigterm_mid_verify_waits_the_grace_then_interrupts_and_exits_0(
        tmp_path: Path, data_dir: Path, slack: FakeSlack, procs: Processes) -> None:
    _, remote, _ = published(tmp_path, scenarios.clean)
    token, command = verify_command()
    procs.tokens.append(token)
    grace = 0.5
    cfg = write_config(tmp_path / "bot.toml", repo_toml("server", remote.as_uri(), extra=command), grace=grace)
    # Once armed, the first `git rev-parse` (the stopping thread's, removing the work tree) takes 1 s:
    # the work, seeing its verify command killed, must not record a verify failure meanwhile.
    slow, arm = tmp_path / "rev-parse.slow", tmp_path / "armed"
    bot = procs.start(["--config", str(cfg), "serve"], environment(
        tmp_path, data_dir, slack, **{SLEEP: "1", HANG: "rev-parse", HANG_MARKER: str(slow), HANG_ARM: str(arm),
                                      HANG_SECONDS: "1"}))
    send(started(bot, slack), slash("12 to rel", "CDEV"))
    db = SQLiteStore(data_dir / "backportbot.db")
    attempt = wait_for(lambda: mid_verify(db, "server", "rel", token), "the verify command")
    arm.touch()
    bot.signal(signal.SIGTERM)
    code, took = exited(bot, grace + 15)
    assert code == 0, bot.stderr()
    assert grace <= took < grace + 1 + 5, took
    assert slow.exists()  # git was slow in the stopping thread
    done = db.attempt(attempt.id)
    assert (done.state, done.stage, done.process, done.worktree) == ("interrupted", "verifying", None, None), \
        done.reason
    assert attempt.worktree and not Path(attempt.worktree).exists()
    wait_for(lambda: not with_token(token), "the verify command's processes to be gone", 5)
    lease = db.lease(attempt.owner or "")
    assert lease is not None and lease.ended_at is not None
    (root,) = posted(slack, "CDEV", starts="Backport of #12")
    assert interrupted_notice(slack, "CDEV", root["__ts"], "rel")
    assert prs(db, "server") == []


# --- 6. the command line, then the service ---------------------------------------------------------------

def cli(procs: Processes, env: dict[str, str], *args: str) -> Bot:
    return procs.start([*args, "--json"], env)


def finished(bot: Bot, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """The exit status of a one-shot `backport --json` to one branch, and its line."""
    code = bot.wait(timeout)
    bot.done()
    found = [json.loads(line) for line in bot.lines if line.startswith("{")]
    assert len(found) == 1, (code, bot.lines, bot.stderr())
    return code, found[0]


def test_command_line_results_are_kept_never_published_and_never_overwrite_a_reviewers_commit(
        tmp_path: Path, data_dir: Path, slack: FakeSlack, procs: Processes) -> None:
    work, remote = two_branches(tmp_path, scenarios.clean, "rel")
    work.branch("rel3", "rel")
    work.git("push", "-q", str(remote), "rel3")
    cfg = write_config(tmp_path / "bot.toml", repo_toml("server", remote.as_uri(), ("rel", "rel2", "rel3")))
    env = environment(tmp_path, data_dir, slack)
    db = SQLiteStore(data_dir / "backportbot.db")
    configured = cli(procs, env, "--config", str(cfg), "backport", "#12", "--to", "rel")
    local = cli(procs, env, "backport", "#12", "--to", "rel", "--repo", str(work.path))
    # Two more runs are killed: one after it queued its attempt, before it started it (stopped where
    # it looks the fix up: `git rev-list`), one in the middle of its pick (`git merge-tree`).
    killed = []
    for branch, where in (("rel2", "rev-list"), ("rel3", "merge-tree")):
        hang = tmp_path / f"{where}.hang"
        killed.append((hang, cli(procs, {**env, HANG: where, HANG_MARKER: str(hang)},
                                 "--config", str(cfg), "backport", "#12", "--to", branch)))
    code, first = finished(configured)
    assert code == 0 and (first["status"], first["result_branch"]) == ("succeeded", "backport/12-to-rel")
    code, first_local = finished(local)
    assert code == 0 and first_local["result_branch"] == "backport/12-to-rel"
    for hang, run in killed:
        wait_for(hang.exists, f"the command line to stop in `git {hang.stem}`")
        run.kill()
    assert {a.branch: a.state for a in db.attempts("server")} == {"rel": "kept", "rel2": "queued", "rel3": "picking"}

    # The service starts: it settles the killed runs, and neither publishes nor posts anything of them.
    bot = procs.start(["--config", str(cfg), "serve"], env)
    url = started(bot, slack)
    send(url, slash("status 12", "CDEV"))
    (status,) = wait_for(lambda: posted(slack, "CDEV", starts="#12 "), "the answer to status")
    assert status["text"].split("\n")[1:] == [
        f"  rel: picked on the command line: backport/12-to-rel at {first['result_commit'][:10]}",
        "  rel2: cancelled", "  rel3: interrupted"]
    assert {a.branch: a.state for a in db.attempts("server")} == \
        {"rel": "kept", "rel2": "cancelled", "rel3": "interrupted"}
    assert prs(db, "server") == [] and rows(db, "select number from local_prs") == []
    assert GitRepo(remote).git("branch", "--list", "backport/*") == ""  # nothing pushed either
    assert [(m, c.get("channel"), c.get("text")) for m, c in slack.calls
            if m.startswith("chat.") and c.get("channel") not in ("CDEV", "CREADY")] == []

    # A reviewer pushes a commit on the backport branch (remote), another commits on it (local repo).
    reviewer = GitRepo(tmp_path / "reviewer")
    subprocess.run(["git", "clone", "-q", str(remote), str(reviewer.path)], check=True)
    reviewer.git("checkout", "-q", "-b", "backport/12-to-rel", "origin/rel")
    pushed = reviewer.commit("Reviewer: a note for the release", {"NOTES": "reviewed\n"})
    reviewer.git("push", "-q", "origin", "backport/12-to-rel")
    work.checkout("backport/12-to-rel")
    amended = work.commit("Reviewer: touch up the backport", {"NOTES": "touched up\n"})
    work.checkout("main")
    configured = cli(procs, env, "--config", str(cfg), "backport", "#12", "--to", "rel")
    local = cli(procs, env, "backport", "#12", "--to", "rel", "--repo", str(work.path))
    code, again = finished(configured)
    assert code == 0 and again["result_branch"] == "backport/12-to-rel-2"
    code, again_local = finished(local)
    assert code == 0 and again_local["result_branch"] == "backport/12-to-rel-2"
    assert GitRepo(remote).head("backport/12-to-rel") == pushed
    cache = GitRepo(data_dir / "repos" / "server.git")
    assert cache.head("refs/heads/backport/12-to-rel") == first["result_commit"]
    assert cache.head("refs/heads/backport/12-to-rel-2") == again["result_commit"]
    assert work.head("backport/12-to-rel") == amended
    assert work.head("backport/12-to-rel-2") == again_local["result_commit"]
    assert [a.state for a in db.attempts("server", branch="rel")] == ["kept", "kept"]
    assert prs(db, "server") == [] and bot.alive()  # the service, still running, published none of them


# --- processes starting together --------------------------------------------------------------------

OPEN_STORE = """
import sys, time
from pathlib import Path
from adapters.store.sqlite import SQLiteStore
db, ready, go = (Path(a) for a in sys.argv[1:])
ready.touch()
while not go.exists():
    time.sleep(0.001)
SQLiteStore(db)
"""


def all_ready(here: Path, n: int) -> bool:
    return len(list(here.glob("ready-*"))) == n


def test_processes_opening_a_new_database_at_once_all_start(tmp_path: Path) -> None:
    """Two `backportbot backport` runs (or serve and one) started together on a new data directory."""
    for round_ in range(2):
        here = tmp_path / str(round_)
        here.mkdir()
        go = here / "go"
        starting = [subprocess.Popen([sys.executable, "-c", OPEN_STORE, str(here / "backportbot.db"),
                                      str(here / f"ready-{n}"), str(go)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
                    for n in range(4)]
        try:
            wait_for(partial(all_ready, here, 4), "the processes to be ready")
            go.touch()
            failed = [p.communicate(timeout=30)[1].strip().splitlines()[-1:] for p in starting]
        finally:
            for p in starting:
                p.kill()
                p.wait()
        assert [p.returncode for p in starting] == [0] * 4, failed


# --- 4, 5, 7, 8: one service, one repository (and channel) per test ---------------------------------

@dataclass
class Service:
    bot: Bot
    url: str
    slack: FakeSlack
    db: SQLiteStore
    remotes: dict[str, Path]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Starting:
    bot: Bot
    slack: FakeSlack
    data_dir: Path
    remotes: dict[str, Path]


@pytest.fixture(scope="module", autouse=True)
def starting_service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Starting | None]:
    """The shared `serve`, started with the module's first test when some selected test uses it:
    it loads while the tests before it wait on theirs. Slack answers every call after 150 ms."""
    if not any("service" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    root = tmp_path_factory.mktemp("service")
    slack = FakeSlack(delay=0.15)
    procs = Processes(root / "logs")
    try:
        names = ("dup", "sha", "shafirst", "bysha", "hidden", "gone")
        remotes = {name: published(root / name, scenarios.clean)[1] for name in names}
        repos = "".join(repo_toml(name, remote.as_uri(), channels=(f"C{name.upper()}",))
                        for name, remote in remotes.items())
        repos += repo_toml("hidden2", remotes["hidden"].as_uri(), channels=("CINVITED",))
        repos += repo_toml("closed", f"http://127.0.0.1:{closed_port()}/server.git", channels=("CCLOSED",))
        cfg = write_config(root / "bot.toml", repos)
        data_dir = root / "home"
        bot = procs.start(["--config", str(cfg), "serve"], environment(root, data_dir, slack))
        yield Starting(bot, slack, data_dir, remotes)
    finally:
        procs.close()
        slack.close()


@pytest.fixture(scope="module")
def service(starting_service: Starting | None) -> Service:
    """One `serve` for the tests that do not kill it; each uses its own repository and channel."""
    assert starting_service is not None
    s = starting_service
    url = started(s.bot, s.slack)
    return Service(s.bot, url, s.slack, SQLiteStore(s.data_dir / "backportbot.db"), s.remotes)


def test_the_same_fix_requested_twice_at_once_makes_one_attempt_and_one_pr(service: Service) -> None:
    slack, db = service.slack, service.db
    both = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def request() -> None:
        command = slash("12 to rel", "CDUP")
        both.wait()
        answers.append(send(service.url, command))

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in answers] == [200, 200]
    joined = wait_for(lambda: [t for t in texts(posted(slack, "CDUP")) if "this request joins it" in t],
                      "the second request to be answered", 30)
    wait_for(lambda: posted(slack, "CDUP", starts="Summary:") and settled(db, "dup"), "the first request's PR", 30)
    assert len(joined) == 1 and joined[0].startswith("rel: already ") and "requested by <@UADA>" in joined[0]
    assert len(db.attempts("dup")) == 1 and prs(db, "dup") == [("backport/12-to-rel", "rel")]
    assert len(posted(slack, "CDUP", starts="Backport of")) == 1


@pytest.mark.parametrize("repo,first", [("sha", "number"), ("shafirst", "commit")])
def test_a_fix_by_number_and_by_its_commit_is_one_attempt_and_one_pr(service: Service, repo: str, first: str) -> None:
    slack, db = service.slack, service.db
    sha = GitRepo(service.remotes[repo]).head("main")  # the squash commit "Fix overflow in handle (#12)"
    channel = f"C{repo.upper()}"
    refs = ["12", sha] if first == "number" else [sha, "12"]
    for ref in refs:  # the second is sent while the first is handled
        send(service.url, slash(f"{ref} to rel", channel))
    wait_for(lambda: [t for t in texts(posted(slack, channel)) if "this request joins it" in t]
             and posted(slack, channel, starts="Summary:") and settled(db, repo), "both requests to be answered", 30)
    (attempt,) = db.attempts(repo)
    assert attempt.source == "#12" and prs(db, repo) == [("backport/12-to-rel", "rel")]
    assert len(posted(slack, channel, starts="Backport of")) == 1


def test_status_and_why_by_commit_meet_the_record_made_by_number(service: Service) -> None:
    slack, db = service.slack, service.db
    sha = GitRepo(service.remotes["bysha"]).head("main")
    send(service.url, slash("12 to rel", "CBYSHA"))
    wait_for(lambda: prs(db, "bysha") and settled(db, "bysha"), "the backport of #12", 30)
    (first,) = db.attempts("bysha")
    assert first.source == "#12" and first.pr_url
    send(service.url, slash(f"status {sha}", "CBYSHA"))
    (status,) = wait_for(lambda: [t for t in texts(posted(slack, "CBYSHA")) if "\n  rel: " in t], "status")
    assert status.endswith(f"\n  rel: PR open: {first.pr_url}")
    send(service.url, slash(f"why {sha} rel", "CBYSHA"))
    (why,) = wait_for(lambda: posted(slack, "CBYSHA", starts="Backport of #12 to rel (attempt "), "why")
    assert why["text"].startswith(f"Backport of #12 to rel (attempt {first.id}): PR open")


def test_a_channel_the_bot_is_not_in_gets_a_private_answer_and_records_nothing(service: Service) -> None:
    slack, db = service.slack, service.db
    slack.not_in_channel.add("CHIDDEN")
    status, _ = send(service.url, slash("12 to rel", "CHIDDEN", slack.response_url("hidden")))
    assert status == 200
    ((_, answer),) = wait_for(lambda: [r for r in slack.responses if r[0] == "hidden"], "the private answer")
    assert answer.get("response_type") == "ephemeral" and "/invite @backportbot" in answer["text"]
    assert [m for m, args in slack.calls if args.get("channel") == "CHIDDEN"] == ["chat.postMessage (not_in_channel)"]
    assert requests(db, "hidden") == 0 and db.attempts("hidden") == [] and prs(db, "hidden") == []
    assert service.bot.alive()
    send(service.url, slash("12 to rel", "CINVITED"))  # the next command, where the bot was invited
    wait_for(lambda: posted(slack, "CINVITED", starts="Summary:") and settled(db, "hidden2"), "the next request", 30)
    assert len(db.attempts("hidden2")) == 1 and prs(db, "hidden2") == [("backport/12-to-rel", "rel")]


def test_an_unreachable_remote_is_answered_in_the_channel_and_records_nothing(service: Service) -> None:
    slack, db = service.slack, service.db
    remote = service.remotes["gone"]
    moved = remote.with_name("moved.git")
    remote.rename(moved)  # fetched at the start; gone now
    try:
        send(service.url, slash("12 to rel", "CGONE"))
        send(service.url, slash("12 to rel", "CCLOSED"))  # never reachable: a closed port
        for channel, repo in (("CGONE", "gone"), ("CCLOSED", "closed")):
            (answer,) = wait_for(partial(posted, slack, channel), f"the answer in {channel}")
            assert answer.get("thread_ts") is None
            assert answer["text"].startswith(f"I could not fetch {repo} from its remote (")
            assert "trying again later may work" in answer["text"]
            assert "file://" not in answer["text"] and "http://" not in answer["text"]
            assert requests(db, repo) == 0 and db.attempts(repo) == []
        assert service.bot.alive()
    finally:
        moved.rename(remote)
    send(service.url, slash("12 to rel", "CGONE"))  # and trying again later does work
    wait_for(lambda: posted(slack, "CGONE", starts="Summary:") and settled(db, "gone"), "the request once back", 30)
    assert prs(db, "gone") == [("backport/12-to-rel", "rel")]
