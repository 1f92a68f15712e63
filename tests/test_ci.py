"""CI verification (`verify = "ci"`) against the local GitHub: every page of check runs, commit
statuses (Jenkins-style CI), no CI at all within the timeout, and GitHub's secondary rate limits
(a 403 that names no wait) through the real GitHubForge, CiFollowUp and the whole app."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from githubkit_schemas.latest import models as M

import adapters.forge.github as github_forge
from adapters.forge.github import Credentials, GitHubForge
from adapters.store.sqlite import SQLiteStore as Store
from bot.app import repo_from_spec
from bot.config import load
from bot.core.ports import Unavailable
from bot.core.repos import Repo
from tests import scenarios
from tests.fake_github import FakeGitHub
from tests.github_payloads import payload as complete
from tests.test_console import converse
from tests.test_github import setup
from tests.test_github_webhooks import check_run, check_suite, deliver, merged
from tests.test_github_webhooks import github as github  # noqa: F401  (the fixture, with a webhook secret)

HEAD = "backport/12-to-rel"
PR = "https://github.com/acme/server/pull/1000"
JENKINS = "continuous-integration/jenkins/pr-merge"
JOB = "https://jenkins.example.com/job/server/job/PR-1000/1/display/redirect"


def forge_and_repo(tmp_path: Path, data_dir: Path, fake: FakeGitHub, **kwargs: Any) -> tuple[GitHubForge, Repo]:
    """The real forge and a configured repository, with a backport PR #1000 whose head is HEAD."""
    _, cfg, _ = setup(tmp_path, scenarios.clean, 'verify = "ci"\n')
    fake.pulls[1000] = fake._pull(1000, "[Backport rel] Fix", "rel", HEAD, ["backport"], "backportbot[bot]",
                                  draft=True)
    forge = GitHubForge(Credentials(fake.url, "ghs_testtoken123"), **kwargs)
    return forge, repo_from_spec(load(cfg).repos[0], data_dir)


def ci_config(tmp_path: Path, fake: FakeGitHub, labels: tuple[str, ...] = ("bug", "backport/rel"),
              poll: int = 1) -> Path:
    """A repository with verify = "ci" polled every `poll` seconds, and its fix merged as #12."""
    work, cfg, _ = setup(tmp_path, scenarios.clean, 'verify = "ci"\n')
    cfg.write_text(cfg.read_text().replace("[bot]\n", f"[bot]\nci_poll_seconds = {poll}\n"))
    fake.add_merged_pull(12, "Fix overflow in handle", work.head("main"), list(labels))
    return cfg


def pause(seconds: float):
    async def wait() -> None:
        await asyncio.sleep(seconds)
    return wait


def bodies(fake: FakeGitHub) -> list[str]:
    return [c["body"] for c in fake.comments.values()]


def age_pr(data_dir: Path, minutes: float) -> None:
    """Make the PR look opened `minutes` ago: its pr_opened event is moved back (the test's data, no code)."""
    with sqlite3.connect(data_dir / "backportbot.db") as db:
        db.execute("update events set at = at - ? where op = 'pr_opened'", [minutes * 60])


# --- every page of check runs, and commit statuses -------------------------------------------------------------


def test_150_check_runs_are_read_over_two_pages_and_the_failing_one_on_page_2_counts(tmp_path, data_dir, github):
    forge, repo = forge_and_repo(tmp_path, data_dir, github)
    runs = [(f"test-{i}", "completed", "success") for i in range(1, 151)]
    runs[139] = ("test-140", "completed", "failure")
    github.set_checks(HEAD, *runs)
    checks = forge.checks(repo, 1000)
    assert len(checks.passed) == 149 and checks.pending == ()
    assert checks.failed == (("test-140", "https://github.com/acme/server/runs/140"),)
    pages = [c for c in github.calls if c.path.endswith("/check-runs")]
    assert [(c.path, c.query) for c in pages] == [
        ("/repos/acme/server/commits/sha-backport~12-to-rel/check-runs", "per_page=100"),
        # the Link header's own URL, as GitHub writes it (by repository id), is followed
        ("/repositories/1296269/commits/sha-backport~12-to-rel/check-runs", "per_page=100&page=2")]


