"""What the model is shown (issue 17): the code around the hunk, the names the fix uses, the
prerequisites, within a token budget that says what it cut; one repair after a failed build,
checked like a hunk answer and verified again; answers bounded and time-outs said as such.
Through the real `openai` client and the local stand-in server (tests/fake_openai.py)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from adapters.store.sqlite import SQLiteStore
from bot.core.ports import PullRequestClosed
from bot.core.workflow import Op
from bot.engine import conflicts
from bot.engine.context import Gatherer, fit
from tests import scenarios
from tests.fake_openai import FakeOpenAI
from tests.gitrepo import GitRepo
from tests.test_console import converse, prs
from tests.test_llm import correct, setup
from tests.test_stats_cli import talk


def test_the_model_sees_the_function_the_fix_and_the_missing_prerequisite(tmp_path, data_dir, model):
    _, cfg = setup(tmp_path)
    model.script = [correct]
    converse(cfg, data_dir, ["/backport 16 to rel"])
    data = json.loads(model.requests[0]["messages"][1]["content"])
    context = data["context"]
    # the branch's whole function around the region, numbered as in the file
    assert "7: int handle(int x) {" in context["branch_function"] and "return y;" in context["branch_function"]
    assert "int main" not in context["branch_function"]
    # the same function on main, with the fix
    assert "int handle(int x, int limit) {" in context["fix_function"] and "y >= limit" in context["fix_function"]
    # the fix uses a name the branch's function does not have, and the commit that brought it is named
    assert context["missing"] == "limit: in the fix's function on the main branch, not in the branch's\n"
    assert "Add a limit parameter to handle (#10)" in context["prerequisites"]
    assert data["cut"] == []
    # the answer is bounded, sized to the window asked for (a few lines here), not the model's default
    assert model.requests[0]["max_tokens"] < 400


def test_definitions_of_the_names_the_fix_calls_come_from_the_branch(tmp_path, data_dir, model):
    def calls_a_helper(repo: GitRepo) -> str:
        scenarios.base(repo)
        helper = "static int clamp(int v) {\n    return v > 100 ? 100 : v;\n}\n\n"
        on_rel = scenarios.SERVER.replace("int handle", helper + "int handle").replace("x * 2", "x * 3")
        repo.commit("Scale by three, with a clamp helper", {"src/server.c": on_rel}, on="rel")
        repo.checkout("main")
        on_main = scenarios.SERVER.replace("int handle", helper + "int handle")
        repo.commit("Add clamp", {"src/server.c": on_main})
        repo.commit("Clamp the doubled value (#21)",
                    {"src/server.c": on_main.replace("x * 2", "clamp(x * 2) + MAX_BIAS")})
        return "#21"

    _, cfg = setup(tmp_path, calls_a_helper)
    model.script = [lambda d: json.dumps({"window": None, "explanation": "no", "confidence": 0})]
    converse(cfg, data_dir, ["/backport 21 to rel"])
    context = json.loads(model.requests[0]["messages"][1]["content"])["context"]
    assert context["definitions"].startswith("src/server.c:\n7: static int clamp(int v) {")
    assert "MAX_BIAS" not in context.get("missing", "")  # defined nowhere, on main either: not "missing"


def conflicted(tmp_path: Path) -> tuple[GitRepo, Path, str]:
    """The prerequisite scenario mid-pick in a work tree: (repo, work tree, the fix)."""
    repo = GitRepo.create(tmp_path / "repo")
    scenarios.prerequisite(repo)
    fix = repo.head("main")
    wt = tmp_path / "wt"
    repo.git("worktree", "add", "-q", "--detach", str(wt), "rel")
    subprocess.run(["git", "-c", "merge.conflictStyle=zdiff3", "cherry-pick", fix], cwd=wt, capture_output=True)
    return repo, wt, fix


def test_the_budget_cuts_the_least_needed_first_and_says_so(tmp_path):
    from bot.engine.git import Git

    _, wt, fix = conflicted(tmp_path)
    parsed = conflicts.parse((wt / "src/server.c").read_text())
    (h,) = parsed.hunks
    whole = Gatherer(Git(wt), fix, f"{fix}^", "refs/heads/rel", "refs/heads/main", tokens=3000).for_hunk(
        "src/server.c", parsed, h, 200)
    assert list(whole.sections) == ["branch_function", "missing", "fix_function", "prerequisites"] and not whole.cut
    small = Gatherer(Git(wt), fix, f"{fix}^", "refs/heads/rel", "refs/heads/main", tokens=134).for_hunk(
        "src/server.c", parsed, h, 200)
    assert list(small.sections) == ["branch_function", "missing"]
    assert [c.split(":")[0] for c in small.cut] == ["fix_function", "prerequisites"], small.cut
    assert small.cut[0].startswith("fix_function: left out (46 tokens; token budget)")
    long_diff = "".join(f"+line {n}\n" for n in range(2000))  # a sweeping fix: half the room at most
    cut = Gatherer(Git(wt), fix, f"{fix}^", "refs/heads/rel", "refs/heads/main", tokens=600).for_hunk(
        "src/server.c", parsed, h, 400, long_diff)
    assert cut.cut[0].startswith("fix_diff: ") and cut.cut[0].endswith(" of 2000 lines kept (token budget)")
    assert len(cut.sections["fix_diff"]) <= (600 * 3 - 400) // 2 and "branch_function" in cut.sections
    trimmed = fit(0, [("a", "x\n" * 300)], 160)
    assert trimmed.cut == ["a: 220 of 300 lines kept (token budget)"] and len(trimmed.sections["a"]) <= 480


COMPILE = '\n[[repos.commands]]\nname = "build"\nrun = "cc -fsyntax-only src/server.c"\n'


def keeps_the_fix_line(data: dict) -> str:
    """An answer that passes every check but cannot build: it keeps the fix's `limit`."""
    region = data["branch_version"].replace("y > 10", "y >= limit")
    return json.dumps({"window": data["before"] + region + data["after"], "confidence": 0.6,
                       "explanation": "applied the fix's line"})


