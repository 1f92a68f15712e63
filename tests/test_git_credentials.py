"""A private repository over git smart-HTTP (git's own http-backend behind Basic auth, as GitHub
serves one): the bot fetches, lists and pushes with its token, a personal one or a GitHub App
installation token, given to git in the environment; the token is never on disk nor in what the
bot says; and a wrong token is answered by name."""

from __future__ import annotations

import base64

import pytest

from adapters.store.sqlite import SQLiteStore as Store
from tests import scenarios
from tests.fake_git_http import GitHTTP, http_backend
from tests.fake_github import FakeGitHub, app_key
from tests.gitrepo import GitRepo, published
from tests.test_console import converse

TOKEN = "ghs_private_repo_token_1"

pytestmark = pytest.mark.skipif(http_backend() is None, reason="git http-backend is not installed with git")


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch):
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_API_URL", fake.url)  # 127.0.0.1, the git server's host too: one GitHub
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    yield fake
    fake.close()


def private(tmp_path, scenario, token: str = TOKEN):
    work, remote, ref = published(tmp_path, scenario)
    root = tmp_path / "served"
    (root / "acme").mkdir(parents=True)
    remote.rename(root / "acme" / "server.git")
    server = GitHTTP(root, token)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["ada"]\n\n[chat.console]\nuser = "ada"\n\n[forge]\nadapter = "github"\n\n'
                   f'[[repos]]\nname = "server"\ngithub = "acme/server"\nurl = "{server.url}/acme/server.git"\n'
                   f'branches = [{{ name = "rel" }}]\n')
    return work, cfg, server


def test_a_private_repository_is_fetched_and_pushed_with_the_token(tmp_path, data_dir, github):
    work, cfg, server = private(tmp_path, scenarios.clean)
    try:
        github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
        out = converse(cfg, data_dir, ["/backport 12 to rel"])
    finally:
        server.close()
    assert "✅ rel: PR opened: https://github.com/acme/server/pull/1000" in out, out
    pushed = GitRepo(tmp_path / "served" / "acme" / "server.git").show("backport/12-to-rel", "src/server.c")
    assert "return 0;" in pushed
    basic = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert server.seen and set(server.seen) == {basic}  # every request, fetch and push, carried it
    on_disk = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert TOKEN.encode() not in on_disk and base64.b64encode(f"x-access-token:{TOKEN}".encode()) not in on_disk
    assert TOKEN not in out


def test_a_wrong_token_is_a_fetch_failure_in_words(tmp_path, data_dir, github):
    work, cfg, server = private(tmp_path, scenarios.clean, token="ghs_the_right_one")
    try:
        github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
        out = converse(cfg, data_dir, ["/backport 12 to rel"])
    finally:
        server.close()
    assert "I could not fetch server from its remote: it refused the bot's credentials" in out, out
    assert "GITHUB_TOKEN with access to the repository, or the GitHub App installed on it" in out
    assert TOKEN not in out
    assert all(a.state.value == "failed" for a in Store(data_dir / "backportbot.db").all_attempts())


def test_an_app_installation_token_is_used_for_git(tmp_path, data_dir, github, monkeypatch):
    _, pem = app_key()
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("GITHUB_APP_ID", "62")  # githubkit caches a signed JWT per App id in the process
    monkeypatch.setenv("GITHUB_APP_INSTALLATION_ID", "7")
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", pem.replace("\n", "\\n"))  # one line, as CI systems store it
    work, cfg, server = private(tmp_path, scenarios.clean, token="ghs_installation_1")
    try:
        github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug"])
        out = converse(cfg, data_dir, ["/backport 12 to rel"])
    finally:
        server.close()
    assert "✅ rel: PR opened" in out, out
    assert any(c.path == "/app/installations/7/access_tokens" for c in github.calls)


def test_the_token_goes_to_githubs_host_only():
    from adapters.forge.github_git import GitAuth

    auth = GitAuth("https://api.github.com", lambda: "ghs_x")
    assert set(auth.env("https://github.com/acme/server.git")) == {
        "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"}
    assert auth.env("https://github.com/a/b.git")["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraHeader"
    assert auth.env("https://gitlab.example/acme/server.git") == {}  # a mirror elsewhere never sees it
    assert auth.env("/srv/git/server.git", "git@github.com:acme/server.git") == {}
    enterprise = GitAuth("https://ghe.example/api/v3", lambda: "ghs_x")
    assert enterprise.env("https://ghe.example/acme/server.git")["GIT_CONFIG_KEY_0"] == \
        "http.https://ghe.example/.extraHeader"
