"""`backportbot doctor` and the checks `serve` runs before it starts: one real call per configured
integration against local stand-ins that answer as Slack, Discord, GitHub, a git smart-HTTP server
and a model server do, including their refusals; one line per check, the fix for each failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import discord
import pytest

from bot.cli import main
from tests import scenarios
from tests.fake_discord import FakeDiscord
from tests.fake_git_http import GitHTTP
from tests.fake_github import FakeGitHub, app_key
from tests.fake_openai import FakeOpenAI
from tests.fake_slack import FakeSlack, socket_mode_hello
from tests.gitrepo import published

ROOT = Path(__file__).parent.parent


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch):
    slack, github, model, chat = FakeSlack(), FakeGitHub(), FakeOpenAI(), FakeDiscord()
    monkeypatch.setattr(discord.http.Route, "BASE", chat.url)
    for key, value in {"SLACK_API_URL": slack.url, "SLACK_BOT_TOKEN": "xoxb-right", "SLACK_APP_TOKEN": "xapp-right",
                       "GITHUB_API_URL": github.url, "GITHUB_TOKEN": "ghp_right", "OPENAI_BASE_URL": model.url,
                       "OPENAI_API_KEY": "sk-test", "DISCORD_TOKEN": "discord-right"}.items():
        monkeypatch.setenv(key, value)
    slack.valid_tokens = {"xoxb-right", "xapp-right"}
    slack.socket_url, close_socket = socket_mode_hello()
    github.valid_tokens = {"ghp_right"}
    chat.valid_token = "discord-right"
    yield slack, github, model, chat
    for fake in (slack, github, model, chat):
        fake.close()
    close_socket()


def configure(tmp_path: Path, url: str, adapters: str = '"slack"', branches: str = '{ name = "rel" }') -> Path:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nisolation = "none"\n\n[chat]\nadapters = [{adapters}]\n\n[forge]\nadapter = "github"\n\n'
                   f'[llm]\nenabled = true\nmodel = "local-model"\n\n'
                   f'[[repos]]\nname = "server"\ngithub = "acme/server"\nurl = "{url}"\nbranches = [{branches}]\n')
    return cfg


def doctor(cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--config", str(cfg), "doctor"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_every_integration_answers(tmp_path, services, capsys):
    slack, github, model, _ = services
    _, remote, _ = published(tmp_path, scenarios.clean)
    code, out = doctor(configure(tmp_path, remote.as_uri(), '"discord"'), capsys)
    assert code == 0 and "ok   discord: logged in as backportbot" in out, out
    code, out = doctor(configure(tmp_path, remote.as_uri()), capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert "ok   slack: bot token works: backportbot (UBOT) in acme" in lines
    assert "ok   slack socket mode: app token opens a Socket Mode connection; Slack said hello" in lines
    assert f"ok   github: token accepted by {github.url}" in lines
    assert "ok   github acme/server: the repository is reachable with every permission the bot needs" in lines
    assert f"ok   git server: {remote.as_uri()} answers with every configured branch (2)" in lines
    assert "ok   model: local-model at " + model.url + " answers" in lines
    assert lines[-1] == "Every required check passed."
    assert [m for m, _ in slack.calls] == ["auth.test", "apps.connections.open"]


def test_wrong_tokens_are_named_with_their_fix_and_exit_2(tmp_path, services, capsys, monkeypatch):
    _, github, _, _ = services
    _, remote, _ = published(tmp_path, scenarios.clean)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-right")  # a bot token where the app token belongs
    monkeypatch.setenv("DISCORD_TOKEN", "discord-old")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    code, out = doctor(configure(tmp_path, remote.as_uri(), '"discord"'), capsys)
    assert code == 2 and "FAIL discord: Discord refused the token (401)" in out and "Bot → Reset Token" in out
    code, out = doctor(configure(tmp_path, remote.as_uri()), capsys)
    assert code == 2
    assert "FAIL slack: auth.test failed: Slack refused the bot's credentials (invalid_auth)" in out
    assert "fix: copy the Bot User OAuth Token (xoxb-…)" in out
    assert "FAIL slack socket mode: apps.connections.open failed: Slack answered `not_allowed_token_type`" in out
    assert "fix: SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write" in out
    assert "FAIL github acme/server: GitHub refused the bot's credentials (401: Bad credentials)" in out
    assert "1" not in out.splitlines()[-1] and out.splitlines()[-1].endswith("failed: the bot cannot start.")
    assert "xoxb-revoked" not in out and "ghp_wrong" not in out and "discord-old" not in out


def test_github_permissions_the_bot_lacks_are_listed(tmp_path, services, capsys, monkeypatch):
    _, github, _, _ = services
    _, remote, _ = published(tmp_path, scenarios.clean)
    cfg = configure(tmp_path, remote.as_uri())
    github.valid_tokens = None
    github.can_push = False  # a read-only personal token
    code, out = doctor(cfg, capsys)
    assert code == 2 and "FAIL github acme/server: missing permissions: push (write access to contents)" in out
    _, pem = app_key()
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_APP_ID", "61")  # githubkit caches a signed JWT per App id in the process
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "7")
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", pem.replace("\n", "\\n"))  # one line, as often stored
    github.app_permissions = {"contents": "read", "pull_requests": "write", "metadata": "read"}
    code, out = doctor(cfg, capsys)
    assert code == 2 and f"ok   github: GitHub App installation token accepted by {github.url}" in out
    assert "FAIL github acme/server: missing permissions: contents: write, issues: read, checks: read, " \
           "statuses: read" in out
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", "not a key")
    code, out = doctor(cfg, capsys)
    assert code == 2 and "FAIL github: GITHUB_APP_PRIVATE_KEY is not a private key in PEM form" in out, out


def test_a_private_remote_refusing_the_token_and_a_missing_branch_are_found(tmp_path, services, capsys):
    _, github, _, _ = services
    github.valid_tokens = None
    _, remote, _ = published(tmp_path, scenarios.clean)
    (tmp_path / "served" / "acme").mkdir(parents=True)
    remote.rename(tmp_path / "served" / "acme" / "server.git")
    server = GitHTTP(tmp_path / "served", "ghs_only_this_one")
    try:
        url = f"{server.url}/acme/server.git"
        code, out = doctor(configure(tmp_path, url), capsys)
        assert code == 2 and f"FAIL git server: git ls-remote {url} failed" in out
        assert "fix: A maintainer must give the bot read access: GITHUB_TOKEN with access to the repository" in out
        server.token = "ghp_right"
        server.close()
        server = GitHTTP(tmp_path / "served", "ghp_right")
        url = f"{server.url}/acme/server.git"
        code, out = doctor(configure(tmp_path, url, branches='{ name = "rel" }, { name = "9.9" }'), capsys)
        assert code == 2 and f"FAIL git server: {url}: missing branch 9.9" in out, out
    finally:
        server.close()


def test_the_model_failing_is_a_warning_not_a_refusal(tmp_path, services, capsys):
    _, _, model, _ = services
    _, remote, _ = published(tmp_path, scenarios.clean)
    model.script = [lambda data: {"status": 404}]
    code, out = doctor(configure(tmp_path, remote.as_uri()), capsys)
    assert code == 0, out
    assert "warn model: local-model at" in out and "(404): boom" in out
    assert "fix: check OPENAI_BASE_URL, OPENAI_API_KEY and [llm] model" in out


def test_serve_refuses_to_start_when_a_required_check_fails(tmp_path, services):
    slack, _, _, _ = services
    _, remote, _ = published(tmp_path, scenarios.clean)
    cfg = configure(tmp_path, remote.as_uri())
    env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-revoked", "BACKPORTBOT_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(cfg), "serve"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "FAIL slack: auth.test failed" in done.stdout
    assert "backportbot: not starting: fix what failed above" in done.stderr
    assert "Traceback" not in done.stderr and "Listening" not in done.stdout


def test_check_config_finds_a_branch_missing_on_the_remote(tmp_path, capsys):
    _, remote, _ = published(tmp_path, scenarios.clean)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[[repos]]\nname = "server"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "8.1" }}]\n')
    assert main(["check-config", str(cfg)]) == 2
    captured = capsys.readouterr()
    assert f"FAIL git server: {remote.as_uri()}: missing branch 8.1" in captured.out
    assert "the remotes do not match it" in captured.err


def test_the_container_health_check_follows_the_running_bot(tmp_path, services):
    """`serve --host 0.0.0.0` (the image's command) listens on every address; `health` (the image's
    HEALTHCHECK) is 0 while that bot renews its lease and 1 once it is killed."""
    from tests.processes import Processes, wait_for

    slack, _, _, _ = services
    _, remote, _ = published(tmp_path, scenarios.clean)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[serve]\nport = 0\n\n[chat]\nadapters = ["slack"]\n[chat.slack]\nmode = "http"\n\n'
                   f'[[repos]]\nname = "server"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')
    home = tmp_path / "home"
    env = {**os.environ, "BACKPORTBOT_HOME": str(home), "SLACK_SIGNING_SECRET": "s3cret"}

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", "health"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60, check=False)

    assert health().returncode == 1 and "no database" in health().stdout
    procs = Processes(tmp_path / "logs")
    try:
        bot = procs.start(["--config", str(cfg), "serve", "--host", "0.0.0.0"], env)
        assert bot.url().startswith("http://0.0.0.0:")
        port = int(bot.url().rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as raw:  # not HTTP: aiohttp answers 400
            raw.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
            assert b" 400 Bad Request" in raw.recv(100)
        done = wait_for(lambda: (h := health()) and h.returncode == 0 and h, "a healthy answer")
        assert done.stdout.startswith(f"healthy: pid {bot.pid}")
        assert "Traceback" not in bot.stderr() and "Error handling request" in bot.stderr()  # one line
        bot.kill()
        after = health()
        assert after.returncode == 1 and after.stdout.startswith("unhealthy"), after.stdout
    finally:
        procs.close()
