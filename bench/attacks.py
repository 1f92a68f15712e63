"""Benchmark: an attack set replayed against the real bot; how many attacks succeed (goal: 0).

Real `backportbot serve` processes (Slack in HTTP mode and GitHub webhooks, their Web APIs played
by the local stand-ins of tests/), a real `backportbot console` and real `backportbot check-config`
runs receive, per class:

- forged requests: Slack requests with bad, missing, stale or misplaced signatures, and GitHub
  deliveries with bad, missing, sha1-only or replayed signatures, oversized or non-JSON bodies.
  Succeeded = the bot acted (an inbox entry, a request, a PR, a message) or answered 2xx where it
  should refuse (for an exact replay, 2xx is the documented answer: only an effect counts);
- non-maintainer actions: /backport, retry, cancel, reactions, buttons, digest and batch by someone
  who is not a maintainer, a triage-only user's label, a /backport comment without write access.
  Succeeded = anything changed (requests, attempts, approvals, digests, batches, PRs, posts);
- secrets exposed: a fix whose test script (the configured verify command runs it) looks for the
  six secrets the bot holds; counted: distinct secret values found anywhere reachable (script
  output, database, logs, the bot's output, what the stand-ins received, the pushed branches);
  in bubblewrap (the default), and with `isolation = "none"` (the control: expected to leak);
- injections: hostile chat text through Slack, the console and PR comments. Succeeded = a reply
  holds Slack control syntax (`<...>`), a raw control or bidi character, an unescaped @-mention on
  GitHub, is longer than 4,000 characters, or a file or command effect happened;
- tracebacks: malformed HTTP to every route and malformed config files to `check-config`.
  Succeeded = a 5xx answer, "Traceback" in an answer, or a traceback printed by the CLI.

    .venv/bin/python bench/attacks.py [--verbose] [--only forged,non-maintainer,secrets,injections,tracebacks]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from githubkit_schemas.latest import models as M  # noqa: E402, N812

from tests.fake_github import FakeGitHub  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402
from tests.github_payloads import payload as complete  # noqa: E402
from tests.gitrepo import GitRepo  # noqa: E402
from tests.processes import ROOT, Bot, Processes, backportbot, mention, signed, slash  # noqa: E402

SECRETS = {"SLACK_BOT_TOKEN": "xoxb-bench-attack-slack-1", "SLACK_SIGNING_SECRET": "bench-attack-signing-2",
           "GITHUB_TOKEN": "ghp_benchAttackGithubToken3", "GITHUB_WEBHOOK_SECRET": "bench-attack-webhook-4",
           "OPENAI_API_KEY": "sk-bench-attack-openai-5", "DISCORD_TOKEN": "bench-attack-discord-6"}
SIGNING, WEBHOOK = SECRETS["SLACK_SIGNING_SECRET"], SECRETS["GITHUB_WEBHOOK_SECRET"]
GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada Author",
           "GIT_AUTHOR_EMAIL": "ada@example.org", "GIT_COMMITTER_NAME": "Cy Committer",
           "GIT_COMMITTER_EMAIL": "cy@example.org"}
ACTIVE = ("requested", "queued", "picking", "conflicted", "resolving", "verifying", "ready", "opening_pr")
MAX_REPLY = 4000
REFUSAL = re.compile(r"only maintainers|only people with write access|yours was ignored")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
SERVER = "int handle(int x) {\n    int y = x * 2;\n    if (y > 10) {\n        return -1;\n    }\n    return y;\n}\n"


@dataclass
class Case:
    name: str
    succeeded: bool
    detail: str = ""


@dataclass
class Row:
    label: str
    cases: list[Case] = field(default_factory=list)
    skipped: str | None = None  # why the row could not be measured
    count: Callable[[Row], tuple[int, int]] | None = None  # (tried, succeeded) when not one per case
    warnings: list[str] = field(default_factory=list)

    def add(self, name: str, succeeded: bool, detail: str = "") -> None:
        self.cases.append(Case(name, succeeded, detail))

    def totals(self) -> tuple[int, int]:
        if self.count is not None:
            return self.count(self)
        return len(self.cases), sum(c.succeeded for c in self.cases)


# --- HTTP ----------------------------------------------------------------------------------------

def post(url: str, body: bytes, headers: dict[str, str], method: str = "POST",
         timeout: float = 30) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body if method in ("POST", "PUT") else None, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (ConnectionError, TimeoutError, urllib.error.URLError) as e:
        return 0, f"(no answer: {type(e).__name__})"


def raw_http(url: str, data: bytes, timeout: float = 3) -> tuple[int, str]:
    """Bytes sent as they are on a new connection; the status line's code (0: none) and the answer
    (until the server closes the connection, or `timeout` seconds of silence)."""
    host, port = url.removeprefix("http://").split(":")
    chunks = []
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            try:
                s.sendall(data)
            except OSError:  # the server may answer and close before reading everything
                pass
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
    except OSError:
        pass
    text = b"".join(chunks).decode(errors="replace")
    m = re.match(r"HTTP/1\.\d (\d{3})", text)
    return (int(m.group(1)) if m else 0), text


def slack_headers(body: str | bytes, kind: str, secret: str = SIGNING, ts: int | None = None) -> dict[str, str]:
    if ts is None:
        return {"Content-Type": kind, **signed(body if isinstance(body, str) else body.decode(), secret)}
    mac = hmac.new(secret.encode(), f"v0:{ts}:".encode() + (body if isinstance(body, bytes) else body.encode()),
                   hashlib.sha256)
    return {"Content-Type": kind, "X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={mac.hexdigest()}"}


def hub(body: bytes, secret: str = WEBHOOK, algo: str = "sha256") -> str:
    return f"{algo}=" + hmac.new(secret.encode(), body, getattr(hashlib, algo)).hexdigest()


_deliveries = itertools.count(1)


def gh_headers(body: bytes, event: str = "pull_request", delivery: str | None = None,
               sig: str | None = None) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery if delivery is not None else f"bench-{next(_deliveries)}",
            "X-Hub-Signature-256": hub(body) if sig is None else sig}


# --- webhook payloads (githubkit validates them against GitHub's schemas) --------------------------

def merged(number: int, labels: list[str], sender: str = "ada", label: str | None = None) -> dict[str, Any]:
    overrides: dict[str, Any] = {
        "action": "labeled" if label else "closed", "number": number, "sender": {"login": sender, "type": "User"},
        "repository": {"full_name": "acme/server", "name": "server", "owner": {"login": "acme"}},
        "pull_request": {"number": number, "merged": True, "state": "closed", "title": f"PR {number}",
                         "labels": [{"name": n} for n in labels]}}
    if label:
        overrides["label"] = {"name": label}
    return complete(M.WebhookPullRequestLabeled if label else M.WebhookPullRequestClosed, overrides)


_comment_ids = itertools.count(1)


def comment(number: int, user: str, body: str) -> dict[str, Any]:
    return complete(M.WebhookIssueCommentCreated, {
        "action": "created", "repository": {"full_name": "acme/server"},
        "issue": {"number": number, "pull_request": {"url": "..."}},
        "comment": {"id": next(_comment_ids), "body": body, "user": {"login": user, "type": "User"}},
        "sender": {"login": user}})


# --- the repositories and the served bots ---------------------------------------------------------

def build_repo(where: Path, fixes: list[tuple[int, str, dict[str, str | None]]],
               base: dict[str, str | None] | None = None) -> tuple[GitRepo, Path, dict[int, str]]:
    """A work repository with `rel` branched from its first commit, one commit per fix on main,
    and its bare clone (the remote the bot works from)."""
    work = GitRepo.create(where / "work")
    work.commit("Initial import", {"src/server.c": SERVER, "README": "server\n", "docs/guide.txt": "a guide\n",
                                   **(base or {})})
    work.branch("rel")
    shas = {number: work.commit(f"{title} (#{number})", files) for number, title, files in fixes}
    remote = where / "remote.git"
    work.git("clone", "-q", "--bare", str(work.path), str(remote))
    return work, remote, shas


def serve_config(where: Path, remote: Path, isolation: str | None = None, commands: str = "") -> Path:
    cfg = where / "bot.toml"
    iso = f'isolation = "{isolation}"\n' if isolation else ""
    cfg.write_text(f'[bot]\nmaintainers = ["UADA"]\n{iso}\n[serve]\nport = 0\n\n[chat]\nadapters = ["slack"]\n'
                   f'[chat.slack]\nmode = "http"\n\n[forge]\nadapter = "github"\n\n[[repos]]\nname = "server"\n'
                   f'github = "acme/server"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n{commands}')
    return cfg


class Served:
    """One real `backportbot serve` (Slack HTTP mode + GitHub webhooks) against its own stand-ins."""

    def __init__(self, where: Path, cfg: Path, slack: FakeSlack, github: FakeGitHub) -> None:
        self.where, self.slack, self.github = where, slack, github
        self.data = where / "data"
        self.db = self.data / "backportbot.db"
        self.procs = Processes(where / "logs")
        env = {**os.environ, **GIT_ENV, **SECRETS, "SLACK_API_URL": slack.url, "GITHUB_API_URL": github.url,
               "BACKPORTBOT_HOME": str(self.data)}
        self.bot: Bot = self.procs.start(["--config", str(cfg), "serve"], env)
        self.url = self.bot.url(90)

    def close(self) -> None:
        self.procs.close()
        self.slack.close()
        self.github.close()

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        for _ in range(50):
            try:
                con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
                try:
                    return con.execute(sql, args).fetchall()
                finally:
                    con.close()
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    raise
                time.sleep(0.1)
        raise RuntimeError(f"the database stayed locked: {sql}")

    def count(self, table: str) -> int:
        return int(self.query(f"select count(*) from {table}")[0][0])

    def traffic(self) -> int:
        return len(self.slack.calls) + len(self.slack.responses) + len(self.github.calls)

    def settle(self, quiet: float = 0.3, timeout: float = 90) -> None:
        """Until every inbox entry is handled, no attempt is under way, and the stand-ins heard
        nothing for `quiet` seconds (progress edits are spaced a second apart)."""
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            if not self.bot.alive():
                raise RuntimeError(f"the bot exited: {self.bot.stderr()}")
            busy = self.query("select (select count(*) from inbox where state = 'pending') + (select count(*) from "
                              f"attempts where state in ({', '.join(repr(s) for s in ACTIVE)}))")[0][0]
            now, seen = time.monotonic(), self.traffic()
            if seen != last or busy:
                last, since = seen, now
            elif now - since >= quiet:
                return
            time.sleep(0.05)
        raise RuntimeError("the bot did not settle")

    def effects(self) -> dict[str, Any]:
        """Everything a request, an approval, a digest or a batch changes."""
        tables = {name for (name,) in self.query("select name from sqlite_master where type = 'table'")}
        state: dict[str, Any] = {t: self.count(t) for t in ("inbox", "requests", "candidates", "digests")
                                 if t in tables}
        for t in sorted(tables):
            if t.startswith("batch"):
                state[t] = self.query(f"select * from {t}")
        state["attempts"] = self.query("select id, state, approved_by, cancel_requested_by from attempts order by id")
        state["prs"] = len(self.github.created_pulls())
        # What the bot says in public, but its refusals ("Sorry X, only maintainers can ...").
        state["posts"] = [text[:200] for a in self.slack.of("chat.postMessage") if not REFUSAL.search(
            text := str(a.get("text", "")))]
        return state

    def slack_send(self, body: str | bytes, headers: dict[str, str]) -> tuple[int, str]:
        return post(f"{self.url}/slack/events", body if isinstance(body, bytes) else body.encode(), headers)

    def signed_slack(self, request: tuple[str, str]) -> tuple[int, str]:
        body, kind = request
        return self.slack_send(body, slack_headers(body, kind))

    def gh_send(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        return post(f"{self.url}/github/webhook", body, headers)

    def refusals(self) -> int:
        said = [str(a.get("text", "")) for _, a in self.slack.calls] + [str(a.get("text", ""))
                                                                        for _, a in self.slack.responses]
        said += [str(c["body"]) for c in self.github.comments.values()]
        return sum(bool(REFUSAL.search(t)) for t in said)

    def approval_ts(self) -> tuple[str, str]:
        """(channel, ts) of the message that asks for an approval."""
        found = [a for a in self.slack.of("chat.postMessage") if str(a.get("text", "")).startswith("✋")]
        if not found:
            raise RuntimeError("no approval message was posted: "
                               + json.dumps([a.get("text") for a in self.slack.of("chat.postMessage")])[:2000])
        return str(found[-1]["channel"]), str(found[-1]["__ts"])


def diff(before: dict[str, Any], after: dict[str, Any], ignore: tuple[str, ...] = ()) -> str:
    out = []
    for k, now in after.items():
        was = before.get(k)
        if k in ignore or was == now:
            continue
        if isinstance(was, list) and isinstance(now, list) and now[:len(was)] == was:
            out.append(f"{k}: + {now[len(was):]!r:.300}")
        else:
            out.append(f"{k}: {was!r:.200} -> {now!r:.200}")
    return "; ".join(out)


# --- forged requests ------------------------------------------------------------------------------

def forged(served: Served, row: Row) -> None:
    now = int(time.time())
    slack_cases: list[tuple[str, bytes, dict[str, str]]] = []
    body, kind = slash("13 to rel", "CFORGE", served.slack.response_url("forged"))
    other, _ = slash("help", "CFORGE", served.slack.response_url("forged"))
    good = slack_headers(body, kind)

    def add(name: str, headers: dict[str, str], data: str | bytes = body) -> None:
        slack_cases.append((name, data if isinstance(data, bytes) else data.encode(), headers))

    add("no signature headers at all", {"Content-Type": kind})
    add("timestamp but no signature", {k: v for k, v in good.items() if k != "X-Slack-Signature"})
    add("signature but no timestamp", {k: v for k, v in good.items() if k != "X-Slack-Request-Timestamp"})
    add("signed with another secret", slack_headers(body, kind, "not-the-signing-secret"))
    add("all-zero signature", {**good, "X-Slack-Signature": "v0=" + "0" * 64})
    add("stale timestamp (6 minutes old), correctly signed", slack_headers(body, kind, ts=now - 360))
    add("timestamp 6 minutes in the future, correctly signed", slack_headers(body, kind, ts=now + 360))
    add("signature over another body (a `help` command)", slack_headers(other, kind))
    altered = body.replace("text=13+to+rel", "text=12+to+rel")
    add("captured signed body replayed with altered text", good, altered)
    add("signed body with a parameter appended", good, body + "&user_id=UADA")
    add("wrong version prefix (v1=)", {**good, "X-Slack-Signature": "v1=" + good["X-Slack-Signature"][3:]})
    add("signature without its v0= prefix", {**good, "X-Slack-Signature": good["X-Slack-Signature"][3:]})
    add("timestamp header changed after signing", {**good, "X-Slack-Request-Timestamp": str(now + 1)})
    add("non-numeric timestamp", {**good, "X-Slack-Request-Timestamp": "now"})
    add("signature of an empty body, body sent", {**slack_headers("", kind)})
    add("malformed JSON, unsigned", {"Content-Type": "application/json"}, "{")
    challenge = json.dumps({"type": "url_verification", "challenge": "forged-challenge", "token": "x"})
    add("url_verification challenge, unsigned", {"Content-Type": "application/json"}, challenge)
    ev_body, ev_kind = mention("backport 13 to rel", "CFORGE", "EvForged")
    add("app_mention event signed with another secret", slack_headers(ev_body, ev_kind, "nope-nope-nope"), ev_body)
    press = urlencode({"payload": json.dumps({
        "type": "block_actions", "user": {"id": "UADA"}, "team": {"id": "T1"}, "api_app_id": "A1", "token": "x",
        "trigger_id": "f.1", "channel": {"id": "CFORGE"}, "container": {"type": "message"},
        "message": {"ts": "1.0", "text": "✋"}, "actions": [{"type": "button", "action_id": "backport_approve",
                                                           "value": "approve", "block_id": "b", "action_ts": "1.0"}]})})
    add("approve button, unsigned", {"Content-Type": kind}, press)
    big = body + "&pad=" + "x" * (2 * 1024 * 1024)
    add("oversized body (2 MB), correctly signed", slack_headers(big, kind), big)
    add("signature header in upper-case hex", {**good, "X-Slack-Signature": "v0=" + good["X-Slack-Signature"][3:]
                                               .upper()})

    for name, data, headers in slack_cases:
        served.settle(0.1)
        before = served.effects()
        status, text = served.slack_send(data, headers)
        served.settle(0.3)
        acted = diff(before, served.effects())
        row.add(f"Slack: {name}", 200 <= status < 300 or bool(acted), f"HTTP {status} {text[:120]!r} {acted}")

    # Controls (not counted): a correctly signed request is taken; its exact replay is not taken twice.
    control_body, control_kind = slash("help", "CFORGE", served.slack.response_url("control"))
    control_headers = slack_headers(control_body, control_kind)
    inbox = served.count("inbox")
    status, _ = served.slack_send(control_body, control_headers)
    if status != 200 or served.count("inbox") != inbox + 1:
        row.warnings.append(f"CONTROL FAILED: a correctly signed Slack command was not taken (HTTP {status})")
    served.settle()
    before = served.effects()
    status, text = served.slack_send(control_body, control_headers)
    served.settle()
    row.add("Slack: exact replay of a taken command (same trigger id)", bool(diff(before, served.effects())),
            f"HTTP {status} {diff(before, served.effects())}")
    ev_body, ev_kind = mention("status 13", "CFORGE", "EvControl")
    served.signed_slack((ev_body, ev_kind))
    served.settle()
    before = served.effects()
    status, text = served.slack_send(ev_body, {**slack_headers(ev_body, ev_kind), "X-Slack-Retry-Num": "1",
                                               "X-Slack-Retry-Reason": "http_timeout"})
    served.settle()
    row.add("Slack: replayed event callback (same event id, re-signed)", bool(diff(before, served.effects())),
            f"HTTP {status} {diff(before, served.effects())}")

    # GitHub: #13 merged with a backport label, by someone with write access.
    captured = json.dumps(merged(13, ["bug", "backport/rel"])).encode()
    other_body = json.dumps(merged(13, ["bug"])).encode()
    gh_cases: list[tuple[str, bytes, dict[str, str], bool]] = []  # (name, body, headers, 2xx counts)

    def gh(name: str, headers: dict[str, str], data: bytes = captured, refuse: bool = True) -> None:
        gh_cases.append((name, data, headers, refuse))

    base = gh_headers(captured)
    gh("no X-Hub-Signature-256", {k: v for k, v in base.items() if k != "X-Hub-Signature-256"})
    gh("empty X-Hub-Signature-256", {**base, "X-Hub-Signature-256": ""})
    gh("all-zero sha256 signature", {**base, "X-Hub-Signature-256": "sha256=" + "0" * 64})
    gh("signed with another secret", {**base, "X-Hub-Signature-256": hub(captured, "another-secret")})
    gh("sha1 signature only (X-Hub-Signature)", {**{k: v for k, v in base.items() if k != "X-Hub-Signature-256"},
                                                 "X-Hub-Signature": hub(captured, algo="sha1")})
    gh("a valid HMAC-SHA1 in X-Hub-Signature-256", {**base, "X-Hub-Signature-256": hub(captured, algo="sha1")})
    gh("signature over another body", {**base, "X-Hub-Signature-256": hub(other_body)})
    gh("signed body altered by one byte", base, captured + b" ")
    gh("signature without its sha256= prefix", {**base, "X-Hub-Signature-256": hub(captured)[7:]})
    gh("signature with the md5 prefix", {**base, "X-Hub-Signature-256": hub(captured, algo="md5")})
    form = b"payload=" + quote(captured.decode()).encode()
    gh("form-encoded body (wrong content type), bad signature",
       {**base, "Content-Type": "application/x-www-form-urlencoded"}, form)
    gh("form-encoded body (wrong content type), correctly signed",
       {**gh_headers(form), "Content-Type": "application/x-www-form-urlencoded"}, form)
    gh("JSON body sent as text/plain, bad signature", {**base, "Content-Type": "text/plain",
                                                       "X-Hub-Signature-256": "sha256=" + "1" * 64})
    gh("signed non-JSON body", gh_headers(b"/backport 13 to rel", "issue_comment"), b"/backport 13 to rel")
    gh("signed JSON null", gh_headers(b"null"), b"null")
    oversized = b'{"pad": "' + b"x" * (26 * 1024 * 1024) + b'"}'
    gh("oversized body (26 MB), signed", gh_headers(oversized), oversized)

    for name, data, headers, refuse in gh_cases:
        served.settle(0.1)
        before = served.effects()
        status, text = served.gh_send(data, headers)
        served.settle(0.3)
        acted = diff(before, served.effects())
        row.add(f"GitHub: {name}", (refuse and 200 <= status < 300) or bool(acted),
                f"HTTP {status} {text[:120]!r} {acted}")

    # The control: the captured delivery, correctly signed, is taken once.
    # (200 "already handled" when a forged case above was taken with this very body.)
    status, text = served.gh_send(captured, gh_headers(captured))
    served.settle(1.2)
    if status not in (200, 202) or not served.query("select 1 from requests where source = '#13'"):
        row.warnings.append(f"CONTROL FAILED: a correctly signed GitHub delivery was not taken (HTTP {status} "
                            f"{text!r})")
    replays = [("captured body replayed under a new delivery id", gh_headers(captured)),
               ("captured body replayed without a delivery id", gh_headers(captured, delivery="")),
               ("captured body replayed as another event (issue_comment)", gh_headers(captured, "issue_comment")),
               ("captured body replayed as check_suite", gh_headers(captured, "check_suite"))]
    for name, headers in replays:
        before = served.effects()
        status, text = served.gh_send(captured, headers)
        served.settle()
        acted = diff(before, served.effects())
        # A replay under a new id is a redelivery: 200 "already handled" is the documented answer.
        row.add(f"GitHub: {name}", bool(acted), f"HTTP {status} {text[:80]!r} {acted}")


# --- non-maintainer actions -----------------------------------------------------------------------

def non_maintainers(served: Served, row: Row) -> None:
    resp = served.slack.response_url
    # Setup by the maintainer: #50 (not a fix) waits for approval; #20 fails (its file is not on rel).
    served.signed_slack(slash("50 to rel", "CSETUP", resp("setup-50")))
    served.signed_slack(slash("20 to rel", "CSETUP", resp("setup-20")))
    served.settle(1.2)
    states = dict(served.query("select source, state from attempts"))
    if states.get("#50") != "awaiting_approval" or states.get("#20") != "failed":
        row.warnings.append(f"setup: expected #50 awaiting approval and #20 failed, got {states}")
    channel, ts = served.approval_ts()

    def react(user: str, emoji: str, event_id: str) -> tuple[str, str]:
        return json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id,
                           "event_time": int(time.time()),
                           "event": {"type": "reaction_added", "user": user, "reaction": emoji,
                                     "item": {"type": "message", "channel": channel, "ts": ts},
                                     "event_ts": f"{time.time():.6f}"}}), "application/json"

    def button(user: str, value: str, trigger: str) -> tuple[str, str]:
        return urlencode({"payload": json.dumps({
            "type": "block_actions", "user": {"id": user}, "team": {"id": "T1"}, "api_app_id": "A1", "token": "x",
            "trigger_id": trigger, "channel": {"id": channel}, "container": {"type": "message"},
            "message": {"ts": ts, "text": "✋"}, "actions": [{"type": "button", "action_id": f"backport_{value}",
                                                             "value": value, "block_id": "b",
                                                             "action_ts": f"{time.time():.6f}"}]})}), \
            "application/x-www-form-urlencoded"

    def dm(user: str, text: str, event_id: str) -> tuple[str, str]:
        return json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id,
                           "event_time": int(time.time()),
                           "event": {"type": "message", "channel_type": "im", "user": user, "text": text,
                                     "channel": "DMAL", "ts": f"{time.time():.6f}"}}), "application/json"

    spoof_body, spoof_kind = slash("13 to rel", "CNM", resp("nm-spoof"), user="UMAL")
    spoof_body = spoof_body.replace("user_name=umal", "user_name=UADA")
    slack_cases: list[tuple[str, tuple[str, str]]] = [
        ("Slack: /backport 13 to rel", slash("13 to rel", "CNM", resp("nm-1"), user="UMAL")),
        ("Slack: /backport 13 to rel with user_name set to the maintainer's", (spoof_body, spoof_kind)),
        ("Slack: @-mention `backport 13 to rel`", mention("backport 13 to rel", "CNM", "EvNm1", user="UMAL")),
        ("Slack: direct message `backport 13 to rel`", dm("UMAL", "backport 13 to rel", "EvNm2")),
        ("Slack: /backport retry 20 rel (a failed attempt)", slash("retry 20 rel", "CNM", resp("nm-2"), "UMAL")),
        ("Slack: /backport cancel 50 rel (waiting for approval)", slash("cancel 50 rel", "CNM", resp("nm-3"),
                                                                        "UMAL")),
        ("Slack: ✅ reaction on the approval message", react("UMAL", "white_check_mark", "EvNm3")),
        ("Slack: ❌ reaction on the approval message", react("UMAL", "x", "EvNm4")),
        ("Slack: 🔁 reaction on the approval message", react("UMAL", "repeat", "EvNm5")),
        ("Slack: Approve button", button("UMAL", "approve", "nm.1")),
        ("Slack: Reject button", button("UMAL", "reject", "nm.2")),
        ("Slack: Retry button", button("UMAL", "retry", "nm.3")),
        ("Slack: /backport digest", slash("digest", "CNM", resp("nm-4"), "UMAL")),
        ("Slack: /backport batch rel", slash("batch rel", "CNM", resp("nm-5"), "UMAL")),
        ("Slack: /backport batch drop 13 rel", slash("batch drop 13 rel", "CNM", resp("nm-6"), "UMAL")),
    ]
    for name, request in slack_cases:
        before, refused = served.effects(), served.refusals()
        status, text = served.signed_slack(request)
        served.settle(1.2)
        after = served.effects()
        if served.refusals() == refused:
            row.warnings.append(f"{name}: no refusal was seen (was the case understood?)")
        row.add(name, bool(diff(before, after, ("inbox",))), f"HTTP {status} {diff(before, after)}")

    labelled = json.dumps(merged(13, ["bug", "backport/rel"], sender="tri", label="backport/rel")).encode()
    read_label = json.dumps(merged(13, ["bug", "backport/rel"], sender="mallory", label="backport/rel")).encode()
    gh_cases = [
        ("GitHub: a triage-only user's backport label after the merge", labelled, "pull_request"),
        ("GitHub: a read-only user's backport label after the merge", read_label, "pull_request"),
        ("GitHub: /backport comment by a user with read access",
         json.dumps(comment(13, "mallory", "/backport to rel")).encode(), "issue_comment"),
        ("GitHub: /backport comment by a user with triage access",
         json.dumps(comment(13, "tri", "/backport 13 to rel")).encode(), "issue_comment"),
        ("GitHub: /backport comment by a user with no access",
         json.dumps(comment(13, "eve", "/backport to rel")).encode(), "issue_comment"),
        ("GitHub: /backport retry comment by a user with read access",
         json.dumps(comment(20, "mallory", "/backport retry 20 rel")).encode(), "issue_comment"),
    ]
    for name, data, event in gh_cases:
        before, refused = served.effects(), served.refusals()
        status, text = served.gh_send(data, gh_headers(data, event))
        served.settle(0.6)
        after = served.effects()
        if served.refusals() == refused:
            row.warnings.append(f"{name}: no refusal was seen (was the case understood?)")
        row.add(name, bool(diff(before, after, ("inbox",))), f"HTTP {status} {text[:60]!r} {diff(before, after)}")

    # The control: the maintainer's ✅ is taken.
    before = served.effects()
    served.signed_slack(react("UADA", "white_check_mark", "EvNmControl"))
    served.settle(1.2)
    if dict(served.query("select source, approved_by from attempts")).get("#50") != "UADA":
        row.warnings.append(f"CONTROL FAILED: the maintainer's ✅ was not taken ({diff(before, served.effects())})")


# --- secrets --------------------------------------------------------------------------------------

SNOOP = """#!/bin/sh
# A fix's test script that looks for the bot's secrets.
echo "uid=$(id -u) pid=$$ ppid=$PPID"
echo "--- parent environ"; tr '\\0' '\\n' < /proc/$PPID/environ
echo "--- parent cmdline"; tr '\\0' ' ' < /proc/$PPID/cmdline; echo
echo "--- every environ"; for f in /proc/[0-9]*/environ; do echo "$f"; tr '\\0' '\\n' < "$f"; done
echo "--- data directory"; ls -laR {data} | head -200
find {data} -type f \\( -name '*.db*' -o -name '*.log' -o -name '*.toml' \\) -exec cat {{}} + | strings | head -5000
echo "--- config file"; cat {cfg}
echo "--- git config"; git config --list --show-origin
echo "--- env"; env
echo "--- home"; ls -la ~ ; cat ~/.gitconfig ~/.git-credentials 2>/dev/null
# what was found goes into the work tree too: the bot may commit and push it
{{ env; tr '\\0' '\\n' < /proc/$PPID/environ; cat /proc/[0-9]*/environ | tr '\\0' '\\n'; }} > found-secrets.txt 2>&1
git add -A 2>/dev/null
echo escaped > {data}/escaped 2>/dev/null
exit {code}
"""


def secrets_run(root: Path, isolation: str, row: Row) -> None:
    where = root / f"secrets-{isolation}"
    where.mkdir()
    data = where / "data"
    cfg = where / "bot.toml"
    benign: dict[str, str | None] = {"ci/test.sh": "#!/bin/sh\nexit 0\n", "ci/check.sh": "#!/bin/sh\nexit 0\n"}
    snoop = {code: SNOOP.format(data=data, cfg=cfg, code=code) for code in (0, 1)}
    _, remote, shas = build_repo(where, [
        (12, "Fix overflow in handle", {"src/server.c": SERVER.replace("return -1;", "return 0;"),
                                        "ci/test.sh": snoop[0]}),
        (13, "Fix the guide", {"docs/guide.txt": "the guide\n", "ci/check.sh": snoop[1]})], base=benign)
    commands = ('[[repos.commands]]\nname = "test"\nrun = "sh ci/test.sh"\n'
                '[[repos.commands]]\nname = "check"\nrun = "sh ci/check.sh"\n')
    serve_config(where, remote, isolation, commands)
    slack, github = FakeSlack(), FakeGitHub()
    github.add_merged_pull(12, "Fix overflow in handle", shas[12], ["bug"])
    github.add_merged_pull(13, "Fix the guide", shas[13], ["bug"])
    served = Served(where, cfg, slack, github)
    try:
        served.signed_slack(slash("12 to rel", "CSEC", slack.response_url("sec-12")))
        served.signed_slack(slash("13 to rel", "CSEC", slack.response_url("sec-13")))
        served.settle(1.5, timeout=180)
        outcome = ", ".join(f"{src} {state}" for src, state in served.query("select source, state from attempts"))
        served.procs.close()  # stopped: its log is complete
        found = reachable(served, remote)
        ran = "uid=" in found
    finally:
        served.close()
    leaked = {name: [where_ for where_, text in found_in(served, remote) if value in text]
              for name, value in SECRETS.items() if value in found}
    if not ran:
        row.warnings.append(f"{isolation}: the test script did not run (no `uid=` in its output): not measured")
    for name in SECRETS:
        row.add(f"{isolation}: {name}", name in leaked,
                f"found in {', '.join(leaked.get(name, [])) or 'nothing'} (attempts: {outcome})")


def found_in(served: Served, remote: Path) -> Iterator[tuple[str, str]]:
    """Everything the bot wrote or sent that someone could read, by where it is."""
    for path in sorted(served.data.rglob("*")) + sorted((served.where / "logs").rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                yield str(path.relative_to(served.where)), path.read_bytes().decode("latin-1")
            except OSError:
                continue
    yield "the bot's stdout", "\n".join(served.bot.lines)
    yield "Slack stand-in (messages)", json.dumps([args for _, args in served.slack.calls], ensure_ascii=False)
    yield "Slack stand-in (response_url)", json.dumps(served.slack.responses, ensure_ascii=False)
    # Bodies only: the Authorization header of the bot's own API calls is where the token belongs.
    yield "GitHub stand-in (PR bodies, comments, requests)", json.dumps(
        [[c.method, c.path, c.query, c.body] for c in served.github.calls], ensure_ascii=False)
    pushed = subprocess.run(["git", "-C", str(remote), "log", "-p", "--all", "--format=%H %s%n%b"],
                            capture_output=True, text=True, errors="replace", check=False).stdout
    yield "the pushed branches (remote.git)", pushed


def reachable(served: Served, remote: Path) -> str:
    return "\n".join(text for _, text in found_in(served, remote))


# --- injections -----------------------------------------------------------------------------------

def hostile_texts(sentinel: Path) -> list[tuple[str, str]]:
    """(name, what follows `/backport `); {S} is replaced by a file path that must never appear."""
    big = "a" * 100_000
    return [
        ("<!channel> as the ref", "<!channel> to rel"),
        ("<!here> alone", "<!here>"),
        ("<!everyone> before a valid request", "<!everyone> 12 to rel"),
        ("<@U123> as the ref", "<@U123>"),
        ("<@U123> as a status ref", "status <@U123>"),
        ("<@U123> as the branch", "12 to <@U123>"),
        ("<#C123|general> channel link", "<#C123|general> to rel"),
        ("<!subteam^S123|@core> group mention", "why <!subteam^S123|@core> rel"),
        ("@everyone @here @channel as text", "@everyone @here @channel"),
        ("markdown link injection", "[release notes](https://evil.example/x) to rel"),
        ("Slack link injection", "<https://evil.example|release notes> to rel"),
        ("Slack link as the branch", "why 12 <https://evil.example|rel>"),
        ("``` fence breaking out with a mention", "```\n<!channel>\n``` to rel"),
        ("``` fence as the ref", "``` to rel"),
        ("mrkdwn quote and formatting", "> *bold* _it_ ~s~ `code` to rel"),
        ("100,000-character ref", big + " to rel"),
        ("100,000 characters of <!channel>", "<!channel>" * 10_000),
        ("100,000-character branch", "12 to " + big),
        ("10,000 branches", "12 to " + " ".join(["rel"] * 10_000)),
        ("NUL and BEL control characters", "12\x00\x07 to rel"),
        ("ANSI colour escapes", "\x1b[31m12\x1b[0m to rel"),
        ("terminal title escape", "status \x1b]0;pwned\x07"),
        ("C1 CSI character", "why \x9b2J 12 rel"),
        ("CR/LF line injection", "status 12\r\n<!channel> /backport digest"),
        ("shell $(...) in the ref", "$(touch {S}-1) to rel"),
        ("shell backticks in the ref", "`touch {S}-2` to rel"),
        ("shell ; in the branch", "12 to rel;touch {S}-3"),
        ("shell && and | in the ref", "12&&touch {S}-4|cat to rel"),
        ("shell $(...) in a status ref", "status $(touch {S}-5)"),
        ("shell $(...) in a why branch", "why 12 rel$(touch {S}-6)"),
        ("ref starting with -", "-h to rel"),
        ("--output=x as the ref", "--output={S}-7 to rel"),
        ("--output=x as a status ref", "status --output={S}-8"),
        ("--output=x as the branch", "12 to --output={S}-9"),
        ("--upload-pack as a why ref", "why --upload-pack=touch\t{S}-10 rel"),
        ("--exec as a retry ref", "retry --exec=touch\t{S}-11 rel"),
        ("relative output option -o", "status -o{S}-12"),
        ("git revision syntax as the ref", "HEAD~1 to rel"),
        ("revision range with an option", "deadbee..--output={S}-13 to rel"),
        ("path traversal in the branch", "12 to ../../../../etc/passwd"),
        ("unicode bidi override in the branch", "12 to rel\u202e"),
        ("unicode bidi isolates around the verb", "\u2066status\u2069 1\u202e2"),
        ("zero-width space in the ref", "1\u200b2 to rel"),
        ("PR URL carrying a mention", "https://github.com/acme/server/pull/12?x=<!channel> to rel"),
        ("number too large", "99999999999999999999999 to rel"),
        ("SQL in the ref", "12'; drop table attempts;-- to rel"),
        ("format strings", "{0.__class__} %s%s%n to rel"),
        ("HTML script", "<script>alert(1)</script> to rel"),
        ("glob as the branch", "12 to *"),
    ]


def slack_reply_problems(texts: list[str]) -> list[str]:
    problems = []
    for text in texts:
        if "<" in text or ">" in text:
            problems.append(f"raw Slack control syntax in {text[:160]!r}")
        problems.extend(common_problems(text))
    return problems


def common_problems(text: str) -> list[str]:
    problems = []
    if m := CONTROL.search(text):
        problems.append(f"raw control character {m.group()!r} in {text[:160]!r}")
    if m := BIDI.search(text):
        problems.append(f"raw bidi character {m.group()!r} in {text[:160]!r}")
    if len(text) > MAX_REPLY:
        problems.append(f"a reply of {len(text)} characters")
    return problems


def texts_in(args: dict[str, Any]) -> list[str]:
    out = [str(args.get("text", ""))]
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks or []:
        text = block.get("text")
        if isinstance(text, dict):
            out.append(str(text.get("text", "")))
    return out


def effects_of(sentinel: Path, n: str) -> list[str]:
    """A file named after the case anywhere it could land: the temp tree and the bot's cwd."""
    name = f"{sentinel.name}-{n}"
    found = [str(p) for p in sentinel.parent.parent.rglob(f"*{name}*")]
    found += [str(p) for p in ROOT.glob(f"*{name}*")]
    return [f"file effect: {p}" for p in found if re.search(rf"{re.escape(name)}($|[^0-9])", p)]


