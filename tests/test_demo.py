"""`backportbot demo`, the README's first command, does what it says on a fresh machine."""

from __future__ import annotations

from bot.cli import main


def test_demo_conversation_behaves_as_expected(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "Every step behaved as expected." in out
    assert "✘" not in out
    # the PRs are branches pushed to the demo's bare remote
    refs = (tmp_path / "demo" / "remote.git" / "refs" / "heads" / "backport")
    assert sorted(p.name for p in refs.iterdir()) == ["1-to-1.0", "1-to-1.1", "3-to-1.0", "5-to-1.1"]