def test_a_failing_check_run_on_page_2_fails_the_attempt_with_its_link(tmp_path, data_dir, github):
    cfg = ci_config(tmp_path, github, poll=60)
    runs = [(f"test-{i}", "completed", "success") for i in range(1, 151)]
    runs[139] = ("test-140", "completed", "failure")
    github.set_checks(HEAD, *runs)
    deliver(cfg, data_dir, [("o-1", "pull_request", merged(12, ["bug", "backport/rel"]), None),
                            ("o-2", "check_suite", check_suite(HEAD), None)])
    assert "❌ rel: CI check `test-140` failed: https://github.com/acme/server/runs/140" in bodies(github)
    assert github.created_pulls()[0]["draft"] is True and github.graphql == []
    (attempt,) = Store(data_dir / "backportbot.db").attempts("server")
    assert (attempt.state, attempt.stage, attempt.ci) == ("failed", "ci", "failed")


def test_check_runs_and_commit_statuses_are_merged_into_one_answer(tmp_path, data_dir, github):
    forge, repo = forge_and_repo(tmp_path, data_dir, github)
    github.set_checks(HEAD, ("build", "completed", "success"), ("lint", "completed", "skipped"))
    github.set_statuses(HEAD, (JENKINS, "pending", JOB))
    checks = forge.checks(repo, 1000)
    assert (checks.pending, checks.passed, checks.failed) == ((JENKINS,), ("build", "lint"), ())
    github.set_statuses(HEAD, (JENKINS, "error", JOB), ("buildkite/server", "success", None))
    checks = forge.checks(repo, 1000)
    assert checks.passed == ("build", "lint", "buildkite/server") and checks.failed == ((JENKINS, JOB),)
    # no status at all: GitHub's combined state is "pending" then, which is not a pending check
    github.statuses.clear()
    assert forge.checks(repo, 1000).pending == ()


def test_120_commit_statuses_are_read_over_two_pages(tmp_path, data_dir, github):
    forge, repo = forge_and_repo(tmp_path, data_dir, github)
    statuses = [(f"ci/job-{i}", "success", f"https://ci.example.com/{i}") for i in range(1, 121)]
    statuses[110] = ("ci/job-111", "failure", "https://ci.example.com/111")
    github.set_statuses(HEAD, *statuses)
    checks = forge.checks(repo, 1000)
    assert len(checks.passed) == 119 and checks.failed == (("ci/job-111", "https://ci.example.com/111"),)
    assert [c.query for c in github.calls if c.path.endswith("/status")] == ["per_page=100", "per_page=100&page=2"]


