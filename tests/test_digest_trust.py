"""A digest maintainers trust (issue 18): candidates classified from all the evidence, already
there by effect, ordered by severity then ease with the evidence on each line, a fix to code the
branch never got said not to apply, exact windows, and `eval digest` scoring past weeks against
what people backported later. Each case is a small real repository shaped like the public
situation that motivated it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from adapters.forge.github import Credentials, GitHubForge
from bot import config
from bot.app import repo_from_spec
from bot.cli import main
from bot.core.repos import from_path
from bot.engine.candidates import categorize
from tests.fake_github import FakeGitHub
from tests.gitrepo import GitRepo, published
from tests.scenarios import SERVER, fixed

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def at(when: str) -> Iterator[None]:
    """Commits made inside are dated `when` (author and committer)."""
    saved = {k: os.environ.get(k) for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    os.environ.update(GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def mixed(repo: GitRepo) -> dict[str, str]:
    """A week of merges like the replayed C project's: a docs typo with a fix prefix, test tooling
    whose subject says "crash", a fix known only by its body, a crash fix, a build fix, a feature."""
    repo.commit("Initial", {"src/server.c": SERVER, "README.md": "server\nrecieve\n",
                            "tests/harness.py": "def run():\n    return 1\n", "Makefile": "all:\n\tcc -c x.c\n"})
    repo.branch("1.0")
    return {
        "typo": repo.commit("fix: typo in README (#1)", {"README.md": "server\nreceive\n"}),
        "tooling": repo.commit("tests: fix crash in the harness (#2)",
                               {"tests/harness.py": "def run():\n    return 0\n"}),
        "body": repo.commit("Handle a zero limit (#3)\n\nhandle() returned -1 instead of 0 for a zero limit.\n\n"
                            "Fixes #1051", {"src/server.c": fixed(SERVER, "return -1;", "return 0;")}),
        "crash": repo.commit("server: avoid a NULL dereference on start (#4)",
                             {"src/server.c": fixed(fixed(SERVER, "return -1;", "return 0;"), "return a + b;",
                                                    "return a + b + 0;")}),
        "build": repo.commit("build: fix the link, it needs -lm (#5)", {"Makefile": "all:\n\tcc -c x.c -lm\n"}),
        "feature": repo.commit("Add a shiny option (#6)", {"src/opt.c": "int opt;\n"}),
    }


def test_categories_come_from_subject_body_and_paths_and_docs_and_tests_are_not_proposed(repo, data_dir):
    mixed(repo)
    found = from_path(repo.path, data_dir).candidates("2000-01-01")
    assert [(c.key, c.category) for c in found] == [("#4", "crash"), ("#3", "bug"), ("#5", "build")]
    line = next(c for c in found if c.key == "#3").line()
    assert line.endswith("— 1.0: clean — bug: commit body: Fixes #1051")
    crash = found[0].line()
    assert crash.startswith("#4 server: avoid a NULL dereference on start — 1.0: ")
    assert "crash or data loss: subject says 'null dereference'" in crash


def test_a_repository_can_ask_for_docs_and_test_only_fixes(tmp_path, data_dir):
    work, remote, _ = published(tmp_path, lambda r: mixed(r)["feature"])
    cfg = tmp_path / "bot.toml"
    repo_toml = (f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "1.0" }}]\n')
    cfg.write_text(repo_toml + 'digest_include = ["docs", "test-only"]\n')
    repo = repo_from_spec(config.load(cfg).repos[0], data_dir)
    repo.workspace.fetch()
    found = {c.key: c.category for c in repo.candidates("2000-01-01")}
    assert found == {"#4": "crash", "#3": "bug", "#5": "build", "#2": "test-only", "#1": "docs"}
    cfg.write_text(repo_toml + 'digest_include = ["other"]\n')
    with pytest.raises(config.ConfigError, match="unknown digest category 'other'"):
        config.load(cfg)


def test_labels_and_linked_issues_from_github_decide_the_category(repo, data_dir, tmp_path):
    repo.commit("Initial", {"src/server.c": SERVER})
    repo.branch("1.0")
    plain = repo.commit("Rework the limit check (#7)", {"src/server.c": fixed(SERVER, "if (y > 10)", "if (y > 9)")})
    quiet = repo.commit("Tidy handle (#8)", {"src/server.c": fixed(fixed(SERVER, "if (y > 10)", "if (y > 9)"),
                                                                     "x * 2", "x * 3")})
    github = FakeGitHub()
    try:
        github.add_merged_pull(7, "Rework the limit check", plain, ["security"])
        github.add_merged_pull(8, "Tidy handle", quiet, [], body="Closes #77")
        github.issues[77] = ["crash"]
        local = from_path(repo.path, data_dir)
        assert local.candidates("2000-01-01") == []  # nothing in git says fix
        forge = GitHubForge(Credentials(github.url, "ghs_testtoken123"))
        spec = type(local)(local.key, local.workspace, local.main_branch, local.branches, local.display,
                           github="acme/server")
        found = spec.candidates("2000-01-01", evidence=lambda numbers: forge.pull_info(spec, numbers))
        assert [(c.key, c.category) for c in found] == [("#7", "security"), ("#8", "crash")]
        assert found[0].security and "label security" in found[0].reasons
        assert "issue #77 labelled crash" in found[1].reasons and "PR body: Closes #77" in found[1].reasons
    finally:
        github.close()


def test_the_llm_never_adds_a_category_the_rules_did_not_see():
    typo = categorize("fix: typo in a comment", "", ["src/server.c"], ["bug"])
    assert typo.category == "docs"
    tooling = categorize("tests: fix crash in the topotest helper", "", ["tests/topotests/lib/x.py"], ["bug"])
    assert tooling.category == "test-only"
    cve = categorize("lib: bound the buffer", "CVE-2024-1234: a crafted packet overflowed", ["lib/a.c"], ["bug"])
    assert cve.category == "security"


def test_a_fix_shipped_on_the_branch_under_another_number_with_release_notes_is_present(repo, data_dir):
    """The CVE fix already on the branch under another PR, its release notes bundled in: neither
    (#N) nor patch-id matches; a real pick changes nothing."""
    repo.commit("Initial", {"src/server.c": SERVER, "NEWS": "1.0\n"})
    repo.branch("1.0")
    fix = fixed(SERVER, "if (y > 10)", "if (y > 10 || y < 0)")
    release = fixed(fix, "return a + b;", "return a + b; /* 1.0.1 */")
    shipped = repo.commit("Security release 1.0.1 (#90)", {"src/server.c": release,
                                                           "NEWS": "1.0\n1.0.1: CVE-2026-7\n"}, on="1.0")
    repo.checkout("main")
    repo.commit("Fix the bound check, CVE-2026-7 (#91)", {"src/server.c": fix})
    assert from_path(repo.path, data_dir).candidates("2000-01-01") == []  # present everywhere: not proposed
    repo.commit("Add docs (#92)", {"README": "x\n"})
    repo.branch("1.1", "HEAD~2")
    found = from_path(repo.path, data_dir).candidates("2000-01-01")
    (cand,) = [c for c in found if c.key == "#91"]
    assert cand.outlook == {"1.0": f"present: a pick changes nothing (came with {shipped[:7]} "
                                   "Security release 1.0.1 (#90))", "1.1": "clean"}
    assert cand.suggested == ["1.1"]


def test_a_fix_whose_added_lines_are_there_in_a_reworked_file_is_present(repo, data_dir):
    """Adapted by hand on 1.0 (other context, no trailer, another patch-id): the pick conflicts,
    yet every line the fix adds is there, at one place."""
    repo.commit("Initial", {"src/server.c": SERVER})
    repo.branch("1.0")
    repo.branch("1.1")
    guard = "    if (y > 10) {"
    checked = "    if (y < 0)\n        return 0;\n    if (y > 10) {"
    adapted = repo.commit("Rework handle, bound checked",
                          {"src/server.c": fixed(fixed(SERVER, "x * 2", "x * 4"), guard, checked)}, on="1.0")
    repo.checkout("main")
    repo.commit("Fix negative values in handle (#81)", {"src/server.c": fixed(SERVER, guard, checked)})
    (cand,) = from_path(repo.path, data_dir).candidates("2000-01-01")
    assert cand.outlook == {"1.0": f"present: its added lines are there (came with {adapted[:7]} "
                                   "Rework handle, bound checked)", "1.1": "clean"}
    assert cand.suggested == ["1.1"]


def test_a_fix_naming_the_commit_that_brought_the_bug_does_not_apply_where_that_commit_never_went(repo, data_dir):
    """systemd's case: "udev: permanent symlinks with USB revision ... Fixes: 04f19d6735" fixes what
    that commit added; a branch that never got it has no bug to fix, one that got it backported does."""
    rules = 'SUBSYSTEM=="media", SYMLINK+="media/by-path/$env{ID_PATH}"\n'
    repo.commit("Initial", {"src/server.c": SERVER})
    repo.branch("1.0")
    repo.branch("1.1")
    culprit = repo.commit("udev: add /dev/media/by-path symlinks (#40)", {"rules.d/60-media.rules": rules})
    repo.commit(f"udev: add /dev/media/by-path symlinks\n\n(cherry picked from commit {culprit})",
                {"rules.d/60-media.rules": rules}, on="1.1")
    repo.checkout("main")
    repo.commit(f"udev: permanent media symlinks with the USB revision (#41)\n\nFixes: {culprit[:10]}",
                {"rules.d/60-media.rules": rules.replace("ID_PATH", "ID_PATH_WITH_USB_REVISION")})
    (cand,) = from_path(repo.path, data_dir).candidates("2000-01-01")
    assert cand.category == "bug" and f"commit body: Fixes: {culprit[:10]}" in cand.reasons
    assert cand.outlook == {"1.0": "does not apply: what it fixes came with #40, which 1.0 never got", "1.1": "clean"}
    assert cand.suggested == ["1.1"]


def test_a_follow_up_is_not_evidence_of_a_fix_but_a_named_culprit_is():
    follow = categorize("systemctl: add missing --help entries", "Follow-up for afba41995d", ["src/a.c"], ["bug"])
    assert follow.category == "other"
    regression = categorize("stub: get uname from image before loading addons", "Fixes 68f85761e2eb", ["src/a.c"],
                            ["bug"])
    assert regression.category == "bug" and regression.evidence == ("commit body: Fixes 68f85761e2eb",)


CACHE = "int cache_get(int key) {\n    int slot = key % 8;\n    int value = table[slot];\n    return value;\n}\n"


def test_a_fix_to_code_a_feature_brought_does_not_apply_and_a_reformat_is_never_a_prerequisite(repo, data_dir):
    """FRR's case: the outlook named a clang-format run as "backport first", and a test file the
    branch never had; a fix to code that came with a feature the branch lacks is no backport."""
    repo.commit("Initial", {"src/server.c": SERVER})
    repo.branch("1.0")
    repo.commit("Add limit tests (#29)", {"tests/test_limit.c": "check(handle(5));\ncheck(handle(6));\n"})
    repo.commit("Add a cache (#30)", {"src/server.c": SERVER + "\nint table[8];\n" + CACHE})
    repo.branch("1.1")
    tabbed = SERVER.replace("    int y = x * 2;\n    if (y > 10) {", "\tint y = x * 2;\n\tif (y > 10) {")
    repo.commit("Reformat with clang-format (#31)", {"src/server.c": tabbed + "\nint table[8];\n" + CACHE})
    fixed_cache = CACHE.replace("key % 8;\n    int value = table[slot];", "key & 7;\n    int value = table[slot & 7];")
    repo.commit("Fix an out-of-range slot in cache_get (#32)",
                {"src/server.c": tabbed + "\nint table[8];\n" + fixed_cache})
    repo.commit("Fix the limit in handle (#33)",
                {"src/server.c": fixed(tabbed, "if (y > 10)", "if (y > 9)") + "\nint table[8];\n" + fixed_cache,
                 "tests/test_limit.c": "check(handle(5));\ncheck(handle(9));\n"})
    found = {c.key: c for c in from_path(repo.path, data_dir).candidates("2000-01-01")}
    assert found["#32"].outlook == {"1.0": "does not apply: the code it changes came with #30", "1.1": "clean"}
    assert "does not apply to 1.0: the code it changes came with #30; 1.1: clean" in found["#32"].line()
    assert found["#32"].suggested == ["1.1"]
    limit = found["#33"].outlook["1.0"]
    assert limit.startswith("conflicts in 2 files (")
    assert "tests/test_limit.c not on 1.0 (left out)" in limit
    assert "#31" not in limit and "#29" not in limit and "needs" not in limit
    assert found["#33"].outlook["1.1"] == "conflicts in 1 file (src/server.c)"  # the reformat is not named


def dated_history(repo: GitRepo) -> None:
    with at("2026-11-09T10:00:00+00:00"):
        repo.commit("Initial", {"src/server.c": SERVER, "README": "x\n"})
        repo.branch("1.0")
    with at("2026-11-15T22:00:00+00:00"):  # Sunday 23:00 in Paris
        repo.commit("Fix a crash on Sunday night (#39)", {"README": "y\n", "src/server.c": fixed(SERVER, "x * 2",
                                                                                                 "x * 3")})
    with at("2026-11-16T00:30:00+01:00"):  # Monday 00:30 in Paris, still Sunday in UTC
        repo.commit("Fix a crash early on Monday (#40)",
                    {"src/server.c": fixed(fixed(SERVER, "x * 2", "x * 3"), "return -1;", "return 0;")})


def digest_config(tmp_path: Path, repo: GitRepo, timezone: str) -> Path:
    cfg = tmp_path / f"bot-{timezone.replace('/', '-')}.toml"
    cfg.write_text(f'[digest]\ntimezone = "{timezone}"\n\n[[repos]]\nname = "demo"\npath = "{repo.path}"\n'
                   f'branches = [{{ name = "1.0" }}]\n')
    return cfg


def test_since_a_date_means_its_midnight_in_the_configured_time_zone_and_the_header_says_the_window(
        repo, tmp_path, capsys):
    dated_history(repo)
    paris = digest_config(tmp_path, repo, "Europe/Paris")
    assert main(["--config", str(paris), "digest", "--since", "2026-11-16"]) == 0
    out = capsys.readouterr().out
    head = repo.git("rev-parse", "--short=7", "HEAD")
    assert out.startswith(f"Backport digest for demo: 1 candidate, merged on main from 2026-11-16 00:00 "
                          f"Europe/Paris up to {head}")
    assert "#40 Fix a crash early on Monday" in out and "#39" not in out
    assert main(["--config", str(digest_config(tmp_path, repo, "UTC")), "digest", "--since", "2026-11-16"]) == 0
    assert "0 candidates, merged on main from 2026-11-16 00:00 UTC" in capsys.readouterr().out


def test_json_says_an_empty_list_and_the_next_digest_starts_at_the_recorded_head(repo, tmp_path, capsys):
    dated_history(repo)
    cfg = digest_config(tmp_path, repo, "UTC")
    assert main(["--config", str(cfg), "digest", "--since", "2030-01-01", "--json"]) == 0
    assert capsys.readouterr().out == "[]\n"
    assert main(["--config", str(cfg), "digest", "--since", "2000-01-01", "--json", "--record"]) == 0
    assert [json.loads(line)["key"] for line in capsys.readouterr().out.splitlines()] == ["#39", "#40"]
    with at("2026-11-17T09:00:00+00:00"):
        repo.commit("Fix a leak (#41)", {"src/server.c": fixed(SERVER, "return y;", "return y + 0;")})
    assert main(["--config", str(cfg), "digest", "--json"]) == 0  # since the recorded head
    (only,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert only["key"] == "#41" and only["category"] == "bug" and only["reasons"] == ["subject says 'fix'"]


def test_a_reader_that_goes_away_gets_no_traceback(repo, tmp_path):
    dated_history(repo)
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "digest", "--repo", str(repo.path), "--since",
                             "2000-01-01"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # `| head -0`: the reader is gone before the digest is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_eval_digest_replays_a_week_and_scores_it_against_later_backports(repo, capsys):
    with at("2026-10-20T10:00:00+00:00"):
        repo.commit("Initial", {"src/server.c": SERVER, "README": "server\nrecieve\n"})
        repo.branch("1.0")
        repo.commit("Release 1.0", {"NEWS": "1.0\n"}, on="1.0")
        repo.checkout("main")
    shas = {}
    with at("2026-11-03T10:00:00+00:00"):
        shas[1] = repo.commit("Fix a crash in handle (#1)", {"src/server.c": fixed(SERVER, "return -1;", "return 0;")})
        shas[2] = repo.commit("Fix a leak in add (#2)",
                              {"src/server.c": fixed(fixed(SERVER, "return -1;", "return 0;"), "a + b", "b + a")})
        repo.commit("Add an option (#3)", {"src/opt.c": "int opt;\n"})
        shas[4] = repo.commit("Handle zero in main (#4)\n\nFixes #99",
                              {"src/server.c": fixed(fixed(fixed(SERVER, "return -1;", "return 0;"), "a + b",
                                                           "b + a"), "add(1, 2)", "add(1, 0)")})
        shas[5] = repo.commit("docs: fix a typo (#5)", {"README": "server\nreceive\n"})
    with at("2026-11-12T10:00:00+00:00"):
        repo.checkout("1.0")
        repo.git("cherry-pick", "-x", shas[1])
        repo.git("cherry-pick", shas[5])  # no trailer: found by patch-id
        repo.commit("Handle zero in main (#4)", {"src/server.c": fixed(fixed(SERVER, "return -1;", "return 0;"),
                                                                      "add(1, 2)", "add(1, 0)")})
        repo.checkout("main")
    with at("2026-11-10T10:00:00+00:00"):
        repo.commit("Later work", {"NEWS": "next\n"})
    assert main(["eval", "digest", "--repo", str(repo.path), "--weeks", "1", "--until", "2026-11-09"]) == 0
    out = capsys.readouterr().out
    assert "precision: 0.67 (2/3)" in out  # #1 and #4 yes, #2 never
    assert "recall: 0.67 (2/3)" in out  # #5, a docs fix, is not proposed by default
    assert "recall on true fixes (backported, changing code): 1.00 (2/2)" in out
    assert "outlook right against a real cherry-pick: 1.00 (3/3)" in out
    assert "2026-11-09 #5 [docs] docs: fix a typo" in out
    assert "2026-11-09 #2 [bug] Fix a leak in add (subject says 'fix')" in out
    assert f"{'docs/typo':<20}{1:>8}{1:>11}{0:>9}" in out
