"""The GitHub forge against a local server speaking GitHub's REST API: PR resolution by merge
method, opening PRs (labels, reviewers, no duplicates), reports on the source PR, rate limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.store.sqlite import SQLiteStore as Store
from tests import scenarios
from tests.fake_github import FakeGitHub, app_key
from tests.gitrepo import GitRepo, published
from tests.test_console import converse


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch):
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_testtoken123")
    yield fake
    fake.close()


def setup(tmp_path: Path, scenario, extra: str = "") -> tuple[GitRepo, Path, str]:
    work, remote, ref = published(tmp_path, scenario)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n[forge]\nadapter = "github"\n\n'
                   f'[[repos]]\nname = "server"\ngithub = "acme/server"\nurl = "{remote.as_uri()}"\n'
                   f'branches = [{{ name = "rel" }}]\n{extra}')
    return work, cfg, ref


def test_a_squash_merged_pr_becomes_a_labelled_pr_with_a_report_on_the_source(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"], author="octo")
    out = converse(cfg, data_dir, ["/backport 12 to rel"])
    assert "✅ rel: PR opened: https://github.com/acme/server/pull/1000" in out
    (pr,) = github.created_pulls()
    assert pr["title"] == "[Backport rel] Fix overflow in handle" and pr["base"]["ref"] == "rel"
    assert pr["head"]["ref"] == "backport/12-to-rel"
    assert [label["name"] for label in pr["labels"]] == ["backport"]
    assert pr["requested_reviewers"] == [{"login": "octo"}]
    assert "Fix overflow in handle" in pr["body"]
    (comment,) = github.comments.values()
    assert comment["issue"] == 12 and "https://github.com/acme/server/pull/1000" in comment["body"]
    # the branch was pushed, with the token in a header and never in a URL or an argument
    assert "return 0;" in GitRepo(tmp_path / "remote.git").show("backport/12-to-rel", "src/server.c")
    assert all("ghs_testtoken123" not in str(c.path) for c in github.calls)
    assert "ghs_testtoken123" not in out


def test_merge_commit_and_rebase_merges_pick_the_right_commits(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.multi_commit)
    github.add_merged_pull(22, "Fix overflow with a test", work.head("main"), ["bug"],
                           commits=["Fix overflow in handle (#22)", "Add a test for the overflow (#22)"])
    out = converse(cfg, data_dir, ["/backport 22 to rel"])
    assert "✅ rel: PR opened" in out
    remote = GitRepo(tmp_path / "remote.git")
    assert remote.git("log", "--format=%s", "rel..backport/22-to-rel").splitlines() == [
        "Add a test for the overflow (#22)", "Fix overflow in handle (#22)"]


def test_merge_commit_pr(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.merge_commit)
    github.add_merged_pull(21, "Fix overflow in handle", work.head("main"), ["bug"], commits=["a", "b"])
    out = converse(cfg, data_dir, ["/backport 21 to rel"])
    assert "✅ rel: PR opened" in out
    remote = GitRepo(tmp_path / "remote.git")
    assert remote.git("rev-list", "--count", "rel..backport/21-to-rel") == "1"


def test_unmerged_and_unknown_prs_are_refused_with_the_reason(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"], merged=False)
    github.pulls[12]["state"] = "open"
    out = converse(cfg, data_dir, ["/backport 12 to rel", "/backport 77 to rel"])
    assert "pull request #12 is not merged yet" in out
    assert "acme/server has no pull request #77" in out
    assert github.created_pulls() == []


def test_a_secondary_rate_limit_is_waited_out_and_makes_one_pr(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    github.fail_once("POST", "/repos/acme/server/pulls", 403, {"retry-after": "1"},
                     {"message": "You have exceeded a secondary rate limit.",
                      "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
    out = converse(cfg, data_dir, ["/backport 12 to rel"])
    assert "✅ rel: PR opened: https://github.com/acme/server/pull/1000" in out
    assert len(github.created_pulls()) == 1
    posts = [c for c in github.calls if c.method == "POST" and c.path == "/repos/acme/server/pulls"]
    assert len(posts) == 2  # the refused one and the retry


def test_an_existing_open_pr_for_the_branch_is_reused(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    github.pulls[900] = github._pull(900, "[Backport rel] Fix overflow in handle", "rel", "backport/12-to-rel", [],
                                     "backportbot[bot]")
    out = converse(cfg, data_dir, ["/backport 12 to rel"])
    assert "✅ rel: PR opened: https://github.com/acme/server/pull/900" in out
    assert github.created_pulls() == []


def test_app_installation_tokens_are_refreshed_before_they_expire(github):
    import jwt

    from adapters.forge.github import Credentials

    key, pem = app_key()
    creds = Credentials(github.url, app_id="42", private_key=pem, installation_id="7")
    github.token_lifetime = 200  # inside the five-minute margin: every use gets a fresh one
    assert (creds.token(), creds.token()) == ("ghs_installation_1", "ghs_installation_2")
    github.token_lifetime = 3600
    token = creds.token()
    assert creds.token() == token == "ghs_installation_3"
    call = next(c for c in github.calls if c.path == "/app/installations/7/access_tokens")
    claims = jwt.decode(call.headers["authorization"].removeprefix("Bearer "), key.public_key(), algorithms=["RS256"])
    assert str(claims["iss"]) == "42"


def test_backport_branches_can_go_to_a_fork(tmp_path, data_dir, github):
    fork = tmp_path / "fork.git"
    work, cfg, _ = setup(tmp_path, scenarios.clean, f'push_repo = "bot-fork/server"\npush_url = "{fork.as_uri()}"\n')
    GitRepo(tmp_path).git("init", "-q", "--bare", str(fork))
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    out = converse(cfg, data_dir, ["/backport 12 to rel"])
    assert "✅ rel: PR opened" in out
    post = next(c for c in github.calls if c.method == "POST" and c.path == "/repos/acme/server/pulls")
    assert post.body["head"] == "bot-fork:backport/12-to-rel"
    assert "return 0;" in GitRepo(fork).show("backport/12-to-rel", "src/server.c")
    assert GitRepo(tmp_path / "remote.git").git("branch", "--list", "backport/*") == ""


def test_missing_credentials_are_named(tmp_path, monkeypatch):
    from adapters.forge.github import Credentials
    from bot.engine.errors import BadInput

    with pytest.raises(BadInput, match="GITHUB_TOKEN, or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY"):
        Credentials("http://127.0.0.1:9")


def test_bad_credentials_are_answered_by_name_and_start_nothing(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    github.valid_tokens = {"ghs_the_right_one"}
    out = converse(cfg, data_dir, ["/backport 12 to rel", "/backport 12 to rel"])
    answer = "GitHub refused the bot's credentials (401: Bad credentials); a maintainer must fix GITHUB_TOKEN"
    assert out.count(answer) == 2 and "Trying again will not help until this is fixed." in out
    assert "Backport of" not in out and "ghs_testtoken123" not in out  # no thread, no secret
    assert Store(data_dir / "backportbot.db").all_attempts() == []


def test_a_pull_request_that_already_exists_for_the_branch_is_reused(tmp_path, data_dir, github):
    """GitHub refuses a second PR from one head (422 "A pull request already exists"), e.g. when
    someone opened it between the bot's lookup and its own; the bot takes that one rather than failing."""
    from adapters.forge.github import Credentials, GitHubForge
    from bot.app import repo_from_spec
    from bot.config import load
    from bot.core.ports import PullRequestDraft

    work, cfg, _ = setup(tmp_path, scenarios.clean)
    repo = repo_from_spec(load(cfg).repos[0], data_dir)
    repo.workspace.fetch()
    repo.workspace.update_branch("backport/12-to-rel", work.head("rel"))
    github.pulls[7] = github._pull(7, "Someone's backport", "rel", "backport/12-to-rel", [], "octo")
    forge = GitHubForge(Credentials(github.url, "ghs_testtoken123"))
    draft = PullRequestDraft("[Backport rel] Fix", "body", "backport/12-to-rel", "rel", ("backport",), "#12")
    pr = forge.open_pull_request(repo, draft)
    assert pr.number == 7 and github.created_pulls() == []