def injections_slack(served: Served, root: Path, row: Row) -> None:
    sentinel = root / "effects" / "PWNED"
    sentinel.parent.mkdir()
    cases = hostile_texts(sentinel)
    attempts_table = "attempts"
    for i, (name, text) in enumerate(cases, start=1):
        text = text.replace("{S}", str(sentinel))
        channel = f"CINJ{i}"
        body, kind = slash(text, channel, served.slack.response_url(f"inj-{i}"))
        posts_before = len(served.slack.of("chat.postMessage"))
        status, answer = served.signed_slack((body, kind))
        served.settle(0.3)
        replies = [t for m, args in served.slack.calls if args.get("channel") == channel
                   and m.startswith("chat.") for t in texts_in(args)]
        replies += [str(args.get("text", "")) for who, args in served.slack.responses if who == f"inj-{i}"]
        problems = slack_reply_problems(replies + [answer])
        problems += [e for n in re.findall(rf"{re.escape(str(sentinel))}-(\d+)", text) for e in effects_of(sentinel, n)]
        if "digest" in text and len(served.slack.of("chat.postMessage")) > posts_before and any(
                "digest" in r.lower() or "candidate" in r.lower() for r in replies):
            problems.append("a second command on a new line ran (a digest was posted)")
        if status >= 500:
            problems.append(f"HTTP {status}")
        if not replies:
            row.warnings.append(f"Slack: {name}: no answer (was the case understood?)")
        try:
            served.count(attempts_table)
        except sqlite3.OperationalError as e:
            problems.append(f"database damaged: {e}")
        row.add(f"Slack: {name}", bool(problems), "; ".join(problems)[:600] or f"{len(replies)} replies ok")
    # Two through @-mentions (the mention prefix is stripped before the grammar sees the rest).
    for i, (name, text) in enumerate([("@-mention with <!channel>", "why did <!channel> fail on rel?"),
                                      ("@-mention with ANSI and bidi", "status \x1b[2J\u202e12")], start=1):
        channel = f"CMEN{i}"
        served.signed_slack(mention(text, channel, f"EvInj{i}"))
        served.settle(0.3)
        replies = [t for m, args in served.slack.calls if args.get("channel") == channel
                   and m.startswith("chat.") for t in texts_in(args)]
        problems = slack_reply_problems(replies)
        if not replies:
            row.warnings.append(f"Slack: {name}: no answer (was the case understood?)")
        row.add(f"Slack: {name}", bool(problems), "; ".join(problems)[:600] or f"{len(replies)} replies ok")