def with_build(tmp_path: Path) -> Path:
    _, cfg = setup(tmp_path)
    text = cfg.read_text()
    cfg.write_text(text.replace("timeout = 1\n", "timeout = 5\n") + COMPILE)
    return cfg


def test_a_failed_build_gets_one_repair_which_waits_for_approval(tmp_path, data_dir, model):
    cfg = with_build(tmp_path)

    def repair(data: dict) -> str:
        (region,) = data["regions"]
        text = region["text"].replace("y >= limit", "y >= 10")
        return json.dumps({"windows": [{"region": 0, "window": region["before"] + text + region["after"]}],
                           "omitted": ["    if (y >= limit) {"], "confidence": 0.7,
                           "explanation": "the branch's handle has no limit parameter: its constant 10"})

    model.script = [keeps_the_fix_line, repair]
    out = converse(cfg, data_dir, ["/backport 16 to rel", "/backport why 16 rel"])
    request = json.loads(model.requests[1]["messages"][1]["content"])
    assert "limit" in request["failure"] and "undeclared" in request["failure"]  # the compiler's words
    assert "y >= limit" in request["diff"] and "region_0_function" in request["context"]
    assert "the LLM repaired 1 resolved region (llm-repair): a maintainer must review the result" in out, out
    assert "llm-repair (after `build` failed, the LLM changed this llm resolution: the branch's handle" in out
    assert prs(data_dir) == []
    number = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
    assert number, out
    out = converse(cfg, data_dir, [f"react {number.group(1)} ✅", "/backport stats"])
    assert ("Model resolutions reviewed: 1 approved, 0 changed, 0 rejected by maintainers, 0 not reviewed yet; "
            "1 hunks repaired after a failed build (llm-repair).") in out, out
    assert "LLM use: 2 calls, 240 tokens" in out
    (pr,) = prs(data_dir)
    assert "ai-resolved" in json.loads(pr["labels"]) and ": llm-repair (after `build` failed" in pr["body"]
    assert "if (y >= 10) {" in pr["body"] and "`build` passed" in pr["body"]


def test_a_repair_that_reaches_outside_its_region_is_not_used(tmp_path, data_dir, model):
    cfg = with_build(tmp_path)

    def overreach(data: dict) -> str:  # fixes it by giving handle the parameter: outside the region
        (region,) = data["regions"]
        return json.dumps({"windows": [{"region": 0, "window": region["before"].replace("int x", "int x, int limit")
                                        + region["text"] + region["after"]}],
                           "explanation": "added the parameter", "confidence": 0.9})

    model.script = [keeps_the_fix_line, overreach]
    out = converse(cfg, data_dir, ["/backport 16 to rel", "/backport why 16 rel"])
    assert "failed at building and testing (verify)" in out, out
    assert ("The LLM's repair was not used: region 0: it changes lines outside the conflicted region" in out)
    assert len(model.requests) == 2 and prs(data_dir) == []  # one repair, never a second