def test_jenkins_style_statuses_alone_pass_a_draft_pr(tmp_path, data_dir, github):
    """No check run ever: Jenkins reports a commit status. The poller (there is no webhook for
    statuses) sees it pending, then successful, and marks the PR ready."""
    cfg = ci_config(tmp_path, github)
    github.set_statuses(HEAD, (JENKINS, "pending", JOB))

    async def then_it_passes() -> None:
        await asyncio.sleep(1.5)
        assert github.created_pulls()[0]["draft"] is True  # pending: still waiting
        github.set_statuses(HEAD, (JENKINS, "success", JOB))
        await asyncio.sleep(1.5)

    deliver(cfg, data_dir, [("j-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)], after=then_it_passes)
    assert github.created_pulls()[0]["draft"] is False
    assert f"✅ rel: all 1 CI checks passed; {PR} is ready for review." in bodies(github)


def test_a_failing_jenkins_status_fails_the_attempt_with_its_job_link(tmp_path, data_dir, github):
    cfg = ci_config(tmp_path, github)
    github.set_checks(HEAD, ("lint", "completed", "success"))
    github.set_statuses(HEAD, (JENKINS, "failure", JOB))
    deliver(cfg, data_dir, [("j-2", "pull_request", merged(12, ["bug", "backport/rel"]), None)], after=pause(1.5))
    assert f"❌ rel: CI check `{JENKINS}` failed: {JOB}" in bodies(github)
    assert github.created_pulls()[0]["draft"] is True
    (attempt,) = Store(data_dir / "backportbot.db").attempts("server")
    assert attempt.state == "failed" and JOB in (attempt.reason or "")


# --- no CI within the timeout --------------------------------------------------------------------------------------


def test_no_ci_within_the_timeout_is_said_once_and_late_ci_is_still_followed(tmp_path, data_dir, github):
    cfg = ci_config(tmp_path, github)
    deliver(cfg, data_dir, [("n-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)])
    assert not any("no CI reported" in b for b in bodies(github))  # not late yet
    age_pr(data_dir, 61)
    # two rounds of the poller and a check_suite webhook with still nothing reported: told once
    deliver(cfg, data_dir, [("n-2", "check_suite", check_suite(HEAD), None)], after=pause(2.5))
    told = [b for b in bodies(github) if "no CI reported" in b]
    assert told == [f"⚠️ rel: no CI reported on {PR} within 60 min, so the bot stopped waiting; the PR stays a "
                    "draft. What to check: that CI runs on pull requests to rel (branch filters, a draft-PR skip, "
                    "a fork's workflows waiting for approval; GitHub Actions does not start workflows for pushes "
                    "made with a workflow's GITHUB_TOKEN), and that the bot may read checks and commit statuses. "
                    "CI that reports later is still followed."]
    (attempt,) = Store(data_dir / "backportbot.db").attempts("server")
    assert (attempt.state, attempt.ci) == ("pr_open", "none")
    assert github.created_pulls()[0]["draft"] is True
    # CI shows up after all (the workflow was fixed): followed again, and the PR is marked ready
    github.set_checks(HEAD, ("build", "completed", "success"))
    deliver(cfg, data_dir, [("n-3", "check_run", check_run(HEAD), None)])
    assert github.created_pulls()[0]["draft"] is False
    assert len([b for b in bodies(github) if "no CI reported" in b]) == 1


def test_ci_still_pending_after_the_timeout_is_said_once_and_waited_for(tmp_path, data_dir, github):
    cfg = ci_config(tmp_path, github)
    github.set_checks(HEAD, ("build", "completed", "success"), ("test", "in_progress", None))
    deliver(cfg, data_dir, [("s-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)])
    age_pr(data_dir, 90)
    deliver(cfg, data_dir, [], after=pause(2.5))
    assert [b for b in bodies(github) if "pending" in b] == [
        f"⏳ rel: CI on {PR} is still pending after 60 min: `test`; still waiting (a stuck runner or queue?)."]
    (attempt,) = Store(data_dir / "backportbot.db").attempts("server")
    assert (attempt.state, attempt.ci) == ("pr_open", "waiting")
    github.set_checks(HEAD, ("build", "completed", "success"), ("test", "completed", "success"))
    deliver(cfg, data_dir, [], after=pause(1.5))
    assert github.created_pulls()[0]["draft"] is False


# --- secondary rate limits -----------------------------------------------------------------------------------------


def test_a_secondary_rate_limit_without_headers_is_waited_out_and_retried(tmp_path, data_dir, github, caplog):
    forge, repo = forge_and_repo(tmp_path, data_dir, github, rate_limit_wait=0.01)
    github.set_checks(HEAD, ("build", "completed", "success"))
    github.secondary_rate_limit("GET", "/repos/acme/server/commits/sha-backport~12-to-rel/check-runs")
    with caplog.at_level(logging.WARNING, logger="adapters.forge.github"):
        checks = forge.checks(repo, 1000)
    assert checks.passed == ("build",)
    assert len([c for c in github.calls if c.path.endswith("/check-runs")]) == 2  # refused, then answered
    assert any("secondary rate limit" in r.getMessage() and "waiting 0.01 s, then retry 1 of 2" in r.getMessage()
               for r in caplog.records)


def test_a_secondary_rate_limit_on_opening_the_pr_is_waited_out_and_makes_one_pr(tmp_path, data_dir, github,
                                                                                  monkeypatch):
    monkeypatch.setattr(github_forge, "RATE_LIMIT_WAIT", 0.01)
    cfg = ci_config(tmp_path, github, ("bug",), poll=60)
    github.secondary_rate_limit("POST", "/repos/acme/server/pulls", times=2)
    out = converse(cfg, data_dir, ["/backport 12 to rel"])
    assert f"rel: draft PR opened: {PR}" in out
    assert len(github.created_pulls()) == 1
    assert len([c for c in github.calls if c.method == "POST" and c.path == "/repos/acme/server/pulls"]) == 3


def test_a_rate_limit_that_does_not_end_is_a_clear_failure(tmp_path, data_dir, github, monkeypatch):
    monkeypatch.setattr(github_forge, "RATE_LIMIT_WAIT", 0.01)
    cfg = ci_config(tmp_path, github, ("bug",), poll=60)
    github.secondary_rate_limit("POST", "/repos/acme/server/pulls", times=3)
    out = converse(cfg, data_dir, ["/backport 12 to rel"])
    assert ("GitHub is still rate-limiting the bot (403: You have exceeded a secondary rate limit. Please wait a "
            "few minutes before you try again.") in out
    assert "after 2 retries, each after the wait GitHub asks for." in out
    assert github.created_pulls() == []
    assert len([c for c in github.calls if c.method == "POST" and c.path == "/repos/acme/server/pulls"]) == 3


def test_a_rate_limit_that_resets_in_an_hour_is_not_waited_for(tmp_path, data_dir, github):
    import time

    forge, repo = forge_and_repo(tmp_path, data_dir, github, rate_limit_wait=0.01)
    reset = str(int(time.time()) + 3600)
    github.fail_once("GET", "/repos/acme/server/pulls/1000", 403,
                     {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000",
                      "x-ratelimit-reset": reset, "x-ratelimit-resource": "core"},
                     {"message": "API rate limit exceeded for installation ID 7.",
                      "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"GitHub is rate-limiting the bot \(403: API rate limit exceeded for "
                                          r"installation ID 7.\) until about \d\d:\d\d UTC\. Trying again later"):
        forge.checks(repo, 1000)
    assert time.monotonic() - started < 5
    assert len([c for c in github.calls if c.path == "/repos/acme/server/pulls/1000"]) == 1


# --- the stand-in and the setting ----------------------------------------------------------------------------------


def test_the_stand_in_answers_in_githubs_documented_shapes(github):
    github.set_checks(HEAD, *[(f"t{i}", "completed", "success") for i in range(31)])
    github.set_statuses(HEAD, (JENKINS, "success", JOB))
    with httpx.Client(base_url=github.url) as http:
        first = http.get("/repos/acme/server/commits/sha-backport~12-to-rel/check-runs")  # GitHub's default: 30
        page = M.ReposOwnerRepoCommitsRefCheckRunsGetResponse200.model_validate(first.json())
        assert (page.total_count, len(page.check_runs)) == (31, 30)
        assert first.links["next"]["url"].endswith("/repositories/1296269/commits/sha-backport~12-to-rel/check-runs"
                                                   "?page=2")
        combined = M.CombinedCommitStatus.model_validate(
            http.get("/repos/acme/server/commits/sha-backport~12-to-rel/status").json())
        assert (combined.state, combined.statuses[0].context) == ("success", JENKINS)
        assert http.get("/repos/acme/server/commits/sha-none/status").json()["state"] == "pending"


def test_ci_timeout_minutes_is_a_repository_setting(tmp_path):
    _, cfg, _ = setup(tmp_path, scenarios.clean, 'verify = "ci"\nci_timeout_minutes = 15\n')
    assert load(cfg).repos[0].ci_timeout_minutes == 15
    _, cfg, _ = setup(tmp_path / "default", scenarios.clean, 'verify = "ci"\n')
    assert load(cfg).repos[0].ci_timeout_minutes == 60
    cfg.write_text(cfg.read_text() + "ci_timeout_minutes = 0\n")
    with pytest.raises(Exception, match="ci_timeout_minutes"):
        load(cfg)


def test_a_shorter_ci_timeout_is_honoured(tmp_path, data_dir, github):
    cfg = ci_config(tmp_path, github)
    cfg.write_text(cfg.read_text() + "ci_timeout_minutes = 15\n")
    deliver(cfg, data_dir, [("t-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)])
    age_pr(data_dir, 16)
    deliver(cfg, data_dir, [("t-2", "check_suite", check_suite(HEAD), None)])
    assert any(f"no CI reported on {PR} within 15 min" in b for b in bodies(github))


def status_event(state: str, branch: str = HEAD) -> dict:
    return complete(M.WebhookStatus, {"repository": {"full_name": "acme/server"}, "state": state,
                                      "context": JENKINS, "target_url": JOB, "sha": "0" * 40,
                                      "branches": [{"name": branch, "commit": {"sha": "0" * 40, "url": ""},
                                                    "protected": False}]})


def test_a_commit_status_webhook_is_followed_at_once(tmp_path, data_dir, github):
    """Jenkins reports through a commit status; its `status` delivery re-reads the PR's CI without
    waiting for the poller (an hour here)."""
    cfg = ci_config(tmp_path, github, poll=3600)
    github.set_statuses(HEAD, (JENKINS, "pending", JOB))
    deliver(cfg, data_dir, [("s-1", "pull_request", merged(12, ["bug", "backport/rel"]), None),
                            ("s-2", "status", status_event("pending"), None)])
    assert github.created_pulls()[0]["draft"] is True
    github.set_statuses(HEAD, (JENKINS, "success", JOB))
    statuses, _ = deliver(cfg, data_dir, [("s-3", "status", status_event("success"), None),
                                          ("s-4", "status", status_event("success", "main"), None)])
    assert statuses == [202, 202]
    assert github.created_pulls()[0]["draft"] is False
    assert f"✅ rel: all 1 CI checks passed; {PR} is ready for review." in bodies(github)