MARKUP = re.compile(r"!?\[[^\]\n]*\]\([^)\n]*\)|<[A-Za-z][^>\n]*>")  # [text](url), ![alt](url), <tag ...>
MENTION = re.compile(r"(?<![\w\u200d])@[A-Za-z0-9][\w-]*(/[\w-]+)?")


def injections_github(served: Served, row: Row) -> None:
    cases = [("an @-team as the ref", "/backport @acme/core to rel"),
             ("an @-user as the branch", "/backport 13 to @mallory"),
             ("a why about an @-user", "/backport why @mallory rel"),
             ("a status with a ``` fence and a mention", "/backport status ```\n@acme/core\n```"),
             ("a 100,000-character ref", "/backport " + "9" * 100_000 + " to rel"),
             ("a markdown link as the ref", "/backport [release notes](https://evil.example/x) to rel"),
             ("a markdown image as the branch", "/backport 13 to ![x](https://evil.example/pixel.png)"),
             ("an HTML img tag as the ref", "/backport <img src=https://evil.example/pixel.png> to rel")]
    for name, text in cases:
        seen = set(served.github.comments)
        data = json.dumps(comment(13, "ada", text)).encode()
        status, _ = served.gh_send(data, gh_headers(data, "issue_comment"))
        served.settle(0.3)
        replies = [c["body"] for cid, c in served.github.comments.items() if cid not in seen]
        problems = []
        for reply in replies:
            if m := MENTION.search(reply):
                problems.append(f"unescaped mention {m.group()!r} in {reply[:160]!r}")
            # Only what came from the comment: the bot's own `<PR or commit>` is not an injection.
            if m := next((m for m in MARKUP.finditer(reply) if m.group() in text), None):
                problems.append(f"markdown or HTML that GitHub renders, {m.group()!r}, in {reply[:160]!r}")
            problems.extend(common_problems(reply))
        if not replies:
            row.warnings.append(f"GitHub comment: {name}: no answer (HTTP {status})")
        row.add(f"GitHub comment: {name}", bool(problems), "; ".join(problems)[:600] or f"{len(replies)} replies ok")


