"""`backportbot demo`, the README's first command, does what it says on a fresh machine."""

from __future__ import annotations

from bot.cli import main


def test_demo_shows_a_clean_pick_a_resolved_conflict_and_an_explained_failure(tmp_path, capsys):
    assert main(["demo", "--dir", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "1.0: ok: backport/1-to-1.0" in out
    assert "1.0: ok: backport/3-to-1.0" in out and "1.1: ok: backport/3-to-1.1" in out
    assert "1.1: failed at resolving (conflict)" in out
    assert "Missing prerequisite: " in out and "Add strict mode to limit (#2) — backport it first" in out
    assert "app.py: 1 hunk: line 6: unresolved" in out