def test_a_time_out_is_said_to_be_one(tmp_path, data_dir, model):
    _, cfg = setup(tmp_path)
    model.script = [lambda d: {"sleep": 3}]
    out = converse(cfg, data_dir, ["/backport 16 to rel", "/backport why 16 rel"])
    assert "LLM timed out: the model did not answer within 1s" in out, out


def test_a_repository_has_a_day_budget_of_model_tokens(tmp_path, data_dir, model):
    _, cfg = setup(tmp_path)
    cfg.write_text(cfg.read_text().replace("timeout = 1\n", "timeout = 1\nmax_tokens_per_day = 200\n"))
    declined = lambda d: json.dumps({"window": None, "explanation": "cannot", "confidence": 0})  # noqa: E731
    model.script = [declined, declined]
    out = converse(cfg, data_dir, ["/backport 16 to rel", "/backport retry 16 rel", "/backport retry 16 rel",
                                   "/backport why 16 rel"])
    # 120 tokens each (the stand-in's usage): the second attempt may still ask, the third may not
    assert len(model.requests) == 2, out
    assert "today's LLM budget for this repository is spent (240 of 200 tokens, UTC day)" in out, out


def test_a_rambling_model_is_cut_at_the_bound_and_said_so(tmp_path, data_dir, model):
    _, cfg = setup(tmp_path)
    model.script = [lambda d: json.dumps({"window": d["before"] + "x();\n" * 3000, "explanation": "",
                                          "confidence": 1})]
    out = converse(cfg, data_dir, ["/backport 16 to rel", "/backport why 16 rel"])
    bound = model.requests[0]["max_tokens"]
    assert f"the model's answer was cut off at its limit of {bound} tokens" in out, out


def test_stats_count_model_resolutions_maintainers_rejected(tmp_path, data_dir, model):
    _, cfg = setup(tmp_path)
    model.script = [correct]
    out = converse(cfg, data_dir, ["/backport 16 to rel"])
    number = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
    assert number, out
    out = converse(cfg, data_dir, ["/backport stats", f"react {number.group(1)} ❌", "/backport stats"])
    assert "Model resolutions reviewed: 0 approved, 0 changed, 0 rejected by maintainers, 1 not reviewed yet" in out
    assert "Model resolutions reviewed: 0 approved, 0 changed, 1 rejected by maintainers, 0 not reviewed yet" in out


def test_llama_cpp_pythons_server_is_asked_for_json_mode_after_its_refusal(tmp_path, data_dir, monkeypatch):
    """The server bench/llm_real.sh runs refuses json_schema (as it did on the real run): one refusal,
    then JSON mode, and the hunk is resolved."""
    fake = FakeOpenAI(python_llamacpp=True)
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    monkeypatch.setenv("OPENAI_API_KEY", "none")
    try:
        _, cfg = setup(tmp_path)
        fake.script = [correct]
        out = converse(cfg, data_dir, ["/backport 16 to rel"])
        assert [(r.get("response_format") or {}).get("type") for r in fake.requests] == ["json_schema", "json_object"]
        assert "1 conflict hunk was resolved by the LLM" in out, out
    finally:
        fake.close()


def test_stats_count_a_model_resolution_a_maintainer_changed(repo, tmp_path, data_dir, model):
    """Rejected, then resolved by hand (git records it: rerere) and retried: the model's resolution
    counts as changed by a maintainer, not as rejected."""
    scenarios.prerequisite(repo)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n'
                   f'[llm]\nenabled = true\nmodel = "local-model"\ntimeout = 5\n\n'
                   f'[[repos]]\nname = "demo"\npath = "{repo.path}"\nbranches = [{{ name = "rel" }}]\n')
    model.script = [correct]
    out = converse(cfg, data_dir, ["/backport 16 to rel"])
    number = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
    assert number, out
    converse(cfg, data_dir, [f"react {number.group(1)} ❌"])
    wt = tmp_path / "by-hand"
    repo.git("worktree", "add", "-q", "--detach", str(wt), "rel")
    subprocess.run(["git", "-c", "rerere.enabled=true", "cherry-pick", "-x", repo.head("main")], cwd=wt,
                   capture_output=True)
    (wt / "src/server.c").write_text(scenarios.SERVER.replace("if (y > 10)", "if (y >= 11)"))
    subprocess.run(["git", "add", "src/server.c"], cwd=wt, check=True)
    subprocess.run(["git", "-c", "rerere.enabled=true", "-c", "core.editor=true", "cherry-pick", "--continue"],
                   cwd=wt, check=True, capture_output=True)
    repo.git("worktree", "remove", "--force", str(wt))
    out = converse(cfg, data_dir, ["/backport retry 16 rel", "/backport stats"])
    assert "rerere" in out and len(model.requests) == 1, out
    assert "Model resolutions reviewed: 0 approved, 1 changed, 0 rejected by maintainers" in out, out