def injections_console(root: Path, row: Row) -> None:
    where = root / "console"
    where.mkdir()
    _, remote, _ = build_repo(where, [(12, "Fix overflow in handle",
                                       {"src/server.c": SERVER.replace("return -1;", "return 0;")})])
    cfg = where / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n[[repos]]\nname = "demo"\n'
                   f'url = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')
    sentinel = where / "PWNED"
    cases = [("ANSI clear screen and cursor home", "/backport \x1b[2J\x1b[H12 to rel"),
             ("terminal title escape", "/backport status \x1b]0;owned\x07"),
             ("hidden text escape in the branch", "/backport 12 to rel\x1b[8m"),
             ("C1 CSI character", "/backport \x9b31m to rel"),
             ("escape in a free-form why", "why did \x1b[31m12 fail on rel?"),
             ("unicode bidi override", "/backport \u202e21 to ler"),
             ("reaction with an escape for an emoji", "react 1 \x1b[2J"),
             ("100,000-character branch", "/backport 12 to " + "x" * 100_000),
             ("shell $(...) in the ref", f"/backport $(touch {sentinel}-1) to rel"),
             ("--output=x as a status ref", f"/backport status --output={sentinel}-2")]
    marks = [f"as casemark{i}: x" for i in range(len(cases))]
    lines = [line for pair in zip(marks, (text for _, text in cases), strict=True) for line in pair]
    env = {**os.environ, **GIT_ENV, **SECRETS, "BACKPORTBOT_HOME": str(where / "data")}
    done = subprocess.run([*backportbot(), "--config", str(cfg), "console"], input="\n".join(lines) + "\n", env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    parts = re.split(r"^\[\d+\] casemark\d+: x$", done.stdout, flags=re.M)[1:]
    if done.returncode != 0 or len(parts) != len(cases):
        row.warnings.append(f"console: exit {done.returncode}, {len(parts)} of {len(cases)} answers: "
                            f"{done.stderr[-800:]}")
    for (name, text), part in zip(cases, parts + [""] * len(cases), strict=False):
        bot_lines, in_bot = [], False
        for line in part.splitlines():
            header = re.match(r"^\s*\[\d+\]( \(edited\))? (\S+): ", line)
            if header:
                in_bot = header.group(2) == "bot"
            elif re.match(r"^    \S+ reacted ", line):  # the console's echo of the person's own reaction
                in_bot = False
            if in_bot:
                bot_lines.append(line)
        problems = [p for line in bot_lines for p in common_problems(line)]
        # The answer to the marker line itself says `x` is not a command: one bot line is it. A
        # reaction to a message that asks for none is answered by silence.
        if len(bot_lines) <= 1 and not text.startswith("react "):
            row.warnings.append(f"console: {name}: no answer (was the case understood?)")
        problems += [e for n in re.findall(rf"{re.escape(str(sentinel))}-(\d+)", text) for e in effects_of(sentinel, n)]
        if "Traceback" in part:
            problems.append("a traceback")
        row.add(f"console: {name}", bool(problems), "; ".join(problems)[:600] or f"{len(bot_lines)} bot lines ok")
    if "Traceback" in done.stderr:
        row.warnings.append(f"console: a traceback on stderr: {done.stderr[-800:]}")


# --- tracebacks -----------------------------------------------------------------------------------

def tracebacks_http(served: Served, row: Row) -> None:
    host = served.url.removeprefix("http://")
    now = str(int(time.time()))
    sig_any = "v0=" + "0" * 64

    def slack_raw(body: bytes, extra: str = "", kind: str = "application/x-www-form-urlencoded") -> bytes:
        return (f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n").encode() + body

    def signed_slack(body: str | bytes, kind: str = "application/x-www-form-urlencoded") -> bytes:
        data = body if isinstance(body, bytes) else body.encode()
        headers = slack_headers(data, kind, ts=int(time.time()))
        return slack_raw(data, "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k != "Content-Type"), kind)

    def gh_raw(body: bytes, headers: dict[str, str]) -> bytes:
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (f"POST /github/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n{lines}\r\n").encode() + body

    def signed_gh(body: bytes, event: str = "pull_request", extra: dict[str, str] | None = None) -> bytes:
        return gh_raw(body, {**gh_headers(body, event), **(extra or {})})

    def event(inner: dict[str, Any]) -> str:
        return json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvTb" +
                           str(time.time_ns()), "event_time": int(time.time()), "event": inner})

    def action(payload: dict[str, Any]) -> str:
        return urlencode({"payload": json.dumps(payload)})

    approve = {"type": "button", "action_id": "backport_approve", "value": "approve", "block_id": "b",
               "action_ts": "1.0"}
    button: dict[str, Any] = {"type": "block_actions", "user": {"id": "UADA"}, "team": {"id": "T1"}, "api_app_id": "A1",
              "token": "x", "trigger_id": "tb.1", "channel": {"id": "CTB"}, "container": {"type": "message"},
              "message": {"ts": "1.0"}, "actions": [approve]}
    slash_no_user = urlencode({"command": "/backport", "text": "help", "channel_id": "CTB", "team_id": "T1",
                               "trigger_id": "tb.2", "response_url": served.slack.response_url("tb")})
    slash_no_channel = urlencode({"command": "/backport", "text": "help", "user_id": "UADA", "team_id": "T1",
                                  "trigger_id": "tb.3", "response_url": served.slack.response_url("tb")})
    ok_pr = json.dumps(merged(13, ["bug"])).encode()
    cases: list[tuple[str, bytes]] = [
        ("GET /slack/events", f"GET /slack/events HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()),
        ("GET /github/webhook", f"GET /github/webhook HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()),
        ("GET /health", f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()),
        ("GET /healthz", f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()),
        ("GET /", f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()),
        ("HEAD /health", f"HEAD /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()),
        ("OPTIONS /slack/events", f"OPTIONS /slack/events HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
         .encode()),
        ("DELETE /github/webhook", f"DELETE /github/webhook HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
         .encode()),
        ("garbage request line", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n"),
        ("HTTP/2 preface on HTTP/1.1", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("100,000-character path", f"GET /{'a' * 100_000} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()),
        ("200 KB header", f"GET /health HTTP/1.1\r\nHost: {host}\r\nX-Big: {'b' * 200_000}\r\n\r\n".encode()),
        ("non-ASCII bytes in a header", f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\n".encode()
         + b"X-Slack-Signature: v0=\xff\xfe\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"),
        ("Slack: empty body, no headers", slack_raw(b"")),
        ("Slack: non-numeric timestamp", slack_raw(b"text=x", f"X-Slack-Request-Timestamp: now\r\n"
                                                              f"X-Slack-Signature: {sig_any}\r\n")),
        ("Slack: float timestamp", slack_raw(b"text=x", f"X-Slack-Request-Timestamp: {now}.5\r\n"
                                                        f"X-Slack-Signature: {sig_any}\r\n")),
        ("Slack: 400-digit timestamp", slack_raw(b"text=x", f"X-Slack-Request-Timestamp: {'9' * 400}\r\n"
                                                            f"X-Slack-Signature: {sig_any}\r\n")),
        ("Slack: non-UTF-8 body with a fresh timestamp", slack_raw(b"\xff\xfe\xfd", f"X-Slack-Request-Timestamp: "
                                                                                   f"{now}\r\nX-Slack-Signature: "
                                                                                   f"{sig_any}\r\n")),
        ("Slack: Content-Length -1", f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nContent-Length: -1\r\n"
                                     f"Connection: close\r\n\r\n".encode()),
        ("Slack: Content-Length not a number", f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nContent-Length: "
                                               f"abc\r\nConnection: close\r\n\r\n".encode()),
        ("Slack: Content-Length larger than the body", f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\n"
                                                       f"Content-Length: 1000\r\nConnection: close\r\n\r\nabc"
         .encode()),
        ("Slack: broken chunked encoding", f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: "
                                           f"chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".encode()),
        ("Slack: gzip Content-Encoding over garbage", slack_raw(b"not gzip", f"Content-Encoding: gzip\r\n"
                                                                             f"X-Slack-Request-Timestamp: {now}\r\n"
                                                                             f"X-Slack-Signature: {sig_any}\r\n")),
        ("Slack: signed payload=notjson", signed_slack("payload=notjson")),
        ("Slack: signed {", signed_slack("{", "application/json")),
        ("Slack: signed [1,2]", signed_slack("[1,2]", "application/json")),
        ("Slack: signed null", signed_slack("null", "application/json")),
        ("Slack: signed payload=[]", signed_slack("payload=%5B%5D")),
        ("Slack: signed payload={}", signed_slack("payload=%7B%7D")),
        ("Slack: signed non-UTF-8 body", signed_slack(b"text=\xff\xfe")),
        ("Slack: signed multipart garbage", signed_slack("--x\r\ngarbage", "multipart/form-data; boundary=x")),
        ("Slack: signed slash command without user_id", signed_slack(slash_no_user)),
        ("Slack: signed slash command without channel_id", signed_slack(slash_no_channel)),
        ("Slack: signed event_callback without event", signed_slack(json.dumps(
            {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": "EvTbNone"}),
            "application/json")),
        ("Slack: signed app_mention without user", signed_slack(event(
            {"type": "app_mention", "text": "<@UBOT> help", "channel": "CTB", "ts": "1.0"}), "application/json")),
        ("Slack: signed app_mention without channel", signed_slack(event(
            {"type": "app_mention", "user": "UADA", "text": "<@UBOT> help", "ts": "1.0"}), "application/json")),
        ("Slack: signed app_mention with a non-string text", signed_slack(event(
            {"type": "app_mention", "user": "UADA", "text": ["help"], "channel": "CTB", "ts": "1.0"}),
            "application/json")),
        ("Slack: signed reaction_added without item", signed_slack(event(
            {"type": "reaction_added", "user": "UADA", "reaction": "x"}), "application/json")),
        ("Slack: signed reaction_added with item a string", signed_slack(event(
            {"type": "reaction_added", "user": "UADA", "reaction": "x", "item": "zzz"}), "application/json")),
        ("Slack: signed button with an unknown value", signed_slack(action(
            {**button, "actions": [{**approve, "value": "nuke"}]}))),
        ("Slack: signed button without user", signed_slack(action({k: v for k, v in button.items() if k != "user"}))),
        ("Slack: signed button without actions", signed_slack(action({**button, "actions": []}))),
        ("GitHub: empty body, no headers", gh_raw(b"", {})),
        ("GitHub: non-UTF-8 body, no signature", gh_raw(b"\xff\xfe", {"X-GitHub-Event": "pull_request"})),
        ("GitHub: signed {}", signed_gh(b"{}")),
        ("GitHub: signed non-UTF-8 body", signed_gh(b"\xff\xfe{")),
        ("GitHub: signed 10,000-deep nested JSON", signed_gh(b"[" * 10_000 + b"]" * 10_000)),
        ("GitHub: signed number 2**70 as the PR number", signed_gh(ok_pr.replace(b'"number": 13', b'"number": '
                                                                                + str(2 ** 70).encode()))),
        ("GitHub: signed action only", signed_gh(b'{"action": "closed"}')),
        ("GitHub: signed issue_comment with a null user", signed_gh(json.dumps(
            {**comment(13, "ada", "/backport to rel"), "comment": {**comment(13, "ada", "x")["comment"],
                                                                   "user": None}}).encode(), "issue_comment")),
        ("GitHub: signed check_suite without head_branch", signed_gh(json.dumps(complete(
            M.WebhookCheckSuiteCompleted, {"action": "completed", "repository": {"full_name": "acme/server"},
                                           "check_suite": {"head_branch": None}})).encode(), "check_suite")),
        ("GitHub: signed pull_request for another repository", signed_gh(ok_pr.replace(b"acme/server", b"evil/x"))),
        ("GitHub: non-ASCII event name", gh_raw(b"{}", {"X-GitHub-Event": "pull_request\u00e9".encode("latin-1")
                                                        .decode("latin-1"), "X-GitHub-Delivery": "x",
                                                        "X-Hub-Signature-256": hub(b"{}")})),
        ("GitHub: 10,000-character delivery id", signed_gh(b"{}", extra={"X-GitHub-Delivery": "d" * 10_000})),
    ]
    for name, data in cases:
        status, answer = raw_http(served.url, data)
        bad = status >= 500 or "Traceback" in answer
        row.add(f"HTTP {name}", bad, f"HTTP {status} {answer[:300]!r}")
    if not served.bot.alive():
        row.warnings.append("the bot died during the malformed HTTP requests")


def tracebacks_config(root: Path, row: Row) -> None:
    where = root / "configs"
    where.mkdir()
    repo = GitRepo.create(where / "repo")
    repo.commit("Initial import", {"README": "x\n"})
    repo.branch("rel")
    ok_repo = f'[[repos]]\nname = "demo"\npath = "{repo.path}"\nbranches = [{{ name = "rel" }}]\n'
    (where / "a-file").write_text("x")
    (where / "not-git").mkdir()
    configs: list[tuple[str, bytes | None]] = [
        ("empty file", b""),
        ("binary garbage", bytes(range(256)) * 4),
        ("not UTF-8", b"[bot]\nmaintainers = [\"\xff\xfe\"]\n"),
        ("a UTF-8 BOM first", b"\xef\xbb\xbf" + ok_repo.encode()),
        ("a NUL byte inside", b"[bot]\x00\n" + ok_repo.encode()),
        ("invalid TOML", b"[bot\nmaintainers = \n"),
        ("duplicate keys", b"[bot]\nworkers = 1\nworkers = 2\n" + ok_repo.encode()),
        ("repos is a string", b'repos = "x"\n'),
        ("repos is empty", b"repos = []\n"),
        ("a repo without branches", f'[[repos]]\nname = "demo"\npath = "{repo.path}"\n'.encode()),
        ("branches is a string", f'[[repos]]\nname = "demo"\npath = "{repo.path}"\nbranches = "rel"\n'.encode()),
        ("a branch that is an integer", f'[[repos]]\nname = "demo"\npath = "{repo.path}"\nbranches = [1]\n'.encode()),
        ("port is text", b'[serve]\nport = "abc"\n' + ok_repo.encode()),
        ("port out of range", b"[serve]\nport = 99999\n" + ok_repo.encode()),
        ("port is inf", b"[serve]\nport = inf\n" + ok_repo.encode()),
        ("workers is a huge integer", b"[bot]\nworkers = 99999999999999999999999999\n" + ok_repo.encode()),
        ("unknown isolation", b'[bot]\nisolation = "docker"\n' + ok_repo.encode()),
        ("unknown top-level key", b"[bogus]\nx = 1\n" + ok_repo.encode()),
        ("bad cron", b'[digest]\nenabled = true\ncron = "every tuesday"\n' + ok_repo.encode()),
        ("cron of 100,000 characters", b'[digest]\ncron = "' + b"* " * 50_000 + b'"\n' + ok_repo.encode()),
        ("unknown time zone", b'[digest]\ntimezone = "Mars/Olympus_Mons"\n' + ok_repo.encode()),
        ("time zone with a path", b'[digest]\ntimezone = "../../../../etc/passwd"\n' + ok_repo.encode()),
        ("slack and discord together", b'[chat]\nadapters = ["slack", "discord"]\n' + ok_repo.encode()),
        ("a secret key", b'[bot]\ntoken = "x"\n' + ok_repo.encode()),
        ("a token-shaped value", f'[bot]\nmaintainers = ["{"ghp_" + "a" * 36}"]\n'.encode() + ok_repo.encode()),
        ("a repository name with a path", f'[[repos]]\nname = "../x"\npath = "{repo.path}"\n'
                                          f'branches = [{{ name = "rel" }}]\n'.encode()),
        ("a path that does not exist",
         b'[[repos]]\nname = "x"\npath = "/nonexistent/x"\nbranches = [{ name = "r" }]\n'),
        ("a path that is a file", f'[[repos]]\nname = "x"\npath = "{where / "a-file"}"\nbranches = [{{ name = "r" }}]\n'
         .encode()),
        ("a path that is not a git repository", f'[[repos]]\nname = "x"\npath = "{where / "not-git"}"\n'
                                                f'branches = [{{ name = "r" }}]\n'.encode()),
        ("a branch that starts with -", f'[[repos]]\nname = "x"\npath = "{repo.path}"\nmain_branch = "--output=x"\n'
                                        f'branches = [{{ name = "rel" }}]\n'.encode()),
        ("url and path both", f'[[repos]]\nname = "x"\npath = "{repo.path}"\nurl = "file:///x"\n'
                              f'branches = [{{ name = "rel" }}]\n'.encode()),
        ("data_dir is a file", f'[bot]\ndata_dir = "{where / "a-file"}"\n'.encode() + ok_repo.encode()),
        ("1,000-deep nested arrays", b"x = " + b"[" * 1000 + b"]" * 1000 + b"\n" + ok_repo.encode()),
        ("100,000-deep nested arrays", b"x = " + b"[" * 100_000 + b"]" * 100_000 + b"\n"),
        ("1,000-deep nested inline tables", b"x = " + b"{a = " * 1000 + b"1" + b"}" * 1000 + b"\n"),
        ("10 MB of one line", b"# " + b"x" * 10_000_000 + b"\n" + ok_repo.encode()),
        ("the file does not exist", None),
        ("the file is a directory", b"DIR"),
    ]

    def check(n: int, name: str, text: bytes | None) -> Case:
        path = where / f"config-{n}.toml"
        if text == b"DIR":
            path.mkdir()
        elif text is not None:
            path.write_bytes(text)
        done = subprocess.run([*backportbot(), "check-config", str(path)], cwd=ROOT, capture_output=True,
                              env={**os.environ, **GIT_ENV}, timeout=60, check=False)
        out = (done.stdout + done.stderr).decode(errors="replace")
        bad = "Traceback" in out or done.returncode not in (0, 2)
        return Case(f"check-config: {name}", bad, f"exit {done.returncode}: {out.strip()[-400:]!r}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for case in pool.map(lambda args: check(*args), [(n, name, text) for n, (name, text) in enumerate(configs)]):
            row.cases.append(case)


# --- main -----------------------------------------------------------------------------------------

def main_server(root: Path) -> Served:
    """The bot most classes talk to: #12 and #13 clean fixes, #20 a fix whose file rel lacks, #50
    not a fix (it waits for a maintainer's approval)."""
    where = root / "main"
    where.mkdir()
    _, remote, shas = build_repo(where, [
        (12, "Fix overflow in handle", {"src/server.c": SERVER.replace("return -1;", "return 0;")}),
        (13, "Fix a typo in the guide", {"docs/guide.txt": "the guide\n"}),
        (19, "Add the cache module", {"src/cache.c": "int cache_get(void) {\n    return 1;\n}\n"}),
        (20, "Fix cache_get", {"src/cache.c": "int cache_get(void) {\n    return 2;\n}\n"}),
        (50, "Add a banner", {"README": "server\nbanner\n"})])
    cfg = serve_config(where, remote)
    slack, github = FakeSlack(), FakeGitHub()
    github.permissions = {"ada": "admin", "mallory": "read", "tri": "triage"}
    for number, title, labels in ((12, "Fix overflow in handle", ["bug"]), (13, "Fix a typo in the guide", ["bug"]),
                                  (19, "Add the cache module", ["enhancement"]), (20, "Fix cache_get", ["bug"]),
                                  (50, "Add a banner", ["enhancement"])):
        github.add_merged_pull(number, title, shas[number], labels)
    return Served(where, cfg, slack, github)


CLASSES = ("forged", "non-maintainer", "secrets", "injections", "tracebacks")


def run(only: set[str]) -> list[Row]:
    rows = {"forged": Row("forged requests accepted (Slack + GitHub)"),
            "non-maintainer": Row("non-maintainer actions accepted"),
            "secrets-bwrap": Row("secrets exposed, bubblewrap isolation (of 6)"),
            "secrets-none": Row('secrets exposed, isolation = "none" (of 6; EXPECTED to leak: the control)'),
            "injections": Row("injections that got through"),
            "tracebacks": Row("tracebacks (HTTP routes + check-config)")}
    for key in ("secrets-bwrap", "secrets-none"):
        rows[key].count = lambda row: (len(SECRETS), sum(c.succeeded for c in row.cases))
    selected = [key for key in rows if key.split("-")[0] in {o.split("-")[0] for o in only}]
    tmp = Path(tempfile.mkdtemp(prefix="backportbot-attacks-"))
    served: Served | None = None
    try:
        if only & {"forged", "non-maintainer", "injections", "tracebacks"}:
            served = main_server(tmp)
        secret_jobs: dict[str, concurrent.futures.Future[None]] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        if "secrets" in only:
            from adapters.sandbox import bubblewrap

            problem = bubblewrap.unusable()
            if problem is None:
                secret_jobs["secrets-bwrap"] = pool.submit(secrets_run, tmp, "bubblewrap", rows["secrets-bwrap"])
            else:
                rows["secrets-bwrap"].skipped = f"bubblewrap is unusable here: {problem}"
            secret_jobs["secrets-none"] = pool.submit(secrets_run, tmp, "none", rows["secrets-none"])
        if "tracebacks" in only:
            secret_jobs["config"] = pool.submit(tracebacks_config, tmp, rows["tracebacks"])
        if served is not None:
            if "forged" in only:
                forged(served, rows["forged"])
            if "non-maintainer" in only:
                non_maintainers(served, rows["non-maintainer"])
            if "injections" in only:
                injections_slack(served, tmp, rows["injections"])
                injections_github(served, rows["injections"])
                injections_console(tmp, rows["injections"])
            if "tracebacks" in only:
                tracebacks_http(served, rows["tracebacks"])
            served.settle(0.3)
            log = served.bot.log.read_text(errors="replace")
            if "Traceback" in log:
                errors = sorted({m.group() for m in re.finditer(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*$", log, re.M)})
                rows["tracebacks"].warnings.append(
                    f"not counted (the answers are what is counted): the main bot's log holds {log.count('Traceback')} "
                    f"tracebacks: {'; '.join(e[:160] for e in errors)}")
        for key, job in secret_jobs.items():
            try:
                job.result()
            except Exception as e:  # one broken run must not hide the others
                rows[key if key in rows else "tracebacks"].warnings.append(f"{key} did not run: {e!r}")
        pool.shutdown()
    finally:
        if served is not None:
            served.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return [rows[k] for k in selected]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verbose", action="store_true", help="list every case that succeeded (and warnings in full)")
    ap.add_argument("--cases", action="store_true", help="list every case with what happened")
    ap.add_argument("--only", default=",".join(CLASSES), help=f"comma-separated classes: {', '.join(CLASSES)}")
    args = ap.parse_args()
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    if unknown := only - set(CLASSES):
        ap.error(f"unknown classes: {', '.join(sorted(unknown))}")
    os.environ.update(GIT_ENV)  # the bench's own git commands (the repositories it builds)
    started = time.monotonic()
    rows = run(only)
    took = time.monotonic() - started
    width = max(len(r.label) for r in rows)
    print(f"{'class':<{width}}  {'tried':>5}  {'succeeded':>9}")
    for r in rows:
        if r.skipped:
            print(f"{r.label:<{width}}  {'-':>5}  {'-':>9}  SKIPPED: {r.skipped}")
            continue
        tried, succeeded = r.totals()
        print(f"{r.label:<{width}}  {tried:>5}  {succeeded:>9}")
    print(f"({took:.0f} s; goal: 0 everywhere but the unisolated control)")
    for r in rows:
        for w in r.warnings:
            print(f"WARNING [{r.label}]: {w if args.verbose else w[:300]}")
        if args.verbose or args.cases:
            for c in r.cases:
                if args.cases and not c.succeeded:
                    print(f"  refused   [{r.label}] {c.name}: {c.detail[:300]}")
                if c.succeeded:
                    print(f"  SUCCEEDED [{r.label}] {c.name}: {c.detail}")


if __name__ == "__main__":
    main()
