"""Config loading and `backportbot check-config`: valid files pass, every problem is reported
as `FILE: key.path: what is wrong`, and secrets are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import config
from bot.cli import main

EXAMPLE = Path(__file__).parent.parent / "config" / "backportbot.example.toml"


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    f = tmp_path / "bot.toml"
    f.write_text(text)
    code = main(["check-config", str(f)])
    captured = capsys.readouterr()
    return code, (captured.err or captured.out).splitlines()


def test_example_config_is_valid(capsys):
    assert main(["check-config", str(EXAMPLE)]) == 0
    cfg = config.load(EXAMPLE)
    valkey = cfg.repo("valkey")
    assert valkey.main_branch == "unstable"
    assert next(b for b in valkey.branches if "release/8.1" in b.aliases).name == "8.1"
    assert [c.name for c in valkey.commands] == ["build", "test"]


def test_every_problem_is_reported_with_its_key_path(tmp_path, capsys):
    code, lines = check(tmp_path, """
[[repos]]
name = "demo"
url = "https://example.org/demo.git"
main_branch = "main"
fix_labels = "bug"
branches = [{ name = "1.0" }, { nme = "2.0" }]
[[repos.commands]]
name = "test"
run = "make test"
timeout = -5
""", capsys)
    f = str(tmp_path / "bot.toml")
    assert code == 2
    assert f"{f}: repos[0].fix_labels: Input should be a valid list" in lines
    assert f"{f}: repos[0].branches[1].name: Field required" in lines
    assert f"{f}: repos[0].branches[1].nme: Extra inputs are not permitted" in lines
    assert f"{f}: repos[0].commands[0].timeout: Input should be greater than 0" in lines


def test_location_and_branch_rules(tmp_path, capsys):
    code, lines = check(tmp_path, """
[[repos]]
name = "demo"
main_branch = "main"
branches = [{ name = "main" }]
""", capsys)
    assert code == 2
    assert any("repos[0]: give exactly one of 'url'" in line for line in lines)


def test_secrets_in_the_file_are_refused(tmp_path, capsys):
    code, lines = check(tmp_path, '[bot]\nslack_token = "xoxb-123"\n[[repos]]\nname = "x"\n', capsys)
    assert code == 2
    assert any("bot.slack_token: secrets are not read from files" in line for line in lines)
    assert not any("xoxb-123" in line for line in lines)


def test_syntax_error_and_missing_file(tmp_path, capsys):
    code, lines = check(tmp_path, "[[repos]\nname=", capsys)
    assert code == 2 and lines[0].startswith(f"{tmp_path / 'bot.toml'}: (syntax): ")
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 2
    assert "(file): No such file or directory" in capsys.readouterr().err
    for nested in ("x = " + "[" * 1000 + "]" * 1000, "x = " + "{a = " * 1000 + "1" + "}" * 1000):
        code, lines = check(tmp_path, nested + '\n[[repos]]\nname = "x"\n', capsys)
        assert (code, lines) == (2, [f"{tmp_path / 'bot.toml'}: (syntax): arrays or tables nested too deeply"])


def test_data_dir_precedence(tmp_path, monkeypatch):
    cfg = config.load(EXAMPLE)
    monkeypatch.setenv("BACKPORTBOT_HOME", str(tmp_path / "env"))
    assert config.data_dir(tmp_path / "cli", cfg) == tmp_path / "cli"
    assert config.data_dir(None, cfg) == tmp_path / "env"
    monkeypatch.delenv("BACKPORTBOT_HOME")
    assert config.data_dir(None, cfg) == Path("/var/lib/backportbot")


def local_repo(name: str, path: Path) -> str:
    return f'[[repos]]\nname = "{name}"\npath = "{path}"\nbranches = [{{ name = "1.0" }}]\n'


def test_check_config_finds_what_would_fail_at_run_time(tmp_path, capsys, repo):
    f = str(tmp_path / "bot.toml")
    head = f'[bot]\ndata_dir = "{tmp_path / "bot.toml"}"\n'  # a data directory that is a file
    mars = '[digest]\ntimezone = "Mars/Olympus_Mons"\n'
    code, lines = check(tmp_path, head + mars + """
[[repos]]
name = "server"
url = "https://x-access-token:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/acme/server.git"
branches = [{ name = "1.0" }]
[[repos.commands]]
name = "test"
run = "curl -H 'Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123' https://api.github.com"
""", capsys)
    assert code == 2
    assert any(line.startswith(f"{f}: repos[0].url: this looks like a credential") for line in lines), lines
    assert any(line.startswith(f"{f}: repos[0].commands[0].run: this looks like a credential") for line in lines)
    code, lines = check(tmp_path, head + mars + local_repo("..", repo.path), capsys)
    assert f"{f}: digest: unknown time zone 'Mars/Olympus_Mons' (an IANA name such as Europe/Paris)" in lines
    assert any(line.startswith(f"{f}: repos[0].name: String should match pattern") for line in lines), lines
    code, lines = check(tmp_path, head + local_repo("here", repo.path) + local_repo("nowhere", tmp_path / "missing")
                        + local_repo("plain", tmp_path), capsys)
    assert code == 2
    assert f"{f}: bot.data_dir: {tmp_path / 'bot.toml'} is a file, not a directory" in lines
    assert f"{f}: repos[0]: branch '1.0' does not exist in {repo.path}" in lines
    assert f"{f}: repos[1].path: {tmp_path / 'missing'} does not exist" in lines
    assert f"{f}: repos[2].path: {tmp_path} is not a git repository" in lines
    (tmp_path / "latin1.toml").write_bytes(b'[bot]\nmaintainers = ["Jos\xe9"]\n')
    assert main(["check-config", str(tmp_path / "latin1.toml")]) == 2
    assert "not UTF-8 text (byte 25)" in capsys.readouterr().err
