"""`stats` and `backportbot stats --json` against a real store filled by real backports: requested
in the console (one of them resolved by a model server and approved), merged or closed as the
forge's webhook says, over three weeks."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.store.sqlite import SQLiteStore
from bot import config
from bot.app import build_app
from bot.cli import main
from bot.core.ports import Delivery, PullRequestClosed
from tests import scenarios
from tests.gitrepo import GitRepo
from tests.test_llm import correct

TWO_WEEKS = 14 * 86400


def history(repo: GitRepo) -> None:
    """#16 needs the model on rel (#10 is missing there), #20 cannot be picked (its file is not on
    rel), #30, #31 and #32 are clean picks."""
    scenarios.prerequisite(repo)
    repo.commit("Add the cache module (#19)", {"src/cache.c": "int cache_get(void) {\n    return 1;\n}\n"})
    repo.commit("Fix cache_get (#20)", {"src/cache.c": "int cache_get(void) {\n    return 2;\n}\n"})
    repo.commit("Fix the contributing guide (#30)", {"CONTRIBUTING": "Be kind.\n"})
    repo.commit("Fix the limits doc (#31)", {"docs/limits.md": "The limit is 10.\n"})
    repo.commit("Fix the NEWS (#32)", {"NEWS": "Fixed.\n"})


def talk(cfg: Path, data_dir: Path, lines: list[str], deliveries: tuple[Delivery, ...] = ()) -> str:
    """Lines typed in the console, then what the forge's webhook delivers; returns the console."""
    async def run() -> str:
        out = io.StringIO()
        app = build_app(config.load(cfg), data_dir, out)
        await app.start()
        try:
            for line in lines:
                await app.line(line)
            for delivery in deliveries:
                assert await app.bot.deliver("github", f"delivery-{delivery}", delivery)
            await app.idle()
        finally:
            await app.stop()
        return out.getvalue()

    return asyncio.run(run())


def stats_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["stats", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def week_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%G-W%V")


def test_time_saved_counts_merged_backports_only_and_the_weeks_are_rows(tmp_path, data_dir, model, capsys,
                                                                        monkeypatch):
    work = GitRepo.create(tmp_path / "work")
    history(work)
    remote = tmp_path / "remote.git"
    work.git("clone", "-q", "--bare", str(work.path), str(remote))
    cfg = tmp_path / "bot.toml"
    cfg.write_text('[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n'
                   '[llm]\nenabled = true\nmodel = "local-model"\ntimeout = 1\n\n'
                   f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')
    model.script = [correct]

    # Two weeks ago: #16 (the model resolves its hunk; approved; a PR) and #20 (fails).
    real = time.time
    with monkeypatch.context() as then:
        then.setattr(time, "time", lambda: real() - TWO_WEEKS)
        out = talk(cfg, data_dir, ["/backport 16 to rel"])
        waiting = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
        assert waiting, out
        out = talk(cfg, data_dir, [f"react {waiting.group(1)} ✅", "/backport 20 to rel"])
        assert "❌ rel" in out, out
    # This week: #30, #31 and #32, three PRs.
    talk(cfg, data_dir, ["/backport 30 to rel", "/backport 31 to rel", "/backport 32 to rel"])
    store = SQLiteStore(data_dir / "backportbot.db")
    by_fix = {a.source: a for a in store.all_attempts()}
    assert [by_fix[f].state for f in ("#16", "#20", "#30", "#31", "#32")] == \
        ["pr_open", "failed", "pr_open", "pr_open", "pr_open"]
    assert [h.resolved_by for h in store.hunks(by_fix["#16"].id)] == ["llm"]

    out = talk(cfg, data_dir, ["/backport stats"])
    assert "Time saved: about 0.0 hours on 0 merged backports (15 min each, 10 min per resolved hunk: 0); " \
           "4 not merged yet are not counted." in out

    # The forge says: #16's and #30's PRs merged, #31's closed unmerged; #32's stays open.
    closed = tuple(PullRequestClosed("demo", by_fix[f].result_branch or "", merged)
                   for f, merged in (("#16", True), ("#30", True), ("#31", False)))
    out = talk(cfg, data_dir, ["/backport stats"], closed)
    assert [a.state for a in store.all_attempts()] == ["merged", "failed", "merged", "closed", "pr_open"]
    out = talk(cfg, data_dir, ["/backport stats"])
    assert "Backports: 5 attempts, 3 succeeded (75% of finished ones), failed:" in out
    assert "Time saved: about 0.7 hours on 2 merged backports (15 min each, 10 min per resolved hunk: 1); " \
           "1 not merged yet and 1 closed unmerged are not counted." in out
    assert main(["stats"]) == 0
    assert "Time saved: about 0.7 hours on 2 merged backports" in capsys.readouterr().out

    now = time.time()
    document = stats_json(capsys)
    assert document["basis"] == {"minutes_per_merged_backport": 15, "minutes_per_resolved_hunk": 10,
                                 "week_of": "request", "week_starts": "Monday, UTC"}
    old, empty, this = document["weeks"]
    assert [old["week"], empty["week"], this["week"]] == \
        [week_of(now - TWO_WEEKS), week_of(now - TWO_WEEKS / 2), week_of(now)]
    monday = datetime.fromtimestamp(now, UTC).date()
    monday -= timedelta(days=monday.weekday())
    assert this["start"] == monday.isoformat() and old["start"] == (monday - timedelta(weeks=2)).isoformat()
    assert old == {"week": old["week"], "start": old["start"], "attempts": 2, "succeeded": 1, "failed": 1,
                   "success_rate": 0.5, "hunks_resolved": 1, "hunks_by_model": 1, "model_share": 1.0,
                   "merged": 1, "not_merged_yet": 0, "closed": 0, "minutes_saved": 25, "hours_saved": 0.42}
    assert empty == {"week": empty["week"], "start": empty["start"], "attempts": 0, "succeeded": 0, "failed": 0,
                     "success_rate": None, "hunks_resolved": 0, "hunks_by_model": 0, "model_share": None,
                     "merged": 0, "not_merged_yet": 0, "closed": 0, "minutes_saved": 0, "hours_saved": 0.0}
    assert this == {"week": this["week"], "start": this["start"], "attempts": 3, "succeeded": 2, "failed": 0,
                    "success_rate": 1.0, "hunks_resolved": 0, "hunks_by_model": 0, "model_share": None,
                    "merged": 1, "not_merged_yet": 1, "closed": 1, "minutes_saved": 15, "hours_saved": 0.25}
    assert stats_json(capsys, "--weeks", "2")["weeks"] == [empty, this]
    assert [w["week"] for w in stats_json(capsys, "--weeks", "4")["weeks"]] == \
        [week_of(now - 3 * 7 * 86400), old["week"], empty["week"], this["week"]]


def test_stats_of_an_empty_record_and_bad_arguments(data_dir, capsys):
    assert main(["stats"]) == 0
    assert capsys.readouterr().out == "No backports yet.\n"
    assert stats_json(capsys)["weeks"] == []
    (row,) = stats_json(capsys, "--weeks", "1")["weeks"]
    assert row["week"] == week_of(time.time()) and row["attempts"] == 0 and row["success_rate"] is None
    assert main(["stats", "--weeks", "2"]) == 2
    assert "--weeks goes with --json" in capsys.readouterr().err
    for bad in ("0", "-1", "two", "99999999"):
        with pytest.raises(SystemExit) as exit_:
            main(["stats", "--json", "--weeks", bad])
        assert exit_.value.code == 2
        assert "a number of weeks, from 1 to 5200" in capsys.readouterr().err
