"""Signed webhook deliveries over HTTP to `POST /github/webhook`: merged-and-labelled PRs and
`/backport` comments, answered as comments; forged signatures, replays and outsiders refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from githubkit.webhooks import parse
from githubkit_schemas.latest import models as M
from pydantic import BaseModel

from adapters.forge.github_webhook import signature, valid
from bot import config
from bot.app import build_app
from tests import scenarios
from tests.fake_github import FakeGitHub
from tests.github_payloads import payload as complete
from tests.test_github import setup

SECRET = "It's a Secret to Everybody"


def test_signature_matches_githubs_test_vector():
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature(SECRET, b"Hello, World!") == expected
    assert valid(SECRET, b"Hello, World!", expected)
    assert not valid(SECRET, b"Hello, World!", expected[:-1] + "0")
    assert not valid(SECRET, b"Hello, World!", None)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch):
    fake = FakeGitHub()
    fake.permissions = {"ada": "admin", "mallory": "read"}
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_testtoken123")
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", SECRET)
    yield fake
    fake.close()


def deliver(cfg: Path, data_dir: Path, deliveries: list[tuple[str, str, dict | bytes, str | None]],
            after=None, texts: list[str] | None = None) -> tuple[list[int], str]:
    """POST each (delivery id, event, payload: a dict sent as JSON or raw bytes, signature: None for
    a correct one, "" for none); returns the statuses and what the console showed; the answers'
    texts go to `texts` when given."""

    async def run() -> tuple[list[int], str]:
        out = io.StringIO()
        console = build_app(config.load(cfg), data_dir, out)
        await console.start()
        app = web.Application()
        app.add_routes(console.webhook.routes())
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:
                for delivery, event, payload, sig in deliveries:
                    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                    headers = {"X-GitHub-Delivery": delivery, "X-GitHub-Event": event,
                               "X-Hub-Signature-256": signature(SECRET, body) if sig is None else sig,
                               "Content-Type": "application/json"}
                    if sig == "":
                        del headers["X-Hub-Signature-256"]
                    async with http.post(f"http://127.0.0.1:{port}/github/webhook", data=body,
                                         headers=headers) as response:
                        statuses.append(response.status)
                        if texts is not None:
                            texts.append(await response.text())
                    pass
                    await console.idle()
            if after is not None:
                await after()
        finally:
            await runner.cleanup()
            await console.stop()
        return statuses, out.getvalue()

    return asyncio.run(run())


# Payloads go through `complete` (tests/github_payloads.py): githubkit validates them against
# GitHub's full schemas, so each builder names only what the test is about.

def merged(number: int, labels: list[str], action: str = "closed", label: str | None = None) -> dict:
    overrides = {"action": action, "number": number, "sender": {"login": "ada", "type": "User"},
                 "repository": {"full_name": "acme/server", "name": "server", "owner": {"login": "acme"}},
                 "pull_request": {"number": number, "merged": True, "state": "closed",
                                  "labels": [{"name": n} for n in labels]}}
    if label:
        overrides["label"] = {"name": label}
    return complete(M.WebhookPullRequestClosed if action == "closed" else M.WebhookPullRequestLabeled, overrides)


def comment(number: int, user: str, body: str) -> dict:
    return complete(M.WebhookIssueCommentCreated, {
        "action": "created", "repository": {"full_name": "acme/server"},
        "issue": {"number": number, "pull_request": {"url": "..."}},
        "comment": {"id": 1, "body": body, "user": {"login": user, "type": "User"}},
        "sender": {"login": user}})


def test_merged_pr_with_a_backport_label_is_backported_once(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean, '\n[chat]\nadapters = ["console"]\n')
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    payload = merged(12, ["bug", "backport/rel"])
    statuses, out = deliver(cfg, data_dir, [("d-1", "pull_request", payload, None),
                                            ("d-1", "pull_request", payload, None)])  # GitHub redelivers
    assert statuses == [202, 200]
    assert len(github.created_pulls()) == 1
    thread = [c["body"] for c in github.comments.values() if c["issue"] == 12]
    assert thread[0].startswith("Backport of #12 Fix overflow in handle to rel, requested by ada.")
    assert any("✅ rel: PR opened: https://github.com/acme/server/pull/1000" in body for body in thread)
    assert "Summary: 1 PR opened." in thread
    assert "[github:acme/server#12] Backport of #12" in out  # mirrored to the team's chat


def test_a_label_added_after_the_merge_backports_to_that_branch(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    statuses, _ = deliver(cfg, data_dir, [("d-2", "pull_request",
                                            merged(12, ["bug", "backport/rel"], "labeled", "backport/rel"), None),
                                           ("d-3", "pull_request", merged(12, ["bug"], "labeled", "bug"), None)])
    assert statuses == [202, 202]
    assert len(github.created_pulls()) == 1


def test_forged_signature_is_rejected_and_nothing_happens(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["backport/rel"])
    body = json.dumps(merged(12, ["backport/rel"])).encode()
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()  # right key, weaker hash
    statuses, _ = deliver(cfg, data_dir, [("d-4", "pull_request", merged(12, ["backport/rel"]), "sha256=" + "0" * 64),
                                          ("d-5", "pull_request", merged(12, ["backport/rel"]), ""),
                                          ("d-6", "pull_request", body, sha1)])
    assert statuses == [401, 401, 401]
    assert github.created_pulls() == [] and github.comments == {}


def test_backport_comments_need_write_access(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    statuses, _ = deliver(cfg, data_dir, [("d-6", "issue_comment", comment(12, "mallory", "/backport to rel"), None)])
    assert statuses == [202]
    (refusal,) = github.comments.values()
    assert refusal["body"] == ("@mallory sorry, only people with write access to acme/server can request backports "
                               "(by /backport comments).")
    assert github.created_pulls() == []
    deliver(cfg, data_dir, [("d-7", "issue_comment", comment(12, "ada", "/backport to rel"), None),
                            ("d-8", "issue_comment", comment(12, "ada", "/backport why 12 rel"), None)])
    assert len(github.created_pulls()) == 1
    bodies = [c["body"] for c in github.comments.values()]
    assert any(b.startswith("Backport of #12 to rel (attempt 1): PR open") for b in bodies)


def check_suite(head: str) -> dict:
    return complete(M.WebhookCheckSuiteCompleted, {
        "action": "completed", "repository": {"full_name": "acme/server"},
        "check_suite": {"head_branch": head, "status": "completed", "conclusion": "success"}})


def check_run(head: str) -> dict:
    return complete(M.WebhookCheckRunCompleted, {"action": "completed", "repository": {"full_name": "acme/server"},
                                                 "check_run": {"check_suite": {"head_branch": head}}})


def closed_backport(number: int, head: str, sha: str = "c0ffee" * 6 + "c0ff") -> dict:
    """The backport PR itself, merged; `sha` is its head commit."""
    return complete(M.WebhookPullRequestClosed, {
        "action": "closed", "repository": {"full_name": "acme/server"},
        "pull_request": {"number": number, "merged": True, "labels": [{"name": "backport"}],
                         "head": {"ref": head, "sha": sha}}})


def test_ci_verifies_a_draft_pr_and_marks_it_ready(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean, 'verify = "ci"\n[[repos.commands]]\nname = "never here"\n'
                                                     'run = "exit 1"\n')
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    head = "backport/12-to-rel"
    github.set_checks(head, ("build", "in_progress", None), ("test", "queued", None))
    deliver(cfg, data_dir, [("c-1", "pull_request", merged(12, ["bug", "backport/rel"]), None),
                            ("c-2", "check_suite", check_suite(head), None)])
    (pr,) = github.created_pulls()
    assert pr["draft"] is True  # the local command was not run: the forge's CI verifies
    assert any("draft PR opened: https://github.com/acme/server/pull/1000; waiting for CI" in c["body"]
               for c in github.comments.values())
    github.set_checks(head, ("build", "completed", "success"), ("test", "completed", "success"))
    deliver(cfg, data_dir, [("c-3", "check_run", check_run(head), None)])
    assert pr["draft"] is False and len(github.graphql) == 1
    assert "all 2 CI checks passed; https://github.com/acme/server/pull/1000 is ready for review." in [
        c["body"].removeprefix("✅ rel: ") for c in github.comments.values()]


def test_a_failing_check_is_reported_with_its_link(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean, 'verify = "ci"\n')
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    head = "backport/12-to-rel"
    github.set_checks(head, ("build", "completed", "success"), ("test", "completed", "failure"))
    deliver(cfg, data_dir, [("f-1", "pull_request", merged(12, ["bug", "backport/rel"]), None),
                            ("f-2", "check_suite", check_suite(head), None),
                            ("f-3", "issue_comment", comment(12, "ada", "/backport why 12 rel"), None)])
    bodies = [c["body"] for c in github.comments.values()]
    assert "❌ rel: CI check `test` failed: https://github.com/acme/server/runs/2" in bodies
    assert any("failed at CI (verify)" in b and "runs/2" in b for b in bodies)
    assert github.graphql == []


def test_ci_is_polled_when_no_webhook_comes(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean, 'verify = "ci"\n')
    cfg.write_text(cfg.read_text().replace("[bot]\n", "[bot]\nci_poll_seconds = 1\n"))
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    github.set_checks("backport/12-to-rel", ("build", "completed", "success"))

    async def wait_a_little() -> None:
        await asyncio.sleep(1.5)

    deliver(cfg, data_dir, [("p-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)], after=wait_a_little)
    assert github.created_pulls()[0]["draft"] is False


def test_the_backport_pr_being_merged_ends_the_attempt(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    closed = closed_backport(1000, "backport/12-to-rel")
    deliver(cfg, data_dir, [("m-1", "pull_request", merged(12, ["bug", "backport/rel"]), None),
                            ("m-2", "pull_request", closed, None),
                            ("m-3", "issue_comment", comment(12, "ada", "/backport status 12"), None)])
    assert len(github.created_pulls()) == 1
    from adapters.store.sqlite import SQLiteStore as Store

    store = Store(data_dir / "backportbot.db")
    (attempt,) = store.attempts("server")
    assert attempt.state == "merged"
    assert store.events(attempt.id)[-1].detail == {"on_forge": True, "head": "c0ffee" * 6 + "c0ff"}


def test_a_replayed_body_under_a_new_id_and_a_delivery_without_id_are_refused(tmp_path, data_dir, github):
    """The signature covers the body, not X-GitHub-Delivery: a captured delivery sent again under
    another id is the same delivery."""
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    payload = merged(12, ["bug", "backport/rel"])
    texts: list[str] = []
    statuses, _ = deliver(cfg, data_dir, [("r-1", "pull_request", payload, None),
                                          ("r-2", "pull_request", payload, None),
                                          ("", "pull_request", merged(12, ["backport/rel"]), None)], texts=texts)
    assert statuses == [202, 200, 400] and texts[1:] == ["already handled", "missing X-GitHub-Delivery"]
    assert len(github.created_pulls()) == 1


def test_a_label_set_by_someone_without_write_access_requests_nothing(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    github.permissions["tri"] = "triage"
    labelled = merged(12, ["bug", "backport/rel"], "labeled", "backport/rel")
    labelled["sender"]["login"] = "tri"
    statuses, _ = deliver(cfg, data_dir, [("t-1", "pull_request", labelled, None)])
    assert statuses == [202] and github.created_pulls() == []
    (refusal,) = github.comments.values()
    assert refusal["body"] == ("@tri sorry, only people with write access to acme/server can request backports "
                               "(by labels).")


def test_a_merged_security_fix_is_proposed_at_once(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["security"])
    payload = merged(12, ["security"])
    payload["pull_request"]["title"] = "Fix overflow in handle"
    _, out = deliver(cfg, data_dir, [("s-1", "pull_request", payload, None)])
    assert re.search(r"\[\d+\] bot: 🔒 A security fix was just merged: #12 Fix overflow in handle — rel: clean", out)
    assert github.created_pulls() == []  # proposed, not done: a maintainer reacts ✅


def test_an_invalid_payload_is_refused_and_does_not_use_up_its_delivery_id(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    texts: list[str] = []
    statuses, _ = deliver(cfg, data_dir, [("v-1", "pull_request", {"action": "closed", "number": 12}, None),
                                          ("v-1", "pull_request", merged(12, ["bug", "backport/rel"]), None),
                                          ("v-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)],
                          texts=texts)
    assert statuses == [400, 202, 200]
    assert texts == ["not a valid pull_request payload", "accepted", "already handled"]
    assert len(github.created_pulls()) == 1


def test_a_body_that_is_not_json_is_refused(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    texts: list[str] = []
    statuses, _ = deliver(cfg, data_dir, [("j-1", "issue_comment", b"/backport to rel", None),
                                          ("j-1", "issue_comment", b"\xff\xfe{", None)], texts=texts)
    assert statuses == [400, 400] and texts == ["the body is not JSON"] * 2
    assert github.comments == {}


def test_other_events_and_unknown_actions_are_ignored(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    texts: list[str] = []
    ping = {"zen": "Design for failure.", "hook_id": 1, "hook": {"type": "Repository", "id": 1}}
    statuses, _ = deliver(cfg, data_dir, [("g-1", "ping", ping, None),
                                          ("g-2", "push", b"not even parsed", None),
                                          ("g-3", "pull_request", {"action": "teleported", "number": 12}, None),
                                          ("g-4", "ping", ping, "sha256=" + "0" * 64)], texts=texts)
    assert statuses == [202, 202, 202, 401]
    assert texts == ["ignored", "ignored", "ignored", "bad signature"]


@pytest.mark.parametrize(("event", "body", "model"), [
    ("pull_request", merged(12, ["bug", "backport/rel"]), M.WebhookPullRequestClosed),
    ("pull_request", merged(12, ["bug"], "labeled", "backport/rel"), M.WebhookPullRequestLabeled),
    ("pull_request", closed_backport(1000, "backport/12-to-rel"), M.WebhookPullRequestClosed),
    ("issue_comment", comment(12, "ada", "/backport to rel"), M.WebhookIssueCommentCreated),
    ("check_suite", check_suite("backport/12-to-rel"), M.WebhookCheckSuiteCompleted),
    ("check_run", check_run("backport/12-to-rel"), M.WebhookCheckRunCompleted),
])
def test_the_test_payloads_are_valid_for_githubkit(event: str, body: dict, model: type[BaseModel]):
    """The fixtures cannot drift from GitHub's documented shapes: githubkit parses each one into
    the model the receiver expects, with the values the builders put in."""
    parsed = parse(event, json.dumps(body))
    assert type(parsed) is model
    assert parsed.repository.full_name == "acme/server"


def test_the_payload_helper_merges_overrides_into_the_models():
    body = merged(12, ["bug", "backport/rel"], "labeled", "backport/rel")
    parsed = parse("pull_request", json.dumps(body))
    assert isinstance(parsed, M.WebhookPullRequestLabeled)
    assert parsed.label and parsed.label.name == "backport/rel"
    assert [label.name for label in parsed.pull_request.labels] == ["bug", "backport/rel"]
    assert parsed.pull_request.merged is True and parsed.sender.login == "ada"
    assert parsed.repository.owner and parsed.repository.owner.login == "acme"
    note = parse("issue_comment", json.dumps(comment(12, "mallory", "/backport to rel")))
    assert isinstance(note, M.WebhookIssueCommentCreated)
    assert note.issue.pull_request and note.issue.pull_request.url == "..."
    assert note.comment.user and (note.comment.user.login, note.comment.user.type) == ("mallory", "User")
    plain = complete(M.WebhookIssueCommentCreated, {"issue": {"number": 3}})
    assert "pull_request" not in plain["issue"]  # optional fields stay out: a plain issue


def test_a_mention_in_a_title_is_shown_not_sent(tmp_path, data_dir, github):
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow, thanks @acme/core", work.head("main"), ["bug", "backport/rel"])
    deliver(cfg, data_dir, [("m-1", "pull_request", merged(12, ["bug", "backport/rel"]), None)])
    root = next(c["body"] for c in github.comments.values() if c["body"].startswith("Backport of #12"))
    assert "thanks @\u200dacme/core" in root and "@acme/core" not in root


def test_markdown_and_html_echoed_into_a_comment_are_shown_not_rendered(tmp_path, data_dir, github):
    """A link, an image (a tracking pixel) or HTML in a `/backport` comment comes back as text."""
    work, cfg, _ = setup(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
    said = ["/backport [notes](https://evil.example/x) to rel", "/backport 12 to ![x](https://evil.example/p.png)",
            "/backport <img src=https://evil.example/p.png> to rel"]
    deliver(cfg, data_dir, [(f"e-{i}", "issue_comment", comment(12, "ada", text), None) for i, text in enumerate(said)])
    answers = [c["body"] for c in github.comments.values()]
    assert len(answers) == 3, answers
    assert not any(re.search(r"(?<!\\)\[[^\]]*\]\(", a) or "<img" in a for a in answers), answers
    assert any("\\[notes\\](https://evil.example/x)" in a for a in answers)
    assert any("&lt;img src=https://evil.example/p.png&gt;" in a for a in answers)