def test_stats_count_a_model_resolution_merged_with_a_maintainers_commits_as_changed(tmp_path, data_dir, model):
    """Approved, then a maintainer pushed a commit to the PR before merging it: the forge merged
    something other than the bot's result, so the model's resolution counts as changed."""
    work, cfg = setup(tmp_path)
    model.script = [correct]
    out = talk(cfg, data_dir, ["/backport 16 to rel"])
    number = re.search(r"\[(\d+)\] bot: ✋ rel: waiting for a maintainer's approval", out)
    assert number, out
    talk(cfg, data_dir, [f"react {number.group(1)} ✅"])
    store = SQLiteStore(data_dir / "backportbot.db")
    (attempt,) = store.all_attempts()
    assert attempt.state == "pr_open" and attempt.result_branch and attempt.result_commit, attempt
    remote = tmp_path / "remote.git"
    work.git("fetch", "-q", str(remote), attempt.result_branch)
    work.git("checkout", "-q", "FETCH_HEAD")
    pushed = work.commit("Review: the limit is 11 on this branch",
                         {"src/server.c": work.show("HEAD", "src/server.c").replace("y >= 10", "y >= 11")})
    work.git("push", "-q", str(remote), f"HEAD:refs/heads/{attempt.result_branch}")

    out = talk(cfg, data_dir, ["/backport stats"], (PullRequestClosed("demo", attempt.result_branch, True, pushed),))
    assert [e.detail.get("head") for e in store.events(attempt.id) if e.op == Op.MERGED] == [pushed]
    out = talk(cfg, data_dir, ["/backport stats"])
    assert "Model resolutions reviewed: 0 approved, 1 changed, 0 rejected by maintainers, 0 not reviewed yet" \
        in out, out


def wide_conflict(repo: GitRepo) -> str:
    """The branch and the fix both rewrote every line of a 60-line table: one conflict hunk of
    thousands of characters, which no budget can cut (numpy's generated tables look like this)."""
    table = "".join(f"    {{\"entry_{i}\", {i}, {i * 3}}},\n" for i in range(60))
    repo.commit("Initial import", {"src/table.c": "static const struct row rows[] = {\n" + table + "};\n"})
    repo.branch("rel")
    repo.commit("Renumber rel's table", {"src/table.c": "static const struct row rows[] = {\n"
                                         + table.replace("},", ", 0},") + "};\n"}, on="rel")
    repo.checkout("main")
    repo.commit("Fix every row's width (#70)", {"src/table.c": "static const struct row rows[] = {\n"
                                                + table.replace("},", ", 1},") + "};\n"})
    return "#70"


def test_a_conflict_over_the_request_budget_is_not_sent(tmp_path, data_dir, model):
    _, cfg = setup(tmp_path, scenario=wide_conflict)
    cfg.write_text(cfg.read_text().replace("timeout = 1\n", "timeout = 1\ncontext_tokens = 500\n"))
    out = converse(cfg, data_dir, ["/backport 70 to rel", "/backport why 70 rel"])
    assert model.requests == [], out
    assert re.search(r"LLM not asked: the conflict alone is about \d+ tokens, over the budget of 500 per request "
                     r"\(\[llm\] context_tokens\)", out), out


def test_eval_counts_conflicts_over_the_request_budget_apart(repo, model, capsys):
    from bot.cli import main
    wide_conflict(repo)
    fix = repo.git("log", "-1", "--format=%H", "main")
    rows = repo.show("rel", "src/table.c").replace(", 0},", ", 0, 1},")
    repo.commit(f"Fix every row's width\n\n(cherry picked from commit {fix})", {"src/table.c": rows}, on="rel")
    repo.checkout("main")
    assert main(["eval", "--repo", str(repo.path), "--branches", "rel", "--llm", "--model", "local-model",
                 "--jobs", "1", "--context-tokens", "200"]) == 0
    out = capsys.readouterr().out
    assert model.requests == []
    assert "LLM rung: no conflict reached the model. 1 hunks were not sent: each conflict alone was over the " \
           "per-request budget." in out, out
