"""The one-shot CLI on real repositories: each kind of drift, each failure kind, and the record."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from bot.cli import main
from tests import scenarios
from tests.gitrepo import GitRepo


def backport(repo: GitRepo, ref: str, *branches: str, capsys: pytest.CaptureFixture[str],
             extra: tuple[str, ...] = ()) -> tuple[int, list[dict]]:
    code = main([*extra, "backport", ref, "--to", *(branches or ("rel",)), "--repo", str(repo.path), "--json"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def why(repo: GitRepo, ref: str, branch: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["why", ref, branch, "--repo", str(repo.path)]) == 0
    return capsys.readouterr().out


def test_clean_pick_lands_on_a_backport_branch_and_never_moves_the_target(repo, capsys):
    ref = scenarios.clean(repo)
    rel_before = repo.head("rel")
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0
    assert out["status"] == "succeeded" and out["result_branch"] == "backport/12-to-rel"
    assert repo.head("backport/12-to-rel") == out["result_commit"]
    assert repo.head("rel") == rel_before
    assert repo.head("backport/12-to-rel~1") == rel_before
    assert "return 0;" in repo.show("backport/12-to-rel", "src/server.c")
    fix = repo.head("main")
    msg = repo.git("log", "-1", "--format=%B", "backport/12-to-rel")
    assert msg.endswith(f"(cherry picked from commit {fix})")
    assert repo.git("log", "-1", "--format=%an <%ae>", "backport/12-to-rel") == "Ada Author <ada@example.org>"
    assert repo.git("worktree", "list").count("\n") == 0  # no worktree left behind


def test_clean_pick_using_an_api_the_branch_lacks_needs_approval(repo, capsys):
    ref = scenarios.uses_new_api(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0 and out["needs_approval"] is True
    assert "clamp_value" in out["warnings"][0]
    assert "Needs a maintainer's approval" in why(repo, ref, "rel", capsys)
    other = GitRepo.create(repo.path.parent / "other")
    code, (out,) = backport(other, scenarios.clean(other), capsys=capsys)
    assert code == 0 and out["warnings"] == [] and out["needs_approval"] is False


@pytest.mark.parametrize("name,rule", [("whitespace", "whitespace"), ("context_moved", "context-moved"),
                                       ("same_change", "same-change")])
def test_deterministic_rules_resolve_and_record_each_hunk(repo, capsys, name, rule):
    ref = getattr(scenarios, name)(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    assert out["conflicts"] == [{"path": "src/server.c", "kind": "content", "hunks": 1, "resolved_by": [rule]}]
    result = repo.show(out["result_commit"], "src/server.c")
    assert "if (y > 8)" in result
    assert "<<<<<<<" not in result
    rel = repo.show("rel", "src/server.c")
    if name == "whitespace":
        assert "\tint y = x * 2;" in result  # the branch's formatting is kept
    if name == "context_moved":
        assert "x * 3" in result
    if name == "same_change":
        assert result == rel.replace("return a + b;", "return a + b; /* checked */")
    assert rule in why(repo, ref, "rel", capsys)


def test_missing_prerequisite_is_named_with_its_pr(repo, capsys):
    ref = scenarios.prerequisite(repo)
    rel_before = repo.head("rel")
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1
    assert out["status"] == "failed" and out["kind"] == "conflict" and out["stage"] == "resolving"
    assert out["conflicts"][0]["resolved_by"] == ["unresolved"]
    prereq_sha = repo.git("log", "--format=%H", "--grep=(#10)", "main")
    assert [(p["commit"], p["pr"]) for p in out["prerequisites"]] == [(prereq_sha, 10)]
    assert "#10" in out["reason"]
    assert repo.head("rel") == rel_before
    assert repo.git("branch", "--list", "backport/*") == ""
    text = why(repo, ref, "rel", capsys)
    assert "failed at resolving conflicts (conflict)" in text
    assert "Add a limit parameter to handle (#10)" in text
    assert "src/server.c: 1 hunk" in text and "unresolved" in text


def test_renamed_file_follows_the_rename(repo, capsys):
    ref = scenarios.renamed(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    assert "return 0;" in repo.show(out["result_commit"], "src/server.c")
    assert repo.git("ls-tree", "-r", "--name-only", out["result_commit"], "src/") == "src/server.c"


def test_file_missing_on_target_names_the_commit_that_added_it(repo, capsys):
    ref = scenarios.deleted_on_target(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1
    assert out["conflicts"][0]["kind"] == "deleted_on_target"
    assert [p["pr"] for p in out["prerequisites"]] == [19]


def test_merge_commit_is_picked_against_its_first_parent(repo, capsys):
    ref = scenarios.merge_commit(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    result = out["result_commit"]
    assert "return 0;" in repo.show(result, "src/server.c")
    assert "no longer overflows" in repo.show(result, "README")
    assert repo.git("rev-list", "--count", f"rel..{result}") == "1"
    assert repo.git("ls-tree", "--name-only", result, "NEWS") == ""  # main's other work stays out


def test_multi_commit_pr_is_picked_in_order(repo, capsys):
    ref = scenarios.multi_commit(repo)
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 0, out
    subjects = repo.git("log", "--reverse", "--format=%s", f"rel..{out['result_commit']}").splitlines()
    assert subjects == ["Fix overflow in handle (#22)", "Add a test for the overflow (#22)"]


def test_several_branches_are_independent(repo, capsys):
    scenarios.prerequisite(repo)
    repo.branch("rel2", "main~1")  # has #10 already: the fix applies there
    code, outs = backport(repo, "#16", "rel", "rel2", capsys=capsys)
    assert code == 1
    assert {o["branch"]: o["status"] for o in outs} == {"rel": "failed", "rel2": "succeeded"}


def test_unknown_branch_is_bad_input_listing_valid_ones(repo, capsys):
    ref = scenarios.clean(repo)
    repo.branch("8.0", "rel")
    code = main(["backport", ref, "--to", "9.9", "--repo", str(repo.path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown branch '9.9'" in err and "valid branches: 8.0, rel" in err


def test_not_a_repository_is_bad_input(tmp_path, capsys):
    assert main(["backport", "#1", "--to", "rel", "--repo", str(tmp_path)]) == 2
    assert "not a git repository" in capsys.readouterr().err


def test_unknown_pr_is_recorded_as_not_found(repo, capsys):
    scenarios.clean(repo)
    code, (out,) = backport(repo, "#999", capsys=capsys)
    assert code == 1 and out["kind"] == "not_found"
    assert "(#999)" in out["reason"]
    assert "failed at finding the fix (not found)" in why(repo, "#999", "rel", capsys)


def test_unmerged_commit_is_refused(repo, capsys):
    scenarios.clean(repo)
    repo.git("checkout", "-q", "-b", "wip")
    sha = repo.commit("Work in progress", {"README": "wip\n"})
    repo.checkout("main")
    code, (out,) = backport(repo, sha, capsys=capsys)
    assert code == 1 and out["kind"] == "not_merged"


@pytest.mark.parametrize("how", ["trailer", "subject", "patch-id"])
def test_already_present_is_detected(repo, capsys, how):
    ref = scenarios.clean(repo)
    fix = repo.head("main")
    repo.checkout("rel")
    expected = {"trailer": "cherry-picked from the fix", "subject": "same (#12)", "patch-id": "same patch"}[how]
    if how == "trailer":
        repo.git("cherry-pick", "-x", fix)
    elif how == "subject":
        repo.commit("Fix overflow in handle, the 1.x way (#12)", {"src/server.c": scenarios.SERVER + "// 1.x\n"})
    else:
        repo.git("cherry-pick", fix)
        repo.git("commit", "--amend", "-q", "-m", "Backported by hand")
    repo.checkout("main")
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1 and out["kind"] == "already_present", out
    assert out["reason"].startswith(f"already on rel as {repo.head('rel')[:10]}: ")
    assert expected in out["reason"]


def test_a_backport_is_not_backported_again(repo, capsys):
    scenarios.clean(repo)
    sha = repo.commit("Forward-port a fix\n\n(cherry picked from commit 0123456789abcdef0123456789abcdef01234567)",
                      {"README": "forward\n"})
    code, (out,) = backport(repo, sha, capsys=capsys)
    assert code == 1 and out["kind"] == "circular"
    assert "0123456789" in out["reason"]


def _config(tmp_path: Path, repo: GitRepo, commands: str) -> Path:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f"""
[[repos]]
name = "demo"
path = "{repo.path}"
main_branch = "main"
branches = [{{ name = "1.0", ref = "rel", aliases = ["release/1.0"] }}]
{commands}
""")
    return cfg


def test_verification_failure_keeps_the_log_tail(repo, tmp_path, capsys):
    ref = scenarios.clean(repo)
    cfg = _config(tmp_path, repo, """
