"""The store migrates a database written by the first version (tests/data/store_v0.sql, dumped
from a `backportbot demo` run of that version, plus one row of every table its adapters made)
without losing anything, and refuses one written by a newer version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from adapters.store.sqlite import SCHEMA_VERSION, SQLiteStore
from bot.core.workflow import Op, State

DUMP = Path(__file__).parent / "data" / "store_v0.sql"


def old_database(tmp_path: Path) -> Path:
    path = tmp_path / "backportbot.db"
    conn = sqlite3.connect(path)
    conn.executescript(DUMP.read_text())
    conn.close()
    return path


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
    found = {t: conn.execute(f"select count(*) from [{t}]").fetchone()[0] for t in tables}
    conn.close()
    return found


def test_a_first_version_database_is_upgraded_without_loss(tmp_path):
    path = old_database(tmp_path)
    before = counts(path)
    store = SQLiteStore(path)
    after = counts(path)
    for table in ("requests", "attempts", "events", "hunks", "digests", "candidates", "dismissals", "batch_items",
                  "local_prs"):
        assert after[table] == before[table], table
    assert after["inbox"] == before["slack_events"] + before["deliveries"]
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION

    attempts = store.all_attempts()
    assert [a.state for a in attempts] == [State.PR_OPEN, State.PR_OPEN, State.PR_OPEN, State.FAILED, State.PR_OPEN]
    approved = attempts[-1]  # the demo's non-fix, approved by ada with a ✅
    assert approved.approved_by == "ada" and approved.needs_approval
    assert all(a.base_commit for a in attempts if a.state == State.PR_OPEN)
    failed = attempts[3]
    assert failed.stage == "resolving" and failed.failure_kind == "conflict" and failed.prerequisites
    assert all(a.stage is None for a in attempts if a.state != State.FAILED)
    assert store.hunks(failed.id)[0].resolved_by == "unresolved"
    assert [e.op for e in store.events(approved.id)] == [Op.NOTE] * len(store.events(approved.id))
    assert store.request(1).summary == "Summary: 2 PRs opened."
    assert store.last_digest("demo") is not None and store.candidate("41") is not None
    assert store.dismissed("demo") == {"#8"} and [i.key for i in store.batch("demo")] == ["#7"]
    assert store.local_pr(1).labels == ["backport"]
    # Deliveries received before the upgrade stay de-duplicated; a new one is stored.
    assert store.accept("slack", "Ev01", "message", {}, None) is None
    assert store.accept("github", "d-1", "message", {}, None) is None
    assert store.accept("github", "d-2", "message", {}, None) is not None
    assert store.pending() == [(after["inbox"] + 1, "github", "message", {}, None)]
    assert store.highest_message_number() >= 41

    SQLiteStore(path)  # opening it again changes nothing
    assert counts(path)["inbox"] == after["inbox"] + 1


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "backportbot.db"
    SQLiteStore(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer backportbot"):
        SQLiteStore(path)


def test_the_day_budget_counts_only_the_repository_s_attempts_since_the_day_began(tmp_path):
    store = SQLiteStore(tmp_path / "backportbot.db")
    spent = {("demo", "yesterday"): 500, ("demo", "today"): 120, ("other", "today"): 70, ("demo", "no model"): None}
    day = 1_700_000_000 // 86400 * 86400
    for (repo, when), tokens in spent.items():
        attempt = store.add_attempt(store.add_request(repo, "#1", [when], "ada", "console"), repo, f"#{when}", when)
        if tokens is not None:
            store.note(attempt, Op.NOTE, {}, llm={"calls": 1, "tokens": tokens, "seconds": 2.5})
        at = day - 3600 if when == "yesterday" else day + 60
        store.db.execute("update attempts set created_at = ? where id = ?", [at, attempt])
    assert store.llm_tokens_since("demo", day) == 120
    assert store.llm_tokens_since("other", day) == 70
    assert store.llm_tokens_since("demo", day - 86400) == 620
    assert store.llm_tokens_since("nobody", day) == 0
