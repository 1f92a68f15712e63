"""The candidate digest over a real repository with mixed history, its reactions, the release
check, and a schedule that survives restarts without skipping or repeating a digest."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from pathlib import Path

from adapters.schedule.cron import DigestSchedule
from adapters.store.sqlite import SQLiteStore as Store
from bot import config
from bot.app import build_app
from bot.cli import main
from bot.core.repos import from_path
from tests.gitrepo import GitRepo, lines, published
from tests.test_console import converse, prs

FILES = {f"{name}.c": lines(10, f"    {name}_value +=") for name in "abcdefg"}


def edit(text: str, n: int, new: str) -> str:
    out = text.splitlines(keepends=True)
    out[n - 1] = new + "\n"
    return "".join(out)


def history(repo: GitRepo) -> dict[str, str]:
    repo.commit("Initial", FILES)
    repo.branch("1.0")
    repo.branch("1.1")
    repo.commit("Rework f on 1.1", {"f.c": edit(FILES["f.c"], 5, "    f_value -= 1;")}, on="1.1")
    repo.checkout("main")
    shas = {
        "a": repo.commit("Fix crash in a (#1)", {"a.c": edit(FILES["a.c"], 5, "    a_value = 0;")}),
        "b": repo.commit("Add a shiny feature (#2)", {"b.c": edit(FILES["b.c"], 5, "    b_value = 2;")}),
        "c": repo.commit("fix: leak in c (#3)", {"c.c": edit(FILES["c.c"], 5, "    c_value = 0;")}),
        "d": repo.commit("Fix overflow in d, CVE-2026-1111 (#4)", {"d.c": edit(FILES["d.c"], 5, "    d_value = 0;")}),
        "e": repo.commit("Fix race in e (#5)", {"e.c": edit(FILES["e.c"], 5, "    e_value = 0;")}),
        "f": repo.commit("Fix f rounding (#6)\n\nLabels: bug, backport/1.1",
                         {"f.c": edit(FILES["f.c"], 5, "    f_value = 0;")}),
        "g": repo.commit("Fix g everywhere (#7)", {"g.c": edit(FILES["g.c"], 5, "    g_value = 0;")}),
    }
    for branch in ("1.0", "1.1"):
        repo.checkout(branch)
        repo.git("cherry-pick", "-x", shas["g"])
        if branch == "1.0":
            repo.git("cherry-pick", "-x", shas["c"])
    repo.checkout("main")
    return shas


def test_candidates_are_fixes_missing_somewhere_with_their_outlook(repo, data_dir):
    history(repo)
    found = from_path(repo.path, data_dir).candidates("2000-01-01", dismissed={"#5"})
    # security, then crash or data loss, then bugs (the easiest first)
    assert [(c.key, c.category) for c in found] == [("#4", "security"), ("#1", "crash"), ("#3", "bug"),
                                                    ("#6", "bug")]
    outlook = {c.key: c.outlook for c in found}
    assert outlook["#1"] == {"1.0": "clean", "1.1": "clean"}
    assert outlook["#3"] == {"1.0": "present", "1.1": "clean"}
    assert outlook["#6"] == {"1.0": "clean", "1.1": "conflicts in 1 file (f.c)"}
    assert found[0].security and "subject says 'cve-2026-1111'" in found[0].reasons
    assert next(c for c in found if c.key == "#3").suggested == ["1.1"]


def test_digest_command_line_prints_json(repo, data_dir, capsys):
    history(repo)
    assert main(["digest", "--repo", str(repo.path), "--since", "2000-01-01", "--json"]) == 0
    keys = [json.loads(line)["key"] for line in capsys.readouterr().out.splitlines()]
    assert keys == ["#4", "#1", "#3", "#5", "#6"]


def setup(tmp_path: Path) -> tuple[GitRepo, Path]:
    work, remote, _ = published(tmp_path, history)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n[digest]\nchannel = "console"\n\n'
                   f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\n'
                   f'branches = [{{ name = "1.0" }}, {{ name = "1.1" }}]\n')
    return work, cfg


def number(out: str, key: str) -> str:
    return re.search(rf"\[(\d+)\] bot: (?:🔒 security: )?{re.escape(key)} ", out).group(1)


def test_only_maintainers_post_digests_and_only_the_digest_channel_moves_the_window(tmp_path, data_dir):
    _, cfg = setup(tmp_path)
    cfg.write_text(cfg.read_text().replace('channel = "console"', 'channel = "team"'))
    out = converse(cfg, data_dir, ["as bob: /backport digest", "/backport digest"])
    assert "Sorry bob, only maintainers can post a digest (ada)." in out
    assert "Backport digest for demo: 5 candidates" in out  # ada's, in the console: a preview
    assert Store(data_dir / "backportbot.db").last_digest("demo") is None  # the team's next one is whole


def test_reactions_on_candidates_backport_dismiss_and_recheck(tmp_path, data_dir):
    _, cfg = setup(tmp_path)
    out = converse(cfg, data_dir, ["/backport digest"])
    assert re.search(r"Backport digest for demo: 5 candidates \(1 security\)", out)
    assert "🔒 security: #4 Fix overflow in d, CVE-2026-1111" in out
    one, six, three = number(out, "#1"), number(out, "#6"), number(out, "#3")
    out = converse(cfg, data_dir, [f"as bob: react {one} ✅", f"react {one} ✅", f"react {six} ❌",
                                   f"react {three} 🔁"])
    assert "(only bob sees this) only maintainers' reactions count" in out
    assert "✅ 1.0: PR opened" in out and "✅ 1.1: PR opened" in out
    assert "#6 dismissed by ada; it will not be proposed again." in out
    assert re.search(rf"\[{three}\] \(edited\) bot: #3 fix: leak in c — 1.0: present; 1.1: clean", out)
    assert sorted(p["base"] for p in prs(data_dir)) == ["1.0", "1.1"]
    # the next digest looks only at what was merged since, and never again at #6
    out = converse(cfg, data_dir, ["/backport digest"])
    assert "Backport digest for demo: 0 candidates" in out
    assert "#6" in Store(data_dir / "backportbot.db").dismissed("demo")


def test_landed_lists_requested_and_labelled_fixes_missing_on_a_branch(tmp_path, data_dir):
    _, cfg = setup(tmp_path)
    out = converse(cfg, data_dir, ["/backport 4 to 1.1", "/backport landed 1.1", "/backport landed 1.0"])
    assert "Not on 1.1 yet (2):" in out
    assert "#4 Fix overflow in d, CVE-2026-1111 — PR open" in out  # a PR is not a landing
    assert "#6 Fix f rounding — labelled, never requested" in out
    assert "Every fix requested or labelled for 1.0 is on 1.0." in out


def test_the_schedule_catches_up_once_after_a_restart(tmp_path, data_dir):
    _, cfg = setup(tmp_path)

    async def session(move_last_back: float = 0) -> tuple[int, int]:
        console = build_app(config.load(cfg), data_dir, io.StringIO())
        await console.start()
        store = console.store
        if move_last_back:
            with store.lock:
                row = store.last_digest("demo")
                store.db["digests"].update(row.id, {"at": row.at - move_last_back})
        schedule = DigestSchedule(console.bot, console.store, ["demo"], "0 9 * * *", "UTC", "console")
        try:
            caught = await schedule.start()
            await console.idle()
        finally:
            schedule.stop()
            await console.stop()
        return caught, len(list(store.db["digests"].rows))

    assert asyncio.run(session()) == (0, 0)  # never posted: nothing was skipped
    converse(cfg, data_dir, ["/backport digest"])
    assert asyncio.run(session()) == (0, 1)  # restarted right after: the next one is not due yet
    assert asyncio.run(session(move_last_back=2 * 86400)) == (1, 2)  # a fire time passed while down
    assert asyncio.run(session()) == (0, 2)  # and it is not posted twice
    assert time.time() - Store(data_dir / "backportbot.db").last_digest("demo").at < 60


def test_a_batch_applies_what_it_can_and_reports_the_rest(tmp_path, data_dir):
    _, cfg = setup(tmp_path)
    cfg.write_text(cfg.read_text().replace('channel = "console"', 'channel = "console"\nbatch = true'))
    out = converse(cfg, data_dir, ["/backport digest"])
    one, three, four, six = (number(out, k) for k in ("#1", "#3", "#4", "#6"))
    out = converse(cfg, data_dir, [f"react {one} ✅", f"react {three} ✅", f"react {six} ✅", f"react {four} ✅",
                                   "/backport batch drop 1 1.0", "/backport batch"])
    assert "#1 joins the next batch for 1.0, 1.1 (approved by ada)." in out
    assert "✅ 1.0: PR opened" in out and "✅ 1.1: PR opened" in out  # security does not wait for a batch
    assert "#1 is out of the 1.0 batch." in out
    pending = out[out.rindex("Pending batch items:"):]
    assert "1.0: #6" in pending and "1.0: #1" not in pending and "1.1: #1" in pending
    out = converse(cfg, data_dir, ["/backport batch 1.1"])
    assert "❌ #6 skipped: " in out and "conflicts in f.c" in out
    assert re.search(r"✅ 1.1 batch PR opened: local://demo/pull/\d \(2 applied, 1 skipped\)", out)
    batch = next(p for p in prs(data_dir) if p["title"] == "[Backport 1.1] Batch of 2 fixes")
    body = batch["body"]
    assert "## Applied\n- #1 (approved by ada)\n- #3 (approved by ada)" in body
    assert "## Skipped\n- #6: " in body
    remote = GitRepo(tmp_path / "remote.git")
    subjects = remote.git("log", "--format=%s", f"1.1..{batch['head']}").splitlines()
    assert subjects == ["fix: leak in c (#3)", "Fix crash in a (#1)"]
    assert "No batch items are pending for 1.1." in converse(cfg, data_dir, ["/backport batch 1.1"])


def test_a_candidate_that_needs_an_earlier_pr_says_which(repo, data_dir):
    from tests import scenarios

    scenarios.prerequisite(repo)
    (cand,) = [c for c in from_path(repo.path, data_dir).candidates("2000-01-01") if c.key == "#16"]
    assert cand.outlook == {"rel": "conflicts in 1 file (src/server.c); needs #10 first"}