[[repos.commands]]
name = "build"
run = "grep -q 'return 0;' src/server.c && echo built"
[[repos.commands]]
name = "test"
run = "echo running tests; echo 'FAIL: test_overflow'; exit 3"
timeout = 30
""")
    code = main(["--config", str(cfg), "backport", ref, "--to", "release/1.0", "--repo", "demo", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["kind"] == "verify" and out["branch"] == "1.0"
    assert "`test`" in out["reason"] and "status 3" in out["reason"]
    assert main(["--config", str(cfg), "why", ref, "1.0", "--repo", "demo"]) == 0
    text = capsys.readouterr().out
    assert "FAIL: test_overflow" in text and "failed at building and testing (verify)" in text


def test_verification_timeout(repo, tmp_path, capsys):
    ref = scenarios.clean(repo)
    cfg = _config(tmp_path, repo, '[[repos.commands]]\nname = "slow"\nrun = "sleep 30"\ntimeout = 1\n')
    code = main(["--config", str(cfg), "backport", ref, "--to", "1.0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and "timed out after 1s" in out["reason"]


def test_verification_success_on_a_resolved_conflict(repo, tmp_path, capsys):
    ref = scenarios.context_moved(repo)
    cfg = _config(tmp_path, repo, '[[repos.commands]]\nname = "check"\nrun = "grep -q \'x \\\\* 3\' src/server.c"\n')
    code = main(["--config", str(cfg), "backport", ref, "--to", "1.0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["result_branch"] == "backport/14-to-1.0"


def test_push_failure_when_the_result_branch_cannot_be_written(repo, capsys):
    ref = scenarios.clean(repo)
    lock = repo.path / ".git" / "refs" / "heads" / "backport" / "12-to-rel.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1 and out["kind"] == "push"
    assert "backport/12-to-rel" in out["reason"]


def test_internal_failure_is_recorded_and_cleaned(repo, data_dir, capsys):
    ref = scenarios.context_moved(repo)  # needs a worktree
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "worktrees").write_text("not a directory")
    code, (out,) = backport(repo, ref, capsys=capsys)
    assert code == 1 and out["kind"] == "internal"
    assert "failed at an internal error" in why(repo, ref, "rel", capsys)


def test_status_shows_each_branch(repo, capsys):
    ref = scenarios.prerequisite(repo)
    repo.branch("rel2", "main~1")
    repo.branch("rel3", "main")
    backport(repo, ref, "rel", "rel2", capsys=capsys)
    assert main(["status", ref, "--repo", str(repo.path)]) == 0
    text = capsys.readouterr().out
    assert "rel: failed at resolving" in text
    assert "rel2: picked on the command line: backport/16-to-rel2" in text
    assert "rel3: merged" in text


def test_a_configured_url_is_cloned_and_fetched_before_each_backport(tmp_path, data_dir, capsys):
    upstream = GitRepo.create(tmp_path / "upstream")
    scenarios.clean(upstream)
    remote = tmp_path / "remote.git"
    upstream.git("clone", "-q", "--bare", str(upstream.path), str(remote))
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')
    assert main(["--config", str(cfg), "backport", "#12", "--to", "rel", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result_branch"] == "backport/12-to-rel"
    # A fix merged upstream after the first run is seen by the next one.
    upstream.commit("Add a security note (#30)", {"SECURITY": "report to security@example.org\n"})
    upstream.git("push", "-q", str(remote), "main")
    assert main(["--config", str(cfg), "backport", "#30", "--to", "rel", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cache = GitRepo(data_dir / "repos" / "demo.git")
    assert cache.show(out["result_commit"], "SECURITY") == "report to security@example.org\n"
    assert upstream.head("rel") == cache.head("refs/remotes/origin/rel")  # the remote's branch is untouched


def test_a_ref_that_looks_like_an_option_is_refused_before_git_sees_it(repo, tmp_path, capsys):
    scenarios.clean(repo)
    written = tmp_path / "written.txt"
    for ref in (f"--output={written}..main", f"main..--output={written}", "-h"):
        assert main(["backport", "--to", "rel", "--repo", str(repo.path), "--", ref]) == 2
        assert "never starts with '-'" in capsys.readouterr().err
    assert not written.exists()


def test_a_fresh_clone_offers_its_remote_release_branches(repo, tmp_path, capsys):
    """`git clone` leaves main local and the release branches as origin/...: they are valid targets;
    origin/HEAD, the main branch and backport/... are not; the result is a local branch."""
    scenarios.clean(repo)
    repo.branch("rel2", "main~1")
    repo.branch("backport/9-to-rel", "rel")  # the bot's own branch, pushed by someone: not a target
    clone = GitRepo(tmp_path / "clone")
    repo.git("clone", "-q", str(repo.path), str(clone.path))
    assert clone.git("branch", "--list") == "* main"
    assert "origin/HEAD -> origin/main" in clone.git("branch", "-r")
    assert main(["backport", "#12", "--to", "8.0", "--repo", str(clone.path)]) == 2
    assert "unknown branch '8.0'; valid branches: rel, rel2\n" in capsys.readouterr().err
    code, results = backport(clone, "#12", "all", capsys=capsys)
    assert code == 0 and [r["branch"] for r in results] == ["rel", "rel2"]
    assert all(r["status"] == "succeeded" for r in results)
    assert "return 0;" in clone.show("backport/12-to-rel", "src/server.c")
    assert clone.git("rev-parse", "backport/12-to-rel~1") == clone.head("origin/rel")  # picked onto origin/rel
    assert clone.git("for-each-ref", "--format=%(refname)", "refs/heads/") == (
        "refs/heads/backport/12-to-rel\nrefs/heads/backport/12-to-rel2\nrefs/heads/main")
    assert "rel: picked on the command line: backport/12-to-rel at" in _status(clone, "#12", capsys)
    # A local branch of the same name is one target, not two; it is the one picked onto.
    clone.branch("rel", "origin/rel")
    clone.commit("Local work on rel", {"NOTES": "local\n"}, on="rel")
    clone.checkout("main")
    assert main(["backport", "#12", "--to", "8.0", "--repo", str(clone.path)]) == 2
    assert "valid branches: rel, rel2\n" in capsys.readouterr().err


def _status(repo: GitRepo, ref: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["status", ref, "--repo", str(repo.path)]) == 0
    return capsys.readouterr().out


def test_a_main_branch_with_a_slash_is_guessed_from_origin_head(tmp_path, capsys):
    upstream = GitRepo.create(tmp_path / "upstream", main="dev/main")
    scenarios.clean(upstream)
    clone = GitRepo(tmp_path / "clone")
    upstream.git("clone", "-q", str(upstream.path), str(clone.path))
    code, (result,) = backport(clone, "#12", "rel", capsys=capsys)
    assert code == 0 and result["status"] == "succeeded"


HINT = ("valid branches: (none): this repository has no release branch yet; create one, fetch them "
        "(`git fetch origin`), or name them in a config's [[repos.branches]]")


@pytest.mark.parametrize("command", [["backport", "#5", "--to", "8.0"], ["backport", "#5", "--to", "all"],
                                     ["why", "#5", "8.0"], ["status", "#5"], ["digest"]])
def test_no_release_branch_at_all_says_how_to_get_one(tmp_path, capsys, command):
    lone = GitRepo.create(tmp_path / "lone")
    lone.commit("Fix a crash (#5)\n\nLabels: bug", {"a.c": "int main(void) { return 0; }\n"})
    assert main([*command, "--repo", str(lone.path)]) == 2
    out, err = capsys.readouterr()
    assert HINT in err and out == ""


def test_no_release_branch_in_the_console_says_how_to_get_one(tmp_path, data_dir):
    from bot.app import build_app

    lone = GitRepo.create(tmp_path / "lone")
    lone.commit("Fix a crash (#5)", {"a.c": "int main(void) { return 0; }\n"})

    async def run() -> str:
        out = io.StringIO()
        app = build_app(None, data_dir, out, user="ada", repo_path=str(lone.path))
        await app.start()
        try:
            for line in ("/backport 5 to 8.0", "/backport 5 to all", "/backport why 5 8.0"):
                await app.line(line)
        finally:
            await app.stop()
        return out.getvalue()

    out = asyncio.run(run())
    assert out.count(HINT) == 3, out
    assert "Backport of" not in out


def test_a_configured_name_wins_over_a_folder_of_that_name(repo, tmp_path, capsys, monkeypatch):
    scenarios.clean(repo)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[[repos]]\nname = "server"\npath = "{repo.path}"\nbranches = [{{ name = "rel" }}]\n')
    decoy = GitRepo.create(tmp_path / "server")  # ./server exists, and is another repository
    decoy.commit("Unrelated", {"x": "x\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(cfg), "backport", "#12", "--to", "rel", "--repo", "server", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    # Given as a path, the folder is meant: it has no release branch.
    assert main(["--config", str(cfg), "backport", "#12", "--to", "rel", "--repo", "./server"]) == 2
    assert HINT in capsys.readouterr().err
    # A path that is no configured name is a path, even with a config.
    scenarios.clean(decoy2 := GitRepo.create(tmp_path / "elsewhere"))
    assert main(["--config", str(cfg), "backport", "#12", "--to", "rel", "--repo", "elsewhere", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["result_branch"] == "backport/12-to-rel"
    assert decoy2.head("backport/12-to-rel")
    # Neither a name nor a folder.
    assert main(["--config", str(cfg), "status", "#12", "--repo", "nowhere"]) == 2
    assert "unknown repository 'nowhere'; configured: server (and no folder 'nowhere' is here)" in \
        capsys.readouterr().err


def test_with_several_configured_repositories_the_command_asks_which(repo, tmp_path, capsys):
    scenarios.clean(repo)
    cfg = tmp_path / "bot.toml"
    cfg.write_text("".join(f'[[repos]]\nname = "{n}"\npath = "{repo.path}"\nbranches = [{{ name = "rel" }}]\n\n'
                           for n in ("a", "b")))
    assert main(["--config", str(cfg), "status", "#12"]) == 2
    assert "name a repository with --repo: configured: a, b" in capsys.readouterr().err
    assert main(["--config", str(cfg), "status", "#12", "--repo", "b"]) == 0
